"""Record values as numbers (NaN/inf written as text, None, malformed entries), counts that
never reached eps censored at the budget, and the formats the claims print them in."""

from __future__ import annotations

import numpy as np

from research import complexity


def number(value) -> float:
    """A record value as a float: NaN/inf written as strings come back as floats; None and
    anything else non-numeric is NaN."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "+inf"):
        return float(value)
    return float("nan")


def numbers(values) -> np.ndarray:
    return np.asarray([number(v) for v in values], dtype=float)


censor = complexity.censor


def reached(counts) -> np.ndarray:
    c = numbers(counts)
    return np.isfinite(c) & (c >= 0)


def fmt(x: float, spec: str = ".3g") -> str:
    return format(x, spec) if np.isfinite(x) else str(x)


def counts_text(c, budget) -> str:
    return ", ".join(str(int(v)) if r else f">={int(budget)}"
                     for v, r in zip(numbers(c), reached(c), strict=True))


def median_text(value, interval) -> str:
    """A median over seeds with its 95% interval when the record has one: "0.815 [0.7,
    0.93]"."""
    if value is None:
        return "-"
    text = fmt(number(value))
    if isinstance(interval, dict):
        text += f" [{fmt(number(interval['lo']))}, {fmt(number(interval['hi']))}]"
    return text
