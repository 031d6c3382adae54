"""Engine benchmark: clipped GD on 1-D x^4, 4,096 trajectories x 10,000 steps, float64.

Compares, in one run on one machine:
  - ``engine.run`` (one compiled jit(vmap(scan)) call), traces thinned and full;
  - the loop most people write: a Python ``for`` over a jitted optax step, one trajectory at a
    time (a sample of steps is timed and scaled to the whole workload).

It also times the cost of the overflow-safe norm: the same thinned engine run with the
library's ``clipping.global_norm`` (scaled by a power of two, as BLAS nrm2 scales) and with the
plain sqrt(sum g^2) it replaced (kept here only, as the baseline), alternating the two so that
load on the machine hits both alike; on the 1-D workload and on a 16-D one, where the
scaled sum runs (a single number's norm is its absolute value).

Writes the numbers into benchmarks/results.json under "engine" and prints them. Timings take
the best of a few repeats, to discount other load on a shared machine. Targets:
ratio >= 1000, thinned engine <= 3 ns per trajectory-step; the safe norm costs the engine at
most 10% (ratio safe / plain <= 1.10).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.common import RESULTS, best_time, save
from research import clipping, engine, optimizers, problems, theory

NORM_COST_TARGET = 1.10


def plain_global_norm(tree, norm_type: float = 2.0):
    """The library's former L2 norm, sqrt(sum g^2): it overflows once ||g|| > 1.3e154 and
    underflows below 1e-154. Only the baseline for timing ``clipping.global_norm``."""
    del norm_type
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(jnp.asarray(x))) for x in leaves))


@contextlib.contextmanager
def norm_used_by_the_engine(fn):
    """Let the engine and the optimizers compute norms with ``fn`` (the engine recompiles)."""
    saved = clipping.global_norm, engine.global_norm
    clipping.global_norm = engine.global_norm = fn
    engine.clear_compiled()
    try:
        yield
    finally:
        clipping.global_norm, engine.global_norm = saved
        engine.clear_compiled()


def norm_cost(p, x0, steps: int, rounds: int) -> tuple[float, float]:
    """ns per trajectory-step of the thinned engine (clipped GD, Theorem 3's parameters) with
    the plain and with the safe norm: the best over ``rounds`` alternations of the two."""
    eta, gamma = theory.clipped_gd_parameters(p.L0, p.L1)
    opt = optimizers.clipped_gd(eta, gamma)

    def go():
        res = engine.run(p, opt, x0, steps, eps=1e-3, record_every=steps)
        jax.block_until_ready(res.x)

    best = {"plain": float("inf"), "safe": float("inf")}
    for _ in range(rounds):
        for name, fn in (("plain", plain_global_norm), ("safe", clipping.global_norm)):
            with norm_used_by_the_engine(fn):
                go()  # compile
                best[name] = min(best[name], best_time(go, 2))
    batch = jax.tree_util.tree_leaves(x0)[0].shape[0]
    return tuple(best[k] / (batch * steps) * 1e9 for k in ("plain", "safe"))


def measure(batch: int, steps: int, loop_steps: int, repeats: int) -> dict:
    p = problems.quartic()
    eta, gamma = theory.clipped_gd_parameters(p.L0, p.L1)
    x0 = jnp.asarray(np.geomspace(0.1, 100.0, batch))[:, None]
    opt = optimizers.clipped_gd(eta, gamma)

    def engine_run(record_every):
        def go():
            res = engine.run(p, opt, x0, steps, eps=1e-3, record_every=record_every)
            jax.block_until_ready(res.x)
        go()  # compile
        return best_time(go, repeats) / (batch * steps) * 1e9

    thinned = engine_run(steps)
    full = engine_run(1)

    # The usual loop: optax transform, jitted step, Python for-loop, one trajectory.
    tx = optax.chain(optax.clip_by_global_norm(gamma), optax.sgd(eta))

    @jax.jit
    def step(x, state):
        g = jax.grad(p.fn)(x)
        updates, state = tx.update(g, state, x)
        return optax.apply_updates(x, updates), state

    def loop():
        x = jnp.array([10.0])
        state = tx.init(x)
        for _ in range(loop_steps):
            x, state = step(x, state)
        jax.block_until_ready(x)

    loop()  # compile
    loop_ns = best_time(loop, repeats) / loop_steps * 1e9
    return {
        "workload": f"clipped GD on 1-D x^4, {batch} trajectories x {steps} steps, float64",
        "engine_ns_per_traj_step_thinned": round(thinned, 3),
        "engine_ns_per_traj_step_full_traces": round(full, 3),
        "python_loop_ns_per_step": round(loop_ns, 1),
        "python_loop_sampled_steps": loop_steps,
        "ratio_loop_over_engine_thinned": round(loop_ns / thinned, 1),
        "ratio_loop_over_engine_full": round(loop_ns / full, 1),
        "devices": len(jax.local_devices()),
        **safe_norm_cost(batch, steps, repeats),
    }


def safe_norm_cost(batch: int, steps: int, repeats: int) -> dict:
    """The engine with the safe norm against the plain one, on the 1-D workload and in 16-D."""
    p = problems.quartic()
    x0 = jnp.asarray(np.geomspace(0.1, 100.0, batch))[:, None]
    plain_1d, safe_1d = norm_cost(p, x0, steps, repeats)
    dim, batch_16, steps_16 = 16, max(batch // 8, 1), max(steps // 5, 1)
    p16 = problems.quartic(dim=dim)
    x16 = jnp.asarray(np.geomspace(0.1, 100.0, batch_16))[:, None] * jnp.linspace(1, -1, dim)
    plain_16, safe_16 = norm_cost(p16, x16, steps_16, repeats)
    return {
        "norm_plain_ns_per_traj_step_thinned": round(plain_1d, 3),
        "norm_safe_ns_per_traj_step_thinned": round(safe_1d, 3),
        "ratio_safe_over_plain_norm": round(safe_1d / plain_1d, 3),
        "norm_workload_16d": f"the same in 16-D, {batch_16} trajectories x {steps_16} steps",
        "norm_plain_ns_per_traj_step_16d": round(plain_16, 3),
        "norm_safe_ns_per_traj_step_16d": round(safe_16, 3),
        "ratio_safe_over_plain_norm_16d": round(safe_16 / plain_16, 3),
    }


def main(argv=None) -> None:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--loop-steps", type=int, default=2_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    numbers = measure(args.batch, args.steps, args.loop_steps, args.repeats)
    save("engine", numbers, args.out)
    print(f"[bench] targets: ratio >= 1000 -> "
          f"{'met' if numbers['ratio_loop_over_engine_thinned'] >= 1000 else 'NOT met'}; "
          f"thinned <= 3 ns -> "
          f"{'met' if numbers['engine_ns_per_traj_step_thinned'] <= 3 else 'NOT met'}; "
          f"safe norm / plain norm <= {NORM_COST_TARGET} -> "
          f"{'met' if numbers['ratio_safe_over_plain_norm'] <= NORM_COST_TARGET else 'NOT met'}"
          f" (16-D: {numbers['ratio_safe_over_plain_norm_16d']})")


if __name__ == "__main__":
    main()
