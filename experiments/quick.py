"""The whole figure pipeline at small sizes: every experiment, every figure, CLAIMS.md.

``python -m experiments.quick [--out DIR] [--jobs N]`` (``make figures-quick``) runs each
experiment with the small overrides below, N at a time in worker processes (default 2, as
``make figures``; 1: one after another in this process), draws every figure from those
records, and writes CLAIMS.md, all under DIR (default build/quick). The numbers are
smoke-test sized, not the published ones; the tests use this pipeline to run every claim.

Compiled programs persist in DIR/jax-cache (JAX's compilation cache, keyed by the program,
the compile options and the JAX version), so a second run compiles only what changed: on 2
cores a run from scratch takes about 85 s, a repeat about 40 s. ``--no-cache`` (or a
``JAX_COMPILATION_CACHE_DIR`` already set) leaves the cache alone.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from experiments import claims, figure_index, groups, registry, verify
from paper_figures.__main__ import draw_one
from research import results
from research.toolkit import Toolkit


def run_experiment(name: str, results_dir: Path, tk: Toolkit | None = None, **extra) -> None:
    """Run experiment ``name`` in-process at quick size, writing results_dir/<name>.

    ``tk``: the implementations to run it with (default: the real ones; a mutant's toolkit in
    the mutation suite). ``extra``: further config overrides on top of the quick size.
    """
    exp = registry.get(name)
    cfg = groups.compose(name, dict(exp.quick), extra, {"out": str(results_dir / name)})
    exp.run(cfg) if tk is None else exp.run(cfg, tk)


def _timed_run(name: str, results_dir: Path) -> tuple[str, float]:
    """Run one experiment at quick size; (name, seconds)."""
    t = time.perf_counter()
    run_experiment(name, results_dir)
    return name, time.perf_counter() - t


def _use_compilation_cache(path: Path) -> None:
    """Persist every compiled program under ``path``: in this process (before its first
    compile) and in the workers it spawns (they read the environment when JAX starts)."""
    import jax

    path.mkdir(parents=True, exist_ok=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(path.resolve())
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    jax.config.update("jax_compilation_cache_dir", str(path.resolve()))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("build/quick"))
    ap.add_argument("--jobs", type=int, default=2,
                    help="experiments run at once, each worker process running one after "
                         "another, and figures drawn at once (default 2, as make figures)")
    ap.add_argument("--no-cache", action="store_true",
                    help="compile everything afresh: no persistent compilation cache")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        print(f"error: --jobs must be a positive integer; got {args.jobs}.", file=sys.stderr)
        return 2
    if not args.no_cache and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        _use_compilation_cache(args.out / "jax-cache")
    res, figs = args.out / "results", args.out / "figures"
    t0 = time.perf_counter()
    names = registry.slowest_first(quick=True)
    figures = registry.figures()
    if args.jobs == 1:
        for i, name in enumerate(names, 1):
            print(f"[quick] experiment {i}/{len(names)} {name}: "
                  f"{_timed_run(name, res)[1]:.1f}s", flush=True)
        errors = [e for e in map(draw_one, [(f, str(res), str(figs)) for f in figures]) if e]
    else:
        # spawned workers (this process runs JAX's threads: it must not fork), each importing
        # JAX once; a figure is drawn as soon as its records exist, beside the experiments
        # still running
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(args.jobs, len(names)), mp_context=ctx) as pool:
            runs = {pool.submit(_timed_run, n, res): n for n in names}
            # which records each figure needs: read while the workers start (importing the
            # figure modules takes seconds, and the workers need none of it)
            needs = {f: set(registry.figure_records(f)) for f in figures}
            draws, finished, i = [], set(), 0
            try:
                for fut in as_completed(runs):
                    name, secs = fut.result()
                    i += 1
                    print(f"[quick] experiment {i}/{len(names)} {name}: {secs:.1f}s",
                          flush=True)
                    finished.add(name)
                    for f in [f for f, r in needs.items() if r <= finished]:
                        draws.append(pool.submit(draw_one, (f, str(res), str(figs))))
                        del needs[f]
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
            errors = [e for e in (d.result() for d in draws) if e]
            errors += [f"{f}: needs records no quick experiment writes ({', '.join(sorted(r))})"
                       for f, r in needs.items()]
    for e in errors:
        print(f"[quick] figure {e}", file=sys.stderr)
    if errors:
        return 1
    done, missing = claims.evaluate(res)
    figs.mkdir(parents=True, exist_ok=True)
    (figs / "CLAIMS.md").write_text(claims.to_markdown(done, missing))
    verify.write_tables(res, figs)
    results.write_text(figs / "README.md", figure_index.index_text(done))
    print(f"[quick] {len(names)} experiments, {len(figures)} figures and CLAIMS.md in "
          f"{time.perf_counter() - t0:.0f}s under {args.out}", flush=True)
    return 3 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
