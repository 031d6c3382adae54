"""Claim: the iterations of fixed-step GD grow with M (Theorem 6's step like M, the best fixed
step almost as fast), while clipped GD, normalized GD and Vankov's eta_si barely grow.
Measured counts (markers) against M on log-log axes with fitted slopes; dashed: the bounds
(Theorem 6 and Theorem 3 carry [recalled] constants; Vankov's bound is [secondary]).

Reads results/iteration_complexity (python -m experiments.iteration_complexity).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

METHODS = {
    "gd_thm6": ("GD, Thm 6 step", "o"),
    "gd_best_fixed": ("GD, best fixed step (sweep)", "s"),
    "clipped_thm3": ("clipped GD, Thm 3", "^"),
    "normalized": ("normalized GD", "v"),
    "vankov_si": (r"GD, $\eta_{si}$", "D"),
}
BOUNDS = {"thm6_recalled": ("gd_thm6", "Thm 6 bound [recalled]"),
          "thm3_recalled": ("clipped_thm3", "Thm 3 bound [recalled]"),
          "vankov_si": ("vankov_si", r"$\eta_{si}$ bound [secondary]")}


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    probs = record["metrics"]["problems"]
    fig, axes = plt.subplots(1, len(probs), figsize=(plotting.FULL_WIDTH, 2.9))
    colors = dict(zip(METHODS, plotting.OKABE_ITO, strict=False))
    for ax, (name, info) in zip(axes, probs.items(), strict=True):
        M = np.asarray(info["M"])
        for m, (label, marker) in METHODS.items():
            its = np.asarray(info["methods"][m]["iterations"], dtype=float)
            its[its < 0] = np.nan
            ax.loglog(M, its, marker=marker, ms=3.5, color=colors[m],
                      label=f"{label}: slope {info['slope_vs_M'][m]:.2f}")
        for b, (m, label) in BOUNDS.items():
            ax.loglog(M, info["bounds"][b], ls="--", lw=0.8, color=colors[m], label=label)
        ax.set_xlabel(r"$M = \sup\{|f'(x)|: f(x) \leq f(x_0)\}$")
        ax.set_title(f"{name}: (L0, L1) = ({info['L0']:g}, {info['L1']:g}), "
                     rf"$\epsilon$ = {record['metrics']['eps']:g}", fontsize=7)
        ax.legend(fontsize=5.2, loc="upper left", frameon=False)
    axes[0].set_ylabel(r"iterations to $|f'(x_t)| \leq \epsilon$")
    fig.suptitle("Iteration complexity against the gradient bound M", fontsize=8)
    return fig


main = plotting.figure_cli("iteration_complexity", draw, __doc__)

if __name__ == "__main__":
    main()
