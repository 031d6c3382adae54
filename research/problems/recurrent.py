"""Pascanu, Mikolov and Bengio's single-unit recurrent network: the exploding-gradient cliff."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from research import validate
from research.problems.base import Problem, register


def cliff_loss(theta, steps: int = 50, h0: float = 0.5, target: float = 0.7):
    """E(w, b) = (sigma(x_T) - target)^2 for x_t = w sigma(x_{t-1}) + b, x_0 = h0.

    Args:
      theta: array [w, b].
    """
    w, b = theta[0], theta[1]

    def step(x, _):
        return w * jax.nn.sigmoid(x) + b, None

    x_T, _ = jax.lax.scan(step, jnp.asarray(h0, dtype=jnp.result_type(theta)), None,
                          length=steps)
    return (jax.nn.sigmoid(x_T) - target) ** 2


@register("cliff")
@functools.cache
def cliff(steps: int = 50, w0: float = 4.0, b0: float = -2.0) -> Problem:
    """Pascanu's single-unit recurrent "cliff" loss over theta = (w, b).

    x_t = w sigma(x_{t-1}) + b, x_0 = 0.5, T = 50 steps, E = (sigma(x_T) - 0.7)^2. Where the
    map x -> w sigma(x) + b passes through a bifurcation (w around 4 and above, b near -w/2),
    x_T jumps between two attractors: the surface has a narrow wall where both the gradient
    and the curvature are huge. No (L0, L1) are stated (L0 = L1 = None): whether and where the
    (L0,L1) relation holds here is for the smoothness estimators to measure. f* = 0 (a lower
    bound; it is attained, since sigma(x_T) takes every value in (0, 1)).

    References: Pascanu, Mikolov, Bengio, "On the difficulty of training recurrent neural
    networks", ICML 2013, section 3; docs/theory.md §6. [paper]
    """
    validate.positive_int("steps", steps)
    return Problem(
        name="cliff",
        fn=functools.partial(cliff_loss, steps=steps),
        L0=None,
        L1=None,
        f_star=0.0,
        x0=jnp.array([float(w0), float(b0)]),
        description=f"single-unit RNN, {steps} steps (Pascanu et al. 2013)",
    )
