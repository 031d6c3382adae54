"""The claim that local smoothness grows with the gradient norm (``experiments.smoothness``),
the interval-based verdict of one model x regime, and how far a rerun may move a model's rows
of SMOOTHNESS.md."""

from __future__ import annotations

from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import MEASURED, Rerun


def interval_verdict(stats: dict) -> str:
    """The interval-based verdict of one model x regime (``experiments.smoothness``):
    "positive", "negative", "no evidence", or "not training" (no verdict rests on a run
    whose training loss does not decrease)."""
    return stats["verdict"]


SMOOTHNESS_RERUN: dict[str, Rerun] = {
    "rnn": Rerun(atol=0.4, words=True, why="an interval's edge can cross 0; " + MEASURED)}
"""How far a rerun on another machine may move a model's rows of SMOOTHNESS.md (default
``EXACT``)."""


@claim("smoothness_grows_with_gradient_norm", needs=("smoothness",),
       statement="Along training with clipping and a large learning rate, local smoothness "
       "grows with the gradient norm: the 95% interval of the trend-robust correlation of log "
       "L-hat with log ||grad f|| (partial Spearman given the step; Spearman of log-"
       "differences), bootstrapped over seeds and blocks of time, excludes 0 from below.",
       source="Zhang et al. 2020, Figures 1-3 (on ResNet20/CIFAR-10 and AWD-LSTM/PTB; here "
       "small stand-ins)", status="[paper; observation]")
def _smoothness(rec):
    runs = rec["smoothness"]["metrics"]["runs"]
    big = [r for r in runs.values() if r["regime"] == "large_lr_clip"]
    by = {v: [r["model"] for r in big if interval_verdict(r["traj"]) == v]
          for v in ("positive", "negative", "no evidence", "not training")}
    others = [f"{r['model']}/{r['regime']} {interval_verdict(r['traj'])}" for r in runs.values()
              if r["regime"] != "large_lr_clip"]
    return Outcome(
        "large lr + clipping: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in by.items() if v)
        + f" ({len(big)} models); other regimes: {', '.join(others) or 'none'}; table: "
        "paper_figures/SMOOTHNESS.md",
        "an empirical observation, no bound",
        [Number("large_lr_clip_positive_models", len(by["positive"]), ">", len(big) / 2)]
        + [Number(f"verdict/{r['model']}/{r['regime']}", interval_verdict(r["traj"]),
                  rerun=SMOOTHNESS_RERUN.get(r["model"])) for r in runs.values()])
