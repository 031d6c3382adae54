"""Engine benchmark: clipped GD on 1-D x^4, 4,096 trajectories x 10,000 steps, float64.

Compares, in one run on one machine:
  - ``engine.run`` (one compiled jit(vmap(scan)) call), traces thinned and full;
  - the loop most people write: a Python ``for`` over a jitted optax step, one trajectory at a
    time (a sample of steps is timed and scaled to the whole workload).

Writes the numbers into benchmarks/results.json under "engine" and prints them. Timings take
the best of a few repeats, to discount other load on a shared machine. Targets (issue 2):
ratio >= 1000, thinned engine <= 3 ns per trajectory-step.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks._common import RESULTS, best_time, save
from research import engine, optimizers, problems, theory


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
    }


def main(argv=None) -> None:
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
          f"{'met' if numbers['engine_ns_per_traj_step_thinned'] <= 3 else 'NOT met'}")


if __name__ == "__main__":
    main()
