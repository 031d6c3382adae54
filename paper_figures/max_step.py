"""Claim: every theory step rule is a safe step (it never exceeds the largest descending step)
and the rules grow more conservative as ||grad f|| grows. On the MLP the constants are fitted
along a clipped GD run (least-area envelope of Hessian norm against gradient norm). Each line
is the ratio of the measured largest descending step h_desc (solid) or the largest step with
half the first-order decrease h_half (dashed) to a rule's step, against ||grad f||; on the
MLP, whose trajectory points are not a function of ||grad f||, markers instead (o: h_desc,
x: h_half). Under each panel: h_desc over each rule's step at the largest ||grad f||. Some
curves coincide: with L1 = 0 (the MLP's fitted constants) the inverse step, eta* and eta_si
are the same step, so their markers lie on top of each other (the pink and light blue ones
show), and on cosh and quartic eta* and eta_si differ by at most 4 %, so their lines overlap.

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
    fig, axes = plt.subplots(1, len(probs), figsize=(plotting.FULL_WIDTH, 3.3), sharey=True)
    for ax, (name, info) in zip(axes, probs.items(), strict=True):
        scatter = info["constants"].startswith("fitted")
        order = np.argsort(traces[f"{name}/grad_norm"])
        g = traces[f"{name}/grad_norm"][order]
        for i, rule in enumerate(LABELS):
            h = traces[f"{name}/rule/{rule}"][order]
            c = plotting.OKABE_ITO[i]
            ratio = info["ratio_h_desc_over_rule"][rule]["at_largest_g"]
            if scatter:
                # trajectory points are not a function of ||g||: markers, not lines; shrinking
                # with the rule's place, so rules with the same step show as concentric rings
                size = 1.8 + 0.75 * (len(LABELS) - 1 - i)
                solid = {"marker": "o", "ms": size, "ls": "none", "mfc": "none", "mew": 0.6}
                dashed = {"marker": "x", "ms": size, "ls": "none", "mew": 0.6}
            else:
                # eta* is within a few percent of eta_si: drawn wide and pale beneath it
                wide = {"lw": 2.6, "alpha": 0.55} if rule == "star" else {}
                solid, dashed = wide, {"ls": "--", "lw": 0.8, **wide}
            ax.loglog(g, traces[f"{name}/h_desc"][order] / h, color=c, **solid,
                      label=f"{LABELS[rule]}: x{ratio:.3g}")
            ax.loglog(g, traces[f"{name}/h_half"][order] / h, color=c, **dashed)
        if np.ptp(np.log10(g)) < 2:
            plotting.quiet_log_ticks(ax)
        ax.axhline(1.0, color="0.3", lw=0.7, ls=":")
        ax.set_xlabel(r"$\|\nabla f(x)\|$")
        kind = "fitted along the run" if info["constants"].startswith("fitted") else "stated"
        ax.set_title(f"{name.replace('_', ' ')}: M = {info['M']:.3g}\n"
                     f"(L0, L1) = ({info['L0']:.4g}, {info['L1']:.3g}) {kind}", fontsize=6.5)
        # below the panel, where no curve runs: the numbers differ per panel
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=5,
                  frameon=False, handlelength=1.5, columnspacing=0.8,
                  title=r"$h_{desc}$ / rule's step at the largest $\|\nabla f\|$",
                  title_fontsize=5)
    axes[0].set_ylabel("largest good step / rule's step")
    fig.suptitle("How conservative the step rules are (below 1 would be unsafe)\nsolid or o: "
                 r"largest descending step $h_{desc}$; dashed or x: largest step with half the "
                 r"first-order decrease $h_{half}$", fontsize=7.5)
    return fig


main = plotting.figure_cli("max_step", draw, __doc__)

if __name__ == "__main__":
    main()
