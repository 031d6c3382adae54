"""How far a rerun on another machine moves the published numbers.

Floating-point results depend on the order of rounding, and the order depends on the CPU:
XLA's CPU backend picks vector widths and fused multiply-adds from the instruction set, and
the matrix-product kernels block by cache size. Deterministic float64 arithmetic moves far less
than a printed digit; chaotic training (the tanh RNN at a large step) turns the difference into
another trajectory.

``python -m experiments.rerun_spread`` emulates other machines on this one: it re-runs every
experiment with XLA's code generation capped at other instruction sets
(``XLA_FLAGS=--xla_cpu_max_isa=ISA``), one results directory per cap, and compares every
named number those records give with the committed ledger
(``experiments.publish.number_moves``). ``--dirs`` adds results directories made elsewhere,
such as a fresh clone's ``make figures`` on another machine. It writes
paper_figures/RERUN.md, one row per number that moved, with the number's own allowance
(``claims.Rerun``), and exits 1 when a move exceeds its allowance: then the allowance, or the
published statistic, is wrong.

Sizes: the full experiments, about 5 minutes per cap on 2 cores (``--jobs`` experiments at a
time). ``--reuse`` keeps records already in ``--out``.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from experiments import claims, publish, registry
from research import results

ROOT = publish.ROOT
ISAS = ("native", "SSE4_2", "AVX")
"""The default runs: this machine as it is ("native": no cap), and capped at SSE4.2 and at AVX,
which have no fused multiply-add and narrower vectors than AVX2 and AVX-512."""


def run_capped(isa: str, name: str, out: Path) -> tuple[str, float, int]:
    """Run experiment ``name`` at its published size with XLA capped at ``isa``."""
    env = dict(os.environ)
    if isa != "native":
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} --xla_cpu_max_isa={isa}".strip()
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", f"experiments.{name}", f"out={out / name}"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-2000:])
    return name, time.perf_counter() - t, proc.returncode


def _cpu() -> str:
    """This CPU's model name and its widest vector extension, for the report."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("model name")), "CPU unknown")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                  if ln.startswith("flags")), [])
    widest = next((w for f, w in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))
                   if f in flags), "no AVX")
    return f"{model}, {widest}"


def spread_rows(label: str, results_dir: Path) -> list[dict]:
    """One row per published number (``paper_figures/claims.json``) that the records in
    ``results_dir`` give differently: the committed value, the rerun's, the number's own
    allowance, and whether the allowance covers the move."""
    return [{"run": label, "key": m.key, "old": m.old, "new": m.new,
             "allowance": m.allowance.describe(), "within": m.allowed,
             "rounding": m.old is not None and m.new is not None
             and claims.EXACT.allows(m.old, m.new)}
            for m in publish.number_moves(results_dir)]


def _show(v) -> str:
    if v is None:
        return "(absent)"
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def to_markdown(rows: list[dict], runs: dict[str, str]) -> str:
    lines = [
        "# How far a rerun on another machine moves the published numbers",
        "",
        "Written by `python -m experiments.rerun_spread` (`make rerun-spread`). Each run below "
        "re-made every record at its published size, either on this machine with XLA's code "
        "generation capped at another instruction set (other vector widths, no fused "
        "multiply-add: another order of rounding, as on another CPU) or on another machine; "
        "every named number those records give is compared with the committed one "
        "([claims.json](claims.json)). A row is a number that moved; *within* says whether "
        "the number's own allowance (CLAIMS.md's and SMOOTHNESS.md's last column) covers it. "
        "Numbers not listed read the same in every run.",
        "",
        "Runs: " + "; ".join(f"`{k}` ({v})" for k, v in runs.items()) + ".",
        "",
        f"{sum(r['rounding'] for r in rows)} numbers moved by rounding only (relative "
        f"{claims.ROUNDING:g}, which every number may) and are not listed; "
        f"{sum(not r['rounding'] for r in rows)} moved further:",
        "",
        "| run | number | committed | rerun | allowance | within |",
        "|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if not r["rounding"]):
        cells = [r["run"], r["key"], _show(r["old"]), _show(r["new"]), r["allowance"],
                 "yes" if r["within"] else "**no**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if all(r["rounding"] for r in rows):
        lines.append("| (no number moved beyond rounding in any run) | | | | | |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--isa", nargs="*", default=list(ISAS),
                    help="instruction-set caps to emulate, 'native' for none (default "
                         f"{' '.join(ISAS)})")
    ap.add_argument("--dirs", nargs="*", type=Path, default=[],
                    help="further results directories, made elsewhere, to compare")
    ap.add_argument("--out", type=Path, default=Path("build/rerun"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--reuse", action="store_true",
                    help="keep the records already in --out")
    ap.add_argument("--write", type=Path, default=ROOT / "paper_figures" / "RERUN.md")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print(f"--jobs must be a positive integer; got {args.jobs}.", file=sys.stderr)
        return 2
    for d in args.dirs:
        if not d.is_dir():
            print(f"--dirs: {d} is not a directory.", file=sys.stderr)
            return 2
    names = registry.slowest_first(quick=True)
    runs: dict[str, str] = {}
    dirs: dict[str, Path] = {}
    for isa in args.isa:
        out = (args.out / isa).resolve()
        todo = [n for n in names if not (args.reuse and results.is_complete(out / n))]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            for name, secs, rc in pool.map(lambda n, isa=isa, out=out: run_capped(isa, n, out),
                                           todo):
                print(f"[rerun_spread] {isa} {name}: {'ok' if rc == 0 else f'exit {rc}'} "
                      f"{secs:.0f} s", flush=True)
                if rc:
                    return 1
        how = ("no cap" if isa == "native" else f"XLA_FLAGS=--xla_cpu_max_isa={isa}")
        took = (f"{math.ceil(time.perf_counter() - t0)} s" if todo
                else "records of an earlier run, --reuse")
        runs[f"isa={isa}"] = f"this machine ({_cpu()}), {how}, {took}"
        dirs[f"isa={isa}"] = out
    for d in args.dirs:
        runs[str(d)] = "records made elsewhere"
        dirs[str(d)] = d
    rows = [r for label, d in dirs.items() for r in spread_rows(label, d)]
    results.write_text(args.write, to_markdown(rows, runs))
    bad = [r for r in rows if not r["within"]]
    print(f"[rerun_spread] wrote {args.write}: {len(rows)} numbers moved, {len(bad)} beyond "
          "their allowance", flush=True)
    for r in bad:
        print(f"[rerun_spread] beyond its allowance: {r['run']}: {r['key']}: "
              f"{_show(r['old'])} -> {_show(r['new'])}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
