"""Evaluate every claim on the run records and write paper_figures/CLAIMS.md.

Exits 1 if a gating claim (one resting on [paper] or [checked] facts) fails, and 3 if a
claim could not be evaluated because its records are missing. Gating verdicts are given on
the committed sizes only: a record made with another config (the quick sizes, say) is refused
in one line, exit 2, with nothing written, unless ``--any-size``; so is a ``--results``
directory that does not exist.
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


def _differences(committed, made, prefix: str = "") -> list[str]:
    """Where the record's config ``made`` differs from the config file's ``committed``, as
    "key: committed X, record Y" phrases (keys of the file only)."""
    out = []
    for key, want in committed.items():
        name = f"{prefix}{key}"
        if not isinstance(made, dict) or key not in made:
            out.append(f"{name}: committed {want!r}, record has none")
        elif isinstance(want, dict):
            out += _differences(want, made[key], f"{name}.")
        elif made[key] != want:
            out.append(f"{name}: committed {want!r}, record {made[key]!r}")
    return out


def size_differences(results_dir) -> dict[str, list[str]]:
    """Experiment -> how its record's config differs from conf/<name>.yaml (the committed
    sizes), for every record that exists and differs."""
    from omegaconf import OmegaConf

    from experiments import groups, registry

    out = {}
    for name in registry.names():
        path = Path(results_dir) / name
        if not (path / results.RECORD_FILE).exists():
            continue
        conf = OmegaConf.to_container(groups.compose(name), resolve=True)
        skip = {"out", *registry.get(name).placement}
        conf = {k: v for k, v in conf.items() if k not in skip}
        record, _ = results.read_record(path, traces=False)
        diff = _differences(conf, record["config"])
        if diff:
            out[name] = diff
    return out


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="paper_figures/CLAIMS.md")
    ap.add_argument("--report-only", action="store_true",
                    help="write CLAIMS.md and exit 0 whatever the verdicts (for make figures)")
    ap.add_argument("--any-size", action="store_true",
                    help="evaluate records made with other configs than conf/ (the quick "
                         "sizes): their verdicts are not the published ones")
    args = ap.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"error: --results {args.results} is not a directory; nothing written.",
              file=sys.stderr)
        return 2
    sizes = {} if args.any_size else size_differences(args.results)
    if sizes:
        what = "; ".join(f"{n} ({d[0]}{f', {len(d) - 1} more' if len(d) > 1 else ''})"
                         for n, d in sizes.items())
        print(f"error: records made with other configs than conf/: {what}; gating verdicts "
              "need the committed sizes (--any-size evaluates them anyway); nothing written.",
              file=sys.stderr)
        return 2
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
