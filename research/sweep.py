"""Batched sweeps: numeric axes whose cross product becomes the batch axis of one engine call.

A sweep spec maps an axis name to its values:

- ``[0.1, 0.2, 0.5]``: these values;
- ``{start: 0.001, stop: 1.001, step: 0.001}``: ``start + i * step`` below ``stop``, the
  same values as Hydra's ``range(start, stop, step)`` (so ``range(0.1, 1.1, 0.1)`` has 11
  points: rounding puts the eleventh just below 1.1);
- ``{start: 1e-3, stop: 1.0, num: 50}``: evenly spaced, both ends included; add
  ``log: true`` for even spacing on a log scale.

Axis names are ``optimizer.<hyperparameter>`` (any numeric hyperparameter: they are traced,
so the batch shares one compiled program), ``x0`` (every coordinate of the start set to
the value) and ``engine.seed`` (one PRNG stream per seed, as a job with that seed would have).
``chunk: [start, stop]`` runs a slice of the points (the batching sweeper's ``max_batch``).
Problem settings change shapes or code, so they cannot be batch axes; sweep them
as Hydra jobs instead.

``prepare`` validates a sweep and builds its ``Batch``; ``run_batch`` runs it as one engine
call and returns one row per trajectory; ``run_grid`` does both.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from research import engine, optimizers, validate
from research.problems import Problem
from research.rows import CHUNK, ROW_METRICS, flatten, row_columns  # noqa: F401

OPTIMIZER_PREFIX = "optimizer."
SEED_AXIS = "engine.seed"
"""A batch axis of seeds: each trajectory's PRNG key then depends on its own seed only."""


def axis_values(name: str, spec: Any) -> np.ndarray:
    """The values of one sweep axis (see the module docstring for the spec forms)."""
    field = f"sweep.{name}"
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"start", "stop", "step"}:
            start, stop, step = (_number(f"{field}.{k}", spec[k]) for k in ("start", "stop",
                                                                             "step"))
            if not step > 0 or not stop > start:
                raise ValueError(f"{field} needs step > 0 and stop > start; got start={start}, "
                                 f"stop={stop}, step={step}.")
            values = _hydra_range(field, start, stop, step)
        elif keys in ({"start", "stop", "num"}, {"start", "stop", "num", "log"}):
            start, stop = _number(f"{field}.start", spec["start"]), _number(f"{field}.stop",
                                                                             spec["stop"])
            num = _count(f"{field}.num", spec["num"])
            if num > MAX_POINTS:
                raise ValueError(f"{field} would have more than {MAX_POINTS:,} points; got "
                                 f"start={start}, stop={stop}, num={num}.")
            if spec.get("log", False):
                if not (start > 0 and stop > 0):
                    raise ValueError(f"{field} with log: true needs start > 0 and stop > 0; got "
                                     f"start={start}, stop={stop}.")
                values = np.geomspace(start, stop, num)
            else:
                values = np.linspace(start, stop, num)
        else:
            raise ValueError(
                f"{field} must be a list of numbers or a mapping with keys (start, stop, step) or "
                f"(start, stop, num[, log]); got keys {sorted(keys)}.")
    elif isinstance(spec, list | tuple):
        if not spec:
            raise ValueError(f"{field} must list at least one value; got [].")
        # a hyperparameter may be +inf as in a single run (gamma = inf: no clipping); the
        # optimizer's own checks then decide, value by value
        hyper = name.startswith(OPTIMIZER_PREFIX)
        values = np.array([_number(field, v, allow_inf=hyper) for v in spec], dtype=float)
    else:
        raise ValueError(f"{field} must be a list of numbers or a range mapping; got {spec!r}.")
    return np.asarray(values, dtype=float)


MAX_POINTS = 10_000_000


def _hydra_range(field: str, start: float, stop: float, step: float) -> np.ndarray:
    """start + i * step below stop, summed in decimal arithmetic exactly as Hydra's
    ``range`` sweep does, so a batched axis and the same multirun give the same values."""
    if (stop - start) / step > MAX_POINTS:
        raise ValueError(f"{field} would have more than {MAX_POINTS:,} points; got start="
                         f"{start}, stop={stop}, step={step}.")
    cur, end, inc = decimal.Decimal(start), decimal.Decimal(stop), decimal.Decimal(step)
    out = []
    while cur < end:
        out.append(float(cur))
        cur += inc
    return np.array(out)


def _count(field: str, value) -> int:
    """A number of points: an integer >= 1 (Hydra reads ``1e8`` as a float; a float that is
    a whole number is taken as that integer)."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    return validate.positive_int(field, value)


def _number(field: str, value, allow_inf: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} must be a number; got {value!r}.")
    if not math.isfinite(value) and not (allow_inf and value == math.inf):
        raise ValueError(f"{field} must be finite{' or inf' if allow_inf else ''}; got "
                         f"{value!r}.")
    return float(value)


def _axes(spec: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The values of every axis, after checking that their cross product has at most
    ``MAX_POINTS`` points."""
    axes = {name: axis_values(name, values) for name, values in spec.items()}
    points = math.prod(len(v) for v in axes.values())
    if points > MAX_POINTS:
        sizes = " x ".join(f"{len(v):,} (sweep.{k})" for k, v in axes.items())
        raise ValueError(f"sweep would have {points:,} points, more than {MAX_POINTS:,}: "
                         f"{sizes}.")
    return axes


def size(spec: Mapping[str, Any]) -> int:
    """The number of points of the (flattened) sweep ``spec`` that one job runs (its chunk,
    if it has one), without building the grid; checks the axes as ``grid`` does."""
    axes = dict(spec)
    chunk = axes.pop(CHUNK, None)
    total = math.prod(len(v) for v in _axes(axes).values())
    if chunk is None:
        return total
    start, stop = _chunk(chunk, total)
    return stop - start


def _chunk(chunk: Any, total: int) -> tuple[int, int]:
    """Validate ``sweep.chunk = [start, stop]``: a slice of the ``total`` points."""
    ok = (isinstance(chunk, list | tuple) and len(chunk) == 2
          and all(isinstance(c, int) and not isinstance(c, bool) for c in chunk))
    if not ok or not 0 <= chunk[0] < chunk[1] <= total:
        raise ValueError(f"sweep.chunk must be [start, stop] with 0 <= start < stop <= {total:,}"
                         f" (the sweep's points); got {chunk!r}.")
    return int(chunk[0]), int(chunk[1])


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _seeds(spec: Any) -> np.ndarray:
    """The seeds of a seed axis as int64. Integers (a list, or a range of integers) stay
    integers end to end: through float64, seeds of 2^53 and above would collapse into one."""
    field = f"sweep.{SEED_AXIS}"
    if isinstance(spec, list | tuple) and spec and all(map(_is_int, spec)):
        values: Any = list(spec)
    elif (isinstance(spec, Mapping) and set(spec) == {"start", "stop", "step"}
          and all(_is_int(spec[k]) for k in spec)):
        if not spec["step"] > 0 or not spec["stop"] > spec["start"]:
            raise ValueError(f"{field} needs step > 0 and stop > start; got {dict(spec)}.")
        if (spec["stop"] - spec["start"]) // spec["step"] > MAX_POINTS:
            raise ValueError(f"{field} would have more than {MAX_POINTS:,} points; got "
                             f"{dict(spec)}.")
        values = list(range(spec["start"], spec["stop"], spec["step"]))
    else:
        floats = axis_values(SEED_AXIS, spec)
        if not np.all(floats == np.round(floats)):
            raise ValueError(f"{field} must hold whole numbers in [0, 2^63); got "
                             f"{floats.tolist()[:5]}.")
        values = [int(v) for v in floats]
    if not all(0 <= v < 2**63 for v in values):
        raise ValueError(f"{field} must hold whole numbers in [0, 2^63); got {values[:5]}.")
    return np.asarray(values, dtype=np.int64)


def _keys(seeds) -> np.ndarray:
    """One PRNG key per trajectory: ``PRNGKey(seed)`` of its own seed. A trajectory's noise
    then depends on its seed alone, not on the other points of its job: the points of a job
    share their seed's stream (common random numbers), and a sweep gives the same numbers
    batched, chunked, or one job per point."""
    return np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, dtype=jnp.int64)))


def grid(spec: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The cross product of the axes as columns of equal length (first axis slowest).

    An empty spec gives an empty dict (a batch of one trajectory). At most ``MAX_POINTS``
    points.
    """
    axes = _axes(spec)
    if not axes:
        return {}
    mesh = np.meshgrid(*axes.values(), indexing="ij")
    return {name: m.ravel() for name, m in zip(axes, mesh, strict=True)}


TRACE_FIELDS = ("f", "grad_norm", "step_size")
"""The per-trajectory traces ``run_batch`` keeps (float64, one value per recorded iterate)."""


RECORD_OVERHEAD = 16_384
"""Bytes of a record beside its per-trajectory data: config, versions, archive headers."""


class Footprint(NamedTuple):
    """About how much a job needs, in bytes: ``memory`` while it runs, ``record`` on disk."""

    memory: int
    record: int
    traces: int
    recorded: int


def footprint(points: int, steps: int, record_every: int, params: int,
              columns: int = len(ROW_METRICS)) -> Footprint:
    """Estimate the memory and record size of one batched engine run.

    The traces are ``points x (steps / record_every + 1) x len(TRACE_FIELDS)`` float64
    values; while the job runs they exist about three times over (the engine's output, its
    final append, the host copy), and each trajectory carries its ``params`` parameters a
    few times over (iterate, gradient, update, optimizer state). The record holds the traces
    (compressed; this is their uncompressed size, an upper bound), ``columns`` numbers per
    trajectory as JSON (about 25 bytes each) and ``RECORD_OVERHEAD``.
    """
    recorded = steps // record_every + 1
    traces = 8 * points * recorded * len(TRACE_FIELDS)
    memory = 3 * traces + 8 * 8 * points * max(params, 1) + 8 * points * columns
    record = traces + 25 * points * columns + RECORD_OVERHEAD
    return Footprint(memory, record, traces, recorded)


def start_points(problem: Problem, x0: Any, batch: int, values: np.ndarray | None = None):
    """The batch of starting points.

    ``x0`` is None (the problem's default start), a number (every coordinate of the default
    start's shape set to it) or a nested list (one point). ``values``, from an ``x0`` sweep
    axis, replaces the number per trajectory.
    """
    base = problem.x0
    if x0 is None and values is None:
        if base is None:
            raise ValueError(f"x0 must be given: problem {problem.name!r} has no default start.")
        return problem.batch_x0(batch)
    if base is not None and not isinstance(base, jax.Array | np.ndarray):
        raise ValueError(f"x0 can only be set for problems whose parameters are one array; "
                         f"{problem.name!r} has a parameter tree.")
    if values is not None:
        shape = np.shape(base) if base is not None else (1,)
        if x0 is not None and not isinstance(x0, int | float):
            raise ValueError("x0 must be null or a number when sweep.x0 is set; got a list.")
        out = jnp.asarray(values, dtype=float).reshape((batch,) + (1,) * len(shape))
        out = jnp.broadcast_to(out, (batch, *shape))
    elif isinstance(x0, int | float) and not isinstance(x0, bool):
        shape = np.shape(base) if base is not None else (1,)
        out = jnp.full((batch, *shape), float(x0))
    else:
        try:
            point = jnp.asarray(np.asarray(x0, dtype=float))
        except (TypeError, ValueError):
            raise ValueError(f"x0 must be null, a number or a (nested) list of numbers; got "
                             f"{x0!r}.") from None
        if base is not None and point.shape != np.shape(base):
            raise ValueError(f"x0 must have the shape {np.shape(base)} of problem "
                             f"{problem.name!r}'s parameters; got shape {point.shape}.")
        out = jnp.broadcast_to(point, (batch, *point.shape))
    validate.finite_tree("x0", out)
    return out


class Batch(NamedTuple):
    """A validated sweep, ready to run: the optimizer (hyperparameters of shape (batch,)
    where swept), the starting points, and the axis columns."""

    optimizer: Any
    starts: Any
    columns: dict[str, np.ndarray]
    keys: Any = None
    """One PRNG key per trajectory (``_keys``), or None: ``run_batch`` splits its ``seed``."""


def prepare(problem: Problem, optimizer: str | Callable, hparams: Mapping[str, Any], x0: Any,
            spec: Mapping[str, Any], seed: int = 0) -> Batch:
    """Validate a sweep and build the ``Batch`` that ``run_batch`` runs.

    ``optimizer`` is a name in ``research.optimizers.FACTORIES`` or any factory of an optax
    ``GradientTransformation`` (not batched over its hyperparameters). A seed axis
    (``engine.seed``) and a chunk (``chunk: [start, stop]``) give the batch its
    own PRNG keys (see ``SEED_AXIS`` and ``CHUNK``); ``seed`` is the job's seed otherwise.
    Every error is a ``ValueError`` naming the config field, raised before any compute.
    """
    flat = flatten(spec)
    chunk = flat.pop(CHUNK, None)
    seeds = _seeds(flat.pop(SEED_AXIS)) if SEED_AXIS in flat else None
    columns = grid(flat)
    n = len(next(iter(columns.values()))) if columns else 1
    if seeds is not None:
        if len(seeds) * n > MAX_POINTS:
            raise ValueError(f"sweep would have {len(seeds) * n:,} points, more than "
                             f"{MAX_POINTS:,}: {len(seeds):,} (sweep.{SEED_AXIS}) x {n:,}.")
        columns = {SEED_AXIS: np.repeat(seeds, n),
                   **{k: np.tile(v, len(seeds)) for k, v in columns.items()}}
        per_point = columns[SEED_AXIS]
    else:
        per_point = np.full(n, seed, dtype=np.int64)
    if chunk is not None:
        start, stop = _chunk(chunk, len(per_point))
        columns = {k: v[start:stop] for k, v in columns.items()}
        per_point = per_point[start:stop]
    keys = _keys(per_point)
    opt = _optimizer(optimizer, hparams, columns)
    starts = start_points(problem, x0, len(keys), columns.get("x0"))
    return Batch(opt, starts, columns, keys)


def _optimizer(optimizer: str | Callable, hparams: Mapping[str, Any],
               columns: Mapping[str, np.ndarray]):
    """The optimizer of a batch: family ``optimizer`` with its swept ``optimizer.<name>``
    columns as hyperparameter arrays, or an optax factory (its numbers are constants of its
    program, so it takes no swept hyperparameter) called with ``hparams``."""
    hp = dict(hparams)
    for name, values in columns.items():
        if name in ("x0", SEED_AXIS):
            continue
        if not name.startswith(OPTIMIZER_PREFIX):
            raise ValueError(f"sweep.{name} is not a batchable axis: use optimizer.<hyperparameter>"
                             f", x0 or {SEED_AXIS} (problem settings change the program; sweep "
                             f"them as Hydra jobs).")
        key = name[len(OPTIMIZER_PREFIX):]
        if callable(optimizer):
            raise ValueError(f"sweep.{name}: the hyperparameters of an optax target are "
                             f"constants of its program, not batch axes; sweep them with -m "
                             f"{name}=a,b (one job per value).")
        if key not in hp or isinstance(hp[key], str | bool):
            numeric = sorted(k for k, v in hp.items() if not isinstance(v, str | bool))
            raise ValueError(f"sweep.{name} must name a numeric hyperparameter of optimizer "
                             f"{optimizer!r}: one of {', '.join(numeric)}.")
        hp[key] = values
    if callable(optimizer):
        return _target(optimizer, hp)
    try:
        return optimizers.get(optimizer, **hp)
    except ValueError as err:
        swept = [n for n in columns if str(err).startswith(n[len(OPTIMIZER_PREFIX):] + " ")]
        raise ValueError(f"{'sweep.' if swept else ''}optimizer.{err}") from None


def _target(factory: Callable, hparams: Mapping[str, Any]) -> optax.GradientTransformation:
    """``factory(**hparams)``, which must be an optax ``GradientTransformation``."""
    path = getattr(factory, "__name__", repr(factory))
    try:
        opt = factory(**hparams)
    except (TypeError, ValueError) as err:
        raise ValueError(f"optimizer._target_ ({path}) refused its arguments: {err}.") from None
    if not isinstance(opt, optax.GradientTransformation):
        raise ValueError(f"optimizer._target_ is not an optax GradientTransformation factory: "
                         f"{path} gave a {type(opt).__name__}.")
    return opt


def run_grid(problem: Problem, optimizer: str | Callable, hparams: Mapping[str, Any], *,
             x0: Any = None, spec: Mapping[str, Any] | None = None, **engine_kwargs):
    """Run every point of the sweep ``spec`` as one batch: ``prepare``, then ``run_batch``.

    Args:
      problem: the problem.
      optimizer: a name in ``research.optimizers.FACTORIES``, or an optax factory.
      hparams: its hyperparameters (numbers); sweep axes ``optimizer.<name>`` replace them.
      x0, spec: see ``start_points`` and the module docstring.
      engine_kwargs: as in ``run_batch``.
    """
    return run_batch(problem, prepare(problem, optimizer, hparams, x0, spec or {}),
                     **engine_kwargs)


def run_batch(problem: Problem, batch: Batch, *, steps: int, eps: float | None = None,
              record_every: int = 1, stop_at_eps: bool = False, seed: int = 0,
              progress=None):
    """Run a prepared sweep with ``research.engine.run``.

    Args:
      problem: the problem ``batch`` was prepared for.
      batch: from ``prepare``.
      steps, eps, record_every, stop_at_eps, progress: as in ``research.engine.run``.
      seed: the PRNG seed (split per trajectory; used by stochastic problems).

    Returns:
      (rows, traces): ``rows`` maps column name -> array of length batch: the axis values and
      ``ROW_METRICS``; ``traces`` maps "f", "grad_norm", "step_size" -> (batch, n_recorded)
      and "iterations" -> (n_recorded,).
    """
    own = batch.keys is not None
    res = engine.run(problem, batch.optimizer, batch.starts, steps, eps=eps,
                     record_every=record_every, key=batch.keys if own else seed,
                     per_trajectory_keys=own, stop_at_eps=stop_at_eps, progress=progress)
    gn = res.trace["grad_norm"]
    with np.errstate(all="ignore"):
        finite = np.where(np.isfinite(gn), gn, np.inf)
        min_gn = finite.min(axis=1)
    rows = dict(batch.columns)
    rows.update(
        final_f=res.trace["f"][:, -1],
        final_grad_norm=gn[:, -1],
        min_grad_norm=np.where(np.isfinite(min_gn), min_gn, np.nan),
        iterations_to_eps=res.iterations_to_eps,
        diverged=res.diverged,
        diverged_at=res.diverged_at,
    )
    traces = {k: res.trace[k] for k in TRACE_FIELDS}
    traces["iterations"] = res.iterations
    return rows, traces
