"""Claim (seed 003): without clipping the RNN's gradient norm spikes by orders of magnitude
and some seeds diverge; norm clipping caps the step and keeps the direction (cosine 1), value
clipping caps it too but turns the update away from the gradient (cosine below 1). Left:
the seed whose unclipped run grew highest; the y axis ends a few decades above the largest
value of the run with norm clipping, so the unclipped run leaves the plot as it explodes: a
triangle marks where it leaves, an x where its gradient norm stops being finite (it
diverged). Right: norm clipping's ECDF is the step at cosine 1, drawn over value clipping's
where they meet.

Reads results/clipping_rnn (python -m experiments.clipping_rnn).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from research import plotting

DECADES_ABOVE = 4
"""The y range ends this many decades above the largest pre-clip norm of the clipped run
shown; an unclipped run that grows past it leaves the plot, and markers say where."""

NAMES = {"none": "no clipping", "norm": "norm clipping", "value": "value clipping"}


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]["variants"]
    cfg = record["config"]
    c = plotting.OKABE_ITO
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(plotting.FULL_WIDTH, 2.6))
    # show the seed whose unclipped run spiked highest
    spikes = np.where(np.isfinite(traces["none/grad_norm"]), traces["none/grad_norm"], np.inf)
    seed = int(np.argmax(spikes.max(axis=1)))
    shown = {name: np.asarray(traces[f"{name}/grad_norm"][seed], dtype=float)
             for name in ("none", "norm")}
    positive = np.concatenate([g[np.isfinite(g) & (g > 0)] for g in shown.values()])
    clipped = shown["norm"][np.isfinite(shown["norm"])]
    top = 10.0 ** (math.ceil(math.log10(clipped.max())) + DECADES_ABOVE)
    ax.set_ylim(10.0 ** math.floor(math.log10(positive.min())), top)
    for i, (name, g) in enumerate(shown.items()):
        ax.semilogy(np.arange(g.size), np.where(np.isfinite(g), g, np.nan), color=c[i], lw=0.6,
                    label=f"{NAMES[name]} (all seeds: {100 * m[name]['divergence_rate']:.0f}% "
                          f"diverged, max {m[name]['max_grad_norm']:.2g})")
        out = np.flatnonzero(~(g <= top))  # above the plot, or not finite
        if out.size:  # where the run leaves the plot, and where it stops being finite
            t_out = int(out[0])
            ax.plot(t_out, top, "^", ms=4, color=c[i], clip_on=False)
            ax.annotate(f"leaves the plot at t = {t_out}", (t_out, top), xytext=(4, -9),
                        textcoords="offset points", fontsize=5.5, color=c[i])
            bad = np.flatnonzero(~np.isfinite(g))
            if bad.size:
                t_bad = int(bad[0])
                ax.plot(t_bad, top, "x", ms=5, mew=1.2, color=c[i], clip_on=False)
                ax.annotate(f"not finite from t = {t_bad}\n(largest finite "
                            f"{np.nanmax(g[np.isfinite(g)]):.2g})", (t_bad, top),
                            xytext=(-4, -12), textcoords="offset points", ha="right", va="top",
                            fontsize=5.5, color=c[i])
    ax.axhline(cfg["norm_threshold"], color="0.2", ls=":", lw=0.8,
               label=f"threshold {cfg['norm_threshold']:g}")
    ax.set_xlabel("iteration")
    ax.set_ylabel(rf"pre-clip $\|\nabla f\|$ (seed {seed})")
    # between the markers' notes at the top and the clipped run's spikes
    ax.legend(fontsize=5.5, frameon=False, loc="upper right", bbox_to_anchor=(1.0, 0.74))
    for i, name in enumerate(("norm", "value")):
        cos = traces[f"{name}/cosine"].ravel()
        cos = cos[np.isfinite(cos)]
        # norm clipping's ECDF (a step at cosine 1) on top where value clipping's reaches 1
        plotting.ecdf(ax2, cos, color=c[i + 1], zorder=3 - i,
                      label=f"{NAMES[name]}: median {m[name]['median_cosine']:.3f}, "
                            f"min {m[name]['min_cosine']:.3f}")
    ax2.set_xlabel(r"cosine(update, $-\nabla f$)")
    ax2.set_ylabel("fraction of steps (ECDF, all seeds)")
    ax2.legend(fontsize=5.5, frameon=False, loc="upper left")
    lr = cfg["optimizers"]["sgd"]["lr"]
    fig.suptitle(f"Seed 003: tanh RNN on the adding problem (length {cfg['length']}), SGD lr "
                 f"{lr:g}, {record['metrics']['seeds']} seeds; value clip "
                 f"{cfg['clip_value']:g}", fontsize=8)
    return fig


main = plotting.figure_cli("clipping_rnn", draw, __doc__)

if __name__ == "__main__":
    main()
