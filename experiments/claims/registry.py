"""The registry: claims declared with ``@claim(...)``, what their functions return
(``Outcome``), what evaluating them gives (``ClaimRecord``), whether a status gates, and the
word for a verdict."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from experiments.claims.rerun import EXACT, Rerun

GATING_TAGS = frozenset({"paper", "checked"})
REPORT_ONLY_TAGS = frozenset({"recalled", "observation", "heuristic"})


def tags(status: str) -> frozenset[str]:
    """The words of a status such as "[secondary; checked]": {"secondary", "checked"}."""
    return frozenset(re.findall(r"[a-z]+", status.lower()))


def is_gating(status: str) -> bool:
    """A claim gates when it rests on [paper] or [checked] facts and on nothing recalled,
    merely observed, or heuristic."""
    t = tags(status)
    return bool(t & GATING_TAGS) and not t & REPORT_ONLY_TAGS


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a claim's function measures: text with numbers, the theory's side, the verdict
    (None: reported only)."""

    measured: str
    theoretical: str
    holds: bool | None


@dataclasses.dataclass(frozen=True)
class ClaimRecord:
    """The outcome of one claim, with its declared metadata.

    Attributes:
      id, statement, source, status, tolerance: as declared (see ``Claim``).
      measured: the measured quantity, as text with numbers.
      theoretical: what the theory says, as text.
      holds: True / False, or None when the claim only reports.
      gating: whether a failure fails ``make verify`` (``is_gating(status)``).
      rerun: how far a rerun on another machine may move the line (``Rerun``).
    """

    id: str
    statement: str
    source: str
    status: str
    tolerance: str
    measured: str
    theoretical: str
    holds: bool | None
    gating: bool
    rerun: Rerun = EXACT


@dataclasses.dataclass(frozen=True)
class Claim:
    """A registered claim: its metadata and ``fn(records) -> Outcome``."""

    id: str
    statement: str
    source: str
    status: str
    tolerance: str
    needs: tuple[str, ...]
    fn: Callable[[dict], Outcome]
    rerun: Rerun = EXACT

    @property
    def gating(self) -> bool:
        return is_gating(self.status)

    def record(self, outcome: Outcome) -> ClaimRecord:
        holds = None if outcome.holds is None else bool(outcome.holds)
        if self.gating and holds is None:
            holds = False  # a gating claim must decide
        return ClaimRecord(self.id, self.statement, self.source, self.status, self.tolerance,
                           outcome.measured, outcome.theoretical, holds, self.gating,
                           self.rerun)

    def evaluate(self, records: dict) -> ClaimRecord:
        """Run the claim; a bad record (missing key, wrong type, non-finite value where a
        number is needed) gives FAIL with the reason, never an exception."""
        try:
            return self.record(self.fn(records))
        except Exception as err:  # noqa: BLE001 - a claim on bad data fails, it never crashes
            return self.record(Outcome(
                f"could not be evaluated on its records: {type(err).__name__}: {err}",
                "-", False))


REGISTRY: list[Claim] = []


def claim(id: str, *, needs: tuple[str, ...], statement: str, source: str, status: str,
          tolerance: str = "", rerun: Rerun = EXACT):
    """Register ``fn(records) -> Outcome`` as a claim. A gating claim must state its
    tolerance; ``rerun``: how far a rerun on another machine may move its line."""

    def deco(fn):
        if is_gating(status) and not tolerance:
            raise ValueError(f"claim {id}: a gating claim must state its tolerance.")
        if any(c.id == id for c in REGISTRY):
            raise ValueError(f"claim {id} is registered twice.")
        REGISTRY.append(Claim(id, statement, source, status, tolerance, needs, fn, rerun))
        return fn

    return deco


def by_id() -> dict[str, Claim]:
    return {c.id: c for c in REGISTRY}


VERDICT_WORDS = {True: "holds", False: "FAILS", None: "reported"}
"""A claim's verdict (``holds``: True, False, or None when it only reports) in words."""


def verdict_word(holds: bool | None, *, emphasis: bool = True) -> str:
    """The word for a verdict, a failure in bold (``emphasis``) where it sits among others in
    a table."""
    word = VERDICT_WORDS[holds]
    return f"**{word}**" if emphasis and holds is False else word
