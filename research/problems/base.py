"""The ``Problem`` type and the registry of named problems."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from research import validate


@dataclass(frozen=True, eq=False)
class Problem:
    """An objective f with what the theory needs to know about it.

    Problems compare and hash by identity, so a problem object is a stable key for the
    engine's compile cache: build it once and reuse it.

    Attributes:
      name: a short identifier, used in records and figure legends.
      fn: f(x) -> scalar, pure JAX. x is an array or any pytree of arrays.
      L0, L1: constants with ||hess f(x)|| <= L0 + L1 ||grad f(x)|| for all x, or None when
        not known.
      f_star: the minimum value of f, or a lower bound on it (see ``f_star_exact``).
      f_star_exact: True when ``f_star`` is the minimum, False when only a lower bound.
      x0: a default starting point (one point, no batch axis), or None.
      stochastic_fn: optional f_hat(x, key) -> scalar, an unbiased estimate of f used for the
        update when present (minibatch sampling or added noise). ``fn`` stays the exact
        objective, used for traces.
      description: one line for reports.
    """

    name: str
    fn: Callable[[Any], jax.Array]
    L0: float | None = None
    L1: float | None = None
    f_star: float = 0.0
    f_star_exact: bool = True
    x0: Any = None
    stochastic_fn: Callable[[Any, jax.Array], jax.Array] | None = None
    description: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; got {self.name!r}.")
        if not callable(self.fn):
            raise ValueError(f"fn must be a callable f(x) -> scalar; got {type(self.fn).__name__}.")
        for key in ("L0", "L1"):
            value = getattr(self, key)
            if value is not None:
                validate.nonnegative(key, value)
        if self.x0 is not None:
            validate.finite_tree("x0", self.x0)

    @property
    def has_constants(self) -> bool:
        """True when both L0 and L1 are stated."""
        return self.L0 is not None and self.L1 is not None

    @property
    def stochastic(self) -> bool:
        return self.stochastic_fn is not None

    @functools.cached_property
    def deterministic(self) -> Problem:
        """The same problem without ``stochastic_fn`` (full-batch gradients), or itself.

        Built once per problem, so it is as stable a compile-cache key as the problem.
        """
        if self.stochastic_fn is None:
            return self
        return dataclasses.replace(self, name=f"{self.name}-fullbatch", stochastic_fn=None)

    def smoothness_bound(self, grad_norm):
        """L0 + L1 * ||grad f||: the bound on ||hess f|| at a point with that gradient norm."""
        if not self.has_constants:
            raise ValueError(f"problem {self.name!r} has no stated (L0, L1).")
        return self.L0 + self.L1 * jnp.asarray(grad_norm)

    def batch_x0(self, n: int):
        """The default x0 repeated n times along a new leading axis."""
        if self.x0 is None:
            raise ValueError(f"problem {self.name!r} has no default x0; pass x0 explicitly.")
        return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n, *jnp.shape(a))), self.x0)


_REGISTRY: dict[str, Callable[..., Problem]] = {}

FAMILY_OF = {
    "quartic": "closed_form", "sextic": "closed_form", "power": "closed_form",
    "cosh": "closed_form", "quadratic": "closed_form", "hard": "closed_form",
    "mlp_regression": "networks", "digits": "networks", "adding": "networks",
    "resnet_digits": "resnet", "cliff": "recurrent", "logistic": "regression",
    "noisy": "stochastic", "char_lm": "text",
}
"""Registered name -> the family module that registers it, imported when the name is first
asked for (a literal: the Makefile's dependency graph reads it)."""


def register(name: str):
    """Decorator: register a problem factory under ``name``."""

    def deco(factory):
        _REGISTRY[name] = factory
        return factory

    return deco


def _load(name: str) -> None:
    """Import the family of ``name``, which registers its problems."""
    importlib.import_module(f"research.problems.{FAMILY_OF[name]}")


def names() -> tuple[str, ...]:
    """Names of the registered problem factories, every family's, loaded or not."""
    return tuple(sorted(set(_REGISTRY) | set(FAMILY_OF)))


def factory(name: str) -> Callable[..., Problem]:
    """The factory registered under ``name`` (its signature is what a config may set)."""
    validate.choice("problem", name, names())
    if name not in _REGISTRY:
        _load(name)
    return _REGISTRY[name]


def get(name: str, **kwargs) -> Problem:
    """Build the registered problem ``name`` with factory keyword arguments."""
    return factory(name)(**kwargs)


def gradient_check(fn: Callable, x, h: float = 1e-6, directions: int | None = None,
                   seed: int = 0) -> float:
    """Relative error between autodiff and central differences of ``fn`` at ``x``.

    Each coordinate of the flattened x is perturbed by +-h; the finite-difference gradient
    (f(x + h e_i) - f(x - h e_i)) / (2h) is compared with ``jax.grad`` through
    ||g_ad - g_fd|| / max(||g_ad|| + ||g_fd||, 1e-300). In float64 a value below about 1e-7
    means the derivative is right (seed 001's check).

    With ``directions = k``, the check uses k random unit directions v instead of the
    coordinates: (f(x + h v) - f(x - h v)) / (2h) against <grad f(x), v>. A wrong derivative
    shows in almost every direction, so a few suffice for a network with thousands of
    parameters, at the cost of 2k evaluations instead of 2n.

    Args:
      fn: f(x) -> scalar; x may be a pytree.
      x: the point (float64).
      h: the finite-difference step.
      directions: None (every coordinate) or the number of random directions.
      seed: the directions' PRNG seed.

    Returns:
      The relative error, a Python float.
    """
    from jax.flatten_util import ravel_pytree

    flat, unravel = ravel_pytree(x)
    flat = jnp.asarray(flat, dtype=jnp.float64)
    # compiled, not op by op: an eager backward pass through a network compiles every
    # primitive separately, which costs seconds
    f_flat = jax.jit(lambda v: fn(unravel(v)))
    g_ad = jax.jit(jax.grad(lambda v: fn(unravel(v))))(flat)
    if directions is None:
        basis = jnp.eye(flat.size, dtype=flat.dtype)
    else:
        validate.positive_int("directions", directions)
        basis = jax.random.normal(jax.random.PRNGKey(seed), (directions, flat.size),
                                  dtype=flat.dtype)
        basis = basis / jnp.linalg.norm(basis, axis=1, keepdims=True)
    g_fd = jax.vmap(lambda e: (f_flat(flat + h * e) - f_flat(flat - h * e)) / (2 * h))(basis)
    g_ad = basis @ g_ad
    num = jnp.linalg.norm(g_ad - g_fd)
    den = jnp.maximum(jnp.linalg.norm(g_ad) + jnp.linalg.norm(g_fd), 1e-300)
    return float(num / den)
