"""The seam through which experiments reach the implementations they measure.

An experiment computes with ``tk.theory``, ``tk.optimizers``, ``tk.problems``, ``tk.clipping``,
``tk.audit``, ``tk.engine``, ``tk.smoothness`` and ``tk.stats`` instead of importing those
modules itself, and takes ``tk`` as an argument (default: ``REAL``, the modules as they are).
Verification swaps in a wrong variant (a *mutant*: clipping removed, a step off by a factor, a
false constant, an iteration counter or an estimator off by a factor) by passing a toolkit whose
modules are overlaid with replacement functions, and checks that some claim then fails. No
private name is patched and no module is changed for anyone else: the overlay exists only in
the toolkit handed to one run.

Example:
  >>> from research import theory
  >>> tk = REAL.replace(theory={"theorem6_step": lambda L0, L1, M: 100.0})
  >>> tk.theory.theorem6_step(1.0, 1.0, 1.0), tk.theory.clipped_step is theory.clipped_step
  (100.0, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from research import audit, clipping, engine, optimizers, problems, smoothness, stats, theory


class Overlay:
    """A module with some of its public attributes replaced; everything else is the module's.

    Args:
      base: the module (or another ``Overlay``).
      overrides: attribute name -> replacement. Each name must exist in ``base``, so a typo
        in a mutant cannot silently override nothing.
    """

    def __init__(self, base: ModuleType | Overlay, overrides: Mapping[str, Any]):
        for name in overrides:
            if name.startswith("_") or not hasattr(base, name):
                raise ValueError(f"overrides: {getattr(base, '__name__', base)!s} has no public "
                                 f"attribute {name!r}.")
        self._base = base
        self._overrides = dict(overrides)
        self.__name__ = getattr(base, "__name__", "overlay")

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return self._overrides[name]
        return getattr(self._base, name)

    def __repr__(self) -> str:
        return f"Overlay({self.__name__}, {sorted(self._overrides)})"


@dataclasses.dataclass(frozen=True)
class Toolkit:
    """The implementations an experiment runs: one attribute per library module it uses."""

    theory: Any = theory
    optimizers: Any = optimizers
    problems: Any = problems
    clipping: Any = clipping
    audit: Any = audit
    engine: Any = engine
    smoothness: Any = smoothness
    stats: Any = stats

    def replace(self, **overrides: Mapping[str, Any]) -> Toolkit:
        """A toolkit with ``module={name: replacement, ...}`` overlays, e.g.
        ``replace(optimizers={"clipped_gd": lambda eta, gamma: optimizers.gd(eta)})``."""
        fields = {f.name for f in dataclasses.fields(self)}
        for module in overrides:
            if module not in fields:
                raise ValueError(f"overrides: the toolkit has no module {module!r}; allowed: "
                                 f"{', '.join(sorted(fields))}.")
        return dataclasses.replace(self, **{m: Overlay(getattr(self, m), o)
                                            for m, o in overrides.items()})


REAL = Toolkit()
"""The implementations as they are."""
