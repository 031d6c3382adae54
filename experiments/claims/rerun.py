"""How far a rerun on another machine may move a published line (``Rerun``), and the default
(``EXACT``). The allowances of particular claims are declared beside them, in their subject's
module."""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Rerun:
    """How far a rerun on another machine may move a published line.

    A CPU with other vector widths, fused multiply-adds or cache sizes rounds in another
    order. Deterministic float64 arithmetic (the theory experiments) moves far less than a
    printed digit, but chaotic training (the tanh RNN at a large step) amplifies the
    difference into another trajectory. Every published number may move by one unit of its
    last printed digit (``EXACT``). A line given an allowance (a claim's ``rerun=``, a
    model's entry in ``SMOOTHNESS_RERUN``) may also move each number by ``atol``, or by up to
    ``factor`` between two numbers of one sign (the larger at least ``factor_above``: a
    blow-up's size is chaotic, a cosine's is not), and, when ``words``, change its words (a
    best configuration picked among near-ties, a verdict on an interval's edge). ``words_in``
    allows less: only the parts of the line (between commas and semicolons) that begin with
    one of these prefixes may change their words, and every other part must read the same
    (one model's verdicts in a line that lists every model's). ``why`` names the measurement
    (``python -m experiments.rerun_spread`` writes paper_figures/RERUN.md).
    """

    atol: float = 0.0
    factor: float = 1.0
    factor_above: float = 0.0
    words: bool = False
    why: str = ""
    words_in: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"±{self.atol:g}"] if self.atol else []
        if self.factor > 1:
            parts.append(f"a factor {self.factor:g}"
                         + (f" above {self.factor_above:g}" if self.factor_above else ""))
        text = " or ".join(parts) if parts else "its last printed digit"
        if self.words:
            text += "; its words may change"
        elif self.words_in:
            text += ("; the words of its parts on " + ", ".join(self.words_in)
                     + " may change")
        return text + (f" ({self.why})" if self.why else "")

    def allows_words(self, old: str, new: str) -> bool:
        """Whether a line printed as ``old`` may read ``new``, whose words differ."""
        if self.words:
            return True
        if not self.words_in:
            return False
        a, b = re.split(r"[,;]", old), re.split(r"[,;]", new)
        return len(a) == len(b) and all(
            x == y or (x.strip().startswith(self.words_in) and y.strip().startswith(
                self.words_in)) for x, y in zip(a, b, strict=True))

    def allows(self, old: float, new: float, ulp: float) -> bool:
        """Whether a number printed as ``old`` may read ``new`` after a rerun (``ulp``: one
        unit of the last printed digit of a rounded number, 0 for an integer)."""
        if abs(new - old) <= ulp + self.atol:
            return True
        lo, hi = sorted((abs(old), abs(new)))
        return old * new > 0 and hi >= self.factor_above and hi - ulp <= self.factor * lo


EXACT = Rerun()
"""The default: a rerun moves a number by at most one unit of its last printed digit."""

MEASURED = "chaotic training; paper_figures/RERUN.md measures the moves"
"""The reason an allowance on chaotic training cites: RERUN.md measures how far its lines
move."""
