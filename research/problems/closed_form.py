"""Closed-form test functions with known (L0, L1).

Each factory is cached on its arguments, so asking twice for the same problem returns the
same object and the engine compiles once for it.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from research import validate
from research.problems.base import Problem, register


def _separable_monomial(name, p, c, L0, L1, dim, x0) -> Problem:
    """sum_i x_i^p / c in ``dim`` dimensions, f* = 0 at 0, with the given (L0, L1)."""
    validate.positive_int("dim", dim)
    return Problem(
        name=name if dim == 1 else f"{name}{dim}d",
        fn=lambda x: jnp.sum(x**p) / c,
        L0=float(L0),
        L1=float(L1),
        f_star=0.0,
        x0=jnp.full((dim,), float(x0)),
        description=f"sum x^{p}" + (f"/{c:g}" if c != 1 else "") + f" in {dim}-D",
    )


@register("quartic")
@functools.cache
def quartic(dim: int = 1, L1: float = 2.0, x0: float = 10.0) -> Problem:
    """f(x) = sum_i x_i^4, with (L0, L1) = (16 / L1^2, L1) for any L1 > 0 (tight).

    Derivation. In one dimension f'' = 12 x^2 and |f'| = 4 |x|^3, so the smallest L0 for a
    given L1 is sup_x (12 x^2 - 4 L1 |x|^3). The derivative 24 x - 12 L1 x^2 vanishes at
    x = 2 / L1, where the value is 48/L1^2 - 32/L1^2 = 16/L1^2. In d dimensions the Hessian is
    diag(12 x_i^2), so ||hess|| = 12 m^2 with m = max |x_i|, while ||grad|| >= 4 m^3; the 1-D
    bound therefore holds for the sum. f* = 0 at x = 0.

    Default L1 = 2 gives (4, 2). References: docs/theory.md §4; seeds 001, 004. [checked]
    """
    validate.positive("L1", L1)
    return _separable_monomial("quartic", 4, 1.0, 16.0 / L1**2, L1, dim, x0)


@register("sextic")
@functools.cache
def sextic(dim: int = 1, L1: float = 1.0, x0: float = 5.0) -> Problem:
    """f(x) = sum_i x_i^6 / 6, with (L0, L1) = (256 / L1^4, L1) for any L1 > 0 (tight).

    Derivation. f'' = 5 x^4, |f'| = |x|^5; sup (5 x^4 - L1 x^5) is at x = 4 / L1, with value
    5 (4/L1)^4 - 4 (4/L1)^4 = 256 / L1^4. The sum over coordinates follows as for
    ``quartic``. f* = 0. References: docs/theory.md §4. [checked]
    """
    validate.positive("L1", L1)
    return _separable_monomial("sextic", 6, 6.0, 256.0 / L1**4, L1, dim, x0)


@register("power")
@functools.cache
def power(n: int = 2, dim: int = 2, L1: float | None = None, x0: float = 3.0) -> Problem:
    """f(x) = (1/n) ||x||^(2n), with L0 = 2 ((2n - 2) / L1)^(2n - 2) for any L1 > 0 (tight).

    Derivation. With r = ||x||: grad f = 2 r^(2n-2) x, so ||grad f|| = 2 r^(2n-1). The Hessian
    2 r^(2n-2) I + 2 (2n-2) r^(2n-4) x x^T has largest eigenvalue 2 (2n-1) r^(2n-2) (along x).
    The smallest L0 for a given L1 is sup_r [2 (2n-1) r^(2n-2) - 2 L1 r^(2n-1)], attained at
    r = (2n-2) / L1, with value 2 ((2n-2)/L1)^(2n-2). Default L1 = 2n - 1; then L0 <= 2 <= 2n,
    so docs/theory.md §4's (2n, 2n-1) is a valid looser pair. n = 1 is the quadratic ||x||^2 with
    L0 = 2. f* = 0. References: docs/theory.md §4. [checked]
    """
    validate.positive_int("n", n)
    validate.positive_int("dim", dim)
    L1 = float(2 * n - 1) if L1 is None else float(L1)
    validate.positive("L1", L1)
    return Problem(
        name=f"power{n}",
        fn=lambda x: jnp.sum(x**2) ** n / n,
        L0=2.0 * ((2 * n - 2) / L1) ** (2 * n - 2),
        L1=L1,
        f_star=0.0,
        x0=jnp.full((dim,), float(x0)),
        description=f"(1/{n}) ||x||^{2 * n} in {dim}-D",
    )


@register("cosh")
@functools.cache
def cosh(dim: int = 1, x0: float = 5.0) -> Problem:
    """f(x) = sum_i cosh(x_i), with (L0, L1) = (1, 1).

    Derivation. The Hessian is diag(cosh x_i), so ||hess|| = cosh(x_j) for the j with largest
    |x_j|, and cosh(x_j) = |sinh(x_j)| + e^(-|x_j|) <= 1 + |sinh x_j| <= 1 + ||grad f||.
    f* = dim at x = 0. Not L-smooth for any L. References: docs/theory.md §4. [checked]
    """
    validate.positive_int("dim", dim)
    return Problem(
        name="cosh" if dim == 1 else f"cosh{dim}d",
        fn=lambda x: jnp.sum(jnp.cosh(x)),
        L0=1.0,
        L1=1.0,
        f_star=float(dim),
        x0=jnp.full((dim,), float(x0)),
        description=f"sum cosh(x) in {dim}-D",
    )


@register("quadratic")
@functools.cache
def quadratic(dim: int = 2, condition: float = 10.0, x0: float = 10.0, seed: int = 0) -> Problem:
    """f(x) = 1/2 x^T A x with A = Q diag(lambda) Q^T, eigenvalues from 1 to ``condition``.

    The L-smooth control: ||hess f|| = lambda_max = condition everywhere, so
    (L0, L1) = (condition, 0). f* = 0 at x = 0. Q is a fixed random rotation (``seed``).
    References: docs/theory.md §4. [checked]
    """
    validate.positive_int("dim", dim)
    validate.positive("condition", condition)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    lam = np.geomspace(1.0, condition, dim) if dim > 1 else np.array([condition])
    A = jnp.asarray((q * lam) @ q.T)
    return Problem(
        name="quadratic",
        fn=lambda x: 0.5 * x @ (A @ x),
        L0=float(lam.max()),
        L1=0.0,
        f_star=0.0,
        x0=jnp.full((dim,), float(x0)),
        description=f"1/2 x^T A x, {dim}-D, condition {condition:g}",
        extra={"A": A},
    )


@functools.cache
def _hard_fn(L1: float, delta: float, flat: float):
    """f of ``hard_instance``; M only moves the start, so every M shares this one function
    object (and the engine's compiled programs)."""
    c = float(np.exp(-L1 * flat))

    def fn(x):
        # sqrt(1+x^2) - 1 = x^2 / (sqrt(1+x^2) + 1) and cosh(y) - 1 = 2 sinh(y/2)^2, written
        # without cancellation so that f keeps full relative precision near its minimum
        slope = x * x / (jnp.sqrt(1.0 + x * x) + 1.0)
        wall = 2.0 * jnp.sinh(0.5 * L1 * x) ** 2
        return jnp.sum(delta * slope + c * wall / L1**2)

    return fn


@register("hard")
@functools.cache
def hard_instance(M: float = 1e3, L1: float = 1.0, delta: float = 0.02,
                  flat: float = 20.0) -> Problem:
    """A 1-D (L0,L1)-smooth function on which every fixed-step GD pays for a large M.

    f(x) = delta (sqrt(1 + x^2) - 1) + c (cosh(L1 x) - 1) / L1^2,   c = exp(-L1 flat).

    Shape. For |x| < flat the cosh wall is negligible (its slope c sinh(L1 x)/L1 is about
    exp(L1 (|x| - flat)) / (2 L1)), so f is a long slope with |f'| close to delta: reaching
    |f'| <= eps = delta / 2 means walking to |x| <= 1/sqrt(3). Beyond |x| = flat the wall
    rises exponentially. The default start x0 is the point of the wall where
    |f'(x0)| = M: x0 = asinh(L1 (M - delta x0 / sqrt(1 + x0^2)) / c) / L1 (solved by a few
    fixed-point steps). There f''(x0) is about L1 M, so a fixed step h much longer than
    about 2 x0 / M throws the iterate further up the opposite wall, where it diverges,
    while on the slope such a step advances only h delta per iteration: fixed-step GD needs
    about flat M / (2 x0 delta) ~ M / (2 delta) iterations. Clipped GD crosses the wall in
    about log(2 L1 M) / (L1 eta gamma) steps and the slope in about flat / (eta delta).

    Constants. f is even, with f' of the sign of x and |f'| >= c sinh(L1 |x|) / L1 (both terms
    have the sign of x). f'' = delta (1 + x^2)^(-3/2) + c cosh(L1 x)
    <= delta + c + c sinh(L1 |x|) <= (delta + c) + L1 |f'|, using cosh = sinh + e^(-|.|) and
    e^(-|.|) <= 1. Hence (L0, L1) = (delta + c, L1). f* = 0 at x = 0, and
    M = sup{|f'(x)| : f(x) <= f(x0)} = |f'(x0)| because |f'| grows with |x|.

    This is our own construction (the paper's appendix D, with its hard function, was not
    available). References: Zhang et al. 2020, Theorem 4 and Remark 5 for the phenomenon.
    [checked: constants derived here and verified on a dense grid in tests/test_problems.py]
    """
    validate.positive("M", M)
    validate.positive("L1", L1)
    validate.positive("delta", delta)
    validate.positive("flat", flat)
    if not M > delta:
        raise ValueError(f"M must exceed delta (the slope of the flat region); got M={M}, "
                         f"delta={delta}.")
    c = float(np.exp(-L1 * flat))
    x0 = float(np.arcsinh(L1 * M / c) / L1)
    for _ in range(50):  # solve delta x0/sqrt(1+x0^2) + c sinh(L1 x0)/L1 = M
        x0 = float(np.arcsinh(L1 * (M - delta * x0 / np.sqrt(1 + x0 * x0)) / c) / L1)

    return Problem(
        name="hard",
        fn=_hard_fn(float(L1), float(delta), float(flat)),
        L0=delta + c,
        L1=float(L1),
        f_star=0.0,
        x0=jnp.array([x0]),
        description=f"hard instance: slope {delta:g} over |x| < {flat:g}, wall with M = {M:g}",
        extra={"M": float(M), "delta": float(delta), "flat": float(flat), "c": c,
               "eps": float(delta) / 2.0},
    )
