"""Sweep benchmark: one 1,000-point step-size sweep run three ways, side by side.

Workload: clipped GD (gamma = 1) on 1-D x^4 from x0 = 10, eta = range(0.001, 1.001, 0.001),
10,000 steps each, every 100th iterate recorded.

  (a) 1,000 Hydra jobs with the basic launcher: ``python -m experiments.run -m ...``; the
      jobs share one compiled program;
  (b) one batched job: ``python -m experiments.run experiment=quartic_eta_batch``;
  (c) the naive baseline: the same 1,000 Hydra jobs through ``benchmarks.naive_app``, which
      traces and compiles a new program per job, as a straightforward Hydra app does;
  (d) for reference, Hydra alone: 1,000 jobs of an app that does nothing, the floor of any
      per-job sweep on this machine.

Each is a fresh process, timed by wall clock, including start-up. Targets (issue 3): (a) at
least 10x faster than (c); (b) under 5 s. Writes benchmarks/results.json under "sweeps".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS, save

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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1000,
                    help="number of step sizes (default 1000, the issue's workload)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    n = args.points
    stop = f"{0.001 * n + 0.0005:.4f}"  # exactly n points, whatever the float rounding
    eta_range = f"range(0.001,{stop},0.001)"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print(f"[bench] (b) one batched job, {n} points ...", flush=True)
        b = timed(["-m", "experiments.run", *COMMON,
                   f"+sweep.optimizer.eta={{start:0.001,stop:{stop},step:0.001}}",
                   f"hydra.run.dir={tmp / 'b'}"])
        print(f"[bench] (a) {n} Hydra jobs, basic launcher ...", flush=True)
        a = timed(["-m", "experiments.run", "-m", *COMMON, f"optimizer.eta={eta_range}",
                   f"hydra.sweep.dir={tmp / 'a'}"])
        print(f"[bench] (c) {n} Hydra jobs, a new compile per job ...", flush=True)
        c = timed(["-m", "benchmarks.naive_app", "-m", *COMMON, f"optimizer.eta={eta_range}",
                   f"hydra.sweep.dir={tmp / 'c'}"])
        print(f"[bench] (d) {n} empty Hydra jobs ...", flush=True)
        d = timed(["-c", "import hydra\n"
                   "@hydra.main(version_base=None, config_path=None, config_name=None)\n"
                   "def m(cfg): pass\n"
                   "m()", "-m", f"+eta={eta_range}", f"hydra.sweep.dir={tmp / 'd'}",
                   "hydra/job_logging=none", "hydra/hydra_logging=none",
                   "hydra.output_subdir=null"])
        from research import results

        rows = {k: len(results.load(tmp / k)) for k in ("a", "b", "c")}
    numbers = {
        "workload": f"clipped GD on 1-D x^4, {n} step sizes x 10000 steps, float64",
        "rows_in_results_table": rows,
        "a_hydra_jobs_compile_once_s": round(a, 1),
        "b_one_batched_job_s": round(b, 2),
        "c_hydra_jobs_compile_each_s": round(c, 1),
        "d_empty_hydra_jobs_s": round(d, 1),
        "ratio_c_over_a": round(c / a, 2),
        "ratio_c_over_b": round(c / b, 1),
        "ratio_a_over_b": round(a / b, 1),
        "per_job_ms_a": round(1e3 * a / n, 1),
        "per_job_ms_c": round(1e3 * c / n, 1),
        "per_job_ms_hydra_alone_d": round(1e3 * d / n, 1),
    }
    save("sweeps", numbers, args.out)
    print(f"[bench] targets: (a) >= 10x faster than (c) -> "
          f"{'met' if c / a >= 10 else 'NOT met'} ({c / a:.1f}x); (b) < 5 s -> "
          f"{'met' if b < 5 else 'NOT met'} ({b:.2f} s)")


if __name__ == "__main__":
    main()
