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

import contextlib
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from research import validate
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
      iterations_to_target: (batch,) first t with f(x_t) <= f_target, checked at every
        step whatever ``record_every``, else -1 (all -1 without ``f_target``).
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
    iterations_to_target: np.ndarray

    @property
    def batch_size(self) -> int:
        return int(self.diverged.shape[0])


def all_finite(tree):
    """True when every entry of every leaf of ``tree`` is finite (a traced bool)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(x)) for x in leaves])


def freeze(ok, new, old):
    """``new`` where ``ok``, else ``old``, leaf by leaf: how every loop of the project keeps a
    trajectory at its last finite iterate once a step goes non-finite."""
    return jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)


class Carry(NamedTuple):
    """The state of one trajectory between steps.

    Attributes:
      x: the iterate (its last finite value once the trajectory diverged).
      state: the optimizer's state (hyperparameters kept out: they are loop constants).
      alive: False from the first non-finite step on.
      hit: the first t with ||grad f(x_t)|| <= eps, else -1.
      reached: the first t with f(x_t) <= f_target, else -1.
      diverged_at: the t whose step (or value at x_t) was non-finite, else -1.
      key: the PRNG key of a stochastic problem.
      t: the iteration reached.
    """

    x: Any
    state: Any
    alive: Any
    hit: Any
    reached: Any
    diverged_at: Any
    key: Any
    t: Any


class Recorded(NamedTuple):
    """What one recorded iterate keeps: f, ||grad f||, the effective step, the observed
    functions' values (in ``observe``'s order) and, with ``trace_x``, the iterate."""

    f: Any
    grad_norm: Any
    step_size: Any
    observed: tuple
    x: Any = None


def _hyper_apply(update, state0):
    """(apply, inner state): hyperparameters are loop constants, kept out of the carry."""
    if not isinstance(state0, HyperState):
        return update, state0
    hparams = state0.hparams

    def apply(g, inner, x):
        u, new = update(g, HyperState(hparams, inner), x)
        return u, new.inner

    return apply, state0.inner


def _step_function(fn, stochastic_fn, apply, trace_x, observe, trace_grad_norm, eps,
                   f_target):
    """``step(carry, record) -> (carry, Recorded | None)``: one optimizer step of one
    trajectory, frozen once non-finite; ``record`` (static) also measures the iterate.
    f(x_t) is compared with ``f_target`` at every step; NaN turns that off (a stochastic
    problem then skips f at unrecorded steps)."""
    exact = jax.value_and_grad(fn)
    stochastic = stochastic_fn is not None
    sampled = jax.grad(stochastic_fn) if stochastic else None
    nan = jnp.asarray(jnp.nan, dtype=jnp.result_type(float))

    def step(c: Carry, record: bool):
        key = c.key
        if stochastic:
            key, sub = jax.random.split(key)
            g = sampled(c.x, sub)
            if record and trace_grad_norm:
                f, g_exact = exact(c.x)
                gn = global_norm(g_exact)
            elif record:
                f, gn = fn(c.x), nan
            else:
                # f_target is one number for the whole batch, so under vmap this stays a
                # branch: runs that track nothing do not pay for f
                f = jax.lax.cond(jnp.isnan(f_target), lambda x: nan, fn, c.x)
                gn = global_norm(g)
            gn_used = global_norm(g)
        else:
            f, g = exact(c.x)
            gn = gn_used = global_norm(g)
        ok = c.alive & jnp.isfinite(gn_used)
        hit = c.hit
        if record or not stochastic:  # f and gn are the exact values at x_t
            ok = ok & jnp.isfinite(f)
            hit = jnp.where((hit < 0) & ok & (gn <= eps), c.t, hit)
        # an observation only: a non-finite f at an unrecorded step does not end the run
        reached = jnp.where((c.reached < 0) & ok & jnp.isfinite(f) & (f <= f_target), c.t,
                            c.reached)
        u, new_state = apply(g, c.state, c.x)
        x_new = optax.apply_updates(c.x, u)
        ok_new = ok & all_finite(x_new)
        rec = None
        if record:
            alive = c.alive
            h = global_norm(u) / jnp.where(gn_used > 0, gn_used, 1.0)
            rec = Recorded(jnp.where(alive, f, nan), jnp.where(alive, gn, nan),
                           jnp.where(ok, h, nan),
                           tuple(jnp.where(alive, o(c.x), nan) for _, o in observe),
                           jax.tree_util.tree_map(lambda a: jnp.where(alive, a, nan), c.x)
                           if trace_x else None)
        return Carry(freeze(ok_new, x_new, c.x), freeze(ok_new, new_state, c.state), ok_new,
                     hit, reached, jnp.where(c.alive & ~ok_new, c.t, c.diverged_at), key,
                     c.t + 1), rec

    return step


def scan_recorded(step, carry0, n_blocks: int, record_every: int = 1, *,
                  progress: bool = False, running=None):
    """The project's one loop over steps: ``n_blocks`` blocks, each one recorded step
    ``step(carry, record=True)`` followed by ``record_every - 1`` unrecorded ones
    (``record=False``: a step that skips what only the record needs).

    ``step(carry, record) -> (carry, rec)`` is a pure step function of a named carry (a
    NamedTuple with a ``t`` field, the iteration reached); it freezes a diverged trajectory
    itself (``freeze``). ``engine.run`` and ``smoothness.along_training`` are step functions
    on this loop; vmap it for a batch and shard the batch with ``pad_and_shard``.

    Args:
      progress: report ``carry.t`` to the hook of the running ``engine.run`` after each block.
      running: None, or ``running(carry) -> bool``: blocks run while it holds (a
        ``while_loop``; under vmap, until it fails for every trajectory); records of the
        blocks not run are NaN.

    Returns:
      (final carry, records stacked along a leading axis of ``n_blocks``).
    """

    def block(carry, _):
        carry, rec = step(carry, record=True)
        if record_every > 1:
            carry, _ = jax.lax.scan(lambda c, _: step(c, record=False), carry, None,
                                    length=record_every - 1)
        if progress:
            # One host call per recorded block and device (vmap_method="expand_dims" hands
            # the whole shard's counters over at once); the result feeds the carry, so the
            # call is not dropped as dead code.
            t = jax.pure_callback(_report_progress, jax.ShapeDtypeStruct((), jnp.int32),
                                  carry.t, vmap_method="expand_dims")
            carry = carry._replace(t=t)
        return carry, rec

    if running is None:
        return jax.lax.scan(block, carry0, None, length=n_blocks)

    def more(c):
        carry, _, i = c
        return (i < n_blocks) & running(carry)

    def body(c):
        carry, bufs, i = c
        carry, rec = block(carry, None)
        return carry, jax.tree_util.tree_map(lambda b, r: b.at[i].set(r), bufs, rec), i + 1

    template = jax.eval_shape(lambda c: step(c, record=True)[1], carry0)
    bufs0 = jax.tree_util.tree_map(lambda a: jnp.full((n_blocks, *a.shape), jnp.nan, a.dtype),
                                   template)
    carry, recs, _ = jax.lax.while_loop(more, body, (carry0, bufs0, 0))
    return carry, recs


def _finish(fn, observe, steps: int, carry: Carry, recs: Recorded, eps, f_target):
    """Measure the final iterate and append it to the traces (the run's last column)."""
    nan = jnp.asarray(jnp.nan, dtype=jnp.result_type(float))
    f_last, g_last = jax.value_and_grad(fn)(carry.x)
    gn_last = global_norm(g_last)
    alive, t = carry.alive, carry.t
    ok = alive & jnp.isfinite(f_last) & jnp.isfinite(gn_last)
    hit = jnp.where((carry.hit < 0) & ok & (gn_last <= eps), t, carry.hit)
    reached = jnp.where((carry.reached < 0) & ok & (f_last <= f_target), t, carry.reached)
    div_at = jnp.where(alive & ~ok, t, carry.diverged_at)
    last = alive & (t == steps)  # False when stop_at_eps ended the run early
    fs = jnp.append(recs.f, jnp.where(last, f_last, nan))
    gns = jnp.append(recs.grad_norm, jnp.where(last, gn_last, nan))
    hs = jnp.append(recs.step_size, nan)
    obs = tuple(jnp.append(o, jnp.where(last, g(carry.x), nan))
                for o, (_, g) in zip(recs.observed, observe, strict=True))
    xs = None
    if recs.x is not None:
        xs = jax.tree_util.tree_map(
            lambda r, a: jnp.concatenate([r, jnp.where(last, a, nan)[None]]), recs.x, carry.x)
    return carry.x, fs, gns, hs, obs, hit, reached, div_at, xs


def _trajectory(fn, stochastic_fn, update, steps: int, record_every: int, stop_at_eps: bool,
                trace_x: bool, progress: bool, observe: tuple, trace_grad_norm: bool,
                x0, state0, key, eps, f_target):
    """One trajectory of the problem with objective ``fn`` (and minibatch estimate
    ``stochastic_fn`` or None); vmapped over the batch by ``_run_batch``."""
    apply, inner0 = _hyper_apply(update, state0)
    step = _step_function(fn, stochastic_fn, apply, trace_x, observe, trace_grad_norm, eps,
                          f_target)
    minus_one = jnp.asarray(-1, dtype=jnp.int32)
    carry0 = Carry(x0, inner0, jnp.asarray(True), minus_one, minus_one, minus_one, key,
                   jnp.asarray(0, dtype=jnp.int32))
    # stop_at_eps: blocks run while the trajectory is alive and has not reached eps
    running = (lambda c: c.alive & (c.hit < 0)) if stop_at_eps else None
    carry, recs = scan_recorded(step, carry0, steps // record_every, record_every,
                                progress=progress, running=running)
    return _finish(fn, observe, steps, carry, recs, eps, f_target)


@functools.partial(jax.jit, static_argnames=("fn", "stochastic_fn", "update", "steps",
                                             "record_every", "stop_at_eps", "trace_x",
                                             "progress", "observe", "trace_grad_norm"))
def _run_batch(fn, stochastic_fn, update, steps, record_every, stop_at_eps, trace_x, progress,
               observe, trace_grad_norm, x0, state0, keys, eps, f_target):
    global TRACE_COUNT
    TRACE_COUNT += 1
    traj = functools.partial(_trajectory, fn, stochastic_fn, update, steps, record_every,
                             stop_at_eps, trace_x, progress, observe, trace_grad_norm)
    return jax.vmap(traj, in_axes=(0, 0, 0, None, None))(x0, state0, keys, eps, f_target)


def clear_compiled() -> None:
    """Forget the compiled programs of ``run`` (benchmarks time a compile with it)."""
    _run_batch.clear_cache()


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


def pad_and_shard(tree, batch: int):
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


def batch_size(x0) -> int:
    """The length of the leading batch axis shared by every leaf of ``x0``."""
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


def batched_state(optimizer, x0, batch: int):
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


def _check_arguments(problem, optimizer, steps, record_every, eps, stop_at_eps,
                     progress) -> tuple[int, int]:
    """``run``'s arguments checked before anything compiles: (steps, record_every)."""
    if not isinstance(problem, Problem):
        raise ValueError(
            f"problem must be a research.problems.Problem; got {type(problem).__name__}.")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise ValueError(
            "optimizer must be an optax.GradientTransformation (e.g. research.optimizers.gd); "
            f"got {type(optimizer).__name__}."
        )
    steps = validate.positive_int("steps", steps)
    record_every = validate.positive_int("record_every", record_every)
    if steps % record_every:
        raise ValueError(
            f"record_every must divide steps; got steps={steps}, record_every={record_every}."
        )
    if eps is not None:
        validate.positive("eps", eps)
    elif stop_at_eps:
        raise ValueError("stop_at_eps=True needs eps; pass a positive eps.")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be None or a callable; got {type(progress).__name__}.")
    return steps, record_every


def _trajectory_keys(key, batch: int, per_trajectory_keys: bool):
    """One PRNG key per trajectory: ``key`` itself (checked), or split from it."""
    if per_trajectory_keys:
        keys = jnp.asarray(key)
        if keys.shape != (batch, 2):
            raise ValueError(f"key must hold one PRNG key per trajectory, shape ({batch}, 2); "
                             f"got shape {keys.shape}.")
        return keys
    if isinstance(key, int | np.integer):
        key = jax.random.PRNGKey(int(key))
    return jax.random.split(key, batch)


@contextlib.contextmanager
def _progress_to(hook):
    """Route the running program's progress callbacks to ``hook`` for the duration. The hook
    is process state, not an argument of the compiled program, so that a new progress bar
    does not recompile it."""
    global _PROGRESS_HOOK
    _PROGRESS_HOOK = hook
    try:
        yield
    finally:
        _PROGRESS_HOOK = None


def run(problem: Problem, optimizer: optax.GradientTransformation, x0, steps: int,
        eps: float | None = None, record_every: int = 1, key=0,
        stop_at_eps: bool = False, trace_x: bool = False, progress=None,
        per_trajectory_keys: bool = False, observe=None,
        trace_grad_norm: bool = True, f_target: float | None = None) -> RunResult:
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
      f_target: None, or a number: ``iterations_to_target`` is the first t with
        f(x_t) <= f_target, checked at every step (a stochastic problem then evaluates its
        exact f at every step; it changes no trace, count or divergence flag).

    Returns:
      A ``RunResult``; its arrays are NumPy arrays.

    Example:
      >>> from research import optimizers, problems
      >>> res = run(problems.quartic(), optimizers.gd(0.01), jnp.array([[1.0], [2.0]]), 100)
      >>> res.trace["f"].shape
      (2, 101)
    """
    steps, record_every = _check_arguments(problem, optimizer, steps, record_every, eps,
                                           stop_at_eps, progress)
    x0 = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, dtype=jnp.result_type(a, float)), x0)
    validate.finite_tree("x0", x0)
    batch = batch_size(x0)
    state0 = batched_state(optimizer, x0, batch)
    keys = _trajectory_keys(key, batch, per_trajectory_keys)
    if f_target is not None:
        validate.finite_number("f_target (or None)", f_target)
    eps_arg = jnp.asarray(-1.0 if eps is None else eps, dtype=float)
    target_arg = jnp.asarray(np.nan if f_target is None else f_target, dtype=float)
    observed = _observed(observe)
    x0_, state0_, keys_ = pad_and_shard((x0, state0, keys), batch)
    with _progress_to(progress):
        out = _run_batch(problem.fn, problem.stochastic_fn, optimizer.update, steps,
                         record_every, bool(stop_at_eps), bool(trace_x), progress is not None,
                         observed, bool(trace_grad_norm) or problem.stochastic_fn is None,
                         x0_, state0_, keys_, eps_arg, target_arg)
        out = jax.block_until_ready(out)
    x, fs, gns, hs, obs, hit, reached, div_at, xs = jax.tree_util.tree_map(
        lambda a: a[:batch], out)
    fs, gns, hs, obs, hit, reached, div_at, xs = jax.device_get(
        (fs, gns, hs, obs, hit, reached, div_at, xs))
    trace = {"f": fs, "grad_norm": gns, "step_size": hs}
    trace.update({name: o for (name, _), o in zip(observed, obs, strict=True)})
    if trace_x:
        trace["x"] = xs
    return RunResult(trace=trace, iterations=np.arange(0, steps + 1, record_every),
                     iterations_to_eps=hit, diverged=div_at >= 0, diverged_at=div_at, x=x,
                     iterations_to_target=reached)
