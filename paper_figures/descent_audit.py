"""Claim: every GD-type step on a problem with known (L0, L1) decreases f at least as much as
the phi-inequality guarantees (0 violations), and Vankov's rules make at least their promised
per-step progress. The panels show the distribution of the slack, measured decrease over
guaranteed decrease, per method (>= 1 means the guarantee held), on one log x axis shared by
the panels. The methods: GD with the fixed step 1/(L0 + L1 ||grad f(x0)||) (the inverse step
at the start), clipped GD with Theorem 3's parameters, normalized GD with the equivalent
parameters, and GD with the (L0, L1) step rules of docs/theory.md §2 (the inverse step and
Vankov's eta*, eta_si and eta_cl). Curves that lie on top of each other are told apart by
their markers, which each method puts at different heights: with L1 = 0 the inverse step,
eta*, eta_si and GD's fixed step are one step, and clipped and normalized GD nearly agree.

Reads results/descent_audit (python -m experiments.descent_audit).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

LABELS = {
    "gd_local": r"GD, fixed step $1/(L_0 + L_1\|\nabla f(x_0)\|)$",
    "clipped_gd": "clipped GD, Theorem 3's parameters",
    "normalized_gd": "normalized GD, the equivalent parameters",
    "l0l1_inverse": r"(L0,L1) rule, inverse step $1/(L_0 + L_1 g)$",
    "l0l1_star": r"(L0,L1) rule, Vankov's $\eta^*$",
    "l0l1_si": r"(L0,L1) rule, Vankov's $\eta_{si}$",
    "l0l1_cl": r"(L0,L1) rule, Vankov's clipping-type $\eta_{cl}$",
}
"""Method names of experiments/descent_audit.py in words (docs/theory.md §2), in drawing order."""

STYLE = {
    "gd_local": (7, "-", "o"),
    "clipped_gd": (0, "-", "s"),
    "normalized_gd": (5, "--", "D"),
    "l0l1_inverse": (3, "-", "^"),
    "l0l1_star": (1, "-", "v"),
    "l0l1_si": (2, "--", "P"),
    "l0l1_cl": (4, "-", "X"),
}
"""Method -> (Okabe-Ito colour index, line style, marker)."""

MARK_EVERY = 56
"""Quantile levels between two markers of one method; each method's markers start one
MARK_EVERY / len(LABELS) later, so curves on top of each other show all their markers."""


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    probs = record["metrics"]["problems"]
    levels = np.asarray(record["metrics"]["quantile_levels"])
    names = list(probs)
    ncol = 4
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(plotting.FULL_WIDTH, 1.75 * nrow + 0.9),
                             sharex=True, sharey=True, squeeze=False)
    total = violations = 0
    lo, hi = 1.0, 2.0  # the x range: at least [1, 2], so every panel shows both ticks
    for ax, name in zip(axes.flat, names, strict=False):
        info = probs[name]
        methods = info["methods"]
        order = [m for m in LABELS if m in methods] + [m for m in methods if m not in LABELS]
        for i, mname in enumerate(order):
            e = methods[mname]
            q = np.asarray(e["phi"]["slack_quantiles"], dtype=float)
            total += e["phi"]["steps"]
            violations += e["phi"]["violations"]
            if q.size:
                colour, ls, marker = STYLE.get(mname, (i % 8, "-", "o"))
                start = (i * MARK_EVERY) // len(LABELS) + MARK_EVERY // (2 * len(LABELS))
                ax.plot(q, levels, color=plotting.OKABE_ITO[colour], ls=ls, lw=0.9,
                        marker=marker, ms=2.8, mew=0.6, mfc="white",
                        markevery=(start, MARK_EVERY), label=LABELS.get(mname, mname))
                shown = q[np.isfinite(q) & (q > 0)]  # what a log axis can show
                if shown.size:
                    lo, hi = min(lo, float(shown.min())), max(hi, float(shown.max()))
        v = sum(e["phi"]["violations"] for e in methods.values())
        n = sum(e["phi"]["steps"] for e in methods.values())
        ax.axvline(1.0, color="0.3", lw=0.7, ls=":")
        ax.set_title(f"{name} (L0={info['L0']:.3g}, L1={info['L1']:g})\n"
                     f"{v} violations / {n} steps", fontsize=6.5)
    for ax in axes[:, 0]:
        ax.set_ylabel("fraction of steps (ECDF)")
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.axis("off")
            if k >= ncol:  # the panel above an empty one carries the x labels
                axes.flat[k - ncol].xaxis.set_tick_params(labelbottom=True)
                axes.flat[k - ncol].set_xlabel("measured / guaranteed")
        elif k >= len(axes.flat) - ncol:
            ax.set_xlabel("measured / guaranteed")
    ax = axes.flat[0]
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.03, hi * 1.06)
    plotting.quiet_log_ticks(ax, subs=(1.0, 1.5, 2.0, 3.0))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, frameon=False)
    fig.suptitle(rf"Step-descent audit against the $\varphi$-inequality: {violations} "
                 f"violations in {total} steps (float tolerance "
                 f"{record['metrics']['float_rtol']:g} relative)", fontsize=8)
    return fig


main = plotting.figure_cli("descent_audit", draw, __doc__)

if __name__ == "__main__":
    main()
