"""Figure 4's claims (``experiments.clipping_networks``): per model, whether the best clipped
configuration reaches the target loss in fewer steps than the best without clipping."""

from __future__ import annotations

import numpy as np

from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import EXACT, MEASURED, Rerun
from experiments.claims.values import censor, number

NETWORK_RERUN = {"rnn": Rerun(factor=2.0, factor_above=1.0, words=True,
                              why="the best of near-tied cells can change; " + MEASURED)}
"""``clipping_accelerates_networks/<model>``: the tanh RNN's grid is chaotic at its large
learning rates (the char_lm and ResNet rows did not move). Its text and yes/no numbers (the
best cells, the largest stable lr, the speed verdict) may change; its steps, seed counts and
speed-ups may move by the factor; the grid's settings may not move."""

NETWORKS = ("char_lm", "resnet_digits", "rnn")
"""The models of ``experiments.clipping_networks`` (conf/clipping_networks.yaml): one row of
``clipping_accelerates_networks`` each."""


def _cell(c) -> str:
    """A grid cell as text: "lr 0.03, clip 1", "lr 0.01, no clipping"."""
    clip = "no clipping" if not np.isfinite(number(c["threshold"])) else (
        f"clip {number(c['threshold']):g}")
    return f"lr {number(c['lr']):g}, {clip}"


def _best_text(c) -> str:
    if c is None:
        return "none"
    steps = _median_steps(c)
    med = f"{steps:g} steps" if np.isfinite(steps) else "median seed does not reach it"
    return (f"{_cell(c)}: {med} ({int(c['seeds_reaching'])} seeds reach, "
            f"{int(c['seeds_diverged'])} diverge)")


def _median_steps(c) -> float:
    """A best cell's median steps to the target; a median seed that never reaches it counts
    as infinitely many."""
    return number(c["median_steps"]) if c["median_steps"] is not None else np.inf


def _best_numbers(which: str, c, budget: int) -> list[Number]:
    """``<which>`` (the cell, or "none"), its median steps to the target (``budget`` when
    its median seed does not reach it, as every count that never arrived) and seed counts."""
    if c is None:
        return [Number(which, "none")]
    return [Number(which, _cell(c)),
            Number(f"median_steps/{which}", float(censor([c["median_steps"]], budget)[0])),
            Number(f"seeds_reaching/{which}", int(c["seeds_reaching"])),
            Number(f"seeds_diverged/{which}", int(c["seeds_diverged"]))]


def _speedup(sp: dict, budget: int) -> tuple[str, list[Number]]:
    """The speed-up's text and numbers: the median over seeds (a bound when a run never
    reached the target within ``budget`` steps) and each seed's."""
    if sp["median"] is None:
        return "speed-up not measurable", []
    bound = ">= " if sp["censored"] else ""
    text = (f"speed-up {bound}{number(sp['median']):.3g}x (seeds: "
            + ", ".join(f"{number(v):.3g}" for v in sp["per_seed"])
            + (f"; a run that never reached the target counts as {budget} "
               "steps, so the ratio is a bound)" if sp["censored"] else ")"))
    return text, [Number("speedup", number(sp["median"])),
                  Number("speedup_censored", bool(sp["censored"])),
                  *(Number(f"speedup/{i}", number(v)) for i, v in enumerate(sp["per_seed"]))]


def _mechanism(stable, exceeds) -> tuple[str, list[Number]]:
    """The largest unclipped lr that trains on every seed (a grid choice, like a best cell:
    published as its text), and whether the best clipped lr exceeds it."""
    text = ("no unclipped lr trains on every seed" if stable is None else
            f"largest unclipped lr that trains on every seed {number(stable):g}")
    text += {True: "; the best clipped lr is larger", False: "; the best clipped lr is not "
             "larger", None: ""}[exceeds]
    found = [Number("largest_stable_unclipped_lr",
                    "none" if stable is None else f"{number(stable):g}")]
    if exceeds is not None:
        found.append(Number("clipped_lr_exceeds_stable", bool(exceeds)))
    return text, found


def network_row(grid: dict) -> Outcome:
    """The ``clipping_accelerates_networks`` row of one model's grid: the measured
    comparison, and whether clipping helped (reported, not gated)."""
    sp = grid["speedup"]
    n_seeds = len(grid["seeds"])
    bu, bc = grid["best_unclipped"], grid["best_clipped"]
    budget = int(grid["steps"])
    speed, speed_numbers = _speedup(sp, budget)
    mech, mech_numbers = _mechanism(grid["largest_stable_unclipped_lr"],
                                    grid["clipped_lr_exceeds_stable"])
    helped = None
    if sp["median"] is not None and bc is not None:
        helped = bool(_median_steps(bc) < (_median_steps(bu) if bu else np.inf))
    verdict = {True: "clipping trains faster", False: "clipping does not train faster",
               None: "undecided"}[helped]
    return Outcome(
        f"target loss {number(grid['target']):g} within {budget} steps, "
        f"{n_seeds} seeds: best without clipping {_best_text(bu)}; best with clipping "
        f"{_best_text(bc)}; {speed}; {mech}: {verdict}",
        "an observation (Figure 4 of the paper on AWD-LSTM and ResNet20); no bound",
        # the grid's settings: a rerun does not move them, whatever the model's allowance
        [Number("target_loss", number(grid["target"]), rerun=EXACT),
         Number("step_budget", budget, rerun=EXACT),
         Number("seeds", n_seeds, rerun=EXACT),
         *_best_numbers("best_unclipped", bu, budget), *_best_numbers("best_clipped", bc, budget),
         *speed_numbers, *mech_numbers, Number("speed_verdict", verdict)],
        decides=False)


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
