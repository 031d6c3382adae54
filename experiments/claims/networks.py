"""Figure 4's claims (``experiments.clipping_networks``): per model, whether the best clipped
configuration reaches the target loss in fewer steps than the best without clipping."""

from __future__ import annotations

import numpy as np

from experiments.claims.registry import Outcome, claim
from experiments.claims.rerun import EXACT, MEASURED, Rerun
from experiments.claims.values import number

NETWORK_RERUN = {"rnn": Rerun(factor=2.0, factor_above=1.0, words=True,
                              why="the best of near-tied cells can change; " + MEASURED)}
"""``clipping_accelerates_networks/<model>``: the tanh RNN's grid is chaotic at its large
learning rates (the char_lm and ResNet rows did not move)."""

NETWORKS = ("char_lm", "resnet_digits", "rnn")
"""The models of ``experiments.clipping_networks`` (conf/clipping_networks.yaml): one row of
``clipping_accelerates_networks`` each."""


def _best_text(c) -> str:
    if c is None:
        return "none"
    clip = "no clipping" if not np.isfinite(number(c["threshold"])) else (
        f"clip {number(c['threshold']):g}")
    steps = number(c["median_steps"]) if c["median_steps"] is not None else float("nan")
    med = f"{steps:g} steps" if np.isfinite(steps) else "median seed does not reach it"
    return (f"lr {number(c['lr']):g}, {clip}: {med} ({int(c['seeds_reaching'])} seeds reach, "
            f"{int(c['seeds_diverged'])} diverge)")


def network_row(grid: dict) -> Outcome:
    """The ``clipping_accelerates_networks`` row of one model's grid: the measured
    comparison, and whether clipping helped (reported, not gated)."""
    sp = grid["speedup"]
    n_seeds = len(grid["seeds"])
    bu, bc = grid["best_unclipped"], grid["best_clipped"]
    if sp["median"] is None:
        speed = "speed-up not measurable"
    else:
        bound = ">= " if sp["censored"] else ""
        speed = (f"speed-up {bound}{number(sp['median']):.3g}x (seeds: "
                 + ", ".join(f"{number(v):.3g}" for v in sp["per_seed"])
                 + (f"; a run that never reached the target counts as {int(grid['steps'])} "
                    "steps, so the ratio is a bound)" if sp["censored"] else ")"))
    stable = grid["largest_stable_unclipped_lr"]
    exceeds = grid["clipped_lr_exceeds_stable"]
    mech = ("no unclipped lr trains on every seed" if stable is None else
            f"largest unclipped lr that trains on every seed {number(stable):g}")
    mech += {True: "; the best clipped lr is larger", False: "; the best clipped lr is not "
             "larger", None: ""}[exceeds]
    helped = None
    if sp["median"] is not None and bc is not None:
        u = number(bu["median_steps"]) if bu and bu["median_steps"] is not None else np.inf
        c = number(bc["median_steps"]) if bc["median_steps"] is not None else np.inf
        helped = bool(c < u)
    verdict = {True: "clipping trains faster", False: "clipping does not train faster",
               None: "undecided"}[helped]
    return Outcome(
        f"target loss {number(grid['target']):g} within {int(grid['steps'])} steps, "
        f"{n_seeds} seeds: best without clipping {_best_text(bu)}; best with clipping "
        f"{_best_text(bc)}; {speed}; {mech}: {verdict}",
        "an observation (Figure 4 of the paper on AWD-LSTM and ResNet20); no bound", None)


def _network_claim(model: str):
    @claim(f"clipping_accelerates_networks/{model}", needs=("clipping_networks",),
           statement=f"On {model}, the best clipped (learning rate, threshold) reaches the "
           "target training loss in fewer steps than the best learning rate without "
           "clipping, at a learning rate larger than any that trains without clipping.",
           source="Zhang et al. 2020, Figure 4 and Section 5 (on AWD-LSTM/PTB and "
           "ResNet20/CIFAR-10; here small stand-ins)", status="[paper; observation]",
           rerun=NETWORK_RERUN.get(model, EXACT))
    def _row(rec):
        return network_row(rec["clipping_networks"]["metrics"]["models"][model])

    return _row


for _model in NETWORKS:
    _network_claim(_model)
