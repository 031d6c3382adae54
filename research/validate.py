"""Argument checks shared by the public API.

Every check runs before any tracing or compilation, and raises ``ValueError`` with one
sentence naming the argument and the values it may take. Values that are JAX tracers (the
function is being traced under ``jit``/``vmap``) cannot be inspected and are let through.
"""

from __future__ import annotations

import math

import jax
import numpy as np


def _concrete(value):
    """Return ``value`` as a NumPy array, or None when it is a tracer."""
    if isinstance(value, jax.core.Tracer):
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{value!r} is not a number.") from err


def positive(name: str, value, *, allow_inf: bool = False):
    """Check that every entry of ``value`` is > 0 and finite (or +inf when allowed)."""
    arr = _concrete(value)
    if arr is None:
        return value
    ok = (arr > 0) & (np.isfinite(arr) | (allow_inf & (arr == np.inf)))
    if not np.all(ok):
        allowed = "a positive number or inf" if allow_inf else "a finite positive number"
        raise ValueError(f"{name} must be {allowed}; got {_show(arr)}.")
    return value


def nonnegative(name: str, value, *, allow_inf: bool = False):
    """Check that every entry of ``value`` is >= 0 and finite (or +inf when allowed)."""
    arr = _concrete(value)
    if arr is None:
        return value
    ok = (arr >= 0) & (np.isfinite(arr) | (allow_inf & (arr == np.inf)))
    if not np.all(ok):
        allowed = "a number >= 0 or inf" if allow_inf else "a finite number >= 0"
        raise ValueError(f"{name} must be {allowed}; got {_show(arr)}.")
    return value


def in_interval(name: str, value, lo: float, hi: float, *, closed_hi: bool = False):
    """Check lo <= value < hi (or <= hi when ``closed_hi``)."""
    arr = _concrete(value)
    if arr is None:
        return value
    ok = (arr >= lo) & ((arr <= hi) if closed_hi else (arr < hi))
    if not np.all(ok):
        bracket = "]" if closed_hi else ")"
        raise ValueError(f"{name} must lie in [{lo}, {hi}{bracket}; got {_show(arr)}.")
    return value


def finite_number(name: str, value):
    """Check that ``value`` is one finite number (not an array)."""
    arr = _concrete(value)
    if arr is None:
        return value
    if arr.ndim or not np.isfinite(arr):
        raise ValueError(f"{name} must be a finite number; got {value!r}.")
    return value


def choice(name: str, value, allowed):
    """Check that ``value`` is one of ``allowed``."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{name} must be one of {options}; got {value!r}.")
    return value


def positive_int(name: str, value, *, minimum: int = 1):
    """Check that ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def bounded_int(name: str, value, lo: int, hi: int, why: str = ""):
    """Check that ``value`` is an integer with lo <= value <= hi; ``why`` (e.g. "the engine
    counts steps in int32") explains the upper bound in the message."""
    if (isinstance(value, bool) or not isinstance(value, int | np.integer)
            or not lo <= value <= hi):
        reason = f" ({why})" if why else ""
        raise ValueError(f"{name} must be an integer >= {lo} and <= {hi:,}{reason}; got "
                         f"{value!r}.")
    return int(value)


def finite_tree(name: str, tree):
    """Check that every leaf of a pytree is finite."""
    for leaf in jax.tree_util.tree_leaves(tree):
        arr = _concrete(leaf)
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite everywhere; it contains NaN or Inf.")
    return tree


def _show(arr: np.ndarray) -> str:
    if arr.ndim == 0:
        v = float(arr)
        return repr(v) if math.isfinite(v) else str(v)
    bad = arr.ravel()
    return f"an array with values from {float(bad.min())!r} to {float(bad.max())!r}"
