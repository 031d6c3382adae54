"""Claims: with bounded noise from x0 = 8, clipped SGD with Theorem 7's step and SGD with
Theorem 8's step drive E||grad f|| below eps; from a poor start, where Theorem 7's clipping
binds on a quarter of the steps, and under heavy-tailed noise, the two are compared on the
average over iterates of E||grad f||; clipping biases SGD when the noise is skewed, leaving a
plateau that grows as the threshold shrinks (symmetric noise: no such plateau). Each panel's
title gives the share of steps each Theorem 7 variant clipped, counted at every step. A curve
stops where a seed diverged (its mean is then infinite). The runs are recorded
every record_every iterations: each curve joins the records from t = record_every on (dots on
the first few, up to t = 100, where the log axis spreads them apart), and the common start
at t = 0 is an open circle not joined to them, since nothing was recorded in between (the x
axis is linear up to record_every and logarithmic above). Where two clipped SGD runs reach
the same noise plateau their curves overlap.

Reads results/stochastic (python -m experiments.stochastic).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, SymmetricalLogLocator

from research import plotting

LABELS = {"clipped_sgd_thm7_printed": "clipped SGD, Thm 7 (as printed)",
          "clipped_sgd_thm7_without_eta": r"clipped SGD, Thm 7 without $\eta$ in denominator",
          "sgd_thm8": "SGD, Thm 8 step"}


def _iteration_label(v: float, _pos=None) -> str:
    """0 and the recording interval as plain numbers, powers of ten as powers."""
    k = np.log10(v) if v > 0 else 0.0
    return rf"$10^{{{round(k)}}}$" if v >= 100 and abs(k - round(k)) < 1e-9 else f"{v:g}"


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]
    probs = {k: m["regimes"][k] for k in record["config"]["regimes"]}  # the config's order
    every = record["config"]["record_every"]
    cols = math.ceil((len(probs) + 2) / 2)  # the regimes, the bias panel and the legend
    fig, grid = plt.subplots(2, cols, figsize=(plotting.FULL_WIDTH, 4.8))
    axes = list(grid.flat)
    for ax, (name, info) in zip(axes, probs.items(), strict=False):
        it = np.asarray(traces[f"{name}/iterations"])
        counts = []
        starts = {float(traces[f"{name}/{mname}/mean_grad_norm"][0]) for mname in LABELS}
        for i, (mname, label) in enumerate(LABELS.items()):
            y = np.asarray(traces[f"{name}/{mname}/mean_grad_norm"], dtype=float)
            y = np.where(np.isfinite(y), y, np.nan)  # after a divergence: no point to draw
            k = info["methods"][mname]["iterations_to_eps"]
            counts.append(str(k) if k >= 0 else ">T")
            # the records, every `every` iterations from t = every on; the start (t = 0) is a
            # separate marker, not joined to them: nothing was recorded in between
            # (dots on the records up to t = 100, where the log axis spreads them apart)
            ax.plot(it[1:], y[1:], color=plotting.OKABE_ITO[i], label=label, marker="o", ms=1.8,
                    markevery=[int(j) for j in np.flatnonzero(it[1:] <= 100)])
            if y[0] > 0:  # a start at the minimum (||grad f|| = 0) has no place on a log axis
                ax.plot(it[0], y[0], "o", ms=4, mfc="none", mew=0.9, clip_on=False,
                        color="0.2" if len(starts) == 1 else plotting.OKABE_ITO[i])
        ax.set_yscale("log")
        ax.set_xscale("symlog", linthresh=every, linscale=0.25)
        decades = range(math.floor(math.log10(every)) + 1, math.ceil(math.log10(it[-1])) + 1)
        ax.xaxis.set_major_locator(FixedLocator([0, every] + [10.0 ** k for k in decades]))
        ax.xaxis.set_major_formatter(FuncFormatter(_iteration_label))
        ax.xaxis.set_minor_locator(SymmetricalLogLocator(base=10, linthresh=every,
                                                         subs=np.arange(2, 10)))
        ax.set_xlim(-every / 3, it[-1] * 1.5)
        ax.axhline(m["eps"], color="0.3", lw=0.7, ls=":")
        ax.set_xlabel("iteration t")
        shares = ", ".join(f"{100 * info['methods'][k]['clip_fraction']:.2g}%"
                           for k in list(LABELS)[:2])
        ax.set_title(f"{name}, $x_0$ = {info['x0']:g}\n" + r"$t_\epsilon$: " + ", ".join(counts)
                     + f"\nclipped: {shares}", fontsize=6)
    axes[0].set_ylabel(r"$E\|\nabla f(x_t)\|$")
    axes[cols].set_ylabel(r"$E\|\nabla f(x_t)\|$")
    handles, labels = axes[0].get_legend_handles_labels()
    for spare in axes[len(probs) + 1:]:
        spare.axis("off")
    axes[-1].legend(handles, labels, loc="center", frameon=False, fontsize=6)
    ax = axes[len(probs)]
    b = m["bias"]
    for i, noise in enumerate(("uniform", "skewed")):
        ax.loglog(b["thresholds"], b["plateau"][noise], "o-", ms=3,
                  color=plotting.OKABE_ITO[i + 3], label=f"{noise} noise")
    ax.axvline(b["tau"], color="0.3", lw=0.7, ls=":")
    ax.set_xlabel("clipping threshold c")
    ax.set_ylabel(r"plateau $E\|\nabla f\|$")
    ax.set_title(f"bias of clipped SGD on {b['base']}\n($\\eta$ = {b['eta']:g}, p = {b['p']:g})",
                 fontsize=7)
    ax.legend(fontsize=6, frameon=False, loc="center left")
    taus = ", ".join(f"{t:g}" for t in sorted({info["tau"] for info in probs.values()}))
    fig.suptitle(rf"Stochastic gradients, {m['seeds']} seeds, $\tau$ = {taus} (uniform: "
                 r"$\|\xi\| \leq \tau$; heavy: scale $\tau$); dotted: $\epsilon$ (left), "
                 rf"$\tau$ (right); recorded every {every} iterations, open circle: the start",
                 fontsize=8)
    return fig


main = plotting.figure_cli("stochastic", draw, __doc__)

if __name__ == "__main__":
    main()
