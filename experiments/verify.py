"""Evaluate every claim on the run records and write paper_figures/CLAIMS.md.

Exits 1 if a gating claim (one resting on [paper] or [checked] facts) fails, and 3 if a
claim could not be evaluated because its records are missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from research import claims


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="paper_figures/CLAIMS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="write CLAIMS.md and exit 0 whatever the verdicts (for make figures)")
    args = ap.parse_args(argv)
    done, missing = claims.evaluate(args.results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(claims.to_markdown(done, missing))
    tmp.replace(out)
    tables = claims.write_tables(args.results, out.parent)
    failed = [c.id for c in done if c.gating and c.holds is False]
    for c in done:
        mark = {True: "ok  ", False: "FAIL", None: "info"}[c.holds]
        print(f"[verify] {mark} {c.id}: {c.measured}")
    print(f"[verify] wrote {', '.join(str(p) for p in (out, *tables))}")
    if args.report_only:
        return 0
    if failed:
        print(f"[verify] gating claims failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    if missing:
        print(f"[verify] not evaluated (records missing): {', '.join(missing)}",
              file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
