"""Iteration counts: methods run until ||grad f|| <= eps, the strongest fixed step found by a
sweep, and slopes on log-log axes."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from research import engine, optimizers, runtime, validate
from research.problems import Problem


def iterations_to_eps(problem: Problem, optimizer, x0, eps: float, cap: int,
                      blocks: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Iterations to ||grad f|| <= eps for each start (-1 if not within ``cap``), and the
    divergence flags. ``cap`` is rounded up to a multiple of ``blocks``; the run stops once
    every trajectory is done."""
    runtime.require_x64("iterations_to_eps")
    cap = validate.positive_int("cap", cap)
    every = max(1, -(-cap // blocks))
    res = engine.run(problem, optimizer, x0, steps=every * -(-cap // every), eps=eps,
                     record_every=every, stop_at_eps=True)
    return res.iterations_to_eps, res.diverged


def best_fixed_step(problem: Problem, x0, steps, eps: float, cap: int,
                    worst_of: int = 1) -> dict:
    """For every start (or group of starts), the fixed GD step among ``steps`` that reaches
    eps first.

    All (start, step) pairs run as one batch. This is the strongest fixed-step opponent that a
    grid search can find; a finer grid can only lower its counts.

    With ``worst_of = k``, consecutive groups of k starts share one step, and a step's count
    for the group is its worst (the max over the k starts; -1 if any start fails). That is
    the fixed step chosen for a set of starts rather than tuned to one exact point, where a
    1-D instance can be solved by one lucky jump.

    Returns:
      dict with, per start or group, "iterations" (-1 if no step on the grid reached eps within
      cap), "step" (NaN then), "diverged_fraction" (share of (start, step) runs that
      diverged), and the full "grid" (groups x steps) of iteration counts.
    """
    x0 = jnp.asarray(x0)
    hs = jnp.asarray(steps, dtype=float)
    worst_of = validate.positive_int("worst_of", worst_of)
    if x0.shape[0] % worst_of:
        raise ValueError(f"worst_of must divide the number of starts ({x0.shape[0]}); "
                         f"got {worst_of}.")
    n, m = x0.shape[0] // worst_of, hs.shape[0]
    starts = jnp.repeat(x0, m, axis=0)
    its, div = iterations_to_eps(problem, optimizers.gd(jnp.tile(hs, n * worst_of)), starts,
                                 eps, cap)
    its = its.reshape(n, worst_of, m)
    its = np.where(np.any(its < 0, axis=1), -1, its.max(axis=1))
    div = div.reshape(n, worst_of, m).mean(axis=1)
    masked = np.where(its >= 0, its, np.iinfo(its.dtype).max)
    best = masked.argmin(axis=1)
    found = its[np.arange(n), best] >= 0
    return {
        "iterations": np.where(found, its[np.arange(n), best], -1),
        "step": np.where(found, np.asarray(hs)[best], np.nan),
        "diverged_fraction": div.mean(axis=1),
        "grid": its,
    }


def censor(counts, budget: float) -> np.ndarray:
    """Iteration counts with every failure (-1 for "never reached eps", NaN, or a non-number
    such as a record's "nan") counted as ``budget``: such a run took at least that long, and
    dropping it would make a method that fails everywhere look fast."""
    c = np.asarray([_as_float(v) for v in np.ravel(np.asarray(counts, dtype=object))])
    return np.where(np.isfinite(c) & (c >= 0), c, float(budget))


def _as_float(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def loglog_slope(x, y) -> float:
    """OLS slope of log y on log x over the points where both are positive and finite (NaN if
    fewer than two)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])
