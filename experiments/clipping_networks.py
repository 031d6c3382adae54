"""The paper's Figure 4 on small networks: does the best clipped (learning rate, threshold)
train faster than the best learning rate without clipping, at a learning rate that does not
train without clipping?

Two sets of seeds, so that the seeds that choose a setting do not also measure it:

- **Selection** (``selection_seeds``): per model, a grid of learning rates x global-norm
  clipping thresholds, with "no clipping" (threshold inf) as one more column. Every cell and
  seed is one trajectory of minibatch SGD (with the model's momentum); the whole grid of a
  model runs in one vmapped engine call. The best unclipped learning rate and the best
  clipped (lr, threshold) are those with the lowest median steps to the model's target
  training loss (recorded every ``record_every`` steps), ties by the lower median final
  training loss.
- **Evaluation** (``evaluation_seeds``, disjoint from the selection seeds): the two chosen
  cells, and the unclipped run at the clipped cell's learning rate, on fresh seeds. Their
  steps to the target are counted at every step (the engine compares the full-batch
  training loss with the target after each one), so a count is exact; the traces keep every
  ``evaluation_record_every``-th step.

Seed s draws the initial parameters with the problem's ``seed=s`` and the minibatch
sequence from a key that depends on s only: every cell of a seed starts from the same point
and sees the same minibatches (common random numbers), so the comparisons are paired.

Measured on the evaluation seeds (``evaluate``):

- the paired speed-up per seed, unclipped best's steps over clipped best's, as an interval
  that covers censoring in the right direction (a run that never reaches the
  target took more than the budget: the ratio is then a lower bound when the unclipped run
  is censored, an upper bound when the clipped one is, and unknown when both are), and a
  distribution-free interval for the median over seeds (order statistics; its coverage is
  stated);
- how many evaluation seeds the unclipped run at the clipped learning rate fails to train
  on. A run *trains* when it stays finite and ends below the model's ``baseline``, the loss
  of the best constant predictor (a blow-up that ends finite is not training).

Scale-out (``phase``; docs/sweeps.md, "Figure 4 on a cluster"): each phase's trajectories run
in engine calls of ``chunk`` rows (``blocks``, ``run_block``), which the single process
(``phase=all``) runs all of and shards of a multirun (``phase=selection``, then
``evaluation``) deal among themselves (``experiments.shards``); ``select``, ``evaluate`` and
``combine`` turn the calls' outputs into the record either way (``phase=combine`` reads them
from the shard records), so the two give the same record bit for bit.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments import groups, records, shards
from experiments.common import Progress, check_seeds, hydra_entry, write
from experiments.registry import Experiment
from research import engine, optimizers, problems, results, stats, validate

MODEL_KEYS = ("problem", "momentum", "steps", "record_every", "target", "baseline",
              "evaluation_record_every", "lrs", "thresholds")
"""The fields of one model's entry in ``conf/clipping_networks.yaml``."""


def steps_to_target(loss: np.ndarray, iterations: np.ndarray, target: float,
                    diverged: np.ndarray) -> np.ndarray:
    """Per row of ``loss`` (runs x recorded points): the first recorded iteration whose loss
    is <= ``target``, or -1 when none is, or when the run diverged (a diverged run counts as
    a failure even if it passed the target on its way)."""
    loss = np.asarray(loss, dtype=float)
    below = np.isfinite(loss) & (loss <= target)
    first = np.where(below.any(axis=1), iterations[np.argmax(below, axis=1)], -1)
    return np.where(np.asarray(diverged, dtype=bool), -1, first).astype(int)


def trains(final: np.ndarray, diverged: np.ndarray, baseline: float) -> np.ndarray:
    """Whether each run trains: it stays finite and ends below ``baseline``, the loss of the
    best constant predictor (a run that blows up and ends finite does not train)."""
    f = np.asarray(final, dtype=float)
    return ~np.asarray(diverged, dtype=bool) & np.isfinite(f) & (f < baseline)


def _censored(steps: np.ndarray) -> np.ndarray:
    """Steps to target with the runs that never got there set to inf (for ranking)."""
    s = np.asarray(steps, dtype=float)
    return np.where(s < 0, np.inf, s)


def _median_or_inf(a) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.median(a)) if a.size else math.inf


def _best(steps: np.ndarray, final: np.ndarray,
          cells: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The (lr index, threshold index) among ``cells`` with the lowest median censored steps
    over seeds; ties by the lower median final training loss (a diverged or non-finite run
    counts as inf); None when ``cells`` is empty."""
    def key(c):
        i, j = c
        f = np.where(np.isfinite(final[i, j]), final[i, j], np.inf)
        return (_median_or_inf(_censored(steps[i, j])), _median_or_inf(f))

    return min(cells, key=key) if cells else None


def summarise(lrs, thresholds, steps: np.ndarray, final_train: np.ndarray,
              diverged: np.ndarray, baseline: float) -> dict:
    """The selection grid of one model.

    Args:
      lrs, thresholds: the axes; ``thresholds[-1]`` is inf (no clipping).
      steps: steps to target, shape (lrs, thresholds, seeds), -1 where not reached.
      final_train: final training loss, same shape (NaN where diverged).
      diverged: same shape, bool.
      baseline: the constant predictor's loss (``trains``).

    Returns:
      dict with "best_unclipped" and "best_clipped" (lr, threshold, median steps or None
      when the median run did not reach the target, seeds reaching, seeds diverged, median
      final train loss); "largest_stable_unclipped_lr": the largest lr without clipping at
      which every selection seed trains, None if there is none; "clipped_lr_exceeds_stable"
      (None without a clipped best); and whether the grid reaches instability without
      clipping ("grid_unstable_unclipped": some lr trains on no seed) and with it
      ("grid_unstable_clipped": some clipped cell trains on no seed).
    """
    n_lr, n_thr, _ = steps.shape
    unclipped = [(i, n_thr - 1) for i in range(n_lr)]
    clipped = [(i, j) for i in range(n_lr) for j in range(n_thr - 1)]

    def describe(cell):
        if cell is None:
            return None
        s, f = steps[cell], final_train[cell]
        med = _median_or_inf(_censored(s))
        return {"lr": float(lrs[cell[0]]), "threshold": float(thresholds[cell[1]]),
                "median_steps": None if not np.isfinite(med) else float(med),
                "seeds_reaching": int((s >= 0).sum()),
                "seeds_diverged": int(diverged[cell].sum()),
                "median_final_train": float(np.median(f)) if np.isfinite(f).all() else None}

    bu, bc = (_best(steps, final_train, cells) for cells in (unclipped, clipped))
    ok = trains(final_train, diverged, baseline)
    stable = [float(lrs[i]) for i in range(n_lr) if ok[i, -1].all()]
    largest = max(stable) if stable else None
    exceeds = None
    if bc is not None:
        exceeds = True if largest is None else bool(lrs[bc[0]] > largest)
    return {"best_unclipped": describe(bu), "best_clipped": describe(bc),
            "largest_stable_unclipped_lr": largest, "clipped_lr_exceeds_stable": exceeds,
            "grid_unstable_unclipped": bool(any(not ok[c].any() for c in unclipped)),
            "grid_unstable_clipped": bool(any(not ok[c].any() for c in clipped))}


def step_bounds(steps, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The range of a run's first step at the target, from its exact count: that count, or
    beyond ``budget`` for a run that never reached it (-1)."""
    s = np.asarray(steps, dtype=float)
    hit = s >= 0
    return np.where(hit, s, budget + 1), np.where(hit, s, np.inf)


def ratio_bounds(unclipped, clipped, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the range of (unclipped steps) / (clipped steps) that the counts allow: exact
    when both runs reached the target, a lower bound when only the unclipped run is
    censored, an upper bound when only the clipped one is, [0, inf] when both are."""
    ulo, uhi = step_bounds(unclipped, budget)
    clo, chi = step_bounds(clipped, budget)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(np.isinf(chi), 0.0, ulo / chi)
        hi = np.where((clo == 0) | np.isinf(uhi), np.inf, uhi / np.where(clo == 0, 1, clo))
    return lo, hi


def speedup(unclipped, clipped, budget: int, level: float) -> dict:
    """The paired speed-up on the evaluation seeds: per seed its bounds and the point value
    with a censored count taken as the budget; the median of the points; the interval for
    the median (``stats.median_bounds``)."""
    lo, hi = ratio_bounds(unclipped, clipped, budget)
    cap = [np.where(np.asarray(s) < 0, budget, s).astype(float) for s in (unclipped, clipped)]
    point = cap[0] / np.maximum(cap[1], 1.0)
    _, low, high, cover, _ = stats.median_bounds(lo, hi, level)
    return {"per_seed": point.tolist(), "per_seed_lo": lo.tolist(), "per_seed_hi": hi.tolist(),
            "median": float(np.median(point)), "lo": low, "hi": high, "coverage": cover,
            "level": level}


def _check_model(name: str, m: dict) -> dict:
    unknown = sorted(set(m) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"models.{name}: unknown field {unknown[0]!r}; allowed: "
                         f"{', '.join(MODEL_KEYS)}.")
    p = f"models.{name}"
    problem, args = groups.problem_entry(f"{p}.problem", m.get("problem"))
    if args.pop("seed", 0) != 0:  # silently replaced by the seeds otherwise
        raise ValueError(f"{p}.problem.seed is not used: seed s draws the initial parameters "
                         "and minibatches of every run; set selection_seeds and "
                         "evaluation_seeds instead.")
    out = {"problem": problem, "args": args,
           "batch_size": validate.positive_int(f"{p}.problem.batch_size",
                                               args.get("batch_size")),
           "momentum": float(validate.in_interval(f"{p}.momentum", m.get("momentum", 0.0),
                                                   0.0, 1.0)),
           "steps": validate.positive_int(f"{p}.steps", m.get("steps")),
           "record_every": validate.positive_int(f"{p}.record_every", m.get("record_every")),
           "target": float(validate.positive(f"{p}.target", m.get("target"))),
           "baseline": float(validate.positive(f"{p}.baseline", m.get("baseline"))),
           "evaluation_record_every": validate.positive_int(
               f"{p}.evaluation_record_every", m.get("evaluation_record_every"))}
    for key in ("record_every", "evaluation_record_every"):
        if out["steps"] % out[key]:
            raise ValueError(f"{p}.{key} must divide {p}.steps; got steps={out['steps']}, "
                             f"{key}={out[key]}.")
    for key in ("lrs", "thresholds"):
        vals = m.get(key)
        if not isinstance(vals, list) or not vals:
            raise ValueError(f"{p}.{key} must be a non-empty list of positive numbers; got "
                             f"{vals!r}.")
        out[key] = [float(validate.positive(f"{p}.{key}", v)) for v in vals]
    return out


def _problem(name: str, m: dict):
    """The model's problem, sampling minibatches of ``batch_size``."""
    try:
        problem = problems.get(m["problem"], **m["args"])
    except TypeError as err:
        raise ValueError(f"models.{name}.problem: {err}.") from None
    except ValueError as err:
        raise ValueError(f"models.{name}.problem: {err}") from None
    if "validation_loss" not in problem.extra:
        raise ValueError(f"models.{name}.problem must have a validation loss; "
                         f"{m['problem']!r} has none.")
    return problem


def _rows(cells: list[tuple[float, float]], seeds: list[int]) -> list[tuple[float, float, int]]:
    """Every cell (lr, threshold) x seed as one trajectory (lr, threshold, seed), cell-major:
    the order of a phase's rows in every block, record and trace."""
    return [(lr, thr, s) for lr, thr in cells for s in seeds]


def run_block(problem, m: dict, rows: list, size: int, record_every: int,
              count_every_step: bool = False) -> dict:
    """One engine call over ``rows`` (lr, threshold, seed), padded to ``size`` rows so that
    every block of a phase has one shape (``shards``): seed s starts from the parameters
    drawn with seed=s and draws its minibatches from PRNGKey(s). Returns the raw outputs of
    the real rows: "train" and "validation" (rows x recorded iterates), "diverged_at", and
    "reached": with ``count_every_step`` the first step at which the full-batch training
    loss is <= the target, checked at every step (-1: never), else -1 (not counted)."""
    padded = shards.pad(rows, size)
    x0s = {s: problems.get(m["problem"], **{**m["args"], "seed": s}).x0
           for s in dict.fromkeys(r[2] for r in padded)}
    x0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *(x0s[r[2]] for r in padded))
    keys = jnp.stack([jax.random.PRNGKey(r[2]) for r in padded])
    opt = optimizers.sgd_momentum(jnp.asarray([r[0] for r in padded]), m["momentum"],
                                  global_clipnorm=jnp.asarray([r[1] for r in padded]))
    r = engine.run(problem, opt, x0, m["steps"], record_every=record_every, key=keys,
                   per_trajectory_keys=True, trace_grad_norm=False,
                   observe={"validation": problem.extra["validation_loss"]},
                   f_target=m["target"] if count_every_step else None)
    n = len(rows)
    return {"train": r.trace["f"][:n], "validation": r.trace["validation"][:n],
            "diverged_at": r.diverged_at[:n], "reached": r.iterations_to_target[:n]}


OUTPUTS = {"selection": ("train", "validation", "diverged_at"),
           "evaluation": ("train", "validation", "diverged_at", "reached")}
"""What ``run_block`` returns in each phase (and a shard record keeps of each block)."""


def _joined(outputs: list[dict], key: str) -> np.ndarray:
    """One output of a phase's blocks of one model, in row order, as one engine call would
    give it."""
    return np.concatenate([o[key] for o in outputs])


def grid_cells(m: dict) -> list[tuple[float, float]]:
    """The selection grid's cells: every lr x (every threshold, then inf: no clipping)."""
    return [(float(a), float(b)) for a in m["lrs"] for b in [*m["thresholds"], math.inf]]


def select(name: str, m: dict, seeds: list[int], outputs: list[dict]) -> tuple[dict, dict]:
    """The selection grid on ``seeds`` from its blocks' ``outputs`` (``run_block``, in row
    order): (its record entry, its traces)."""
    lrs, thr = np.asarray(m["lrs"]), np.asarray([*m["thresholds"], np.inf])
    train, val, div_at = (_joined(outputs, k) for k in OUTPUTS["selection"])
    diverged, its = div_at >= 0, np.arange(0, m["steps"] + 1, m["record_every"])
    shape = (lrs.size, thr.size, len(seeds))
    steps = steps_to_target(train, its, m["target"], diverged).reshape(shape)
    final_train = np.where(diverged, np.nan, train[:, -1]).reshape(shape)
    entry = {"lrs": lrs.tolist(), "thresholds": thr.tolist(), "seeds": seeds,
             "initial_train_loss": float(np.median(train[:, 0])),
             "steps_to_target": steps.tolist(), "final_train": final_train.tolist(),
             "final_validation": np.where(diverged, np.nan, val[:, -1]).reshape(shape).tolist(),
             "diverged": diverged.reshape(shape).tolist(),
             "diverged_at": div_at.reshape(shape).tolist(),
             **summarise(lrs, thr, steps, final_train, diverged.reshape(shape),
                         m["baseline"])}
    traces = {f"{name}/iteration": its,
              f"{name}/train_loss": train.reshape(*shape, -1),
              f"{name}/validation_loss": val.reshape(*shape, -1)}
    return entry, traces


ROLES = ("best_clipped", "best_unclipped", "unclipped_at_clipped_lr")
"""The evaluated cells: the two chosen ones, and the clipped cell's lr without clipping."""

COUNTED = 2
"""The first ``COUNTED`` roles are compared on steps to the target, counted at every step;
for the last only whether it trains matters, so its runs skip the count's full-batch loss."""


def evaluated_cells(grid: dict) -> list[tuple[float, float]] | None:
    """The cells of ``ROLES`` chosen by a selection ``grid`` entry (None without both)."""
    bc, bu = grid["best_clipped"], grid["best_unclipped"]
    if bc is None or bu is None:
        return None
    return [(bc["lr"], bc["threshold"]), (bu["lr"], math.inf), (bc["lr"], math.inf)]


def evaluate(name: str, m: dict, cells: list[tuple[float, float]], seeds: list[int],
             level: float, outputs: list[dict]) -> tuple[dict, dict]:
    """The chosen ``cells`` (``evaluated_cells``) on the evaluation ``seeds`` from their
    blocks' ``outputs``: per role its steps to target (None where not counted), final
    training loss, divergence and whether each seed trains; the paired speed-up
    (``speedup``); how many seeds the unclipped run at the clipped lr fails to train on, and
    how many the clipped best trains on."""
    every = m["evaluation_record_every"]
    train, diverged = _joined(outputs, "train"), _joined(outputs, "diverged_at") >= 0
    its = np.arange(0, m["steps"] + 1, every)
    shape = (len(cells), len(seeds))
    # a diverged run counts as a failure even if it passed the target on its way
    steps = np.where(diverged, -1, _joined(outputs, "reached")).astype(int).reshape(shape)
    final = np.where(diverged, np.nan, train[:, -1]).reshape(shape)
    diverged = diverged.reshape(shape)
    ok = trains(final, diverged, m["baseline"])
    out = {"seeds": seeds, "record_every": every, "cells": {
        role: {"lr": cells[k][0], "threshold": cells[k][1],
               "steps_to_target": steps[k].tolist() if k < COUNTED else None,
               "final_train": final[k].tolist(),
               "diverged": diverged[k].tolist(), "trains": ok[k].tolist()}
        for k, role in enumerate(ROLES)},
        "speedup": speedup(steps[1], steps[0], m["steps"], level),
        "unclipped_fails_at_clipped_lr": int((~ok[2]).sum()),
        "clipped_trains": int(ok[0].sum())}
    traces = {f"{name}/evaluation/iteration": its,
              f"{name}/evaluation/train_loss": train.reshape(*shape, -1)}
    return out, traces


def _cell(c: dict | None) -> str:
    if c is None:
        return "none"
    thr = "no clipping" if math.isinf(c["threshold"]) else f"clip {c['threshold']:g}"
    steps = "not reached" if c["median_steps"] is None else f"{c['median_steps']:g} steps"
    return f"lr {c['lr']:g}, {thr}: {steps} ({c['seeds_reaching']} seeds reach)"


def line(name: str, e: dict) -> str:
    """One progress line for a model's summary."""
    ev = e["evaluation"]
    ratio = "-" if ev is None else (
        f"{ev['speedup']['median']:.2g}x, median in [{ev['speedup']['lo']:.2g}, "
        f"{ev['speedup']['hi']:.2g}]; unclipped at the clipped lr fails on "
        f"{ev['unclipped_fails_at_clipped_lr']}/{len(ev['seeds'])} seeds")
    return (f"{name}: target {e['target']:g}; best unclipped {_cell(e['best_unclipped'])}; "
            f"best clipped {_cell(e['best_clipped'])}; evaluation: speed-up {ratio}")


NAME = "clipping_networks"
PHASES = ("all", "selection", "evaluation", "combine")
"""all: every block in this process, then the record; selection, evaluation: shard ``shard``
of ``shards`` of that phase, one record in ``shards_dir``; combine: the record from them."""


@dataclass(frozen=True)
class Plan:
    """A checked config: what to compute and which part of it this process runs."""

    selection: list[int]
    evaluation: list[int]
    level: float
    models: dict[str, dict]
    chunk: int | None
    phase: str
    shards: int
    shard: int
    shards_dir: Path
    resume: bool
    config: dict


def plan(cfg: DictConfig) -> Plan:
    """Check ``cfg`` (``ValueError`` naming the key on a bad value; nothing is computed)."""
    selection = check_seeds(cfg.selection_seeds, "selection_seeds")
    evaluation = check_seeds(cfg.evaluation_seeds, "evaluation_seeds")
    shared = sorted(set(selection) & set(evaluation))
    if shared:
        raise ValueError(f"evaluation_seeds must differ from selection_seeds (the seeds that "
                         f"choose a cell do not measure it); both hold {shared}.")
    level = float(validate.in_interval("level", cfg.level, 0.0, 1.0))
    models = OmegaConf.to_container(cfg.models, resolve=True)
    for name in cfg.run_models:
        validate.choice("run_models", name, tuple(models))
    checked = {name: _check_model(name, models[name]) for name in cfg.run_models}
    chunk = cfg.chunk
    if chunk is not None:
        chunk = validate.positive_int("chunk (trajectories per engine call, or null)", chunk)
    where = shards.placement(cfg, PHASES)
    return Plan(selection, evaluation, level, checked, chunk, *where,
                OmegaConf.to_container(cfg, resolve=True))


def blocks(p: Plan, phase: str, cells: dict) -> list[dict]:
    """Every block of ``phase`` (model by model, in row order): the model, its rows
    [start, stop), the padded size and whether it counts steps to the target at every step
    (the evaluation's ``COUNTED`` roles): per model one block of each kind for ``chunk``
    null. ``cells``: model -> its cells in this phase (None: the model has none)."""
    seeds = p.selection if phase == "selection" else p.evaluation
    out = []
    for name in p.models:
        if cells[name] is None:
            continue
        n = len(cells[name]) * len(seeds)
        kinds = [(0, n, False)] if phase == "selection" else [
            (0, COUNTED * len(seeds), True), (COUNTED * len(seeds), n, False)]
        for lo, hi, counted in kinds:
            size, spans = shards.split(hi - lo, p.chunk)
            out += [{"model": name, "start": lo + a, "stop": lo + b, "size": size,
                     "counted": counted} for a, b in spans]
    return out


def run_blocks(p: Plan, phase: str, cells: dict, chosen: list[dict], problems_: dict,
               say) -> list[dict]:
    """Run the ``chosen`` blocks of ``phase``: their raw outputs, in order."""
    seeds = p.selection if phase == "selection" else p.evaluation
    out = []
    for name, m in p.models.items():
        mine = [b for b in chosen if b["model"] == name]
        if not mine:
            continue
        total = len(cells[name]) * len(seeds)
        sizes = " and ".join(str(s) for s in dict.fromkeys(b["size"] for b in mine))
        if phase == "selection":
            what = (f"{len(m['lrs'])} learning rates x {len(m['thresholds'])} thresholds + no "
                    f"clipping x {len(seeds)} seeds of {m['steps']} steps (batch "
                    f"{m['batch_size']}, momentum {m['momentum']:g})")
        else:
            what = (f"3 cells x {len(seeds)} fresh seeds, steps to the target counted at "
                    f"every step on the first {COUNTED}, recorded every "
                    f"{m['evaluation_record_every']}")
        part = "" if sum(b["stop"] - b["start"] for b in mine) == total else (
            f", trajectories {mine[0]['start'] + 1}-{mine[-1]['stop']} of {total}")
        calls = "one compiled call" if len(mine) == 1 and mine[0]["size"] == total else (
            f"{len(mine)} call{'s' * (len(mine) > 1)} of {sizes} trajectories")
        say(f"{name}: {phase}, {what}{part}, {calls} ...")
        rows = _rows(cells[name], seeds)
        every = m["record_every" if phase == "selection" else "evaluation_record_every"]
        out += [run_block(problems_[name], m, rows[b["start"]:b["stop"]], b["size"], every,
                          count_every_step=b["counted"]) for b in mine]
    return out


def _by_model(bl: list[dict], outputs: list[dict], name: str) -> list[dict]:
    return [o for b, o in zip(bl, outputs, strict=True) if b["model"] == name]


def combine_selection(p: Plan, bl: list[dict], outputs: list[dict]) -> tuple[dict, dict]:
    """Every model's selection grid from the outputs of every selection block."""
    grids, traces = {}, {}
    for name, m in p.models.items():
        grids[name], tr = select(name, m, p.selection, _by_model(bl, outputs, name))
        traces.update(tr)
    return grids, traces


def combine(p: Plan, problems_: dict, grids: dict, traces: dict, cells: dict,
            bl: list[dict], outputs: list[dict], say) -> tuple[dict, dict]:
    """The record's metrics and traces from the selection ``grids`` (``combine_selection``)
    and the outputs of every evaluation block."""
    metrics = {"selection_seeds": p.selection, "evaluation_seeds": p.evaluation,
               "level": p.level, "models": {}}
    traces = dict(traces)
    for name, m in p.models.items():
        problem, evaluation = problems_[name], None
        if cells[name] is not None:
            evaluation, tr = evaluate(name, m, cells[name], p.evaluation, p.level,
                                      _by_model(bl, outputs, name))
            traces.update(tr)
        entry = {"problem": problem.description, "problem_name": m["problem"],
                 "args": m["args"], "batch_size": m["batch_size"], "momentum": m["momentum"],
                 "steps": m["steps"], "record_every": m["record_every"],
                 "target": m["target"], "baseline": m["baseline"], **grids[name],
                 "evaluation": evaluation}
        for k in ("corpus_sha256", "python_version"):
            if k in problem.extra:
                entry[k] = problem.extra[k]
        metrics["models"][name] = entry
        say(line(name, entry))
    return metrics, traces


def _write(p: Plan, say, metrics: dict, traces: dict) -> None:
    out = Path(str(p.config["out"]))
    if (out / results.RECORD_FILE).exists():
        say(f"replacing the record at {out}")
    write(shards.record_config(p.config), say, metrics, traces)


def run_all(p: Plan, say) -> None:
    """The single process: every block of both phases, combined as the shards are."""
    problems_ = {name: _problem(name, m) for name, m in p.models.items()}
    cells = {name: grid_cells(m) for name, m in p.models.items()}
    sel = blocks(p, "selection", cells)
    grids, traces = combine_selection(p, sel, run_blocks(p, "selection", cells, sel,
                                                         problems_, say))
    chosen = {name: evaluated_cells(grids[name]) for name in p.models}
    ev = blocks(p, "evaluation", chosen)
    outputs = run_blocks(p, "evaluation", chosen, ev, problems_, say)
    _write(p, say, *combine(p, problems_, grids, traces, chosen, ev, outputs, say))


def _plain_cells(cells: dict) -> dict:
    return results.from_plain(results.to_plain(cells))


def collect(p: Plan, phase: str, cells: dict | None, code: str):
    """Read every shard record of ``phase``: (its blocks, their outputs, the problems found,
    one phrase per shard that is missing, damaged or does not match). ``cells`` None: the
    selection could not be combined, so only what a shard is can be checked."""
    bl = blocks(p, phase, cells) if cells is not None else []
    outputs: list = [None] * len(bl)
    problems_ = []
    for i in range(p.shards):
        where = shards.directory(p.shards_dir, phase, i)
        why = shards.problem(where, p.config, code, phase, i)
        if why is None and cells is not None:
            record, arrays = results.read_record(where)
            m = record["metrics"]
            mine = shards.deal(len(bl), p.shards, i)
            if phase == "evaluation" and m.get("chosen") != _plain_cells(cells):
                why = ("evaluated other cells than the selection chooses now (the selection "
                       "was run again after it)")
            elif m.get("blocks") != [bl[k] for k in mine]:
                why = "holds other blocks than this configuration deals it"
            else:
                for j, k in enumerate(mine):
                    outputs[k] = {key: arrays[f"{j}/{key}"] for key in OUTPUTS[phase]}
        if why is not None:
            problems_.append(f"{phase} shard {i} of {p.shards} ({where}) {why}")
    return bl, outputs, problems_


def _selection(p: Plan, code: str):
    """The selection, combined from its shard records: (blocks, grids, traces, chosen
    cells); ``shards.Incomplete`` naming every shard that is missing or does not match."""
    sel_cells = {name: grid_cells(m) for name, m in p.models.items()}
    bl, outputs, problems_ = collect(p, "selection", sel_cells, code)
    if problems_:
        raise shards.Incomplete("; ".join(problems_))
    grids, traces = combine_selection(p, bl, outputs)
    return grids, traces, {name: evaluated_cells(grids[name]) for name in p.models}


def run_shard(p: Plan, say) -> None:
    """Shard ``p.shard`` of phase ``p.phase``: run its blocks and write their outputs, unless
    its finished record is there already (``resume``)."""
    code = shards.code_version(NAME)
    if p.phase == "evaluation":
        try:
            cells = _selection(p, code)[2]
        except shards.Incomplete as err:
            raise shards.Incomplete(f"phase=evaluation needs the whole selection: {err}; run (or "
                             "re-run) the phase=selection command first") from None
    else:
        cells = {name: grid_cells(m) for name, m in p.models.items()}
    bl = blocks(p, p.phase, cells)
    mine = [bl[k] for k in shards.deal(len(bl), p.shards, p.shard)]
    where = shards.directory(p.shards_dir, p.phase, p.shard)
    name = f"{p.phase} shard {p.shard} of {p.shards}"

    def stale() -> str | None:
        record, _ = results.read_record(where, traces=False)
        if record["metrics"].get("chosen") != _plain_cells(cells):
            return "evaluated other cells than the selection chooses now"
        return None

    with shards.turn(where, name, p.config, code, p.phase, p.shard, p.resume, p.shards_dir,
                     say, stale if p.phase == "evaluation" else None) as run:
        if not run:
            return
        problems_ = {m: _problem(m, p.models[m]) for m in dict.fromkeys(b["model"]
                                                                       for b in mine)}
        outputs = run_blocks(p, p.phase, cells, mine, problems_, say) if mine else []
        traces = {f"{j}/{key}": o[key] for j, o in enumerate(outputs) for key in o}
        metrics = {"phase": p.phase, "shard": p.shard, "shards": p.shards, "blocks": mine,
                   "chosen": _plain_cells(cells) if p.phase == "evaluation" else None}
        shards.write(where, p.config, metrics, traces, code)
    done = (f"{len(mine)} of the phase's {len(bl)} blocks" if mine
            else f"no block (the phase has {len(bl)}, dealt to shards 0 to {len(bl) - 1})")
    say(f"{name}: wrote {where} ({done}).")


def run_combine(p: Plan, say) -> None:
    """The record from every shard record; ``shards.Incomplete`` (nothing written) naming every
    shard that is missing or does not match."""
    code = shards.code_version(NAME)
    try:
        grids, traces, cells = _selection(p, code)
        selection_problems: list[str] = []
    except shards.Incomplete as err:
        selection_problems, cells = [str(err)], None
    bl, outputs, problems_ = collect(p, "evaluation", cells, code)
    if selection_problems or problems_:
        raise shards.Incomplete(f"cannot combine {p.shards_dir}: "
                         + "; ".join(selection_problems + problems_)
                         + "; nothing written: the phase commands run only what is missing")
    problems_by_model = {name: _problem(name, m) for name, m in p.models.items()}
    say(f"combining {p.shards} selection and {p.shards} evaluation shards from "
        f"{p.shards_dir}")
    mixed = shards.mixed_devices({
        f"{phase} {i}": shards.devices_of(shards.directory(p.shards_dir, phase, i))
        for phase in ("selection", "evaluation") for i in range(p.shards)})
    if mixed:
        say(mixed)
    _write(p, say, *combine(p, problems_by_model, grids, traces, cells, bl, outputs, say))


def run(cfg: DictConfig) -> None:
    p = plan(cfg)
    say = Progress(NAME)
    try:
        {"all": run_all, "combine": run_combine}.get(p.phase, run_shard)(p, say)
    except shards.Incomplete as err:
        print(f"error: {err}.", file=sys.stderr)
        sys.exit(shards.EXIT)


class CheckFirst(Callback):
    """Checks a multirun's config, each swept value in turn, before Hydra makes its sweep
    directory, so that a bad value (or an evaluation before its selection) writes nothing."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        try:
            self._check(config)
        except ValueError as err:
            # Hydra turns a callback's exceptions into warnings; SystemExit passes through.
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except shards.Incomplete as err:
            print(f"error: {err}.", file=sys.stderr)
            sys.exit(shards.EXIT)

    @staticmethod
    def _check(config: DictConfig) -> None:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        base = OmegaConf.masked_copy(config, [k for k in config if k != "hydra"])
        swept = [o for o in OverridesParser.create().parse_overrides(
            list(config.hydra.overrides.task))
                 if o.is_sweep_override() and not o.is_hydra_override()]
        # a swept key holds its sweep in this config; each value is checked with the others'
        # first values (each job checks its own combination again)
        for o in swept:
            OmegaConf.update(base, o.key_or_group, next(iter(o.sweep_iterator()), None),
                             merge=False)
        p = plan(base)
        for o in swept:
            for value in o.sweep_iterator():
                cfg = base.copy()
                OmegaConf.update(cfg, o.key_or_group, value, merge=False)
                plan(cfg)
        if p.phase == "evaluation":
            try:
                _selection(p, shards.code_version(NAME))
            except shards.Incomplete as err:
                raise shards.Incomplete(f"phase=evaluation needs the whole selection: {err}; run "
                                 "(or re-run) the phase=selection command first") from None


EXPERIMENT = Experiment(
    name="clipping_networks",
    run=run,
    order=11,
    figures=("clipping_networks",),
    result=records.ClippingNetworks,
    # 2 x 2 cells x 3 selection seeds, 2 + 1 cells x 4 evaluation seeds, in calls of 4
    # trajectories recorded alike: every call of a model runs one compiled program
    quick={
        "chunk": 4,
        "selection_seeds": [0, 1, 2],
        "evaluation_seeds": [3, 4, 5, 6],
        "models": {
            "char_lm": {"problem": {"embed": 4, "hidden": 8, "length": 8, "n": 32},
                        "steps": 40,
                        "record_every": 10, "evaluation_record_every": 10, "target": 4.0,
                        "lrs": [1.0, 10.0], "thresholds": [1.0]},
            "resnet_digits": {"problem": {"channels": 2, "blocks": 1}, "steps": 20,
                              "record_every": 10, "evaluation_record_every": 10,
                              "target": 2.0, "lrs": [0.1, 1.0], "thresholds": [1.0]},
            "rnn": {"problem": {"hidden": 8, "length": 10, "n": 32}, "steps": 40,
                    "record_every": 10, "evaluation_record_every": 10, "target": 0.15,
                    "lrs": [0.1, 1.0], "thresholds": [1.0]}}},
    placement=shards.RECORD_PLACEMENT,
    seconds=(200.0, 20.0),
    bigger=("selection_seeds=[0,1,2,3,4] evaluation_seeds=[100,101,102,103,104,105,106,107,"
            "108,109,110,111,112,113,114,115,116,117,118,119] models.char_lm.steps=1000 "
            "models.resnet_digits.record_every=10 models.resnet_digits.problem.train_size=null "
            "models.resnet_digits.thresholds=[0.1,0.25,1.0,4.0]",
            "five selection and twenty evaluation seeds, the ResNet on all 1,500 training "
            "images with a finer selection grid, a longer LM run"),
)

main = hydra_entry("clipping_networks", run)

if __name__ == "__main__":
    main()
