"""Claim (Zhang et al. 2020, Figure 4): on a network, clipping at its best trains faster than
the best fixed learning rate without clipping. One column per model. Top: steps to the
model's target training loss over learning rate x clipping threshold, the median over seeds
(colour and number, with how many seeds reached it); a cell where the median seed did not
reach the target within the budget is grey with "-", and "div" counts diverged seeds. The
boxes mark the best cell without clipping (dashed) and with clipping (solid). Middle and
bottom: full-batch training loss and validation loss of those two configurations, the median
over seeds with the band from the lowest to the highest seed; the dotted line is the target.
Where the two curves coincide the clipped one is drawn dashed on top.

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
    clip = "no clipping" if math.isinf(c["threshold"]) else f"clip {c['threshold']:g}"
    return f"lr {c['lr']:g}, {clip}"


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


def _curves(ax, m: dict, traces: dict, name: str, kind: str) -> list:
    it = np.asarray(traces[f"{name}/iteration"])
    data = np.asarray(traces[f"{name}/{kind}"], dtype=float)  # (lrs, thr, seeds, points)
    handles = []
    c = plotting.OKABE_ITO
    for k, (cell, ls, z) in enumerate(((m["best_unclipped"], "-", 2),
                                       (m["best_clipped"], "--", 3))):
        if cell is None:
            continue
        i = m["lrs"].index(cell["lr"])
        j = next(q for q, t in enumerate(m["thresholds"]) if float(t) == cell["threshold"])
        y = data[i, j]
        with np.errstate(all="ignore"):
            lo, mid, hi = (np.nanmin(y, axis=0), np.nanmedian(y, axis=0),
                           np.nanmax(y, axis=0))
        ax.fill_between(it, lo, hi, color=c[k], alpha=0.2, lw=0, zorder=z - 1)
        (h,) = ax.plot(it, mid, ls=ls, color=c[k], zorder=z, label=(
            ("without clipping, best: " if k == 0 else "with clipping, best: ")
            + _config_label(cell)))
        handles.append(h)
    if kind == "train_loss":
        ax.axhline(m["target"], color="0.3", ls=":", lw=0.8)
    ax.set_yscale("log")
    plotting.quiet_log_ticks(ax, "y")
    ax.set_xlabel("step")
    ax.set_ylabel(("training " if kind == "train_loss" else "validation ") + LOSS[name],
                  fontsize=6.5)
    return handles


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    models = record["metrics"]["models"]
    n = len(models)
    fig, axes = plt.subplots(3, n, figsize=(plotting.FULL_WIDTH, 6.4), squeeze=False,
                             height_ratios=[1.25, 1, 1])
    for col, (name, m) in enumerate(models.items()):
        _heatmap(axes[0, col], m, fig)
        sp = m["speedup"]
        speed = "no speed-up measurable" if sp["median"] is None else (
            f"speed-up {'>= ' if sp['censored'] else ''}{sp['median']:.2g}x "
            f"[{sp['min']:.2g}, {sp['max']:.2g}]")
        axes[0, col].set_title(f"{TITLES.get(name, name)}\n{speed} over "
                               f"{len(m['seeds'])} seeds", fontsize=7)
        h = _curves(axes[1, col], m, traces, name, "train_loss")
        _curves(axes[2, col], m, traces, name, "validation_loss")
        axes[2, col].legend(handles=h, fontsize=5.5, frameon=False, loc="upper center",
                            bbox_to_anchor=(0.5, -0.32), ncol=1)
    fig.suptitle("Figure 4 on small networks: best learning rate without clipping against the "
                 "best (learning rate, threshold) with clipping", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_networks", draw, __doc__)

if __name__ == "__main__":
    main()
