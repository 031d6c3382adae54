"""The paper's Figure 4 on small networks: does the best clipped (learning rate, threshold)
train faster than the best learning rate without clipping?

For each model: a grid of learning rates x global-norm clipping thresholds, with "no
clipping" (threshold inf) as one more column, and several seeds. Every cell and seed is one
trajectory of minibatch SGD (with the model's momentum); the whole grid of a model runs in
one vmapped engine call, so it compiles once. Seed s draws the initial parameters with the
problem's ``seed=s`` and the minibatch sequence from a key that depends on s only: every
cell of a seed starts from the same point and sees the same minibatches (common random
numbers), so the comparison between cells is paired.

Measured per cell and seed, from the full-batch training loss and the validation loss
recorded every ``record_every`` steps:

- steps to target: the first recorded step whose training loss is <= the model's target; a
  run that never gets there, or diverges, has none (it is censored at the budget, never
  dropped);
- final training and validation loss; whether and when the run diverged.

Summaries (``summarise``): the best unclipped learning rate and the best clipped (lr,
threshold), both by the median over seeds of the censored steps to target (ties: the lower
median final training loss); the paired speed-up per seed; the largest unclipped learning
rate at which no seed diverged; and whether the best clipped lr exceeds it (the paper's
mechanism: clipping makes a larger step usable).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import records
from experiments.common import Progress, check_seeds, hydra_entry, write
from experiments.registry import Experiment
from research import engine, optimizers, problems, validate

MODEL_KEYS = ("problem", "args", "batch_size", "momentum", "steps", "record_every", "target",
              "lrs", "thresholds")
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


def _censored(steps: np.ndarray, budget: int) -> np.ndarray:
    """Steps to target with the runs that never got there set to inf (for ranking)."""
    s = np.asarray(steps, dtype=float)
    return np.where(s < 0, np.inf, s)


def _median_or_inf(a) -> float:
    a = np.asarray(a, dtype=float)
    return float(np.median(a)) if a.size else math.inf


def _best(steps: np.ndarray, final: np.ndarray, cells: list[tuple[int, int]],
          budget: int) -> tuple[int, int] | None:
    """The (lr index, threshold index) among ``cells`` with the lowest median censored steps
    over seeds; ties by the lower median final training loss (a diverged or non-finite run
    counts as inf); None when ``cells`` is empty."""
    def key(c):
        i, j = c
        f = np.where(np.isfinite(final[i, j]), final[i, j], np.inf)
        return (_median_or_inf(_censored(steps[i, j], budget)), _median_or_inf(f))

    return min(cells, key=key) if cells else None


def summarise(lrs, thresholds, steps: np.ndarray, final_train: np.ndarray,
              diverged: np.ndarray, initial_train: np.ndarray, budget: int) -> dict:
    """The comparison of one model's grid.

    Args:
      lrs, thresholds: the axes; ``thresholds[-1]`` is inf (no clipping).
      steps: steps to target, shape (lrs, thresholds, seeds), -1 where not reached.
      final_train: final training loss, same shape (NaN where diverged).
      diverged: same shape, bool.
      initial_train: the training loss at the start, same shape.
      budget: the step budget (a censored run counts as "more than budget").

    Returns:
      dict with "best_unclipped" and "best_clipped" (lr, threshold, median steps or None
      when the median run did not reach the target, seeds reaching, median final train
      loss), "speedup" (per-seed ratio of the unclipped best's steps to the clipped best's,
      with a censored count taken as the budget, so a ratio is then a bound; their median,
      min, max, and "censored": whether any count entering them was censored),
      "largest_stable_unclipped_lr": the largest lr without clipping at which every seed
      trains (does not diverge and ends below its initial training loss), None if there is
      none; and "clipped_lr_exceeds_stable": whether the best clipped lr is larger (True
      when no unclipped lr is stable; None without a clipped best).
    """
    n_lr, n_thr, _ = steps.shape
    unclipped = [(i, n_thr - 1) for i in range(n_lr)]
    clipped = [(i, j) for i in range(n_lr) for j in range(n_thr - 1)]

    def describe(cell):
        if cell is None:
            return None
        i, j = cell
        s = steps[i, j]
        med = _median_or_inf(_censored(s, budget))
        f = final_train[i, j]
        return {"lr": float(lrs[i]), "threshold": float(thresholds[j]),
                "median_steps": None if not np.isfinite(med) else float(med),
                "seeds_reaching": int((s >= 0).sum()),
                "seeds_diverged": int(diverged[i, j].sum()),
                "median_final_train": float(np.median(f)) if np.isfinite(f).all() else None}

    bu, bc = (_best(steps, final_train, cells, budget) for cells in (unclipped, clipped))
    speed = {"per_seed": [], "median": None, "min": None, "max": None, "censored": True}
    if bu is not None and bc is not None:
        su, sc = steps[bu], steps[bc]
        cap = lambda s: np.where(s < 0, budget, s).astype(float)  # noqa: E731
        ratio = cap(su) / np.maximum(cap(sc), 1.0)
        speed = {"per_seed": ratio.tolist(), "median": float(np.median(ratio)),
                 "min": float(ratio.min()), "max": float(ratio.max()),
                 "censored": bool((su < 0).any() or (sc < 0).any())}
    trains = ~diverged & np.isfinite(final_train) & (final_train < initial_train)
    stable = [float(lrs[i]) for i in range(n_lr) if trains[i, -1].all()]
    largest = max(stable) if stable else None
    exceeds = None
    if bc is not None:
        exceeds = True if largest is None else bool(lrs[bc[0]] > largest)
    return {"best_unclipped": describe(bu), "best_clipped": describe(bc), "speedup": speed,
            "largest_stable_unclipped_lr": largest, "clipped_lr_exceeds_stable": exceeds}


def _check_model(name: str, m: dict) -> dict:
    unknown = sorted(set(m) - set(MODEL_KEYS))
    if unknown:
        raise ValueError(f"models.{name}: unknown field {unknown[0]!r}; allowed: "
                         f"{', '.join(MODEL_KEYS)}.")
    p = f"models.{name}"
    validate.choice(f"{p}.problem", m.get("problem"), problems.names())
    out = {"problem": m["problem"], "args": dict(m.get("args") or {}),
           "batch_size": validate.positive_int(f"{p}.batch_size", m.get("batch_size")),
           "momentum": float(validate.in_interval(f"{p}.momentum", m.get("momentum", 0.0),
                                                   0.0, 1.0)),
           "steps": validate.positive_int(f"{p}.steps", m.get("steps")),
           "record_every": validate.positive_int(f"{p}.record_every", m.get("record_every")),
           "target": float(validate.positive(f"{p}.target", m.get("target")))}
    if out["steps"] % out["record_every"]:
        raise ValueError(f"{p}.record_every must divide {p}.steps; got steps={out['steps']}, "
                         f"record_every={out['record_every']}.")
    for key in ("lrs", "thresholds"):
        vals = m.get(key)
        if not isinstance(vals, list) or not vals:
            raise ValueError(f"{p}.{key} must be a non-empty list of positive numbers; got "
                             f"{vals!r}.")
        out[key] = [float(validate.positive(f"{p}.{key}", v)) for v in vals]
    if "batch_size" in out["args"] or "seed" in out["args"]:
        raise ValueError(f"{p}.args must not set batch_size or seed (they are the model's "
                         "batch_size and the seeds); got "
                         f"{sorted(out['args'])}.")
    return out


def _build(name: str, m: dict, seeds: list[int]):
    """The problem (minibatch of ``batch_size``) and the stacked initial points of the
    seeds."""
    try:
        problem = problems.get(m["problem"], **m["args"], batch_size=m["batch_size"])
        x0s = [problems.get(m["problem"], **m["args"], seed=s).x0 for s in seeds]
    except TypeError as err:
        raise ValueError(f"models.{name}.args: {err}.") from None
    except ValueError as err:
        raise ValueError(f"models.{name}.args: {err}") from None
    if "validation_loss" not in problem.extra:
        raise ValueError(f"models.{name}.problem must have a validation loss; "
                         f"{m['problem']!r} has none.")
    return problem, jax.tree_util.tree_map(lambda *a: jnp.stack(a), *x0s)


def run_model(name: str, m: dict, seeds: list[int], say) -> tuple[dict, dict]:
    """One model's grid in one engine call; returns (metrics entry, traces)."""
    problem, x0 = _build(name, m, seeds)
    lrs = np.asarray(m["lrs"])
    thr = np.asarray([*m["thresholds"], np.inf])
    S = len(seeds)
    L, T = np.meshgrid(lrs, thr, indexing="ij")  # (lrs, thresholds)
    lr_b = np.repeat(L.ravel(), S)
    thr_b = np.repeat(T.ravel(), S)
    n = lr_b.size
    x0_b = jax.tree_util.tree_map(lambda a: jnp.tile(a, (n // S,) + (1,) * (a.ndim - 1)), x0)
    seed_keys = jnp.stack([jax.random.PRNGKey(s) for s in seeds])
    keys = jnp.tile(seed_keys, (n // S, 1))
    opt = optimizers.sgd_momentum(jnp.asarray(lr_b), m["momentum"],
                                  global_clipnorm=jnp.asarray(thr_b))
    say(f"{name}: {lrs.size} learning rates x {thr.size - 1} thresholds + no clipping x "
        f"{S} seeds = {n} runs of {m['steps']} steps (batch {m['batch_size']}, momentum "
        f"{m['momentum']:g}), one compiled call ...")
    r = engine.run(problem, opt, x0_b, m["steps"], record_every=m["record_every"],
                   key=keys, per_trajectory_keys=True, trace_grad_norm=False,
                   observe={"validation": problem.extra["validation_loss"]})
    shape = (lrs.size, thr.size, S)
    train, val = r.trace["f"], r.trace["validation"]
    diverged = r.diverged.reshape(shape)
    steps = steps_to_target(train, r.iterations, m["target"], r.diverged).reshape(shape)
    final_train = np.where(r.diverged, np.nan, train[:, -1]).reshape(shape)
    final_val = np.where(r.diverged, np.nan, val[:, -1]).reshape(shape)
    summary = summarise(lrs, thr, steps, final_train, diverged, train[:, 0].reshape(shape),
                        m["steps"])
    entry = {
        "problem": problem.description, "problem_name": m["problem"], "args": m["args"],
        "batch_size": m["batch_size"], "momentum": m["momentum"], "steps": m["steps"],
        "record_every": m["record_every"], "target": m["target"],
        "initial_train_loss": float(np.median(train[:, 0])),
        "lrs": lrs.tolist(), "thresholds": thr.tolist(), "seeds": seeds,
        "steps_to_target": steps.tolist(), "final_train": final_train.tolist(),
        "final_validation": final_val.tolist(), "diverged": diverged.tolist(),
        "diverged_at": r.diverged_at.reshape(shape).tolist(), **summary,
    }
    for k in ("corpus_sha256", "python_version"):
        if k in problem.extra:
            entry[k] = problem.extra[k]
    traces = {f"{name}/iteration": r.iterations,
              f"{name}/train_loss": train.reshape(*shape, -1),
              f"{name}/validation_loss": val.reshape(*shape, -1)}
    say(line(name, entry))
    return entry, traces


def _cell(c: dict | None) -> str:
    if c is None:
        return "none"
    thr = "no clipping" if math.isinf(c["threshold"]) else f"clip {c['threshold']:g}"
    steps = "not reached" if c["median_steps"] is None else f"{c['median_steps']:g} steps"
    return f"lr {c['lr']:g}, {thr}: {steps} ({c['seeds_reaching']} seeds reach)"


def line(name: str, e: dict) -> str:
    """One progress line for a model's summary."""
    sp = e["speedup"]
    ratio = "-" if sp["median"] is None else (
        f"{'>=' if sp['censored'] else ''}{sp['median']:.2g}x [{sp['min']:.2g}, {sp['max']:.2g}]")
    return (f"{name}: target {e['target']:g}; best unclipped {_cell(e['best_unclipped'])}; "
            f"best clipped {_cell(e['best_clipped'])}; speed-up {ratio}; largest stable "
            f"unclipped lr {e['largest_stable_unclipped_lr']}; clipped lr larger: "
            f"{e['clipped_lr_exceeds_stable']}")


def run(cfg: DictConfig) -> None:
    seeds = check_seeds(cfg.seeds)
    models = OmegaConf.to_container(cfg.models, resolve=True)
    for name in cfg.run_models:
        validate.choice("run_models", name, tuple(models))
    checked = {name: _check_model(name, models[name]) for name in cfg.run_models}
    say = Progress("clipping_networks")
    metrics = {"seeds": seeds, "models": {}}
    traces = {}
    for name, m in checked.items():
        entry, tr = run_model(name, m, metrics["seeds"], say)
        metrics["models"][name] = entry
        traces.update(tr)
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="clipping_networks",
    run=run,
    order=11,
    figures=("clipping_networks",),
    result=records.ClippingNetworks,
    quick={
        "seeds": [0, 1],
        "models": {
            "char_lm": {"args": {"embed": 4, "hidden": 8, "length": 8, "n": 32}, "steps": 40,
                        "record_every": 10, "target": 4.0, "lrs": [1.0, 10.0],
                        "thresholds": [1.0]},
            "resnet_digits": {"args": {"channels": 2, "blocks": 1}, "steps": 20,
                              "record_every": 10, "target": 2.0, "lrs": [0.1, 1.0],
                              "thresholds": [1.0]},
            "rnn": {"args": {"hidden": 8, "length": 10, "n": 32}, "steps": 40,
                    "record_every": 10, "target": 0.15, "lrs": [0.1, 1.0],
                    "thresholds": [1.0]}}},
    seconds=(150.0, 20.0),
    bigger=("seeds=[0,1,2,3,4,5,6,7,8,9] models.char_lm.steps=1000 "
                 "models.resnet_digits.record_every=10 models.resnet_digits.lrs=[0.1,0.3,1.0,3.0] "
                 "models.resnet_digits.thresholds=[0.1,0.25,1.0,4.0]",
            "ten seeds, a finer ResNet grid recorded every 10 steps, a longer LM run"),
)

main = hydra_entry("clipping_networks", run)

if __name__ == "__main__":
    main()
