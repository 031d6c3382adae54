"""Claim: every theory step rule is a safe step (it never exceeds the largest descending step)
and the rules grow more conservative as ||grad f|| grows. On the MLP the constants are fitted
along a clipped GD run (least-area envelope of Hessian norm against gradient norm). Each line
is the ratio of the measured largest descending step h_desc (solid) or the largest step with
half the first-order decrease h_half (dashed) to a rule's step, against ||grad f||.

Reads results/max_step (python -m experiments.max_step).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

LABELS = {
    "inverse": r"$1/(L_0+L_1\|g\|)$",
    "star": r"$\eta^*$",
    "si": r"$\eta_{si}$",
    "cl": r"$\eta_{cl}$",
    "clipped_thm3": "clipped GD, Thm 3",
    "gd_thm6": "fixed step, Thm 6",
}


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    probs = record["metrics"]["problems"]
    fig, axes = plt.subplots(1, len(probs), figsize=(plotting.FULL_WIDTH, 2.8), sharey=True)
    for ax, (name, info) in zip(axes, probs.items(), strict=True):
        scatter = info["constants"].startswith("fitted")
        order = np.argsort(traces[f"{name}/grad_norm"])
        g = traces[f"{name}/grad_norm"][order]
        for i, rule in enumerate(LABELS):
            h = traces[f"{name}/rule/{rule}"][order]
            c = plotting.OKABE_ITO[i]
            ratio = info["ratio_h_desc_over_rule"][rule]["at_largest_g"]
            # trajectory points are not a function of ||g||: markers, not lines
            solid, dashed = ({"marker": "o", "ms": 2, "ls": "none"},
                             {"marker": "x", "ms": 2, "ls": "none"}) if scatter else ({}, {})
            ax.loglog(g, traces[f"{name}/h_desc"][order] / h, color=c, **solid,
                      label=f"{LABELS[rule]} (x{ratio:.3g} at max)")
            ax.loglog(g, traces[f"{name}/h_half"][order] / h, color=c, **(dashed or
                      {"ls": "--", "lw": 0.8}))
        if np.ptp(np.log10(g)) < 2:
            plotting.quiet_log_ticks(ax)
        ax.axhline(1.0, color="0.3", lw=0.7, ls=":")
        ax.set_xlabel(r"$\|\nabla f(x)\|$")
        kind = "fitted along the run" if info["constants"].startswith("fitted") else "stated"
        ax.set_title(f"{name}: (L0, L1) = ({info['L0']:.4g}, {info['L1']:.3g}) {kind}\n"
                     f"M = {info['M']:.3g}", fontsize=6.5)
        ax.legend(loc="upper left", fontsize=4.8, frameon=False)
    axes[0].set_ylabel("largest good step / rule's step")
    fig.suptitle("How conservative the step rules are (solid: largest descending step; "
                 "dashed or x: largest step with half the first-order decrease; below 1 would "
                 "be unsafe)", fontsize=7.5)
    return fig


main = plotting.figure_cli("max_step", draw, __doc__)

if __name__ == "__main__":
    main()
