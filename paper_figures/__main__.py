"""Draw several figures in one process: ``python -m paper_figures [NAME ...] [--results DIR]
[--out DIR]`` (no NAME: every figure, in the index's order).

``make figures`` uses this: starting Python and importing matplotlib and the project cost
several seconds per process, more than most figures take to draw, so thirteen separate
``python -m paper_figures.<name>`` processes spent over a minute on start-up alone. Each
figure's own module stays runnable by itself (``python -m paper_figures.<name>``)."""

from __future__ import annotations

import argparse
import importlib
import sys

from paper_figures import FIGURES


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="NAME",
                    help=f"figures to draw (default: all): {', '.join(FIGURES)}")
    ap.add_argument("--results", default="results", help="root folder of the records")
    ap.add_argument("--out", default="paper_figures")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        print(f"error: NAME must be one of {', '.join(FIGURES)}; got {', '.join(unknown)}.",
              file=sys.stderr)
        return 2
    for name in args.names or FIGURES:
        module = importlib.import_module(f"paper_figures.{name}")
        module.main(["--results", args.results, "--out", args.out])
    return 0


if __name__ == "__main__":
    sys.exit(main())
