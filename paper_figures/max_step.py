"""Claim: every theory step rule is a safe step (it never exceeds the largest descending step)
and the rules grow more conservative as ||grad f|| grows. On the MLP the constants are fitted
along a clipped GD run (least-area envelope of Hessian norm against gradient norm). Each line
is the ratio of the measured largest descending step h_desc (solid) or the largest step with
half the first-order decrease h_half (dashed) to a rule's step, against ||grad f||; on the
MLP, whose trajectory points are not a function of ||grad f||, markers instead (o: h_desc,
x: h_half). Under each panel: h_desc over each rule's step at the largest ||grad f||. Rules
that give the very same step on a problem are drawn once and named together in its legend
(with L1 = 0, as fitted on the MLP, the inverse step, eta* and eta_si coincide, and so do
eta_cl and Theorem 6's fixed step); on cosh and quartic eta* is within 4 % of eta_si, so its
lines are drawn wide and pale beneath eta_si's.

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
        # rules that give the very same step on this problem are drawn once, labelled together
        groups: dict[str, list[str]] = {}
        for rule in LABELS:
            same = next((r for r in groups if np.array_equal(traces[f"{name}/rule/{r}"],
                                                             traces[f"{name}/rule/{rule}"])),
                        None)
            groups.setdefault(same or rule, []).append(rule)
        for i, rule in enumerate(LABELS):
            if rule not in groups:
                continue
            h = traces[f"{name}/rule/{rule}"][order]
            c = plotting.OKABE_ITO[i]
            ratio = info["ratio_h_desc_over_rule"][rule]["at_largest_g"]
            label = " = ".join(LABELS[r] for r in groups[rule]) + f": x{ratio:.3g}"
            if scatter:
                # trajectory points are not a function of ||g||: markers, not lines
                solid = {"marker": "o", "ms": 2, "ls": "none"}
                dashed = {"marker": "x", "ms": 2, "ls": "none"}
            else:
                # eta* is within a few percent of eta_si: drawn wide and pale beneath it
                wide = {"lw": 2.6, "alpha": 0.55} if rule == "star" else {}
                solid, dashed = wide, {"ls": "--", "lw": 0.8, **wide}
            ax.loglog(g, traces[f"{name}/h_desc"][order] / h, color=c, **solid, label=label)
            ax.loglog(g, traces[f"{name}/h_half"][order] / h, color=c, **dashed)
        if np.ptp(np.log10(g)) < 2:
            plotting.quiet_log_ticks(ax)
        ax.axhline(1.0, color="0.3", lw=0.7, ls=":")
        ax.set_xlabel(r"$\|\nabla f(x)\|$")
        kind = "fitted along the run" if info["constants"].startswith("fitted") else "stated"
        ax.set_title(f"{name.replace('_', ' ')}: M = {info['M']:.3g}\n"
                     f"(L0, L1) = ({info['L0']:.4g}, {info['L1']:.3g}) {kind}", fontsize=6.5)
        # below the panel, where no curve runs: the numbers differ per panel
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1 + (len(groups) > 3),
                  fontsize=5, frameon=False, handlelength=1.5, columnspacing=0.8,
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
