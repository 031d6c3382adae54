"""Claim: every GD-type step on a problem with known (L0, L1) decreases f at least as much as
the phi-inequality guarantees (0 violations), and Vankov's rules make at least their promised
per-step progress. The panels show the distribution of the slack, measured decrease over
guaranteed decrease, per method (>= 1 means the guarantee held).

Reads results/descent_audit (python -m experiments.descent_audit).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    probs = record["metrics"]["problems"]
    levels = np.asarray(record["metrics"]["quantile_levels"])
    names = list(probs)
    ncol = 4
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(plotting.FULL_WIDTH, 1.75 * nrow + 0.5),
                             sharey=True, squeeze=False)
    total = violations = 0
    for ax, name in zip(axes.flat, names, strict=False):
        info = probs[name]
        for i, (mname, e) in enumerate(info["methods"].items()):
            q = np.asarray(e["phi"]["slack_quantiles"], dtype=float)
            total += e["phi"]["steps"]
            violations += e["phi"]["violations"]
            if q.size:
                ax.plot(q, levels, color=plotting.OKABE_ITO[i % 8], label=mname)
        v = sum(e["phi"]["violations"] for e in info["methods"].values())
        n = sum(e["phi"]["steps"] for e in info["methods"].values())
        ax.set_xscale("log")
        plotting.quiet_log_ticks(ax)
        ax.axvline(1.0, color="0.3", lw=0.7, ls=":")
        ax.set_title(f"{name} (L0={info['L0']:.3g}, L1={info['L1']:g})\n"
                     f"{v} violations / {n} steps", fontsize=6.5)
        ax.set_xlabel("measured / guaranteed")
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of steps (ECDF)")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
    fig.suptitle(rf"Step-descent audit against the $\varphi$-inequality: {violations} "
                 f"violations in {total} steps (float tolerance "
                 f"{record['metrics']['float_rtol']:g} relative)", fontsize=8)
    return fig


main = plotting.figure_cli("descent_audit", draw, __doc__)

if __name__ == "__main__":
    main()
