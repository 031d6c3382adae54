"""How far a rerun on another machine may move a claim's number (``Rerun``), and the default
(``EXACT``). The allowances of particular claims are declared beside them, in their subject's
module."""

from __future__ import annotations

import dataclasses
import math

ROUNDING = 1e-6
"""The relative move every number may make: deterministic float64 arithmetic, rounded in
another order, moves a result by far less, and no document prints 7 digits (counts and yes/no
values move not at all)."""


@dataclasses.dataclass(frozen=True)
class Rerun:
    """How far a rerun on another machine may move a claim's number.

    A CPU with other vector widths, fused multiply-adds or cache sizes rounds in another
    order. Deterministic float64 arithmetic (the theory experiments) moves a result by less
    than ``ROUNDING``, but chaotic training (the tanh RNN at a large step) amplifies the
    difference into another trajectory. Every number may move by ``ROUNDING`` relative
    (``EXACT``). A number given an allowance (its own ``Number(rerun=...)``, its claim's
    ``rerun=``, a model's entry in ``SMOOTHNESS_RERUN``) may also move by ``atol``, or by up
    to ``factor`` between two values of one sign (the larger at least ``factor_above``: a
    blow-up's size is chaotic, a cosine's is not), and, when ``words``, a yes/no or text
    value may change (a best configuration picked among near-ties, a verdict on an
    interval's edge). ``why`` names the measurement (``python -m experiments.rerun_spread``
    writes paper_figures/RERUN.md).
    """

    atol: float = 0.0
    factor: float = 1.0
    factor_above: float = 0.0
    words: bool = False
    why: str = ""

    def describe(self) -> str:
        parts = [f"±{self.atol:g}"] if self.atol else []
        if self.factor > 1:
            parts.append(f"a factor {self.factor:g}"
                         + (f" above {self.factor_above:g}" if self.factor_above else ""))
        text = " or ".join(parts) if parts else "rounding only"
        if self.words:
            text += "; a yes/no or text value may change"
        return text + (f" ({self.why})" if self.why else "")

    def allows(self, old, new) -> bool:
        """Whether a value measured as ``old`` may read ``new`` after a rerun."""
        if old == new:
            return True
        if isinstance(old, bool | str) or isinstance(new, bool | str) or old is None \
                or new is None:
            return self.words
        a, b = float(old), float(new)
        if math.isnan(a) and math.isnan(b):
            return True
        if not (math.isfinite(a) and math.isfinite(b)):
            return False
        if abs(b - a) <= self.atol + ROUNDING * max(abs(a), abs(b)):
            return True
        lo, hi = sorted((abs(a), abs(b)))
        return a * b > 0 and hi >= self.factor_above and hi <= self.factor * lo


EXACT = Rerun()
"""The default: a rerun moves a number by rounding only (``ROUNDING``)."""

MEASURED = "chaotic training; paper_figures/RERUN.md measures the moves"
"""The reason an allowance on chaotic training cites: RERUN.md measures how far its numbers
move."""
