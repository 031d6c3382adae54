"""The registry: claims declared with ``@claim(...)``, what their functions return
(``Outcome``), what evaluating them gives (``ClaimRecord``), whether a status gates, and the
word for a verdict."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence

import numpy as np

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


Value = float | int | bool | str
"""A measured value: a number, a count, a yes/no, or a categorical result (a best cell, a
verdict word)."""

RELATIONS = ("<=", ">=", "==", "<", ">")
"""How a checked number must compare with its theory value for the claim to hold."""


@dataclasses.dataclass(frozen=True)
class Number:
    """One named number of a claim: what it measured, and, when the verdict rests on it, the
    rule it must meet (``measured relation theory``, within ``tolerance`` in the number's own
    units), and how far a rerun on another machine may move it (``rerun``; None: the
    claim's allowance).

    A number with no ``relation`` is reported: it is published and compared between reruns,
    but no verdict rests on it. Yes/no and text values are checked with ``==`` only; a
    non-finite measured value meets no rule.

    A number measured with an ``interval`` (lo, hi) is judged on the whole interval: it
    passes when every value in it meets the rule, fails when none does, and is undecided
    (``passes`` None) when the interval straddles the line or touches it."""

    name: str
    measured: Value
    relation: str = ""
    theory: Value | None = None
    tolerance: float = 0.0
    rerun: Rerun | None = None
    interval: tuple[float, float] | None = None

    def __post_init__(self):
        if self.relation and self.relation not in RELATIONS:
            raise ValueError(f"number {self.name}: relation must be one of {RELATIONS}; "
                             f"got {self.relation!r}.")
        if self.relation and self.theory is None:
            raise ValueError(f"number {self.name}: a checked number needs its theory value.")
        if self.relation and self.relation != "==" and _categorical(self.measured):
            raise ValueError(f"number {self.name}: a yes/no or text value is checked with "
                             f"'==' only.")

    def passes(self) -> bool | None:
        """Whether the measured value meets the rule (None: reported only)."""
        if not self.relation:
            return None
        m, t = self.measured, self.theory
        if _categorical(m) or _categorical(t):
            return m == t
        if self.interval is not None:
            return _interval_passes(self.interval, self.relation, float(t))  # type: ignore[arg-type]
        m, t, tol = float(m), float(t), float(self.tolerance)  # type: ignore[arg-type]
        if not math.isfinite(m):
            return m == t  # an infinite count meets only an infinite target
        return {"<=": m <= t + tol, ">=": m >= t - tol, "==": abs(m - t) <= tol,
                "<": m < t + tol, ">": m > t - tol}[self.relation]

    def rule(self) -> str:
        """The rule as text: "violations == 0", "ratio <= 1.75 (+-0.01)"."""
        if not self.relation:
            return f"{self.name}: reported"
        slack = f" (±{self.tolerance:g})" if self.tolerance else ""
        return f"{self.name} {self.relation} {self.theory}{slack}"


def _interval_passes(interval: tuple[float, float], relation: str, t: float) -> bool | None:
    """Whether all of [lo, hi] meets ``relation`` against ``t`` (True), none of it does
    (False), or part does (None). NaN ends decide nothing."""
    lo, hi = (float(v) for v in interval)
    if math.isnan(lo) or math.isnan(hi):
        return None
    if relation in (">", ">="):
        if lo > t or (relation == ">=" and lo == t):
            return True
        return False if hi < t else None
    if relation in ("<", "<="):
        if hi < t or (relation == "<=" and hi == t):
            return True
        return False if lo > t else None
    return True if lo == hi == t else (False if hi < t or lo > t else None)


def _categorical(value) -> bool:
    return isinstance(value, bool | str | np.bool_)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a claim's function measures: text with numbers, the theory's side as text, and
    the named ``numbers``. The verdict is computed from the numbers: the claim holds when
    every checked number passes its rule. ``decides=False``: the claim only reports (its
    numbers are published, none is checked)."""

    measured: str
    theoretical: str
    numbers: Sequence[Number] = ()
    decides: bool = True

    def __post_init__(self):
        object.__setattr__(self, "numbers", tuple(self.numbers))
        names = [n.name for n in self.numbers]
        if len(set(names)) != len(names):
            raise ValueError(f"a claim's numbers must have distinct names; got {names}.")
        if not self.decides and any(n.relation for n in self.numbers):
            raise ValueError("a claim that only reports checks no number.")

    @property
    def holds(self) -> bool | None:
        """False when a checked number fails; None when none fails but one is undecided
        (an interval on its rule's line), or nothing is checked; else True."""
        checks = [n.passes() for n in self.numbers if n.relation]
        if not self.decides or not checks:
            return None
        if any(c is False for c in checks):
            return False
        return None if any(c is None for c in checks) else True


def failed(measured: str) -> Outcome:
    """The outcome of a claim that could not be evaluated: it fails, with the reason."""
    return Outcome(measured, "-", (Number("evaluated", False, "==", True),))


@dataclasses.dataclass(frozen=True)
class ClaimRecord:
    """The outcome of one claim, with its declared metadata.

    Attributes:
      id, statement, source, status, tolerance: as declared (see ``Claim``).
      measured: the measured quantity, as text with numbers.
      theoretical: what the theory says, as text.
      holds: True / False, or None when the claim only reports.
      gating: whether a failure fails ``make verify`` (``is_gating(status)``).
      numbers: the named numbers the verdict was computed from (``Number``).
      rerun: how far a rerun on another machine may move a number that names no allowance
        of its own (``Rerun``).
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
    numbers: tuple[Number, ...] = ()
    rerun: Rerun = EXACT
    decides: bool = True

    def allowance(self, number: Number) -> Rerun:
        """How far a rerun may move ``number``: its own allowance, else the claim's."""
        return number.rerun or self.rerun


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
                           tuple(outcome.numbers), self.rerun, outcome.decides)

    def evaluate(self, records: dict) -> ClaimRecord:
        """Run the claim; a bad record (missing key, wrong type, non-finite value where a
        number is needed) gives FAIL with the reason, never an exception."""
        try:
            return self.record(self.fn(records))
        except Exception as err:  # noqa: BLE001 - a claim on bad data fails, it never crashes
            return self.record(failed(
                f"could not be evaluated on its records: {type(err).__name__}: {err}"))


REGISTRY: list[Claim] = []


def claim(id: str, *, needs: tuple[str, ...], statement: str, source: str, status: str,
          tolerance: str = "", rerun: Rerun = EXACT):
    """Register ``fn(records) -> Outcome`` as a claim. A gating claim must state its
    tolerance; ``rerun``: how far a rerun on another machine may move those of its numbers
    that name no allowance of their own."""

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


GATING_WORDS = {True: "holds", False: "FAILS", None: "FAILS"}
"""A gating claim's verdict in words: it holds or fails (undecided fails)."""

OBSERVATION_WORDS = {True: "supported", False: "refuted", None: "inconclusive"}
"""A claim that does not gate (an observation, a heuristic, a recalled bound): its rule's
verdict in words."""


def verdict_word(c: ClaimRecord, *, emphasis: bool = True) -> str:
    """The word for a claim's verdict ("reported" for a claim with no rule), a failure or a
    refutation in bold (``emphasis``) where it sits among others in a table."""
    if not c.decides:
        return "reported"
    word = (GATING_WORDS if c.gating else OBSERVATION_WORDS)[c.holds]
    return f"**{word}**" if emphasis and c.holds is False else word
