"""The column layout of a sweep's rows, without JAX: ``research.sweep`` writes rows in it and
``research.results`` checks records against it, so reading a record or recognising a
finished job never imports JAX."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHUNK = "chunk"
"""``sweep.chunk = [start, stop]``: run only these points of the sweep's cross product (in
the order of ``grid``, seeds slowest), so the chunks of a sweep give exactly the rows of the
whole."""
ROW_METRICS = ("final_f", "final_grad_norm", "min_grad_norm", "iterations_to_eps", "diverged",
               "diverged_at")
"""The per-trajectory columns ``run_grid`` adds to the axis columns."""


def row_columns(spec: Mapping[str, Any]) -> list[str]:
    """The columns of the rows ``run_batch`` returns for the sweep ``spec`` (nested or
    flattened): one per batched axis (``chunk`` is not an axis), then ``ROW_METRICS``."""
    return [name for name in flatten(spec) if name != CHUNK] + list(ROW_METRICS)


def flatten(spec: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{optimizer: {eta: [...]}}`` -> ``{"optimizer.eta": [...]}``; range mappings stay
    whole."""
    out = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and not ({"start", "stop"} <= set(value)):
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out
