"""Stochastic versions of the closed-form problems: exact f plus unbiased gradient noise,
bounded (assumption A5 of Zhang et al. 2020: ||grad f_hat - grad f|| <= tau almost surely) or
heavy-tailed (A5 fails: no tau bounds it)."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

from research import validate
from research.problems.base import Problem, get, names, register

NOISES = ("uniform", "skewed", "heavy")


@register("noisy")
@functools.cache
def noisy(base: str = "cosh", tau: float = 1.0, noise: str = "uniform", p: float = 0.1,
          alpha: float = 1.5, **base_kwargs) -> Problem:
    """``base`` with f_hat(x, key) = f(x) + <xi, x>, so grad f_hat = grad f + xi.

    The noise xi is drawn per coordinate with mean zero; with b = tau / sqrt(d):
      - "uniform": xi_i uniform on [-b, b] (symmetric); ||xi|| <= tau.
      - "skewed": xi_i = b with probability p and -b p / (1 - p) otherwise (mean zero,
        asymmetric for p != 1/2). Clipping such noise is biased: E[clip(g + xi)] differs
        from clip(g), which moves the fixed point of clipped SGD (Koloskova, Hendrikx, Stich,
        ICML 2023). ||xi|| <= tau.
      - "heavy": |xi_i| = b (U^(-1/alpha) - 1), U uniform on (0, 1], with a random sign:
        symmetric Pareto type II (Lomax) tails, P(|xi_i| > s) = (1 + s/b)^-alpha. Needs
        alpha > 1 (a finite mean); the variance is infinite for alpha <= 2. Unbounded, so
        A5 fails; tau is the noise's scale, not a bound.

    (L0, L1), f* and x0 are those of ``base``; tau, noise, p and alpha are kept in ``extra``.

    References: Zhang et al. 2020, assumption A5 [paper]; Koloskova et al. 2023 [secondary].
    """
    validate.choice("noise", noise, NOISES)
    validate.positive("tau", tau)
    validate.in_interval("p", p, 0.0, 1.0)
    if not p > 0:
        raise ValueError(f"p must lie in (0, 1); got {p}.")
    validate.positive("alpha", alpha)
    if noise == "heavy" and not alpha > 1:  # the mean must exist for the noise to be unbiased
        raise ValueError(f"alpha must exceed 1 for heavy noise; got {alpha}.")
    validate.choice("base", base, names())
    inner = get(base, **base_kwargs)
    if inner.stochastic:
        raise ValueError(f"base must be a deterministic problem; {base!r} is stochastic.")
    d = int(jnp.size(inner.x0))
    b = float(tau) / d**0.5

    def sample(key, shape, dtype):
        if noise == "uniform":
            return jax.random.uniform(key, shape, dtype, -b, b)
        if noise == "heavy":
            k_size, k_sign = jax.random.split(key)
            u = 1.0 - jax.random.uniform(k_size, shape, dtype)  # on (0, 1]: no infinite draw
            sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, shape), 1.0, -1.0)
            return (sign * b * jnp.expm1(-jnp.log(u) / alpha)).astype(dtype)
        hit = jax.random.bernoulli(key, p, shape)
        return jnp.where(hit, b, -b * p / (1.0 - p)).astype(dtype)

    def stochastic_fn(x, key):
        xi = jax.lax.stop_gradient(sample(key, jnp.shape(x), jnp.result_type(x)))
        return inner.fn(x) + jnp.sum(xi * x)

    law = (f"scale {tau:g}, tail index {alpha:g}" if noise == "heavy"
           else f"||xi|| <= {tau:g}")
    return dataclasses.replace(
        inner,
        name=f"{inner.name}+{noise}{tau:g}" + (f"a{alpha:g}" if noise == "heavy" else ""),
        stochastic_fn=stochastic_fn,
        description=f"{inner.description} with {noise} gradient noise, {law}",
        extra={**inner.extra, "tau": float(tau), "noise": noise, "p": float(p),
               "alpha": float(alpha)},
    )
