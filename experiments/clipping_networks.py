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
  cells, and the unclipped run at the clipped cell's learning rate, on fresh seeds, with the
  full-batch training loss recorded every ``evaluation_record_every`` steps (1: every step,
  so a count is exact; k: a count is known to within k steps, and its interval says so).

Seed s draws the initial parameters with the problem's ``seed=s`` and the minibatch
sequence from a key that depends on s only: every cell of a seed starts from the same point
and sees the same minibatches (common random numbers), so the comparisons are paired.

Measured on the evaluation seeds (``evaluate``):

- the paired speed-up per seed, unclipped best's steps over clipped best's, as an interval
  that covers recording and censoring in the right direction (a run that never reaches the
  target took more than the budget: the ratio is then a lower bound when the unclipped run
  is censored, an upper bound when the clipped one is, and unknown when both are), and a
  distribution-free interval for the median over seeds (order statistics; its coverage is
  stated);
- how many evaluation seeds the unclipped run at the clipped learning rate fails to train
  on. A run *trains* when it stays finite and ends below the model's ``baseline``, the loss
  of the best constant predictor (a blow-up that ends finite is not training).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import groups, records
from experiments.common import Progress, check_seeds, hydra_entry, write
from experiments.registry import Experiment
from research import engine, optimizers, problems, stats, validate

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


def step_bounds(steps, every: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The range of the true first step at the target, from the first recorded one: within
    the ``every`` steps up to it; beyond ``budget`` for a run that never reached it (-1)."""
    s = np.asarray(steps, dtype=float)
    hit = s >= 0
    return (np.where(hit, np.maximum(s - every + 1, 0), budget + 1),
            np.where(hit, s, np.inf))


def ratio_bounds(unclipped, clipped, every: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Per seed, the range of (unclipped steps) / (clipped steps) that the recorded counts
    allow: exact when both are exact, a lower bound when only the unclipped run is censored,
    an upper bound when only the clipped one is, [0, inf] when both are."""
    ulo, uhi = step_bounds(unclipped, every, budget)
    clo, chi = step_bounds(clipped, every, budget)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(np.isinf(chi), 0.0, ulo / chi)
        hi = np.where((clo == 0) | np.isinf(uhi), np.inf, uhi / np.where(clo == 0, 1, clo))
    return lo, hi


def speedup(unclipped, clipped, every: int, budget: int, level: float) -> dict:
    """The paired speed-up on the evaluation seeds: per seed its bounds and the point value
    with a censored count taken as the budget; the median of the points; the interval for
    the median (``stats.median_bounds``)."""
    lo, hi = ratio_bounds(unclipped, clipped, every, budget)
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


def _trajectories(problem, m: dict, cells: list[tuple[float, float]], seeds: list[int],
                  record_every: int):
    """Every cell (lr, threshold) x seed as one trajectory of one engine call: seed s starts
    from the parameters drawn with seed=s and draws its minibatches from PRNGKey(s)."""
    x0s = [problems.get(m["problem"], **{**m["args"], "seed": s}).x0 for s in seeds]
    x0 = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *x0s)
    n_cells = len(cells)
    lr_b = np.repeat([c[0] for c in cells], len(seeds))
    thr_b = np.repeat([c[1] for c in cells], len(seeds))
    x0_b = jax.tree_util.tree_map(lambda a: jnp.tile(a, (n_cells,) + (1,) * (a.ndim - 1)), x0)
    keys = jnp.tile(jnp.stack([jax.random.PRNGKey(s) for s in seeds]), (n_cells, 1))
    opt = optimizers.sgd_momentum(jnp.asarray(lr_b), m["momentum"],
                                  global_clipnorm=jnp.asarray(thr_b))
    return engine.run(problem, opt, x0_b, m["steps"], record_every=record_every, key=keys,
                      per_trajectory_keys=True, trace_grad_norm=False,
                      observe={"validation": problem.extra["validation_loss"]})


def select(name: str, m: dict, problem, seeds: list[int], say) -> tuple[dict, dict]:
    """The selection grid on ``seeds``: (its record entry, its traces)."""
    lrs, thr = np.asarray(m["lrs"]), np.asarray([*m["thresholds"], np.inf])
    cells = [(float(a), float(b)) for a in lrs for b in thr]
    say(f"{name}: selection, {lrs.size} learning rates x {thr.size - 1} thresholds + no "
        f"clipping x {len(seeds)} seeds of {m['steps']} steps (batch {m['batch_size']}, "
        f"momentum {m['momentum']:g}), one compiled call ...")
    r = _trajectories(problem, m, cells, seeds, m["record_every"])
    shape = (lrs.size, thr.size, len(seeds))
    train, val = r.trace["f"], r.trace["validation"]
    steps = steps_to_target(train, r.iterations, m["target"], r.diverged).reshape(shape)
    final_train = np.where(r.diverged, np.nan, train[:, -1]).reshape(shape)
    entry = {"lrs": lrs.tolist(), "thresholds": thr.tolist(), "seeds": seeds,
             "initial_train_loss": float(np.median(train[:, 0])),
             "steps_to_target": steps.tolist(), "final_train": final_train.tolist(),
             "final_validation": np.where(r.diverged, np.nan, val[:, -1]).reshape(shape).tolist(),
             "diverged": r.diverged.reshape(shape).tolist(),
             "diverged_at": r.diverged_at.reshape(shape).tolist(),
             **summarise(lrs, thr, steps, final_train, r.diverged.reshape(shape),
                         m["baseline"])}
    traces = {f"{name}/iteration": r.iterations,
              f"{name}/train_loss": train.reshape(*shape, -1),
              f"{name}/validation_loss": val.reshape(*shape, -1)}
    return entry, traces


ROLES = ("best_clipped", "best_unclipped", "unclipped_at_clipped_lr")
"""The evaluated cells: the two chosen ones, and the clipped cell's lr without clipping."""


def evaluate(name: str, m: dict, problem, chosen: dict, seeds: list[int], level: float,
             say) -> tuple[dict | None, dict]:
    """The chosen cells on the evaluation ``seeds`` (None without both chosen cells):
    per role its steps to target, final training loss, divergence and whether each seed
    trains; the paired speed-up (``speedup``); how many seeds the unclipped run at the
    clipped lr fails to train on, and how many the clipped best trains on."""
    bc, bu = chosen["best_clipped"], chosen["best_unclipped"]
    if bc is None or bu is None:
        return None, {}
    cells = [(bc["lr"], bc["threshold"]), (bu["lr"], math.inf), (bc["lr"], math.inf)]
    every = m["evaluation_record_every"]
    say(f"{name}: evaluation, 3 cells x {len(seeds)} fresh seeds, recorded every {every} "
        "steps ...")
    r = _trajectories(problem, m, cells, seeds, every)
    shape = (len(cells), len(seeds))
    train = r.trace["f"]
    steps = steps_to_target(train, r.iterations, m["target"], r.diverged).reshape(shape)
    final = np.where(r.diverged, np.nan, train[:, -1]).reshape(shape)
    diverged = r.diverged.reshape(shape)
    ok = trains(final, diverged, m["baseline"])
    out = {"seeds": seeds, "record_every": every, "cells": {
        role: {"lr": cells[k][0], "threshold": cells[k][1],
               "steps_to_target": steps[k].tolist(), "final_train": final[k].tolist(),
               "diverged": diverged[k].tolist(), "trains": ok[k].tolist()}
        for k, role in enumerate(ROLES)},
        "speedup": speedup(steps[1], steps[0], every, m["steps"], level),
        "unclipped_fails_at_clipped_lr": int((~ok[2]).sum()),
        "clipped_trains": int(ok[0].sum())}
    traces = {f"{name}/evaluation/iteration": r.iterations,
              f"{name}/evaluation/train_loss": train.reshape(*shape, -1)}
    return out, traces


def run_model(name: str, m: dict, selection_seeds: list[int], evaluation_seeds: list[int],
              level: float, say) -> tuple[dict, dict]:
    """One model: selection, then evaluation; returns (metrics entry, traces)."""
    problem = _problem(name, m)
    grid, traces = select(name, m, problem, selection_seeds, say)
    evaluation, more = evaluate(name, m, problem, grid, evaluation_seeds, level, say)
    entry = {"problem": problem.description, "problem_name": m["problem"], "args": m["args"],
             "batch_size": m["batch_size"], "momentum": m["momentum"], "steps": m["steps"],
             "record_every": m["record_every"], "target": m["target"],
             "baseline": m["baseline"], **grid, "evaluation": evaluation}
    for k in ("corpus_sha256", "python_version"):
        if k in problem.extra:
            entry[k] = problem.extra[k]
    say(line(name, entry))
    return entry, {**traces, **more}


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


def run(cfg: DictConfig) -> None:
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
    say = Progress("clipping_networks")
    metrics = {"selection_seeds": selection, "evaluation_seeds": evaluation, "level": level,
               "models": {}}
    traces = {}
    for name, m in checked.items():
        entry, tr = run_model(name, m, selection, evaluation, level, say)
        metrics["models"][name] = entry
        traces.update(tr)
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="clipping_networks",
    run=run,
    order=11,
    figures=("clipping_networks",),
    result=records.ClippingNetworks,
    # 2 x 2 cells x 3 selection seeds = 3 cells x 4 evaluation seeds, recorded alike: the
    # evaluation reuses the selection's compiled program, so each model compiles once
    quick={
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
    seconds=(200.0, 20.0),
    bigger=("selection_seeds=[0,1,2,3,4] evaluation_seeds=[100,101,102,103,104,105,106,107,"
            "108,109,110,111,112,113,114,115,116,117,118,119] models.char_lm.steps=1000 "
            "models.char_lm.evaluation_record_every=1 models.resnet_digits.record_every=10 "
            "models.resnet_digits.evaluation_record_every=1 "
            "models.resnet_digits.thresholds=[0.1,0.25,1.0,4.0]",
            "five selection and twenty evaluation seeds, every step counted, a finer ResNet "
            "grid, a longer LM run"),
)

main = hydra_entry("clipping_networks", run)

if __name__ == "__main__":
    main()
