"""Wall time of the `make figures` pipeline, from scratch in a temporary directory:
every experiment at figure size, every figure, then CLAIMS.md and the index.

The experiments run as `make figures` runs them: ``FIGURE_JOBS`` (2) fresh processes at a
time, in the Makefile's order (longest first), the next starting when one ends. The total
is the wall time from the first experiment to the last report, what a user waits for after
set-up; each stage's seconds are its own wall time, so two stages that overlapped both count
their shared minutes (their sum is the one-at-a-time cost, near enough). The figures are
drawn by ``FIGURE_JOBS`` processes, as make draws them (``python -m paper_figures --jobs``).
The target for the whole pipeline is 10 minutes on 2 CPU cores, the budget `make figures`
is sized for.
Writes benchmarks/results.json under "figures".
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import RESULTS, save
from paper_figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 600.0


def experiments() -> list[str]:
    """The experiments of `make figures`, from their declarations (the Makefile's source)."""
    from experiments import registry

    return registry.slowest_first()


def figure_jobs() -> int:
    """``FIGURE_JOBS``'s default in the Makefile: how many experiments make runs at once."""
    return int(re.search(r"^FIGURE_JOBS \?= (\d+)", (ROOT / "Makefile").read_text(),
                         re.M).group(1))


def _parallel(stages: list[tuple[str, list[str]]], jobs: int) -> dict[str, float]:
    """Run ``python -m <args>`` for every stage, ``jobs`` at a time in the given order, as
    ``make -j<jobs>`` does; each stage's wall time."""
    todo, running, took = list(stages), {}, {}
    while todo or running:
        while todo and len(running) < jobs:
            name, args = todo.pop(0)
            print(f"[bench] {name} ...", flush=True)
            proc = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
            running[name] = (proc, time.perf_counter())
        time.sleep(0.2)
        for name, (proc, t0) in list(running.items()):
            if proc.poll() is None:
                continue
            took[name] = time.perf_counter() - t0
            del running[name]
            if proc.returncode != 0:
                for other, _ in running.values():
                    other.kill()
                raise SystemExit(f"stage failed: {name}\n{proc.stderr.read()[-3000:]}")
    return took


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"stage failed: {' '.join(args)}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv=None) -> None:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", type=Path, default=None,
                    help="run in this (new or empty) folder and keep its results/ and "
                    "figures/ instead of a temporary folder")
    args = ap.parse_args(argv)
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        raise SystemExit(f"error: --keep must be a new or empty folder; {args.keep} is not.")
    jobs = figure_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if args.keep is None else args.keep.resolve()
        res, figs = root / "results", root / "figures"
        t0 = time.perf_counter()
        stages = _parallel([(f"experiment {name}", [f"experiments.{name}", f"out={res / name}"])
                            for name in experiments()], jobs)
        experiments_wall = time.perf_counter() - t0
        # as make draws them: every figure, in FIGURE_JOBS processes
        stages[f"figures ({jobs} processes)"] = _timed(["paper_figures", "--results", str(res),
                                                      "--out", str(figs), "--jobs", str(jobs)])
        missing = [n for n in FIGURES if not (figs / f"{n}.png").is_file()]
        if missing:
            raise SystemExit(f"stage failed: no figure {', '.join(missing)}")
        stages["CLAIMS.md"] = _timed(["experiments.verify", "--report-only", "--results",
                                      str(res), "--out", str(figs / "CLAIMS.md")])
        stages["figure index"] = _timed(["experiments.figure_index", "--results", str(res),
                                         "--out", str(figs / "README.md")])
    reports = sum(v for k, v in stages.items() if not k.startswith("exp"))
    total = experiments_wall + reports
    numbers = {
        "experiments_at_once": jobs,
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "experiments_s": round(experiments_wall, 1),
        "experiment_stages_sum_s": round(sum(v for k, v in stages.items()
                                             if k.startswith("exp")), 1),
        "figures_and_reports_s": round(reports, 1),
        "total_s": round(total, 1),
        "total_over_600s_target": round(total / TARGET_S, 2),
    }
    save("figures", numbers, args.out)
    print(f"[bench] target: make figures <= 600 s -> {'met' if total <= TARGET_S else 'NOT met'}"
          f" ({total:.0f} s)")


if __name__ == "__main__":
    main()
