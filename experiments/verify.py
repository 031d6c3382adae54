"""Evaluate every claim on the run records and write paper_figures/CLAIMS.md.

Exits 1 if a gating claim (one resting on [paper] or [checked] facts) fails, and 3 if a
claim could not be evaluated because its records are missing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments import claims
from research import results


def write_tables(results_dir, out_dir) -> list[Path]:
    """Write the tables that accompany CLAIMS.md (today: SMOOTHNESS.md, when its record
    exists) into ``out_dir``; return the paths written."""
    record_dir = Path(results_dir) / "smoothness"
    if not (record_dir / results.RECORD_FILE).exists():
        return []
    record, _ = results.read_record(record_dir, traces=False)
    return [results.write_text(Path(out_dir) / "SMOOTHNESS.md", claims.smoothness_table(record))]


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="paper_figures/CLAIMS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="write CLAIMS.md and exit 0 whatever the verdicts (for make figures)")
    args = ap.parse_args(argv)
    done, missing = claims.evaluate(args.results)
    out = results.write_text(Path(args.out), claims.to_markdown(done, missing))
    tables = write_tables(args.results, out.parent)
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
