"""Claim (seed 000): the MLP diverges without clipping, and trains with clipnorm (per tensor),
global_clipnorm or clipvalue. Train (solid) and test (dashed) MSE per epoch, one panel per
variant; thin lines are seeds, thick the median over the seeds that did not diverge.

Reads results/clipping_mlp (python -m experiments.clipping_mlp).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    variants = record["metrics"]["variants"]
    fig, axes = plt.subplots(1, len(variants), figsize=(plotting.FULL_WIDTH, 2.5),
                             sharey=True, sharex=True)
    for ax, (name, m) in zip(axes, variants.items(), strict=True):
        for key, ls, c in (("train_mse", "-", plotting.OKABE_ITO[0]),
                           ("test_mse", "--", plotting.OKABE_ITO[1])):
            y = traces[f"{name}/{key}"]
            y = np.where(np.isfinite(y), y, np.nan)
            ep = np.arange(y.shape[1])
            for row in y:
                ax.semilogy(ep, row, ls=ls, color=c, lw=0.3, alpha=0.35, marker="." if
                            np.isfinite(row).sum() == 1 else None)
            ok = np.asarray(m["diverged_epoch"]) < 0
            if ok.any():
                ax.semilogy(ep, np.nanmedian(y[ok], axis=0), ls=ls, color=c, lw=1.3,
                            label=key.replace("_mse", ""))
        rate = 100 * m["divergence_rate"]
        med = m["median_final_train_mse"]
        ax.set_title(f"{name}\n{rate:.0f}% diverged" + (f"\nmedian final train {med:.3g}"
                                                         if med is not None else "\n"),
                     fontsize=6.5)
        ax.set_xlabel("epoch")
        if rate:
            epochs = sorted({e for e in m["diverged_epoch"] if e > 0})
            ax.text(0.5, 0.5, f"NaN in epoch {', '.join(map(str, epochs))}",
                    transform=ax.transAxes, ha="center", fontsize=7)
    axes[0].set_ylabel("MSE")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, frameon=False)
    fig.suptitle(f"Seed 000: MLP on make_regression, SGD lr 0.01 momentum 0.9, batch 32, "
                 f"{record['metrics']['seeds']} seeds", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_mlp", draw, __doc__)

if __name__ == "__main__":
    main()
