"""Claim (seed 003): without clipping the RNN's gradient norm spikes by orders of magnitude
and some seeds diverge; norm clipping caps the step and keeps the direction (cosine 1), value
clipping caps it too but turns the update away from the gradient (cosine below 1).

Reads results/clipping_rnn (python -m experiments.clipping_rnn).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]["variants"]
    cfg = record["config"]
    c = plotting.OKABE_ITO
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.6))
    # show the seed whose unclipped run spiked highest
    spikes = np.where(np.isfinite(traces["none/grad_norm"]), traces["none/grad_norm"], np.inf)
    seed = int(np.argmax(spikes.max(axis=1)))
    for i, name in enumerate(("none", "norm")):
        g = traces[f"{name}/grad_norm"][seed]
        g = np.where(np.isfinite(g), g, np.nan)
        ax.semilogy(np.arange(g.size), g, color=c[i], lw=0.6,
                    label=f"{name} clipping: {100 * m[name]['divergence_rate']:.0f}% of seeds "
                          f"diverged, max {m[name]['max_grad_norm']:.2g}")
    ax.axhline(cfg["norm_threshold"], color="0.2", ls=":", lw=0.8,
               label=f"threshold {cfg['norm_threshold']:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(rf"pre-clip $\|\nabla f\|$ (seed {seed})")
    ax.legend(fontsize=5.5, frameon=False)
    for i, name in enumerate(("norm", "value")):
        cos = traces[f"{name}/cosine"].ravel()
        cos = cos[np.isfinite(cos)]
        plotting.ecdf(ax2, cos, color=c[i + 1],
                      label=f"{name} clipping: median {m[name]['median_cosine']:.3f}, "
                            f"min {m[name]['min_cosine']:.3f}")
    ax2.set_xlabel(r"cosine(update, $-\nabla f$)")
    ax2.set_ylabel("fraction of steps (ECDF, all seeds)")
    ax2.legend(fontsize=5.5, frameon=False, loc="upper left")
    fig.suptitle(f"Seed 003: tanh RNN on the adding problem (length {cfg['length']}), SGD lr "
                 f"{cfg['lr']:g}, {record['metrics']['seeds']} seeds; value clip "
                 f"{cfg['clip_value']:g}", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_rnn", draw, __doc__)

if __name__ == "__main__":
    main()
