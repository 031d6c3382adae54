"""Evaluating the registered claims: read the records they need from a results directory
(``load_records``) and run every claim whose records exist (``evaluate``,
``evaluate_records``)."""

from __future__ import annotations

from pathlib import Path

from experiments import records
from experiments.claims.registry import REGISTRY, ClaimRecord, failed
from research import results


def load_records(results_dir: str | Path, names) -> tuple[dict, dict[str, str]]:
    """Records by experiment name from ``results_dir/<name>``: (readable records, problems of
    the unreadable ones by name). Missing records are in neither."""
    out, bad = {}, {}
    for name in names:
        path = Path(results_dir) / name
        if not (path / results.RECORD_FILE).exists():
            continue
        try:
            record = results.read_record(path, traces=False)[0]
            if not isinstance(record, dict) or not isinstance(record.get("metrics"), dict):
                raise ValueError("it holds no metrics")
            problems = records.check(name, record["metrics"])
            if problems:
                raise ValueError("it does not match its schema (experiments/records.py): "
                                 + "; ".join(problems[:3]))
            out[name] = record
        except Exception as err:  # noqa: BLE001 - an unreadable record fails its claims
            bad[name] = f"{type(err).__name__}: {err}"
    return out, bad


def evaluate(results_dir: str | Path = "results") -> tuple[list[ClaimRecord], list[str]]:
    """Run every registered claim whose records exist; return (records, missing claim ids).

    A claim whose record exists but cannot be read reports FAIL with the reason."""
    needed = sorted({n for c in REGISTRY for n in c.needs})
    records, bad = load_records(results_dir, needed)
    return evaluate_records(records, bad)


def evaluate_records(records: dict, bad: dict | None = None
                     ) -> tuple[list[ClaimRecord], list[str]]:
    """``evaluate`` on records already in memory (name -> record dict)."""
    bad = bad or {}
    done, missing = [], []
    for c in REGISTRY:
        broken = [n for n in c.needs if n in bad]
        if broken:
            done.append(c.record(failed(
                "; ".join(f"record {n} unreadable: {bad[n]}" for n in broken))))
        elif all(n in records for n in c.needs):
            done.append(c.evaluate(records))
        else:
            missing.append(c.id)
    return done, missing
