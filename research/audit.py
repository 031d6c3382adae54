"""Measured steps against what the theory guarantees.

- ``descent_audit``: every recorded step of a run against the phi-inequality's guaranteed
  decrease (docs/theory.md §1) and, for Vankov's rules, against their per-step progress.
- ``max_step``: by bisection, the largest step h along -grad f(x) with f(x - h g) <= f(x) - c
  h ||g||^2 (c = 0: plain descent; c = 1/2: half the first-order decrease).

Both work on batches and in float64.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from research import runtime, theory, validate

FLOAT_RTOL = 1e-12
"""A step counts as a violation only when f(x_{t+1}) exceeds the bound by more than
FLOAT_RTOL * (|f(x_t)| + |bound|): float64 rounding of f and of the bound, not slack."""

RESOLVABLE = 1e-10
"""Slack is reported only for steps whose guaranteed decrease exceeds RESOLVABLE * |f(x_t)|."""

UNDERFLOW = float(np.finfo(np.float64).tiny / np.finfo(np.float64).eps)
"""About 1e-292. Steps whose f values are all below this are not audited: squares of
iterates and gradients there fall into float64's subnormal range, where relative precision
is lost (seen on the hard instance, whose minimum GD approaches like x_t ~ 1e-151)."""


@dataclasses.dataclass(frozen=True)
class Audit:
    """Per-step audit of one or more trajectories (arrays flattened over all audited steps).

    Attributes:
      n_steps: the number of audited steps (finite f_t, f_{t+1}, g_t, h_t, and f values
        above ``UNDERFLOW``).
      underflow_skipped: finite steps left out because all their f values are below
        ``UNDERFLOW``.
      violations: steps where f(x_{t+1}) > bound beyond float rounding.
      measured: f(x_t) - f(x_{t+1}) per audited step.
      guaranteed: f(x_t) - bound per audited step (the promised decrease; may be negative
        when the step is too long for any promise).
      worst_excess: max over steps of (f(x_{t+1}) - bound) / (|f(x_t)| + |bound|).
      f_scale: |f(x_t)| per audited step.
    """

    n_steps: int
    violations: int
    underflow_skipped: int
    measured: np.ndarray
    guaranteed: np.ndarray
    worst_excess: float
    f_scale: np.ndarray

    @property
    def slack(self) -> np.ndarray:
        """measured / guaranteed over the steps whose guaranteed decrease is resolvable in
        float64 (above RESOLVABLE * |f(x_t)|); >= 1 when the theory holds. Below that, both
        decreases are rounding noise and their ratio means nothing."""
        pos = self.guaranteed > RESOLVABLE * self.f_scale
        return self.measured[pos] / self.guaranteed[pos]


def _pairs(f, *per_step):
    """(number skipped for underflow, f_t, f_{t+1}, *per-step values at t) over the steps
    where all of them are finite and the f values are resolvable."""
    f = np.asarray(f, dtype=float)
    cols = [f[..., :-1], f[..., 1:]] + [np.asarray(a, dtype=float)[..., :-1] for a in per_step]
    finite = np.logical_and.reduce([np.isfinite(a) for a in cols])
    tiny = (np.abs(cols[0]) < UNDERFLOW) & (np.abs(cols[1]) < UNDERFLOW)
    ok = finite & ~tiny
    return [int(np.sum(finite & tiny))] + [a[ok] for a in cols]


def _audit(skipped, f_t, f_next, bound) -> Audit:
    # an infinite bound (phi overflows for very long steps) promises nothing: excess -inf
    finite = np.isfinite(bound)
    scale = np.where(finite, np.abs(f_t) + np.abs(bound), 1.0)
    excess = np.where(finite, (f_next - np.where(finite, bound, 0.0))
                      / np.where(scale > 0, scale, 1.0), -np.inf)
    return Audit(
        n_steps=int(f_t.size),
        violations=int(np.sum(excess > FLOAT_RTOL)),
        underflow_skipped=skipped,
        measured=f_t - f_next,
        guaranteed=f_t - bound,
        worst_excess=float(excess.max()) if excess.size else float("-inf"),
        f_scale=np.abs(f_t),
    )


def _every_step(what: str, iterations) -> None:
    """Refuse thinned traces in one sentence: a pair of recorded iterates k steps apart is not
    one step, and auditing it as one would count k steps as one."""
    if iterations is None:
        return
    it = np.asarray(iterations)
    if it.ndim != 1 or (it.size > 1 and not np.all(np.diff(it) == 1)):
        gaps = sorted(set(np.diff(it).tolist())) if it.ndim == 1 else it.shape
        raise ValueError(f"{what} needs a trace of every step (record_every=1); got iterates "
                         f"{gaps} steps apart.")


def audit_run(result, L0: float, L1: float) -> Audit:
    """``descent_audit`` of an ``engine.RunResult``, refusing one recorded every k > 1 steps."""
    return descent_audit(result.trace["f"], result.trace["grad_norm"], result.trace["step_size"],
                         L0, L1, iterations=result.iterations)


def audit_records(path, L0: float, L1: float):
    """``descent_audit`` of every trajectory of the run records under ``path`` (a record or a
    sweep directory): a ``pandas.DataFrame`` of ``results.load``'s identifying columns with
    "steps_audited", "violations" and "underflow_skipped" per row. Records written with
    ``engine.record_every`` other than 1 are refused in one sentence naming them."""
    from research import results

    table = results.load(path, traces=True)
    every = table.get("engine.record_every")
    if every is not None and (thinned := sorted(set(table["record"][every != 1]))):
        raise ValueError(f"audit_records needs traces of every step (engine.record_every=1); "
                         f"{', '.join(thinned)} recorded every {sorted(set(every[every != 1]))}"
                         " steps.")
    audits = [descent_audit(f, g, h, L0, L1) for f, g, h in zip(
        table["trace.f"], table["trace.grad_norm"], table["trace.step_size"], strict=True)]
    out = table[["record", "trajectory"]].copy()
    out["steps_audited"] = [a.n_steps for a in audits]
    out["violations"] = [a.violations for a in audits]
    out["underflow_skipped"] = [a.underflow_skipped for a in audits]
    return out


def descent_audit(f, grad_norm, step_size, L0: float, L1: float, *,
                  iterations=None) -> Audit:
    """Hold every step x_{t+1} = x_t - h_t grad f(x_t) against the phi-inequality.

    Args:
      f, grad_norm, step_size: traces (..., T + 1) recorded at every step (record_every = 1),
        as ``engine.run`` returns them; the step must be along -grad f (GD-type methods on
        deterministic problems: use ``problem.deterministic``).
      L0, L1: the problem's constants.
      iterations: the iterate indices of the traces (``RunResult.iterations``); when given,
        traces recorded every k > 1 steps are refused (``ValueError``) instead of audited as
        if each recorded pair were one step.

    Returns:
      An ``Audit``. ``violations`` should be 0 whenever (L0, L1) are right.

    References: docs/theory.md §1 (Vankov et al. 2024; Hübler et al. 2024). [secondary;
    checked]
    """
    runtime.require_x64("descent_audit")
    _every_step("descent_audit", iterations)
    validate.nonnegative("L0", L0)
    validate.nonnegative("L1", L1)
    skipped, f_t, f_next, g, h = _pairs(f, grad_norm, step_size)
    bound = np.asarray(theory.descent_bound(f_t, g, h, L0, L1))
    return _audit(skipped, f_t, f_next, bound)


def progress_audit(f, grad_norm, L0: float, L1: float, rule: str, *,
                   iterations=None) -> Audit:
    """Hold every step of a run with Vankov's rule ``rule`` against its per-step progress
    f(x_t) - f(x_{t+1}) >= a ||g_t||^2 / (2 L0 + 3 L1 ||g_t||). ``iterations``: as for
    ``descent_audit``.

    References: Vankov et al. 2024 (arXiv:2410.10800). [secondary; checked]
    """
    runtime.require_x64("progress_audit")
    _every_step("progress_audit", iterations)
    skipped, f_t, f_next, g = _pairs(f, grad_norm)
    bound = f_t - np.asarray(theory.vankov_progress(g, L0, L1, rule))
    return _audit(skipped, f_t, f_next, bound)


def max_step(fn, x, c: float = 0.0, h0: float = 1e-8, doublings: int = 160,
             bisections: int = 64):
    """Largest h with f(x - h g) <= f(x) - c h ||g||^2, g = grad f(x), for a batch of x.

    From h0 / max(1, ||g||) (which must satisfy the condition) h is doubled until the
    condition first fails,
    then the bracket [last good, first bad] is bisected. When the set of good steps is an
    interval (as on convex 1-D functions) this is its right end; otherwise it is the first
    boundary met on the doubling grid.

    Args:
      fn: f(x) -> scalar.
      x: points with a leading batch axis (an array, or a pytree whose leaves all have it).
      c: 0 for plain descent, 1/2 for half the first-order decrease.

    Returns:
      (h_max, grad_norm), arrays of shape (batch,). h_max is NaN where even the first step
      fails and inf where no failure was found up to 2^doublings times it.
    """
    runtime.require_x64("max_step")
    validate.in_interval("c", c, 0.0, 1.0)
    if not isinstance(x, jax.Array | np.ndarray):  # a batched pytree: search on flat vectors
        first = jax.tree_util.tree_map(lambda a: a[0], x)
        unravel = ravel_pytree(first)[1]
        flat = jax.vmap(lambda p: ravel_pytree(p)[0])(x)
        return _max_step(lambda v: fn(unravel(v)), flat, float(c), float(h0), int(doublings),
                         int(bisections))
    return _max_step(fn, jnp.asarray(x), float(c), float(h0), int(doublings), int(bisections))


def _max_step_one(fn, c, h0, doublings, bisections, x):
    f0, g = jax.value_and_grad(fn)(x)
    gsq = jnp.sum(g * g)
    h0 = h0 / jnp.maximum(1.0, jnp.sqrt(gsq))

    def good(h):
        fh = fn(x - h * g)
        return jnp.isfinite(fh) & (fh <= f0 - c * h * gsq)

    def double(carry, _):
        lo, hi = carry
        h = lo * 2.0
        ok = jnp.isinf(hi) & good(h)
        lo = jnp.where(ok, h, lo)
        hi = jnp.where(jnp.isinf(hi) & ~ok, h, hi)
        return (lo, hi), None

    start_ok = good(h0)
    (lo, hi), _ = jax.lax.scan(double, (h0, jnp.asarray(jnp.inf)), None,
                               length=doublings)

    def bisect(carry, _):
        lo, hi = carry
        mid = 0.5 * (lo + hi)
        ok = good(mid)
        return (jnp.where(ok, mid, lo), jnp.where(ok, hi, mid)), None

    (lo, hi), _ = jax.lax.scan(bisect, (lo, hi), None, length=bisections)
    h = jnp.where(jnp.isinf(hi), jnp.inf, lo)
    return jnp.where(start_ok, h, jnp.nan), jnp.sqrt(gsq)


_max_step = jax.jit(
    lambda fn, x, c, h0, d, b: jax.vmap(lambda xi: _max_step_one(fn, c, h0, d, b, xi))(x),
    static_argnums=(0, 2, 3, 4, 5),
)
