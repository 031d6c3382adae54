"""Wall time of the `make figures` pipeline by stage (issue 7), from scratch in a temporary
directory: every experiment at figure size, every figure, then CLAIMS.md and the index.

Each stage is a fresh process, as under make (the figures are one process, as `make
figures` draws them). The baseline is the issue's target for the
whole pipeline, 10 minutes on this machine; the report gives each stage's seconds and the
total as a fraction of the target. Writes benchmarks/results.json under "figures".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import RESULTS, save
from paper_figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 600.0


def experiments() -> list[str]:
    """The experiments of `make figures`, read from the Makefile (one source of truth)."""
    text = (ROOT / "Makefile").read_text()
    start = text.index("EXPERIMENTS :=") + len("EXPERIMENTS :=")
    line = text[start:text.index("\nRECORDS")].replace("\\\n", " ")
    return line.split()


def _timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"stage failed: {' '.join(args)}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", type=Path, default=None,
                    help="run in this (new or empty) folder and keep its results/ and "
                    "figures/ instead of a temporary folder")
    args = ap.parse_args(argv)
    if args.keep is not None and args.keep.exists() and any(args.keep.iterdir()):
        raise SystemExit(f"error: --keep must be a new or empty folder; {args.keep} is not.")
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) if args.keep is None else args.keep.resolve()
        res, figs = root / "results", root / "figures"
        for name in experiments():
            print(f"[bench] experiment {name} ...", flush=True)
            stages[f"experiment {name}"] = _timed([f"experiments.{name}",
                                                   f"out={res / name}"])
        # as make draws them: every figure in one process
        stages["figures (one process)"] = _timed(["paper_figures", "--results", str(res),
                                                  "--out", str(figs)])
        missing = [n for n in FIGURES if not (figs / f"{n}.png").is_file()]
        if missing:
            raise SystemExit(f"stage failed: no figure {', '.join(missing)}")
        stages["CLAIMS.md"] = _timed(["experiments.verify", "--report-only", "--results",
                                      str(res), "--out", str(figs / "CLAIMS.md")])
        stages["figure index"] = _timed(["experiments.figure_index", "--results", str(res),
                                         "--out", str(figs / "README.md")])
    total = sum(stages.values())
    numbers = {
        "stages_s": {k: round(v, 1) for k, v in stages.items()},
        "experiments_s": round(sum(v for k, v in stages.items() if k.startswith("exp")), 1),
        "figures_and_reports_s": round(sum(v for k, v in stages.items()
                                           if not k.startswith("exp")), 1),
        "total_s": round(total, 1),
        "total_over_600s_target": round(total / TARGET_S, 2),
    }
    save("figures", numbers, args.out)
    print(f"[bench] target: make figures <= 600 s -> {'met' if total <= TARGET_S else 'NOT met'}"
          f" ({total:.0f} s)")


if __name__ == "__main__":
    main()
