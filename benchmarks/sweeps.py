"""Sweep benchmark: one 1,000-point step-size sweep run several ways, side by side.

Workload: clipped GD (gamma = 1) on 1-D x^4 from x0 = 10, eta = range(0.001, 1.001, 0.001),
10,000 steps each, every 100th iterate recorded.

  (t) the command as typed: ``python -m experiments.run -m ... optimizer.eta=range(...)``,
      which the batching sweeper (the default) runs as one vmapped job;
  (r) the same command again on the finished sweep: every job skipped (resume);
  (j) the same with ``hydra.sweeper.max_batch=250 hydra/launcher=joblib`` (4 chunks on 2
      worker processes): the scale-out form;
  (a) ``hydra/sweeper=basic``: 1,000 Hydra jobs that share one compiled program;
  (c) the naive baseline: the same 1,000 Hydra jobs through ``benchmarks.naive_app``, which
      traces and compiles a new program per job, as a straightforward Hydra app does;
  (n) jobs that cannot be batched (a problem and optimizer family each): 6 jobs against 1,
      giving the cost per extra non-batchable job.

Each is a fresh process, timed by wall clock, including start-up. Targets: (t) at least
20x faster than (c) and at most 10 s; (r) at most 2 s. Writes
benchmarks/results.json under "sweeps".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, save

ROOT = Path(__file__).resolve().parents[1]
COMMON = ("problem=quartic", "optimizer=clipped_gd", "optimizer.gamma=1.0",
          "engine.steps=10000", "engine.record_every=100", "progress=off")


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(args)}\n{r.stderr[-3000:]}")
    return elapsed


def main(argv=None) -> None:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000,
                    help="number of step sizes (default 1000, the workload above)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    n = args.points
    stop = f"{0.001 * n + 0.0005:.4f}"  # exactly n points, whatever the float rounding
    eta_range = f"range(0.001,{stop},0.001)"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        typed = ["-m", "experiments.run", "-m", *COMMON, f"optimizer.eta={eta_range}",
                 f"hydra.sweep.dir={tmp / 't'}"]
        print(f"[bench] (t) the command as typed, {n} points ...", flush=True)
        t = timed(typed)
        print("[bench] (r) the same command on the finished sweep ...", flush=True)
        r = timed(typed)
        print("[bench] (j) max_batch=250 with the joblib launcher ...", flush=True)
        j = timed(["-m", "experiments.run", "-m", *COMMON, f"optimizer.eta={eta_range}",
                   "hydra.sweeper.max_batch=250", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp / 'j'}"])
        print("[bench] (n) non-batchable jobs: 1 and 6 ...", flush=True)
        small = ("engine.steps=100", "engine.record_every=100", "progress=off")
        n1 = timed(["-m", "experiments.run", "-m", "problem=quartic", "optimizer=clipped_gd",
                    *small, f"hydra.sweep.dir={tmp / 'n1'}"])
        n6 = timed(["-m", "experiments.run", "-m", "problem=quartic,cosh,sextic",
                    "optimizer=clipped_gd,normalized_gd", *small, f"hydra.sweep.dir={tmp / 'n6'}"])
        print(f"[bench] (a) {n} Hydra jobs, basic sweeper ...", flush=True)
        a = timed(["-m", "experiments.run", "-m", "hydra/sweeper=basic", *COMMON,
                   f"optimizer.eta={eta_range}", f"hydra.sweep.dir={tmp / 'a'}"])
        print(f"[bench] (c) {n} Hydra jobs, a new compile per job ...", flush=True)
        c = timed(["-m", "benchmarks.naive_app", "-m", "hydra/sweeper=basic", *COMMON,
                   f"optimizer.eta={eta_range}", f"hydra.sweep.dir={tmp / 'c'}"])
        from research import results

        rows = {k: len(results.load(tmp / k)) for k in ("t", "j", "a", "c")}
    numbers = {
        "workload": f"clipped GD on 1-D x^4, {n} step sizes x 10000 steps, float64",
        "rows_in_results_table": rows,
        "t_command_as_typed_s": round(t, 2),
        "r_finished_sweep_rerun_s": round(r, 2),
        "j_max_batch_250_joblib_s": round(j, 2),
        "a_basic_sweeper_jobs_s": round(a, 1),
        "c_naive_jobs_compile_each_s": round(c, 1),
        "ratio_c_over_t": round(c / t, 1),
        "ratio_a_over_t": round(a / t, 1),
        "per_job_ms_a": round(1e3 * a / n, 1),
        "per_job_ms_c": round(1e3 * c / n, 1),
        "per_nonbatchable_job_ms": round(1e3 * (n6 - n1) / 5, 0),
    }
    save("sweeps", numbers, args.out)
    print(f"[bench] targets: (t) >= 20x faster than (c) -> "
          f"{'met' if c / t >= 20 else 'NOT met'} ({c / t:.1f}x); (t) <= 10 s -> "
          f"{'met' if t <= 10 else 'NOT met'} ({t:.2f} s); (r) <= 2 s -> "
          f"{'met' if r <= 2 else 'NOT met'} ({r:.2f} s)")


if __name__ == "__main__":
    main()
