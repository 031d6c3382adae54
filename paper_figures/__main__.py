"""Draw several figures in one process, or in ``--jobs`` processes: ``python -m paper_figures
[NAME ...] [--results DIR] [--out DIR] [--jobs N]`` (no NAME: every figure, in the index's
order).

``make figures`` uses this: starting Python and importing matplotlib and the project cost
several seconds per process, more than most figures take to draw, so thirteen separate
``python -m paper_figures.<name>`` processes spent over a minute on start-up alone. Drawing
is CPU-bound (laying out ticks and text), and after the experiments nothing else runs: with
``--jobs 2`` (make passes ``FIGURE_JOBS``) two forked workers draw them, the slowest figures
first. Each figure's own module stays runnable by itself (``python -m paper_figures.<name>``).
"""

from __future__ import annotations

import argparse
import importlib
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from paper_figures import FIGURES

SLOWEST_FIRST = ("smoothness", "quartic_trajectories", "max_step", "stochastic")
"""Figures that take longest to draw (``smoothness`` alone about a quarter of the total):
handed out first, so that the workers finish together."""


def draw_one(job: tuple[str, str, str]) -> str | None:
    """Draw one figure; the error as one line instead of raising (a worker's traceback would
    not name the figure)."""
    name, results, out = job
    try:
        importlib.import_module(f"paper_figures.{name}").main(["--results", results,
                                                               "--out", out])
    except Exception as e:  # noqa: BLE001  (reported with the figure's name, exit 1)
        return f"{name}: {type(e).__name__}: {e}"
    return None


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"figures to draw (default: all): {', '.join(FIGURES)}")
    ap.add_argument("--results", default="results", help="root folder of the records")
    ap.add_argument("--out", default="paper_figures")
    ap.add_argument("--jobs", type=int, default=1,
                    help="processes drawing at once (default 1: all in this process)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        print(f"error: NAME must be one of {', '.join(FIGURES)}; got {', '.join(unknown)}.",
              file=sys.stderr)
        return 2
    if args.jobs < 1:
        print(f"error: --jobs must be a positive integer; got {args.jobs}.", file=sys.stderr)
        return 2
    names = list(args.names or FIGURES)
    if args.jobs == 1 or len(names) == 1:  # in this process; a failure is one line too
        errors = [f"figure {e}" for e in (draw_one((n, args.results, args.out)) for n in names)
                  if e]
        for e in errors:
            print(f"error: {e}", file=sys.stderr)
        return 1 if errors else 0
    names.sort(key=lambda n: SLOWEST_FIRST.index(n) if n in SLOWEST_FIRST else len(FIGURES))
    jobs = [(n, args.results, args.out) for n in names]
    # fork when JAX is not loaded here (make's case: the figure modules import it in the
    # workers), so that the workers inherit matplotlib; a process that runs JAX's threads
    # (a test, a notebook) must not fork: it spawns
    method = "spawn" if "jax" in sys.modules else "fork"
    if method == "fork":
        import research.plotting  # noqa: F401

    # futures, not a Pool: a worker that dies (killed, out of memory) breaks the executor with
    # an error instead of leaving its figure pending for ever
    ctx = multiprocessing.get_context(method)
    try:
        with ProcessPoolExecutor(min(args.jobs, len(names)), mp_context=ctx) as ex:
            errors = [f"figure {e}" for e in ex.map(draw_one, jobs) if e]
    except BrokenProcessPool as e:
        errors = [f"a process drawing the figures died ({e}); the figures already written "
                  "are complete, the others are missing"]
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
