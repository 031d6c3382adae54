"""Run many optimization trajectories in one compiled call: ``jit(vmap(scan))``.

``run(problem, optimizer, x0, steps)`` takes ``x0`` with a leading batch axis (every leaf of
a pytree carries it), runs every trajectory for ``steps`` steps, and returns traces, the
iterations to reach ||grad f|| <= eps, and divergence flags.

Conventions:

- The compiled program is cached on (the problem's functions, optimizer family, shapes,
  steps, record_every): the problem's ``fn`` and ``stochastic_fn`` objects and the
  optimizer's ``update`` function are static arguments (so problems that differ only in
  their start or metadata and share one ``fn`` share the program), while every number
  (hyperparameters, eps, x0, PRNG keys) is traced. A sweep over step sizes or thresholds
  therefore compiles once. ``TRACE_COUNT`` counts traces, for
  tests.
- Optimizer hyperparameters built by ``research.optimizers`` may be scalars (shared) or
  arrays of shape (batch,), one per trajectory.
- The batch is split across all local devices; ``import research`` makes one CPU device per
  core, so both cores of a 2-core machine share the work.
- Divergence is data: the first time f, grad f or the next iterate is non-finite the
  trajectory is frozen at its last finite iterate and flagged; later trace entries are NaN.
  The other trajectories of the batch are unaffected.
- Stochastic problems (``problem.stochastic_fn``) get one PRNG key per trajectory; the
  update uses the sampled gradient, the traces the exact f and grad f. For them
  ``iterations_to_eps`` is checked at the recorded iterates only.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research import _validate
from research.clipping import global_norm
from research.optimizers import HyperState
from research.problems import Problem

TRACE_COUNT = 0
"""Number of times the engine's program has been traced (each trace implies a compile)."""

TRACE_KEYS = ("f", "grad_norm", "step_size")

_PROGRESS_HOOK = None
"""The callable ``run(..., progress=fn)`` reports to while its program runs, else None."""


def _report_progress(t):
    """Host side of the progress callback: ``t`` is the iteration reached by each trajectory
    of one device's shard (a batched array); the hook gets the smallest."""
    hook = _PROGRESS_HOOK
    if hook is not None:
        hook(int(np.min(t)))
    return np.asarray(t, dtype=np.int32)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """The outcome of ``run``.

    Attributes:
      trace: dict name -> array (batch, n_recorded). "f" is f(x_t), "grad_norm" is
        ||grad f(x_t)||, "step_size" the effective step from x_t, ||x_{t+1} - x_t|| /
        ||grad f(x_t)|| (equal to the rule's h for GD-type methods; NaN for the last iterate,
        from which no step is taken, and 0 where the gradient is exactly zero).
      iterations: the iterate indices t of the trace columns, (n_recorded,):
        0, k, 2k, ..., steps for ``record_every = k``.
      iterations_to_eps: (batch,) first t with ||grad f(x_t)|| <= eps, else -1.
      diverged: (batch,) True when the trajectory became non-finite.
      diverged_at: (batch,) the t whose step (or value at x_t) was non-finite, else -1.
      x: the final iterates (last finite ones for diverged trajectories), batched pytree.
    """

    trace: dict[str, np.ndarray]
    iterations: np.ndarray
    iterations_to_eps: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    x: Any

    @property
    def batch_size(self) -> int:
        return int(self.diverged.shape[0])


def _all_finite(tree):
    leaves = jax.tree_util.tree_leaves(tree)
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(x)) for x in leaves])


def _select(pred, new, old):
    return jax.tree_util.tree_map(lambda a, b: jnp.where(pred, a, b), new, old)


def _trajectory(fn, stochastic_fn, update, steps: int, record_every: int, stop_at_eps: bool,
                trace_x: bool, progress: bool, observe: tuple, trace_grad_norm: bool, x0,
                state0, key, eps):
    """One trajectory of the problem with objective ``fn`` (and minibatch estimate
    ``stochastic_fn`` or None); vmapped over the batch by ``_run_batch``."""
    exact = jax.value_and_grad(fn)
    stochastic = stochastic_fn is not None
    sampled = jax.grad(stochastic_fn) if stochastic else None
    nan = jnp.asarray(jnp.nan, dtype=jnp.result_type(float))
    # Hyperparameters are loop constants: keep them out of the scan carry.
    if isinstance(state0, HyperState):
        hparams, state0 = state0.hparams, state0.inner

        def apply(g, inner, x):
            u, new = update(g, HyperState(hparams, inner), x)
            return u, new.inner
    else:
        apply = update

    def step(carry, record: bool):
        x, state, alive, hit, div_at, key, t = carry
        if stochastic:
            key, sub = jax.random.split(key)
            g = sampled(x, sub)
            if record and trace_grad_norm:
                f, g_exact = exact(x)
                gn = global_norm(g_exact)
            elif record:
                f, gn = fn(x), nan
            else:
                f, gn = nan, global_norm(g)
            gn_used = global_norm(g)
        else:
            f, g = exact(x)
            gn = gn_used = global_norm(g)
        exact_here = record or not stochastic  # f and gn are the exact values at x_t
        ok = alive & jnp.isfinite(gn_used)
        if exact_here:
            ok = ok & jnp.isfinite(f)
            hit = jnp.where((hit < 0) & ok & (gn <= eps), t, hit)
        x_rec = x
        u, new_state = apply(g, state, x)
        x_new = optax.apply_updates(x, u)
        ok_new = ok & _all_finite(x_new)
        x = _select(ok_new, x_new, x)
        state = _select(ok_new, new_state, state)
        div_at = jnp.where(alive & ~ok_new, t, div_at)
        rec = None
        if record:
            h = global_norm(u) / jnp.where(gn_used > 0, gn_used, 1.0)
            rec = (jnp.where(alive, f, nan), jnp.where(alive, gn, nan), jnp.where(ok, h, nan),
                   tuple(jnp.where(alive, fn(x_rec), nan) for _, fn in observe))
            if trace_x:
                rec = (*rec, jax.tree_util.tree_map(lambda a: jnp.where(alive, a, nan), x_rec))
        return (x, state, ok_new, hit, div_at, key, t + 1), rec

    def block(carry, _):
        carry, rec = step(carry, record=True)
        if record_every > 1:
            carry, _ = jax.lax.scan(lambda c, _: step(c, record=False), carry, None,
                                    length=record_every - 1)
        if progress:
            # One host call per recorded block and device (vmap_method="expand_dims" hands
            # the whole shard's counters over at once); the result feeds the carry, so the
            # call is not dropped as dead code.
            *rest, t = carry
            t = jax.pure_callback(_report_progress, jax.ShapeDtypeStruct((), jnp.int32), t,
                                  vmap_method="expand_dims")
            carry = (*rest, t)
        return carry, rec

    minus_one = jnp.asarray(-1, dtype=jnp.int32)
    carry0 = (x0, state0, jnp.asarray(True), minus_one, minus_one, key,
              jnp.asarray(0, dtype=jnp.int32))
    n_blocks = steps // record_every
    if stop_at_eps:
        # Blocks run while the trajectory is alive and has not reached eps; under vmap the
        # loop ends when every trajectory of the batch is done, and finished ones are frozen.
        def running(c):
            (_, _, alive, hit, *_), _, i = c
            return (i < n_blocks) & alive & (hit < 0)

        def body(c):
            carry, bufs, i = c
            carry, rec = block(carry, None)
            bufs = jax.tree_util.tree_map(lambda b, r: b.at[i].set(r), bufs, rec)
            return carry, bufs, i + 1

        bufs0 = (*(jnp.full((n_blocks,), jnp.nan, dtype=nan.dtype) for _ in range(3)),
                 tuple(jnp.full((n_blocks,), jnp.nan, dtype=nan.dtype) for _ in observe))
        if trace_x:
            bufs0 = (*bufs0, jax.tree_util.tree_map(
                lambda a: jnp.full((n_blocks, *a.shape), jnp.nan, a.dtype), x0))
        carry, recs, _ = jax.lax.while_loop(running, body, (carry0, bufs0, 0))
    else:
        carry, recs = jax.lax.scan(block, carry0, None, length=n_blocks)
    fs, gns, hs, obs = recs[:4]
    x, _, alive, hit, div_at, _, t = carry
    f_last, g_last = exact(x)
    gn_last = global_norm(g_last)
    ok = alive & jnp.isfinite(f_last) & jnp.isfinite(gn_last)
    hit = jnp.where((hit < 0) & ok & (gn_last <= eps), t, hit)
    div_at = jnp.where(alive & ~ok, t, div_at)
    reached_end = t == steps  # False when stop_at_eps ended the run early
    fs = jnp.append(fs, jnp.where(alive & reached_end, f_last, nan))
    gns = jnp.append(gns, jnp.where(alive & reached_end, gn_last, nan))
    hs = jnp.append(hs, nan)
    obs = tuple(jnp.append(o, jnp.where(alive & reached_end, fn(x), nan))
                for o, (_, fn) in zip(obs, observe, strict=True))
    xs = None
    if trace_x:
        xs = jax.tree_util.tree_map(
            lambda r, a: jnp.concatenate([r, jnp.where(alive & reached_end, a, nan)[None]]),
            recs[4], x)
    return x, fs, gns, hs, obs, hit, div_at, xs


@functools.partial(jax.jit, static_argnames=("fn", "stochastic_fn", "update", "steps",
                                             "record_every", "stop_at_eps", "trace_x",
                                             "progress", "observe", "trace_grad_norm"))
def _run_batch(fn, stochastic_fn, update, steps, record_every, stop_at_eps, trace_x, progress,
               observe, trace_grad_norm, x0, state0, keys, eps):
    global TRACE_COUNT
    TRACE_COUNT += 1
    traj = functools.partial(_trajectory, fn, stochastic_fn, update, steps, record_every,
                             stop_at_eps, trace_x, progress, observe, trace_grad_norm)
    return jax.vmap(traj, in_axes=(0, 0, 0, None))(x0, state0, keys, eps)


def _observed(observe) -> tuple:
    """``observe`` (None or a dict name -> callable) as a hashable, ordered tuple of pairs."""
    if observe is None:
        return ()
    if not isinstance(observe, dict):
        raise ValueError("observe must be None or a dict mapping a trace name to a function "
                         f"of x; got {type(observe).__name__}.")
    for name, fn in observe.items():
        if not isinstance(name, str) or name in (*TRACE_KEYS, "x"):
            raise ValueError(f"observe: trace names must be strings other than "
                             f"{', '.join(TRACE_KEYS)} and x; got {name!r}.")
        if not callable(fn):
            raise ValueError(f"observe[{name!r}] must be a function of x; got "
                             f"{type(fn).__name__}.")
    return tuple(sorted(observe.items()))


def _pad_and_shard(tree, batch: int):
    """Spread the batch axis over all local devices (one per CPU core).

    The batch is padded to a multiple of the device count by repeating its last row; the
    caller slices the padding off the results. With one device this is the identity.
    """
    devices = jax.local_devices()
    n = len(devices)
    if n == 1:
        return tree
    pad = (-batch) % n

    def put(a):
        a = jnp.asarray(a)
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        return jax.device_put(a, NamedSharding(_mesh(tuple(devices)), PartitionSpec("batch")))

    return jax.tree_util.tree_map(put, tree)


@functools.cache
def _mesh(devices) -> Mesh:
    return Mesh(np.array(devices), ("batch",))


def _batch_size(x0) -> int:
    leaves = jax.tree_util.tree_leaves(x0)
    if not leaves:
        raise ValueError("x0 must contain at least one array.")
    sizes = {jnp.shape(a)[0] if jnp.ndim(a) else None for a in leaves}
    if None in sizes or len(sizes) != 1:
        raise ValueError(
            "x0 must have a leading batch axis of the same length on every leaf, e.g. shape "
            f"(batch, dim); got leaf shapes {[jnp.shape(a) for a in leaves]}."
        )
    return int(sizes.pop())


def _batched_state(optimizer, x0, batch: int):
    """Initial optimizer state with every hyperparameter of shape (batch,)."""
    first = jax.tree_util.tree_map(lambda a: a[0], x0)
    template = optimizer.init(first)
    if not isinstance(template, HyperState):
        return jax.vmap(optimizer.init)(x0)
    hparams = {}
    for name, value in template.hparams.items():
        value = jnp.asarray(value)
        if value.shape not in ((), (batch,)):
            raise ValueError(
                f"optimizer hyperparameter {name} must be a scalar or have shape ({batch},) to "
                f"match x0's batch; got shape {value.shape}."
            )
        hparams[name] = jnp.broadcast_to(value, (batch,))
    inner = jax.vmap(lambda x: optimizer.init(x).inner)(x0)
    return HyperState(hparams, inner)


def run(problem: Problem, optimizer: optax.GradientTransformation, x0, steps: int,
        eps: float | None = None, record_every: int = 1, key=0,
        stop_at_eps: bool = False, trace_x: bool = False, progress=None,
        per_trajectory_keys: bool = False, observe=None,
        trace_grad_norm: bool = True) -> RunResult:
    """Run ``optimizer`` on ``problem`` from every point of the batch ``x0``.

    Args:
      problem: a ``research.problems.Problem``.
      optimizer: an ``optax.GradientTransformation``. With ``research.optimizers`` factories
        the hyperparameters are traced (no recompilation when they change) and may be arrays
        of shape (batch,). Any other optax transformation works too, but recompiles each time
        it is rebuilt.
      x0: starting points with a leading batch axis (array of shape (batch, ...) or a pytree
        whose leaves all have it). Must be finite.
      steps: number of steps, >= 1.
      eps: tolerance for ``iterations_to_eps`` (None: not tracked, all -1).
      record_every: keep every k-th iterate in the traces; must divide ``steps``.
      key: an int seed or a PRNG key, split into one key per trajectory; or, with
        ``per_trajectory_keys``, one PRNG key per trajectory, shape (batch, 2) (used only by
        stochastic problems).
      per_trajectory_keys: ``key`` already holds one key per trajectory (``research.sweep``
        uses it for a batched seed axis, so that a trajectory's key depends on its own seed
        only).
      stop_at_eps: stop each trajectory at the end of the first block of ``record_every``
        steps in which it reached eps (the batch stops when all have, or diverged). Counts
        stay exact; trace columns after the stop are NaN. Needs ``eps``. Use it to measure
        iteration counts with a generous ``steps`` cap.
      trace_x: also keep the recorded iterates themselves, as ``trace["x"]`` (a pytree with
        leaves of shape (batch, n_recorded, ...); NaN after divergence). Costs memory.
      progress: None, or a callable ``progress(t)`` called from the running program after
        each recorded block with the iteration t reached (the smallest over a device's
        shard; calls from different devices interleave). Compiles a separate program with
        one host callback per block; meant for progress bars on long runs.
      observe: None, or a dict name -> fn(x) -> scalar of pure JAX functions evaluated at
        every recorded iterate (e.g. a validation loss) and kept as ``trace[name]``, NaN
        where ``f`` is. The functions are static: pass the same function objects again
        (module-level, or held by a cached problem) to reuse the compiled program. The names
        must differ from the built-in traces ("f", "grad_norm", "step_size", "x").
      trace_grad_norm: for a stochastic problem, False skips the full-batch gradient at the
        recorded iterates (only f is evaluated there): ``trace["grad_norm"]`` is then
        NaN except at the last iterate, and ``eps`` is checked there only. For a
        deterministic problem the exact gradient is the step's own, so this changes nothing.

    Returns:
      A ``RunResult``; its arrays are NumPy arrays.

    Example:
      >>> from research import optimizers, problems
      >>> res = run(problems.quartic(), optimizers.gd(0.01), jnp.array([[1.0], [2.0]]), 100)
      >>> res.trace["f"].shape
      (2, 101)
    """
    if not isinstance(problem, Problem):
        raise ValueError(
            f"problem must be a research.problems.Problem; got {type(problem).__name__}.")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            "optimizer must be an optax.GradientTransformation (e.g. research.optimizers.gd); "
            f"got {type(optimizer).__name__}."
        )
    steps = _validate.positive_int("steps", steps)
    record_every = _validate.positive_int("record_every", record_every)
    if steps % record_every:
        raise ValueError(
            f"record_every must divide steps; got steps={steps}, record_every={record_every}."
        )
    if eps is not None:
        _validate.positive("eps", eps)
    elif stop_at_eps:
        raise ValueError("stop_at_eps=True needs eps; pass a positive eps.")
    x0 = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype=jnp.result_type(a, float)), x0)
    _validate.finite_tree("x0", x0)
    batch = _batch_size(x0)
    state0 = _batched_state(optimizer, x0, batch)
    if per_trajectory_keys:
        keys = jnp.asarray(key)
        if keys.shape != (batch, 2):
            raise ValueError(f"key must hold one PRNG key per trajectory, shape ({batch}, 2); "
                             f"got shape {keys.shape}.")
    else:
        if isinstance(key, int | np.integer):
            key = jax.random.PRNGKey(int(key))
        keys = jax.random.split(key, batch)
    eps_arg = jnp.asarray(-1.0 if eps is None else eps, dtype=float)

    observed = _observed(observe)
    x0_, state0_, keys_ = _pad_and_shard((x0, state0, keys), batch)
    global _PROGRESS_HOOK
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable; got {type(progress).__name__}.")
    _PROGRESS_HOOK = progress
    try:
        out = _run_batch(problem.fn, problem.stochastic_fn, optimizer.update, steps,
                         record_every, bool(stop_at_eps), bool(trace_x), progress is not None,
                         observed, bool(trace_grad_norm) or problem.stochastic_fn is None,
                         x0_, state0_, keys_, eps_arg)
        out = jax.block_until_ready(out)
    finally:
        _PROGRESS_HOOK = None
    x, fs, gns, hs, obs, hit, div_at, xs = jax.tree_util.tree_map(lambda a: a[:batch], out)
    fs, gns, hs, obs, hit, div_at, xs = jax.device_get((fs, gns, hs, obs, hit, div_at, xs))
    trace = {"f": fs, "grad_norm": gns, "step_size": hs}
    trace.update({name: o for (name, _), o in zip(observed, obs, strict=True)})
    if trace_x:
        trace["x"] = xs
    return RunResult(
        trace=trace,
        iterations=np.arange(0, steps + 1, record_every),
        iterations_to_eps=hit,
        diverged=div_at >= 0,
        diverged_at=div_at,
        x=x,
    )
