"""How far a rerun on another machine moves the published numbers.

Floating-point results depend on the order of rounding, and the order depends on the CPU:
XLA's CPU backend picks vector widths and fused multiply-adds from the instruction set, and
the matrix-product kernels block by cache size. Deterministic float64 arithmetic moves far less
than a printed digit; chaotic training (the tanh RNN at a large step) turns the difference into
another trajectory.

``python -m experiments.rerun_spread`` emulates other machines on this one: it re-runs every
experiment with XLA's code generation capped at other instruction sets
(``XLA_FLAGS=--xla_cpu_max_isa=ISA``), one results directory per cap, writes the documents
those records give, and compares them line by line with the committed documents
(``experiments.publish.moves``). ``--dirs`` adds results directories made elsewhere, such as a
fresh clone's ``make figures`` on another machine. It writes paper_figures/RERUN.md, one row
per line that moved, with the allowance the line declares (``claims.Rerun``), and exits 1 when
a move exceeds its allowance: then the allowance, or the published statistic, is wrong.

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

from experiments import publish, registry
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
    """One row per published line that the records in ``results_dir`` print differently
    from the committed documents, gathered over the documents that print it (a claim's line
    is in CLAIMS.md, README.md and the figure index): the largest absolute move of the
    numbers its allowance bounds by ``atol``, the largest factor of those it bounds by
    ``factor``, and whether the allowance covers them in every document."""
    rows: dict[str, dict] = {}
    for path, text in publish.documents(results_dir).items():
        committed = path.read_text() if path.exists() else ""
        for m in publish.moves(committed, text):
            rule = publish.allowance(m.key)
            diffs = [(a, b) for a, b, _ in m.numbers if a != b]
            by_factor = [(a, b) for a, b in diffs if rule.factor > 1 and a * b > 0
                         and max(abs(a), abs(b)) >= rule.factor_above]
            key = m.key or f"{path.name} line {m.line}"
            r = rows.setdefault(key, {
                "run": label, "key": key, "documents": [], "words": False, "absolute": 0.0,
                "factor": 1.0, "sign": False, "within": True, "allowance": rule.describe()})
            doc = str(path.relative_to(ROOT))
            if doc not in r["documents"]:
                r["documents"].append(doc)
            r["words"] |= m.words_changed
            r["absolute"] = max([r["absolute"]] + [abs(b - a) for a, b in diffs
                                                   if (a, b) not in by_factor])
            r["factor"] = max([r["factor"]] + [max(abs(a), abs(b)) / min(abs(a), abs(b))
                                               for a, b in by_factor])
            r["sign"] |= any(a * b <= 0 for a, b in diffs)
            r["within"] &= m.allowed
    return list(rows.values())


def to_markdown(rows: list[dict], runs: dict[str, str]) -> str:
    lines = [
        "# How far a rerun on another machine moves the published numbers",
        "",
        "Written by `python -m experiments.rerun_spread` (`make rerun-spread`). Each run below "
        "re-made every record at its published size, either on this machine with XLA's code "
        "generation capped at another instruction set (other vector widths, no fused "
        "multiply-add: another order of rounding, as on another CPU) or on another machine; "
        "the documents those records give are compared line by line with the committed ones. "
        "A row is a published line that reads differently; *within* says whether the allowance the "
        "line declares (CLAIMS.md's and SMOOTHNESS.md's last column) covers it. Lines not "
        "listed read the same in every run.",
        "",
        "Runs: " + "; ".join(f"`{k}` ({v})" for k, v in runs.items()) + ".",
        "",
        "| run | line about | printed in | words changed | largest absolute move (numbers "
        "the allowance bounds by ±) | largest factor (numbers it bounds by a factor) | "
        "a sign changed | allowance | within |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["run"], r["key"], ", ".join(r["documents"]),
                 "yes" if r["words"] else "no",
                 "-" if r["words"] else f"{r['absolute']:.3g}",
                 "-" if r["words"] or r["factor"] == 1.0 else f"{r['factor']:.4g}",
                 "yes" if r["sign"] else "no", r["allowance"],
                 "yes" if r["within"] else "**no**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    if not rows:
        lines.append("| (every line reads the same in every run) | | | | | | | | |")
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
    print(f"[rerun_spread] wrote {args.write}: {len(rows)} lines moved, {len(bad)} beyond "
          "their allowance", flush=True)
    for r in bad:
        print(f"[rerun_spread] beyond its allowance: {r['run']}: {r['key']} "
              f"({', '.join(r['documents'])})", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
