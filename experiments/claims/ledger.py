"""The ledger: every named number the published documents rest on, in one flat table keyed
``<claim id>:<number>`` (and ``smoothness:<model>/<regime>/<column>`` for SMOOTHNESS.md's
rows), written as ``paper_figures/claims.json``, and how two ledgers compare number by number,
each within its own rerun allowance (``compare``).

The documents are re-rendered from the records and must match byte for byte; the ledger is
what lets a rerun elsewhere be judged by numbers rather than by text.
"""

from __future__ import annotations

import dataclasses
import json
import math

from experiments.claims.registry import ClaimRecord, Value, verdict_word
from experiments.claims.rerun import EXACT, Rerun
from experiments.claims.smoothness import SMOOTHNESS_RERUN, interval_verdict
from experiments.claims.values import number
from research import results


@dataclasses.dataclass(frozen=True)
class Entry:
    """One published number: its value, how far a rerun may move it, and the rule a verdict
    rests on (None: reported only) with whether it passes."""

    value: Value
    rerun: Rerun = EXACT
    rule: str | None = None
    passes: bool | None = None


def claim_entries(done: list[ClaimRecord]) -> dict[str, Entry]:
    """The numbers of every evaluated claim, and each claim's verdict as a text number."""
    out: dict[str, Entry] = {}
    for c in done:
        out[f"{c.id}:verdict"] = Entry(verdict_word(c, emphasis=False),
                                       _verdict_allowance(c))
        for n in c.numbers:
            out[f"{c.id}:{n.name}"] = Entry(n.measured, c.allowance(n),
                                            n.rule() if n.relation else None, n.passes())
    return out


def _verdict_allowance(c: ClaimRecord) -> Rerun:
    """A verdict may change after a rerun only where a checked number it rests on may move
    by more than rounding (and so cross its rule's line)."""
    loose = [c.allowance(n) for n in c.numbers if n.relation and c.allowance(n) != EXACT]
    return Rerun(words=True, why=loose[0].why) if loose else EXACT


_INTERVALS = ("spearman", "partial_spearman", "detrended", "slope")


def smoothness_entries(record: dict) -> dict[str, Entry]:
    """The numbers of SMOOTHNESS.md: per model x regime, the points, each interval's estimate
    and ends, the verdicts and whether training, with the model's allowance."""
    out: dict[str, Entry] = {}
    for r in record["metrics"]["runs"].values():
        key, rule = f"smoothness:{r['model']}/{r['regime']}", SMOOTHNESS_RERUN.get(r["model"],
                                                                                   EXACT)
        row: dict[str, Value] = {"seeds": len(r["seeds"]),
                                 "points": int(r["traj"]["pooled"]["n_points"]),
                                 "verdict": interval_verdict(r["traj"]),
                                 "subsample_verdict": interval_verdict(r["sub"]),
                                 "hessian_verdict": interval_verdict(r["hess"]),
                                 "training": bool(r["training"])}
        for est, stats in (("", r["traj"].get("pooled", {})),
                           ("seed_level_", r["traj"].get("seed_level", {})),
                           ("subsample_", r["sub"].get("pooled", {}))):
            for name in _INTERVALS:
                c = stats.get(name)
                if isinstance(c, dict):
                    row.update({f"{est}{name}{end}": number(c.get(k)) for end, k in
                                (("", "estimate"), ("_lo", "lo"), ("_hi", "hi"))})
        out.update({f"{key}/{col}": Entry(v, rule) for col, v in row.items()})
    return out


def to_json(entries: dict[str, Entry]) -> str:
    """The ledger as ``paper_figures/claims.json``: key -> value, rule, whether it passes and
    the allowance in words. Non-finite values are written as "nan", "inf", "-inf"."""
    plain = {k: {"value": results.to_plain(e.value), "rule": e.rule, "passes": e.passes,
                 "rerun": e.rerun.describe()} for k, e in entries.items()}
    return json.dumps({"numbers": plain}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read_json(text: str) -> dict[str, Value]:
    """The values of a ledger written by ``to_json`` (a "nan"/"inf" text back as a float)."""
    entries = json.loads(text)["numbers"]
    return {k: results.from_plain(e["value"]) for k, e in entries.items()}


@dataclasses.dataclass(frozen=True)
class Move:
    """A number that reads differently: before, now (None: absent), its allowance, and
    whether the allowance covers the move."""

    key: str
    old: Value | None
    new: Value | None
    allowance: Rerun
    allowed: bool

    def describe(self) -> str:
        if self.old is None or self.new is None:
            return f"{self.key}: {'new' if self.old is None else 'gone'}"
        return f"{self.key}: {self.old!r} -> {self.new!r}"


def compare(committed: dict[str, Value], fresh: dict[str, Entry]) -> list[Move]:
    """Every number of ``committed`` that ``fresh`` gives differently, judged by its
    allowance in ``fresh``; a number only one side has never passes."""
    out = []
    for key in sorted(set(committed) | set(fresh)):
        old, entry = committed.get(key), fresh.get(key)
        if entry is None or key not in committed:
            out.append(Move(key, old, None if entry is None else entry.value, EXACT, False))
            continue
        if _same(old, entry.value):
            continue
        out.append(Move(key, old, entry.value, entry.rerun, entry.rerun.allows(old, entry.value)))
    return out


def _same(a, b) -> bool:
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return nan or a == b
