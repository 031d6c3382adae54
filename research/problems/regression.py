"""Logistic regression on a small generated data set (no download)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from research import validate
from research.problems.base import Problem, register


def _make_data(n: int, dim: int, seed: int):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, dim))
    A[:, 0] = 1.0  # intercept column
    w_true = rng.standard_normal(dim) * 2.0
    p = 1.0 / (1.0 + np.exp(-A @ w_true))
    y = np.where(rng.random(n) < p, 1.0, -1.0)  # noisy labels: not separable, f* attained
    return A, y


def _newton_minimum(A, y, iters: int = 100) -> float:
    """Minimum of mean softplus(-y A w), by damped Newton in float64 NumPy."""
    w = np.zeros(A.shape[1])
    n = A.shape[0]

    def value(w):
        return np.mean(np.logaddexp(0.0, -y * (A @ w)))

    for _ in range(iters):
        m = y * (A @ w)
        s = 1.0 / (1.0 + np.exp(m))  # sigma(-m)
        grad = -(A.T @ (y * s)) / n
        hess = (A.T * (s * (1 - s))) @ A / n
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while value(w - t * step) > value(w) and t > 1e-10:
            t /= 2
        w = w - t * step
        if np.linalg.norm(grad) < 1e-14:
            break
    return float(value(w))


@register("logistic")
@functools.cache
def logistic(n: int = 200, dim: int = 5, seed: int = 0, batch_size: int = 20,
             x0: float = 5.0) -> Problem:
    """f(w) = (1/n) sum_i log(1 + exp(-y_i a_i^T w)) on generated, non-separable data.

    Derivation. With s_i = sigma(-y_i a_i^T w), hess f = (1/n) sum_i s_i (1 - s_i) a_i a_i^T,
    and s (1 - s) <= 1/4, so ||hess f|| <= lambda_max(A^T A) / (4 n): L-smooth, hence
    (L0, L1) = (lambda_max(A^T A) / (4n), 0). (Each single term is also (0, ||a_i||)-smooth,
    but an average is not, because gradients of different terms can cancel.) f* is computed
    by Newton's method in float64 when the problem is built.

    ``stochastic_fn(w, key)`` averages a minibatch of ``batch_size`` rows drawn with
    replacement: an unbiased estimate of f.

    References: docs/theory.md §4. [checked]
    """
    validate.positive_int("n", n)
    validate.positive_int("dim", dim)
    validate.positive_int("batch_size", batch_size)
    A_np, y_np = _make_data(n, dim, seed)
    A, y = jnp.asarray(A_np), jnp.asarray(y_np)

    def fn(w):
        return jnp.mean(jnp.logaddexp(0.0, -y * (A @ w)))

    def stochastic_fn(w, key):
        idx = jax.random.randint(key, (batch_size,), 0, n)
        return jnp.mean(jnp.logaddexp(0.0, -y[idx] * (A[idx] @ w)))

    lam = float(np.linalg.eigvalsh(A_np.T @ A_np).max())
    return Problem(
        name="logistic",
        fn=fn,
        L0=lam / (4.0 * n),
        L1=0.0,
        f_star=_newton_minimum(A_np, y_np),
        x0=jnp.full((dim,), float(x0)),
        stochastic_fn=stochastic_fn,
        description=f"logistic regression, n={n}, d={dim}, minibatch {batch_size}",
        extra={"A": A, "y": y},
    )
