"""Claim: on x^4, clipped and normalized GD reach ||f'|| <= eps in about the same number of
steps from every start, while a fixed GD step either crawls (Theorem 6's step, safe for the
largest start) or diverges from large starts (a common step).

Reads results/quartic_trajectories (written by ``python -m experiments.quartic_trajectories``)
and writes paper_figures/quartic_trajectories.{pdf,png}.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

METHODS = ("gd_theorem6", "gd_common", "clipped_gd", "normalized_gd")


def _outcome(metrics: dict, b: int) -> str:
    """Iterations to ||f'|| <= eps for trajectory b: a number, ">T", or "div@t"."""
    if metrics["diverged"][b]:
        return f"div@{metrics['diverged_at'][b]}"
    k = metrics["iterations_to_eps"][b]
    return str(k) if k >= 0 else ">T"


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    it = traces["iterations"]
    x0 = traces["x0"]
    eps = record["config"]["eps"]
    fig, axes = plt.subplots(2, len(METHODS), figsize=(plotting.FULL_WIDTH, 3.3),
                             sharex=True, sharey="row")
    colors = plotting.OKABE_ITO
    # y range: what the non-diverged trajectories span; diverged ones leave through the top
    tops = {}
    for key in ("f_gap", "grad_norm"):
        ok = [traces[f"{n}/{key}"][~np.asarray(record["metrics"][n]["diverged"])]
              for n in METHODS]
        vals = np.concatenate([v[v > 0].ravel() for v in ok])
        tops[key] = (vals.min() / 3, vals.max() * 30)
    for col, name in enumerate(METHODS):
        m = record["metrics"][name]
        for row, key, ylabel in ((0, "f_gap", r"$f(x_t) - f^*$"),
                                 (1, "grad_norm", r"$\|\nabla f(x_t)\|$")):
            ax = axes[row, col]
            y = np.where(np.isfinite(traces[f"{name}/{key}"]), traces[f"{name}/{key}"], np.nan)
            lo, hi = tops[key]
            for b, start in enumerate(x0):
                ax.loglog(it[1:], y[b, 1:], color=colors[b % len(colors)],
                          label=f"$x_0$ = {start:g}")
                if m["diverged"][b]:  # mark where it left the plot (or the last finite value)
                    inside = np.flatnonzero(np.isfinite(y[b]) & (y[b] <= hi))
                    last = inside[-1] if inside.size else 0
                    ax.plot(max(it[min(last + 1, len(it) - 1)], 1), hi, "x", ms=5, mew=1.2,
                            color=colors[b % len(colors)], clip_on=False)
            ax.set_ylim(lo, hi)
            if row == 1:
                ax.axhline(eps, color="0.4", lw=0.7, ls=":")
                ax.set_xlabel("iteration $t$")
                ax.text(0.03, 0.04, r"$t_\epsilon$: " + ", ".join(_outcome(m, b) for b in
                                                              range(len(x0))),
                        transform=ax.transAxes, fontsize=6)
            else:
                ax.set_title(record["metrics"]["labels"][name].replace(", ", "\n", 1),
                             fontsize=6.5)
            if col == 0:
                ax.set_ylabel(ylabel)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(x0), frameon=False)
    fig.suptitle(r"$f(x) = x^4$: fixed-step GD vs clipped and normalized GD "
                 rf"(dotted: $\epsilon$ = {eps:g}; x: divergence; "
                 r"$t_\epsilon$ per $x_0$: first $t$ with $\|\nabla f\| \leq \epsilon$)",
                 fontsize=8)
    return fig


main = plotting.figure_cli("quartic_trajectories", draw, __doc__)

if __name__ == "__main__":
    main()
