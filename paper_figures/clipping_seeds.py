"""Claims (seeds 001, 002): GD with lr 0.1 from x = 10 on x^4 jumps to -390 and overflows,
while clipped and normalized GD with the same step converge; in the sigmoid chain the
gradients shrink by orders of magnitude towards the input layer, and clipping scales all of
them by one factor, so it does nothing for vanishing gradients. Left: GD's iterates as |x_t|
on a log axis (open markers: x_t < 0; x: the overflow), their values listed. Middle: clipped
and normalized GD nearly coincide, so they are told apart by line style (solid, dashed) and
by markers at staggered iterations; a triangle above (clipped) or below (normalized) the
curves marks the first iteration with |f'| <= 1e-3.

Reads results/clipping_seeds (python -m experiments.clipping_seeds).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

from research import plotting

CONVERGENT = {"clipped_gd": ("clipped GD", "-", "o"), "normalized_gd": ("normalized GD", "--", "s")}
"""Method -> (label, line style, marker); the markers of the two sit at staggered iterations."""

LISTED = 8
"""GD's first iterates that get a marker and are listed with their values."""


def _iteration_label(v: float, _pos=None) -> str:
    return f"{v:g}"


def _short(v: float) -> str:
    """A signed number in at most three significant digits, exponent without padding."""
    text = f"{v:.3g}"
    mant, _, exp = text.partition("e")
    return f"{mant}e{int(exp)}" if exp else mant


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]
    c = plotting.OKABE_ITO
    fig, (ax0, ax, ax2) = plt.subplots(1, 3, figsize=(plotting.FULL_WIDTH, 2.5),
                                       width_ratios=(0.85, 1.1, 1.05))
    # GD: |x_t| on a log axis, the sign by the marker (no symlog: its labels pile up at 0)
    x = np.asarray(traces["x4/gd"], dtype=float)
    info = m["x4"]["gd"]
    t = np.flatnonzero(np.isfinite(x) & (x != 0))
    listed = t[:LISTED]
    ax0.semilogy(t, np.abs(x[t]), color=c[0], lw=0.8)
    for k in listed:
        ax0.plot(k, abs(x[k]), "o", ms=3.5, color=c[0], mfc=c[0] if x[k] >= 0 else "white")
    lines = [f"t = {k}: {_short(x[k])}" for k in listed] + (["..."] if t.size > LISTED else [])
    bottom = min(1.0, float(np.abs(x[t]).min()) / 3)
    top = float(np.abs(x[t]).max()) * 1e25
    if info["diverged"]:
        ax0.plot(info["diverged_at"] + 1, top, "x", ms=5, mew=1.2, color=c[0], clip_on=False)
        lines.append(f"t = {info['diverged_at'] + 1}: overflow (x)")
    if t.size <= LISTED:
        ax0.set_xlim(-0.4, t[-1] + 1.4)
        ax0.set_xticks(range(t[-1] + 2))
    ax0.text(0.04, 0.96, "$x_t$ of GD\n" + "\n".join(lines), transform=ax0.transAxes,
             va="top", fontsize=5.5, linespacing=1.25)
    ax0.set_ylim(bottom, top)
    decades = np.log10(top / bottom)
    step = next((s for s in (1, 2, 5, 10, 20, 50, 100) if decades / s <= 6), 200)
    ax0.yaxis.set_major_locator(FixedLocator(
        [10.0 ** k for k in range(0, int(np.log10(top)) + 1, step)]))
    ax0.yaxis.set_minor_formatter(NullFormatter())
    ax0.set_xlabel("iteration t")
    ax0.set_ylabel(r"$|x_t|$ (open marker: $x_t < 0$)")
    ax0.set_title("GD overflows" if info["diverged"] else "GD", fontsize=7)
    # clipped and normalized GD: nearly the same iterates, so line style and staggered markers
    for i, (name, (label, ls, marker)) in enumerate(CONVERGENT.items()):
        x = np.asarray(traces[f"x4/{name}"], dtype=float)
        k = m["x4"][name]["iterations_to_eps"]
        col = c[i + 1]
        # markers at log-spaced iterations, half a spacing apart between the two methods
        spaced = np.geomspace(2, x.size - 1, 12)
        marks = np.unique(np.round(spaced * (spaced[1] / spaced[0]) ** (i / 2)).astype(int))
        ax.plot(np.arange(x.size), x, color=col, ls=ls, marker=marker, ms=2.8, mfc="white",
                mew=0.8, markevery=[int(j) for j in marks if j < x.size],
                label=label + (rf" ($t_\epsilon$ = {k})" if k >= 0 else r" ($t_\epsilon$ > T)"))
        if k >= 0:  # t_eps, close for the two: clipped from above, normalized below
            ax.plot(k, x[k] * (1.45 if i == 0 else 1 / 1.45), marker="v" if i == 0 else "^",
                    ms=4, color=col)
    ax.set_yscale("log")
    ax.set_xscale("symlog", linthresh=10.0, linscale=0.5)
    ax.xaxis.set_major_locator(FixedLocator([0, 10, 100, 1000]))
    ax.xaxis.set_major_formatter(FuncFormatter(_iteration_label))
    plotting.quiet_log_ticks(ax, "y", subs=(1.0, 3.0))
    ax.set_xlim(0, x.size * 1.1)
    ax.set_xlabel("iteration t (linear below 10, log above)")
    ax.set_ylabel(r"$x_t$")
    gap = np.nanmax(np.abs(traces["x4/clipped_gd"] - traces["x4/normalized_gd"]))
    ax.set_title(f"clipped and normalized GD converge (they differ\nby at most {gap:.2g}; "
                 r"triangles: $t_\epsilon$, the first t with $|f'| \leq$ 1e-3)", fontsize=6.5)
    ax.legend(fontsize=5.5, frameon=False, loc="lower left")
    ch = m["chain"]
    layers = np.arange(1, len(ch["gradients"]) + 1)
    ax2.bar(layers - 0.2, np.abs(ch["gradients"]), width=0.4, color=c[0], label="gradient")
    ax2.bar(layers + 0.2, np.abs(ch["clipped_gradients"]), width=0.4, color=c[1],
            label=f"after norm clipping (x {ch['clip_coef']:.4g})")
    ax2.set_yscale("log")
    ax2.set_xticks(layers)
    ax2.set_xlabel("layer (1 = nearest the input)")
    ax2.set_ylabel(r"$|\partial L / \partial w|$")
    ax2.set_title(f"sigmoid chain: total norm {ch['total_norm']:.4g},\n"
                  f"layer 4 / layer 1 = {ch['ratio_last_to_first_layer']:.3g}", fontsize=6.5)
    ax2.legend(fontsize=5.5, frameon=False, loc="upper left")
    fig.suptitle(r"Seed 001: $f = x^4$ from $x_0$ = 10 with step 0.1 (left, middle); "
                 "seed 002: vanishing gradients (right)", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_seeds", draw, __doc__)

if __name__ == "__main__":
    main()
