"""Claim (Pascanu's heuristic): thresholds from 0.5x to 10x the average gradient norm are
reasonable. Final loss and divergence rate against the threshold multiple, for the MLP of
seed 000 and the RNN of seed 003, with global-norm clipping: the median over seeds, its 95%
interval (order statistics) as a band, and the share of seeds that diverged.

Reads results/clipping_mlp and results/clipping_rnn.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting


def draw(records: dict) -> plt.Figure:
    plotting.apply_style()
    fig, axes = plt.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.5))
    for ax, (name, key, label) in zip(axes, (
            ("clipping_mlp", "median_final_train_mse", "median final train MSE"),
            ("clipping_rnn", "median_final_test_mse", "median final test MSE")), strict=True):
        t = records[name]["metrics"]["thresholds"]
        mult = np.asarray(t["multiples"])
        loss = np.asarray([np.nan if v is None else v for v in t[key]], dtype=float)
        ax.loglog(mult, loss, "o-", ms=3, color=plotting.OKABE_ITO[0], label=label)
        ivs = t.get(f"final_{key.split('_')[2]}_mse_interval")
        if ivs:  # records before the intervals lack them
            lo, hi = (np.asarray([np.nan if iv is None else iv[k] for iv in ivs], dtype=float)
                      for k in ("lo", "hi"))
            ax.fill_between(mult, lo, hi, color=plotting.OKABE_ITO[0], alpha=0.2, lw=0,
                            label="95% interval of the median over seeds")
        ax.set_xlabel(f"threshold / mean pre-clip |g| ({t['mean_preclip_grad_norm']:.3g})")
        ax.set_ylabel(label)
        ax.axvspan(0.5, 10, color="0.9", zorder=0, label="Pascanu: 0.5x to 10x")
        ax2 = ax.twinx()
        ax2.plot(mult, 100 * np.asarray(t["divergence_rate"]), "s--", ms=3,
                 color=plotting.OKABE_ITO[3], label="diverged (%)")
        ax2.set_ylim(-5, 105)
        ax2.set_ylabel("diverged seeds (%)")
        ax.set_title(name.replace("clipping_", "").upper(), fontsize=7)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=5.5, frameon=False, loc="upper left")
    fig.suptitle("Clipping threshold sweep (global norm)", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_thresholds", draw, __doc__,
                           records=("clipping_mlp", "clipping_rnn"))

if __name__ == "__main__":
    main()
