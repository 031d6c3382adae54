"""Claim (Zhang et al. 2020, Figures 1-3): along training, local smoothness grows with the
gradient norm, most clearly with clipping and a large learning rate. One log-log panel per
model x regime: x = full-batch gradient norm, y = the trajectory estimate of smoothness,
colour = the point's step as a fraction of its run's steps (runs differ in length), one
marker per seed; an empty panel is a regime the model does not run; the line is the tightest
envelope L0 + L1 |g| above the points of all seeds. Each panel's title gives, with the seed
as the unit, the mean over seeds of the within-seed partial Spearman correlation of log L
against log |g| given the step and of the Spearman correlation of their log-differences, each
with its t-interval over seeds (Bonferroni-corrected over the table's rows), and the verdict
(positive / negative / statistics disagree / no evidence / not training; see
experiments/smoothness.py), followed by the verdict of the same estimator with subsample
gradients (the authors' own; "sub", when the record has it).

Reads results/smoothness (python -m experiments.smoothness).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from research import plotting, smoothness

TITLES = {"large_lr_clip": "large lr, clipped", "small_lr": "small lr",
          "small_lr_clip": "small lr, clipped", "momentum": "momentum 0.9, unclipped",
          "momentum_clip": "momentum 0.9, clipped"}

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
"""One marker per seed, in the record's seed order."""


def _label(v: float, _pos=None) -> str:
    """A tick label: 10^k as a power when far from 1, else the plain number."""
    if v <= 0:
        return ""
    k = math.log10(v)
    if abs(k - round(k)) < 1e-9 and (k <= -3 or k >= 4):
        return rf"$10^{{{round(k)}}}$"
    return f"{v:g}"


def log_ticks(ax, axis: str, lo: float, hi: float, max_ticks: int) -> None:
    """Major ticks on a log axis spanning [lo, hi], labelled without overlap: of the tick
    sets 1-1.5-2-3-4-5-7, 1-2-3-5-7, 1-2-5, 1-3, 1 per decade, 1 per two and 1 per three
    decades, the densest that puts between 2 and ``max_ticks`` ticks in the range (else the
    sparsest with at least one); minor ticks unlabelled."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    ticks = []
    if lo > 0 and hi > lo and math.isfinite(lo) and math.isfinite(hi):
        d0, d1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
        sets = []
        for subs, step in (((1, 1.5, 2, 3, 4, 5, 7), 1), ((1, 2, 3, 5, 7), 1), ((1, 2, 5), 1),
                           ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3)):
            cand = [s * 10.0 ** d for d in range(d0, d1 + 1) if d % step == 0 for s in subs]
            sets.append([c for c in cand if lo <= c <= hi])
        fits = [c for c in sets if 2 <= len(c) <= max_ticks]
        ticks = fits[0] if fits else next((c for c in reversed(sets) if c), [])
    if len(ticks) >= 1:
        target.set_major_locator(FixedLocator(ticks))
    else:
        target.set_major_locator(LogLocator(base=10, numticks=3))
    target.set_major_formatter(FuncFormatter(_label))
    target.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
    target.set_minor_formatter(NullFormatter())


def _series(traces: dict, key: str, name: str) -> np.ndarray:
    """A logged series as (seeds, points); a single-seed record's 1-D series is one row."""
    return np.atleast_2d(np.asarray(traces[f"{key}/{name}"], dtype=float))


def _ci(c: dict) -> str:
    def f(v):
        return "nan" if v is None or v != v else f"{v:+.2f}"

    return f"{f(c['estimate'])} [{f(c['lo'])}, {f(c['hi'])}]"


def panel_text(r: dict) -> str:
    """The three lines above a panel: the seed-level partial Spearman given the step and
    Spearman of log-differences with their intervals, and the verdict of the trajectory
    estimator (then, when the record has it, that of the subsample one)."""
    t = r["traj"]
    pooled = t.get("pooled")
    if pooled is None:  # a record of the single-seed experiment
        return rf"$\rho_s$ {t['spearman']:+.2f} (p {t.get('spearman_p', float('nan')):.1g})"
    verdict = t["verdict"]
    if verdict == "not training":
        ok = r["per_seed"]["training"]
        verdict += f" ({sum(ok)} of {len(ok)} seeds train)"
    elif "sub" in r:
        verdict += f"; sub: {r['sub']['verdict']}"
    seed = t["seed_level"]
    return (f"given step {_ci(seed['partial_spearman'])}\n"
            f"log-diff. {_ci(seed['detrended'])}\n\N{RIGHTWARDS ARROW} {verdict}")


def _sub_note(m: dict) -> str:
    """The sentence of the note on the subsample verdict ("" when no run has one)."""
    subs = [v for v in (m.get("subsample") or {}).values() if isinstance(v, dict)]
    if not subs:
        return ""
    fracs = {v["fraction"] for v in subs}
    share = f"{fracs.pop():.0%} of" if len(fracs) == 1 else "a fraction of"
    return (f"\nsub: the verdict of the same ratio with gradients over a random {share} the "
            "training rows, drawn afresh at each logged point (the authors' estimator).")


def draw(record: dict, traces: dict) -> plt.Figure:
    plotting.apply_style()
    m = record["metrics"]
    runs, models = m["runs"], m["models"]
    seeds = m["seeds"]
    regimes = [r for r in smoothness.REGIMES if any(v["regime"] == r for v in runs.values())]
    fig, axes = plt.subplots(len(models), len(regimes), squeeze=False,
                             figsize=(plotting.FULL_WIDTH, 1.75 * len(models) + 0.9))
    norm = Normalize(0, 1)  # a point's step over its run's steps: runs differ in length
    sc = None
    for i, model in enumerate(models):
        for j, regime in enumerate(regimes):
            ax = axes[i, j]
            key = f"{model}/{regime}"
            if key not in runs:
                ax.axis("off")
                continue
            r = runs[key]
            g, L = _series(traces, key, "grad_norm"), _series(traces, key, "smoothness_traj")
            it = np.asarray(traces[f"{key}/iteration"]) / r["steps"]
            ok = np.isfinite(g) & np.isfinite(L) & (g > 0) & (L > 0)
            for s in range(g.shape[0]):
                o = ok[s]
                sc = ax.scatter(g[s][o], L[s][o], c=it[o], cmap="viridis", norm=norm, s=5,
                                lw=0, alpha=0.75, marker=MARKERS[s % len(MARKERS)])
            env = r["traj"]["pooled"]
            if ok.any():
                glo, ghi = float(g[ok].min()), float(g[ok].max())
                llo, lhi = float(L[ok].min()), float(L[ok].max())
                if env.get("L0") is not None and ghi > glo:
                    gg = np.geomspace(glo, ghi, 50)
                    ax.plot(gg, env["L0"] + env["L1"] * gg, color=plotting.OKABE_ITO[3],
                            lw=0.8)
                    lhi = max(lhi, env["L0"] + env["L1"] * ghi)
                ax.set_xscale("log")
                ax.set_yscale("log")
                pad_x, pad_y = (ghi / glo) ** 0.06, (lhi / llo) ** 0.06
                ax.set_xlim(glo / pad_x, ghi * pad_x)
                ax.set_ylim(llo / pad_y, lhi * pad_y)
                log_ticks(ax, "x", glo / pad_x, ghi * pad_x, 3)
                log_ticks(ax, "y", llo / pad_y, lhi * pad_y, 4)
            div = r["per_seed"]["diverged_at"]
            n_div = sum(d >= 0 for d in div)
            if n_div:
                ax.text(0.98, 0.04, f"diverged: {n_div} of {len(div)} seeds",
                        transform=ax.transAxes, ha="right", fontsize=5,
                        color=plotting.OKABE_ITO[3])
            head = TITLES.get(regime, regime) + "\n" if (
                i == 0 or f"{models[i - 1]}/{regime}" not in runs) else ""
            ax.set_title(head + panel_text(r), fontsize=5, loc="left")
            if j == 0:
                ax.set_ylabel(f"{model}\n" + r"smoothness $\hat L$", fontsize=6.5)
            if i == len(models) - 1 or f"{models[i + 1]}/{regime}" not in runs:
                ax.set_xlabel(r"$\|\nabla f(x_k)\|$", fontsize=6.5)
            ax.tick_params(labelsize=5.5)
    if sc is not None:
        cb = fig.colorbar(sc, ax=axes, shrink=0.6, pad=0.01)
        cb.set_label("step / steps of the run", fontsize=6.5)
        cb.ax.tick_params(labelsize=5.5)
    handles = [Line2D([], [], ls="", marker=MARKERS[k % len(MARKERS)], color="0.35", ms=3,
                      label=f"seed {s}") for k, s in enumerate(seeds)]
    handles.append(Line2D([], [], color=plotting.OKABE_ITO[3], lw=0.8,
                          label=r"envelope $L_0 + L_1\|g\|$ over all seeds"))
    # two lines each, so that no text is wider than the panels and the colour bar
    own, default = smoothness.run_lengths(m)  # models run at their own length
    listed = ", ".join(f"{k} {s}/{e}" for k, (s, e) in own.items())
    if own and not default:
        length = f"steps/logged every: {listed}"
    else:
        length = (f"{m['steps']} steps, logged every {m['log_every']}"
                  + (f" ({listed})" if own else ""))
    fig.suptitle(f"Local smoothness vs gradient norm along training\n({length}; {len(seeds)} "
                 "seeds; trajectory estimator, full-batch gradients)", fontsize=8)
    sl = m["seed_level"]
    note = ("given step: partial Spearman of log $\\hat L$ against log $\\|g\\|$ given the "
            "step; log-diff.: Spearman of their log-differences;\neach within a seed, then the "
            f"mean over seeds with a t-interval at {100 * sl['level']:.2f}% (Bonferroni over "
            f"{sl['tests']} tests). Verdict: positive or negative when both\nintervals exclude "
            "0 on that side, 'statistics disagree' when two statistics (the log-log slope "
            "too) exclude it on opposite sides;\n'not training' when a seed's late loss is not "
            "below the constant predictor's, or it diverged. An empty panel is a regime that "
            "model does not run." + _sub_note(m))
    # below the panels, where no data or envelope runs
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=6,
               frameon=False, title=note, title_fontsize=5.5, alignment="center")
    return fig


main = plotting.figure_cli("smoothness", draw, __doc__)

if __name__ == "__main__":
    main()
