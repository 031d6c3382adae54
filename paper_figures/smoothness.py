"""Claim (Zhang et al. 2020, Figures 1-3): along training, local smoothness grows with the
gradient norm, most clearly with clipping and a large learning rate. One log-log panel per
model x regime: x = full-batch gradient norm, y = the trajectory estimate of smoothness,
colour = iteration; the line is the tightest envelope L0 + L1 |g| above the points, and the
legend gives the Spearman correlation and OLS slope of log L against log |g|.

Reads results/smoothness (python -m experiments.smoothness).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from research import plotting, smoothness

TITLES = {"large_lr_clip": "large lr, clipped", "small_lr": "small lr",
          "small_lr_clip": "small lr, clipped", "momentum_clip": "momentum, clipped"}


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    runs = record["metrics"]["runs"]
    models = record["metrics"]["models"]
    regimes = [r for r in smoothness.REGIMES if any(v["regime"] == r for v in runs.values())]
    fig, axes = plt.subplots(len(models), len(regimes), squeeze=False,
                             figsize=(plotting.FULL_WIDTH, 1.55 * len(models) + 0.5))
    norm = Normalize(0, record["metrics"]["steps"])
    sc = None
    for i, model in enumerate(models):
        for j, regime in enumerate(regimes):
            ax = axes[i, j]
            key = f"{model}/{regime}"
            if key not in runs:
                ax.axis("off")
                continue
            r = runs[key]
            g, L = traces[f"{key}/grad_norm"], traces[f"{key}/smoothness_traj"]
            it = traces[f"{key}/iteration"]
            ok = np.isfinite(g) & np.isfinite(L) & (g > 0) & (L > 0)
            sc = ax.scatter(g[ok], L[ok], c=it[ok], cmap="viridis", norm=norm, s=4, lw=0)
            s = r["traj"]
            if ok.sum() > 1 and s["L0"] is not None:
                gg = np.geomspace(g[ok].min(), g[ok].max(), 50)
                ax.plot(gg, s["L0"] + s["L1"] * gg, color=plotting.OKABE_ITO[3], lw=0.8,
                        label=rf"$\rho_s$ {s['spearman']:+.2f}, slope {s['slope']:+.2f}")
                ax.legend(fontsize=5, frameon=False, loc="upper left", handlelength=1.2)
            ax.set_xscale("log")
            ax.set_yscale("log")
            plotting.quiet_log_ticks(ax, "x", subs=(1.0, 3.0))
            plotting.quiet_log_ticks(ax, "y", subs=(1.0, 3.0))
            if r["diverged_at"] >= 0:
                ax.text(0.98, 0.04, f"diverged at {r['diverged_at']}", transform=ax.transAxes,
                        ha="right", fontsize=5, color=plotting.OKABE_ITO[3])
            if i == 0 or f"{models[i - 1]}/{regime}" not in runs:
                ax.set_title(TITLES.get(regime, regime), fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{model}\n" + r"smoothness $\hat L$", fontsize=6.5)
            if i == len(models) - 1 or f"{models[i + 1]}/{regime}" not in runs:
                ax.set_xlabel(r"$\|\nabla f(x_k)\|$", fontsize=6.5)
            ax.tick_params(labelsize=5.5)
    if sc is not None:
        cb = fig.colorbar(sc, ax=axes, shrink=0.6, pad=0.01)
        cb.set_label("iteration", fontsize=6.5)
        cb.ax.tick_params(labelsize=5.5)
    m = record["metrics"]
    fig.suptitle(f"Local smoothness vs gradient norm along training ({m['steps']} steps, "
                 f"logged every {m['log_every']}; trajectory estimator, full-batch gradients)",
                 fontsize=8)
    return fig


main = plotting.figure_cli("smoothness", draw, __doc__)

if __name__ == "__main__":
    main()
