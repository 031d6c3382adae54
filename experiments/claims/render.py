"""The generated documents of the claims: CLAIMS.md, the table of every evaluated claim
(``to_markdown``), and SMOOTHNESS.md, the correlation table of the smoothness experiment
(``smoothness_table``). The claims' modules measure and judge; only this module lays out
whole documents."""

from __future__ import annotations

import numpy as np

from experiments.claims.registry import ClaimRecord, verdict_word
from experiments.claims.rerun import EXACT
from experiments.claims.smoothness import SMOOTHNESS_RERUN, interval_verdict
from experiments.claims.values import number


def markdown_cell(text: str) -> str:
    """A Markdown table cell: a "|" inside it (as in |g|) would split the row."""
    return text.replace("|", "\\|")


def to_markdown(claims: list[ClaimRecord], missing: list[str]) -> str:
    """The CLAIMS.md table."""
    lines = [
        "# Claims",
        "",
        "Written by `make verify` (`python -m experiments.verify`) from the run records in "
        "`results/`. A claim is *gating* when its status carries [paper] or [checked] and "
        "nothing recalled, observed or heuristic: `make verify` fails if a gating claim fails. "
        "Every gating claim states its tolerance, and the mutation suite "
        "([MUTANTS.md](MUTANTS.md)) shows a wrong variant of the code that makes it fail. "
        "Runs that diverge or never reach eps count as the budget T, never as absent. "
        "Each verdict is computed from named numbers, each with its rule; "
        "[claims.json](claims.json) lists them all. The last column says how far a rerun on "
        "another machine may move a claim's numbers ([RERUN.md](RERUN.md) measures it): "
        "`python -m experiments.publish --check --results <a rerun's records>` compares "
        "them number by number within that allowance.",
        "",
        "| id | claim | source | status | tolerance | measured | theory | verdict | gating | "
        "a rerun on another machine may move each number by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = (c.id, c.statement, c.source, c.status, c.tolerance or "-", c.measured,
                 c.theoretical, verdict_word(c), "yes" if c.gating else "no",
                 _allowances(c))
        lines.append("| " + " | ".join(markdown_cell(x) for x in cells) + " |")
    if missing:
        lines += ["", "Not evaluated (their records are missing): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"


def _allowances(c: ClaimRecord) -> str:
    """The claim's allowance, then each number's own where it differs: "rounding only;
    best_cell/rnn: a yes/no or text value may change"."""
    own: dict[str, list[str]] = {}
    for n in c.numbers:
        if n.rerun is not None and n.rerun != c.rerun:
            own.setdefault(n.rerun.describe(), []).append(n.name)
    return "; ".join([c.rerun.describe()] + [f"{', '.join(names)}: {text}"
                                             for text, names in own.items()])


def _interval(c) -> str:
    if not isinstance(c, dict):
        return "-"
    est, lo, hi = (number(c.get(k)) for k in ("estimate", "lo", "hi"))
    if not np.isfinite(est):
        return "-"
    band = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{est:+.2f}{band}"


def _subsample_sizes(m: dict) -> str:
    """The subsample sizes per model, e.g. "mlp 50 of 500 rows, ..." ("none" when skipped)."""
    subs = m.get("subsample")
    if not isinstance(subs, dict):
        return "not computed in this run"
    parts = []
    for model in m["models"]:
        s = subs.get(model)
        parts.append(f"{model} {s['rows']} of {s['train_rows']} rows" if isinstance(s, dict)
                     else f"{model} not computed")
    return ", ".join(parts)


def _hessian_text(m: dict) -> str:
    """How and where the Hessian norm was measured."""
    on = m["hessian_models"]
    if not on:
        return "power iteration, not computed in this run (hvp_iters = 0)"
    every = int(number(m["hess_every"]))
    where = "every logged point" if every == 1 else f"every {every}th logged point"
    off = [k for k in m["models"] if k not in on]
    return (f"{m['hvp_iters']} power iterations warm-started from the previous measured "
            f"point, at {where}, on {', '.join(on)}"
            + (f" (not computed on {', '.join(off)})" if off else ""))


def run_lengths_text(m: dict) -> str:
    """The runs' lengths: "S steps per run, logged every K" with " (except ...)" for the
    models whose runs have their own steps / log_every, or only the per-model list when no
    run has the default length."""
    from research.smoothness import run_lengths

    own, default = run_lengths(m)
    listed = "; ".join(f"{k}: {s} steps logged every {e}" for k, (s, e) in own.items())
    if own and not default:
        return f"Steps per run, and every how many steps a point is logged: {listed}"
    return (f"{m['steps']} steps per run, logged every {m['log_every']}"
            + (f" (except {listed})" if own else ""))


def smoothness_table(record: dict) -> str:
    """The correlation table of the smoothness experiment, as Markdown: per model x regime,
    the pooled raw Spearman, trend-robust correlations and slope with their bootstrap
    intervals (reported), the seed-level intervals and the verdict from them, the subsample
    estimator's and the Hessian's verdicts, and whether every seed trained."""
    from research.smoothness import REGIMES

    m = record["metrics"]
    b, sl = m["bootstrap"], m["seed_level"]
    lines = [
        "# Smoothness against gradient norm",
        "",
        "Written by `make verify` from `results/smoothness` (`python -m experiments.smoothness`)."
        f" {run_lengths_text(m)}; seeds "
        f"{', '.join(str(s) for s in m['seeds'])}. L-hat is the trajectory estimator "
        "(full-batch gradients at x_k and at the midpoint of the step); the subsample estimator "
        "is the same ratio with gradients averaged over a random subsample of the training "
        f"rows (the authors' own; {_subsample_sizes(m)}), drawn afresh at each logged point, "
        "the same rows at both points; ‖H‖ is the Hessian norm by "
        + _hessian_text(m)
        + ". Every correlation is of log L-hat "
        "against log ‖∇f‖. Pooled: over all seeds' logged points, with a "
        f"{100 * number(b['level']):.0f}% interval from a bootstrap over seeds and "
        f"blocks of time ({b['method']}; {b['n_boot']} "
        "resamples), reported; the raw Spearman shares a time trend with both series. The "
        "verdict treats the seed as the unit: each trend-robust statistic (partial Spearman "
        "given the step; Spearman of the log-differences) and the log-log slope is computed "
        "within each seed, and the seeds' values get a t-interval (on Fisher's z for the "
        f"correlations) at the {100 * number(sl['level']):.2f}% level, {sl['correction']}-"
        f"corrected for the {sl['tests']} tests of this table ({sl['rows']} rows x 2 "
        "statistics). Positive or negative where both correlations' intervals exclude 0 on "
        "that side; 'statistics disagree' where two of the three exclude 0 on opposite "
        "sides; else no evidence; and 'not training' when a seed's loss did not fall below "
        "the constant predictor's.",
        "",
        "| model | regime | seeds | points | pooled: Spearman (raw) | pooled: partial given "
        "step | pooled: log-differences | pooled: slope | per seed: partial given step | "
        "per seed: log-differences | per seed: slope | verdict | subsample verdict | ‖H‖ "
        "verdict | training | a rerun on another machine may move each number by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def rank(k):
        r = m["runs"][k]
        return (m["models"].index(r["model"]), REGIMES.index(r["regime"])
                if r["regime"] in REGIMES else len(REGIMES))

    for key in sorted(m["runs"], key=rank):
        r = m["runs"][key]
        t, h = r["traj"], r["hess"]
        u = r["sub"]
        pooled = t["pooled"]
        seed = t.get("seed_level", {})
        cells = [r["model"], r["regime"], str(len(r["seeds"])), str(pooled["n_points"]),
                 _interval(pooled["spearman"]), _interval(pooled["partial_spearman"]),
                 _interval(pooled["detrended"]), _interval(pooled["slope"]),
                 _interval(seed.get("partial_spearman")), _interval(seed.get("detrended")),
                 _interval(seed.get("slope")), interval_verdict(t), interval_verdict(u),
                 interval_verdict(h), "yes" if r["training"] else "**no**",
                 SMOOTHNESS_RERUN.get(r["model"], EXACT).describe()]
        lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
