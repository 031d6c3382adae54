"""Figure 4's claims (``experiments.clipping_networks``): per model, whether the best clipped
configuration reaches the target loss in fewer steps than the best without clipping, and
whether its learning rate trains without clipping; a verdict on each half."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import EXACT, MEASURED, Rerun
from experiments.claims.values import censor, number

NETWORK_RERUN = {"rnn": Rerun(atol=math.inf, words=True,
                              why="the best of near-tied cells can change, and every number "
                                  "measured on the chosen cells with it; " + MEASURED)}
"""``clipping_accelerates_networks/<model>``: the tanh RNN's grid is chaotic at its large
learning rates (the char_lm and ResNet rows did not move). Another instruction set can choose
another cell, and then every number measured on the chosen cells, its verdicts included, may
change; the grid's settings may not move."""

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
    """``<which>`` (the cell, or "none"), its median steps to the target on the selection
    seeds (``budget`` when its median seed does not reach it) and seed counts."""
    if c is None:
        return [Number(which, "none")]
    return [Number(which, _cell(c)),
            Number(f"median_steps/{which}", float(censor([c["median_steps"]], budget)[0])),
            Number(f"seeds_reaching/{which}", int(c["seeds_reaching"])),
            Number(f"seeds_diverged/{which}", int(c["seeds_diverged"]))]


def _bound(v: float) -> str:
    return "inf" if not np.isfinite(v) else f"{v:.3g}"


def _speed(ev: dict) -> tuple[str, list[Number]]:
    """The first half: the paired speed-up on the evaluation seeds. Rule: supported when the
    interval for its median lies above 1, refuted when below 1, else inconclusive (also when
    too few seeds give the interval its stated coverage)."""
    sp = ev["speedup"]
    lo, hi = number(sp["lo"]), number(sp["hi"])
    enough = number(sp["coverage"]) >= number(sp["level"])  # else no verdict rests on it
    text = (f"speed-up on {len(ev['seeds'])} evaluation seeds {number(sp['median']):.3g}x, "
            f"median in [{_bound(lo)}, {_bound(hi)}] ({100 * number(sp['coverage']):.1f}% "
            + ("" if enough else f"< {100 * number(sp['level']):g}%, too few seeds to decide; ")
            + "order-statistic interval; per seed "
            + ", ".join(f"[{_bound(number(a))}, {_bound(number(b))}]"
                        for a, b in zip(sp["per_seed_lo"], sp["per_seed_hi"], strict=True))
            + ")")
    return text, [Number("speedup", number(sp["median"])),
                  Number("speedup_interval_coverage", number(sp["coverage"]), rerun=EXACT),
                  Number("speedup_median_interval", number(sp["median"]), ">", 1.0,
                         interval=(lo, hi) if enough else (np.nan, np.nan)),
                  Number("speedup_lo", lo), Number("speedup_hi", hi)]


def _mechanism(ev: Mapping[str, Any], grid: Mapping[str, Any]) -> tuple[str, list[Number]]:
    """The second half: the best clipped lr does not train without clipping. Rule: supported
    when the unclipped run at that lr fails to train on more than half the evaluation seeds,
    refuted when on fewer than half, else inconclusive."""
    n, fails = len(ev["seeds"]), int(ev["unclipped_fails_at_clipped_lr"])
    lr = number(ev["cells"]["best_clipped"]["lr"])
    stable = grid["largest_stable_unclipped_lr"]
    text = (f"without clipping, lr {lr:g} fails to train (diverges or ends above the constant "
            f"predictor's loss {number(grid['baseline']):g}) on {fails} of {n} evaluation "
            "seeds; on the selection grid the largest unclipped lr that trains on every seed is "
            + ("none" if stable is None else f"{number(stable):g}")
            + f", and the grid reaches lrs that do not train without clipping: "
            f"{bool(grid['grid_unstable_unclipped'])}, with clipping: "
            f"{bool(grid['grid_unstable_clipped'])}")
    return text, [Number("unclipped_fails_at_clipped_lr", fails, ">", n / 2,
                         interval=(fails, fails)),
                  Number("clipped_trains", int(ev["clipped_trains"])),
                  Number("largest_stable_unclipped_lr",
                         "none" if stable is None else f"{number(stable):g}"),
                  Number("grid_unstable_unclipped", bool(grid["grid_unstable_unclipped"])),
                  Number("grid_unstable_clipped", bool(grid["grid_unstable_clipped"]))]


HALVES = {True: "supported", False: "refuted", None: "inconclusive"}


def network_row(grid: Mapping[str, Any]) -> Outcome:
    """The ``clipping_accelerates_networks`` row of one model: the cells chosen on the
    selection seeds, and a verdict on each half of the statement from the evaluation seeds."""
    budget = int(grid["steps"])
    bu, bc = grid["best_unclipped"], grid["best_clipped"]
    settings = [Number("target_loss", number(grid["target"]), rerun=EXACT),
                Number("baseline_loss", number(grid["baseline"]), rerun=EXACT),
                Number("step_budget", budget, rerun=EXACT),
                Number("selection_seeds", len(grid["seeds"]), rerun=EXACT)]
    chosen = (f"target loss {number(grid['target']):g} within {budget} steps; chosen on "
              f"{len(grid['seeds'])} selection seeds: best without clipping {_best_text(bu)}; "
              f"best with clipping {_best_text(bc)}")
    found = settings + _best_numbers("best_unclipped", bu, budget) + _best_numbers(
        "best_clipped", bc, budget)
    ev = grid["evaluation"]
    if ev is None:
        return Outcome(chosen + "; nothing to evaluate",
                       "an observation; no bound", found + [
                           Number("evaluated", False, "==", True)])
    speed, speed_numbers = _speed(ev)
    mech, mech_numbers = _mechanism(ev, grid)
    halves = [HALVES[n.passes()] for n in (speed_numbers[2], mech_numbers[0])]
    return Outcome(
        f"{chosen}. Fewer steps: {speed}: {halves[0]}. At an lr that does not train "
        f"without clipping: {mech}: {halves[1]}",
        "an observation (Figure 4 of the paper on AWD-LSTM and ResNet20); no bound",
        found + speed_numbers + mech_numbers)


def _network_claim(model: str):
    @claim(f"clipping_accelerates_networks/{model}", needs=("clipping_networks",),
           statement=f"On {model}, the best clipped (learning rate, threshold) reaches the "
           "target training loss in fewer steps than the best learning rate without "
           "clipping, at a learning rate that does not train without clipping (cells chosen "
           "on selection seeds, measured on other seeds).",
           source="Zhang et al. 2020, Figure 4 and Section 5 (on AWD-LSTM/PTB and "
           "ResNet20/CIFAR-10; here small stand-ins)", status="[paper; observation]",
           tolerance="fewer steps: supported when the order-statistic interval (coverage at "
           "least 95%) for the median paired speed-up over the evaluation seeds lies above 1, "
           "refuted when it lies below 1, else inconclusive; steps to the target are counted "
           "at every step, so each seed's ratio is exact where both runs reach the target, "
           "and an interval covering censoring where one does not (a run that never reaches "
           "it took more than the budget). The lr: supported when the unclipped run at the "
           "clipped lr fails to train (diverges or ends above the constant predictor's loss) "
           "on more than half the evaluation seeds, refuted on fewer than half. The claim is "
           "refuted when a half is, supported when both are",
           rerun=NETWORK_RERUN.get(model, EXACT))
    def _row(rec):
        grids = records.read(rec, "clipping_networks", records.ClippingNetworks)["metrics"]
        return network_row(grids["models"][model])

    return _row


for _model in NETWORKS:
    _network_claim(_model)
