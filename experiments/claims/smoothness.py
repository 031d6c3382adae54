"""The claim that local smoothness grows with the gradient norm (``experiments.smoothness``),
the interval-based verdict of one model x regime, and how far a rerun may move a model's rows
of SMOOTHNESS.md."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import MEASURED, Rerun


def interval_verdict(stats: Mapping[str, Any]) -> str:
    """The interval-based verdict of one model x regime (``experiments.smoothness``):
    "positive", "negative", "no evidence", or "not training" (no verdict rests on a run
    whose training loss does not decrease)."""
    return stats["verdict"]


SMOOTHNESS_RERUN: dict[str, Rerun] = {
    "rnn": Rerun(atol=1.0, words=True, why="the tanh RNN's seeds are chaotic at these rates, "
                 "so an interval over five of them moves with any one, and its edge can cross "
                 "0; " + MEASURED),
    "char_lm": Rerun(atol=0.02, why="the LSTM language model's training rounds differently "
                     "on another instruction set (moves up to 0.005 measured); " + MEASURED)}
"""How far a rerun on another machine may move a model's rows of SMOOTHNESS.md (default
``EXACT``)."""


@claim("smoothness_grows_with_gradient_norm", needs=("smoothness",),
       statement="Along training with clipping and a large learning rate, local smoothness "
       "grows with the gradient norm: within each seed, the trend-robust correlations of log "
       "L-hat with log ||grad f|| (partial Spearman given the step; Spearman of "
       "log-differences) are positive, with the seed as the unit, on most models.",
       source="Zhang et al. 2020, Figures 1-3 (on ResNet20/CIFAR-10 and AWD-LSTM/PTB; here "
       "small stand-ins)", status="[paper; observation]",
       tolerance="a model is positive when both correlations' seed-level intervals (a "
       "t-interval over seeds on Fisher's z, Bonferroni-corrected over SMOOTHNESS.md's rows "
       "x 2 statistics) exclude 0 from below and no statistic, the log-log slope included, "
       "excludes it from above; a model whose seeds do not all end below the constant "
       "predictor's loss counts as not training. Supported when more than half the models "
       "at large lr with clipping are positive, refuted when more than half are negative, "
       "disagree or do not train, else inconclusive")
def _smoothness(rec):
    runs = records.read(rec, "smoothness", records.Smoothness)["metrics"]["runs"]
    big = [r for r in runs.values() if r["regime"] == "large_lr_clip"]
    words = ("positive", "negative", "statistics disagree", "no evidence", "not training")
    by = {v: [r["model"] for r in big if interval_verdict(r["traj"]) == v] for v in words}
    against = len(by["negative"]) + len(by["statistics disagree"]) + len(by["not training"])
    others = [f"{r['model']}/{r['regime']} {interval_verdict(r['traj'])}" for r in runs.values()
              if r["regime"] != "large_lr_clip"]
    half = len(big) / 2
    return Outcome(
        "large lr + clipping: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in by.items() if v)
        + f" ({len(big)} models); other regimes: {', '.join(others) or 'none'}; table: "
        "paper_figures/SMOOTHNESS.md",
        "an empirical observation, no bound",
        # supported above half positive, refuted above half against, else inconclusive
        [Number("large_lr_clip_positive_models", len(by["positive"]), ">", half,
                interval=(len(by["positive"]), len(big) - against)),
         Number("large_lr_clip_models_against", against)]
        + [Number(f"verdict/{r['model']}/{r['regime']}", interval_verdict(r["traj"]),
                  rerun=SMOOTHNESS_RERUN.get(r["model"])) for r in runs.values()])
