"""Stochastic versions of the closed-form problems: exact f plus bounded, unbiased gradient
noise (assumption A5 of Zhang et al. 2020: ||grad f_hat - grad f|| <= tau almost surely)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from research import validate
from research.problems.base import Problem, get, names, register

NOISES = ("uniform", "skewed")


@register("noisy")
@functools.cache
def noisy(base: str = "cosh", tau: float = 1.0, noise: str = "uniform", p: float = 0.1,
          **base_kwargs) -> Problem:
    """``base`` with f_hat(x, key) = f(x) + <xi, x>, so grad f_hat = grad f + xi.

    The noise xi is drawn per coordinate, mean zero, and bounded: ||xi|| <= tau (the
    per-coordinate bound is tau / sqrt(d)).
      - "uniform": xi_i uniform on [-b, b], b = tau / sqrt(d) (symmetric).
      - "skewed": xi_i = b with probability p and -b p / (1 - p) otherwise (mean zero,
        asymmetric for p != 1/2). Clipping such noise is biased: E[clip(g + xi)] differs
        from clip(g), which moves the fixed point of clipped SGD (Koloskova, Hendrikx, Stich,
        ICML 2023).

    (L0, L1), f* and x0 are those of ``base``; tau is kept in ``extra``.

    References: Zhang et al. 2020, assumption A5 [paper]; Koloskova et al. 2023 [secondary].
    """
    validate.choice("noise", noise, NOISES)
    validate.positive("tau", tau)
    validate.in_interval("p", p, 0.0, 1.0)
    if not p > 0:
        raise ValueError(f"p must lie in (0, 1); got {p}.")
    validate.choice("base", base, names())
    inner = get(base, **base_kwargs)
    if inner.stochastic:
        raise ValueError(f"base must be a deterministic problem; {base!r} is stochastic.")
    d = int(jnp.size(inner.x0))
    b = float(tau) / d**0.5

    def sample(key, shape, dtype):
        if noise == "uniform":
            return jax.random.uniform(key, shape, dtype, -b, b)
        hit = jax.random.bernoulli(key, p, shape)
        return jnp.where(hit, b, -b * p / (1.0 - p)).astype(dtype)

    def stochastic_fn(x, key):
        xi = jax.lax.stop_gradient(sample(key, jnp.shape(x), jnp.result_type(x)))
        return inner.fn(x) + jnp.sum(xi * x)

    return dataclasses.replace(
        inner,
        name=f"{inner.name}+{noise}{tau:g}",
        stochastic_fn=stochastic_fn,
        description=f"{inner.description} with {noise} gradient noise, ||xi|| <= {tau:g}",
        extra={**inner.extra, "tau": float(tau), "noise": noise, "p": float(p)},
    )
