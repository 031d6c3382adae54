"""Claim (Zhang et al. 2020, Figure 4): on a network, clipping at its best trains faster than
the best fixed learning rate without clipping, at a learning rate that does not train without
clipping. One column per model. Top: the selection grid, steps to the model's target training
loss over learning rate x clipping threshold, the median over the selection seeds (colour and
number, with how many seeds reached it); a cell where the median seed did not reach the
target within the budget is grey with "-", and "div" counts diverged seeds. The boxes mark
the chosen cells without clipping (dashed) and with clipping (solid). Middle: the chosen
cells, and the clipped cell's learning rate without clipping, on the evaluation seeds (which
chose nothing): full-batch training loss, the median with the band from the lowest to the
highest seed; the dotted line is the target, the dash-dotted line the constant predictor's
loss. Bottom: the paired speed-up on each evaluation seed, as the interval its counts
allow (exact where both runs reach the target; an arrow: unbounded), and the
order-statistic interval for the median (band).

Reads results/clipping_networks (python -m experiments.clipping_networks).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from research import plotting

TITLES = {"char_lm": "character LSTM on stdlib source", "resnet_digits": "ResNet (batch norm) "
          "on digits", "rnn": "tanh RNN on the adding problem"}
LOSS = {"char_lm": "cross-entropy (nats)", "resnet_digits": "cross-entropy",
        "rnn": "mean squared error"}


def _threshold_label(t: float) -> str:
    return "none" if math.isinf(t) else f"{t:g}"


def _config_label(c: dict) -> str:
    if c is None:
        return "none"
    clip = "" if math.isinf(c["threshold"]) else f", clip {c['threshold']:g}"
    return f"lr {c['lr']:g}{clip}"


def _heatmap(ax, m: dict, fig) -> None:
    steps = np.asarray(m["steps_to_target"], dtype=float)  # (lrs, thr, seeds)
    div = np.asarray(m["diverged"], dtype=bool)
    s = np.where(steps < 0, np.inf, steps)
    med = np.median(s, axis=2)
    shown = np.where(np.isfinite(med), med, np.nan)
    cmap = plt.get_cmap("viridis_r").with_extremes(bad="0.85")
    im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=m["steps"], aspect="auto", origin="lower")
    n_seeds = steps.shape[2]
    for i in range(steps.shape[0]):
        for j in range(steps.shape[1]):
            reach = int((steps[i, j] >= 0).sum())
            text = "-" if not np.isfinite(med[i, j]) else f"{med[i, j]:g}"
            text += f"\n{reach}/{n_seeds}"
            if div[i, j].any():
                text += f" div {int(div[i, j].sum())}"
            dark = np.isfinite(shown[i, j]) and shown[i, j] > 0.55 * m["steps"]
            ax.text(j, i, text, ha="center", va="center", fontsize=5.5,
                    color="black" if not dark else "white")
    lrs, thr = m["lrs"], m["thresholds"]
    for cell, ls in ((m["best_unclipped"], "--"), (m["best_clipped"], "-")):
        if cell is None:
            continue
        i = lrs.index(cell["lr"])
        j = next(k for k, t in enumerate(thr) if float(t) == cell["threshold"])
        ax.add_patch(Rectangle((j - 0.48, i - 0.48), 0.96, 0.96, fill=False, lw=1.4, ls=ls,
                               ec=plotting.OKABE_ITO[3]))
    ax.set_xticks(range(len(thr)), [_threshold_label(float(t)) for t in thr])
    ax.set_yticks(range(len(lrs)), [f"{v:g}" for v in lrs])
    ax.set_xlabel("clipping threshold (global norm)")
    ax.set_ylabel("learning rate")
    ax.grid(False)
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label(f"median steps to loss {m['target']:g}", fontsize=6)
    cb.ax.tick_params(labelsize=6)


ROLES = (("best_unclipped", "-", "best unclipped: "),
         ("best_clipped", "--", "best clipped: "),
         ("unclipped_at_clipped_lr", ":", "clipped lr, unclipped: "))


def _curves(ax, m: dict, traces: dict, name: str) -> list:
    ev = m["evaluation"]
    it = np.asarray(traces[f"{name}/evaluation/iteration"])
    data = np.asarray(traces[f"{name}/evaluation/train_loss"], dtype=float)  # (cells, seeds, t)
    order = ("best_clipped", "best_unclipped", "unclipped_at_clipped_lr")
    handles = []
    for k, (role, ls, label) in enumerate(ROLES):
        cell = ev["cells"][role]
        if role == "unclipped_at_clipped_lr" and cell["lr"] == ev["cells"]["best_unclipped"]["lr"]:
            continue  # the same runs as the best unclipped cell
        y = data[order.index(role)]
        with np.errstate(all="ignore"):
            lo, mid, hi = (np.nanmin(y, axis=0), np.nanmedian(y, axis=0),
                           np.nanmax(y, axis=0))
        color = plotting.OKABE_ITO[k]
        ax.fill_between(it, lo, hi, color=color, alpha=0.18, lw=0, zorder=1 + k)
        (h,) = ax.plot(it, mid, ls=ls, color=color, zorder=4 + k,
                       label=label + _config_label(cell))
        handles.append(h)
    ax.axhline(m["target"], color="0.3", ls=":", lw=0.8)
    ax.axhline(m["baseline"], color="0.3", ls="-.", lw=0.8)
    ax.set_yscale("log")
    plotting.quiet_log_ticks(ax, "y")
    ax.set_xlabel("step")
    ax.set_ylabel("training " + LOSS[name], fontsize=6.5)
    return handles


def _speedups(ax, m: dict) -> None:
    sp = m["evaluation"]["speedup"]
    lo = np.asarray(sp["per_seed_lo"], dtype=float)
    hi = np.asarray(sp["per_seed_hi"], dtype=float)
    x = np.arange(lo.size)
    floor, ceil = 0.05, 20.0  # where an unbounded end is drawn, as an arrow
    c = plotting.OKABE_ITO[1]
    for i in x:
        a, b = max(lo[i], floor), min(hi[i], ceil)
        ax.plot([i, i], [a, b], color=c, lw=2.0, solid_capstyle="butt")
        ax.plot([i, i], [a, b], "_", color=c, ms=6, mew=1.2)  # ends visible on short ones
        for end, edge, mark in ((lo[i], floor, "v"), (hi[i], ceil, "^")):
            if (end <= edge) if mark == "v" else (end >= edge):
                ax.plot([i], [edge], mark, color=c, ms=4)
    ax.axhspan(max(sp["lo"], floor), min(sp["hi"], ceil), color="0.5", alpha=0.15, lw=0)
    ax.axhline(1.0, color="0.3", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_ylim(floor * 0.8, ceil * 1.25)
    plotting.quiet_log_ticks(ax, "y")
    ax.set_xticks(x, [str(s) for s in m["evaluation"]["seeds"]], fontsize=6)
    ax.set_xlabel("evaluation seed")
    ax.set_ylabel("speed-up (unclipped steps / clipped)", fontsize=6.5)


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    models = record["metrics"]["models"]
    n = len(models)
    fig, axes = plt.subplots(3, n, figsize=(plotting.FULL_WIDTH, 7.0), squeeze=False,
                             height_ratios=[1.25, 1, 1])
    for col, (name, m) in enumerate(models.items()):
        _heatmap(axes[0, col], m, fig)
        ev = m["evaluation"]
        if ev is None:
            axes[0, col].set_title(f"{TITLES.get(name, name)}\nnothing to evaluate",
                                   fontsize=7)
            axes[1, col].set_axis_off()
            axes[2, col].set_axis_off()
            continue
        sp = ev["speedup"]
        axes[0, col].set_title(
            f"{TITLES.get(name, name)}\nspeed-up {sp['median']:.2g}x, median in "
            f"[{sp['lo']:.2g}, {sp['hi']:.2g}]\n({100 * sp['coverage']:.0f}% interval, "
            f"{len(ev['seeds'])} evaluation seeds)", fontsize=6.5)
        h = _curves(axes[1, col], m, traces, name)
        _speedups(axes[2, col], m)
        axes[2, col].legend(handles=h, fontsize=5.5, frameon=False, loc="upper center",
                            bbox_to_anchor=(0.5, -0.3), ncol=1)
    fig.suptitle("Figure 4 on small networks: cells chosen on selection seeds, measured on "
                 "evaluation seeds", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_networks", draw, __doc__)

if __name__ == "__main__":
    main()
