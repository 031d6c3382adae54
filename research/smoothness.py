"""Local smoothness estimators and (L0, L1) fitting.

- ``trajectory_smoothness``: the authors' estimator along a step x_k -> x_{k+1}:
  max over alpha of ||grad f(x_k + (1 - alpha) d) - grad f(x_k)|| / ((1 - alpha) ||d||),
  d = x_{k+1} - x_k; default alpha grid: the midpoint.
- ``hessian_norm``: the spectral norm of the Hessian by power iteration on Hessian-vector
  products (forward-over-reverse: jvp of grad), for any pytree of parameters.
- ``fit_envelope``: the tightest L0 + L1 g above all measured (g, L_hat) points, by linear
  programming; ``log_correlations``: Pearson and Spearman correlation and the OLS slope of
  log L_hat against log g.

References: Zhang et al. 2020, section 5 and the authors' code (eval_smooth) [paper, code];
theory.md section 5.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from scipy import optimize, stats

from research import _validate


def trajectory_smoothness(grad_fn, x, x_next, alphas=(0.5,)):
    """The authors' estimator of local smoothness along the step from x to x_next.

    Args:
      grad_fn: x -> grad f(x) (full-batch or a sub-sample, as the caller chooses).
      x, x_next: consecutive iterates (pytrees of the same structure).
      alphas: points of the grid, each in [0, 1).

    Returns:
      max over alpha of ||grad f(x + (1 - alpha) d) - grad f(x)|| / ((1 - alpha) ||d||); NaN
      when d = 0.

    References: Zhang et al. 2020, section 5; authors' main.py eval_smooth. [code]
    """
    for a in alphas:
        _validate.in_interval("alphas", a, 0.0, 1.0)
    flat, unravel = ravel_pytree(x)
    d = ravel_pytree(x_next)[0] - flat
    g0 = ravel_pytree(grad_fn(x))[0]
    dn = jnp.linalg.norm(d)
    vals = []
    for a in alphas:
        s = 1.0 - a
        g = ravel_pytree(grad_fn(unravel(flat + s * d)))[0]
        vals.append(jnp.linalg.norm(g - g0) / (s * dn))
    out = jnp.max(jnp.stack(vals))
    return jnp.where(dn > 0, out, jnp.nan)


def hessian_norm(fn, x, iters: int = 100, key=0, tol: float = 1e-10):
    """||hess f(x)||_2 by power iteration on Hessian-vector products.

    Runs ``iters`` iterations of v <- H v / ||H v|| from a random v (fixed ``key``), and
    returns ||H v|| at the end, which converges to the largest |eigenvalue| (the spectral
    norm of the symmetric Hessian). Slow convergence when the top two |eigenvalues| are close;
    the returned value is then a lower bound.

    Returns:
      A scalar array.
    """
    _validate.positive_int("iters", iters)
    flat, unravel = ravel_pytree(x)
    grad_flat = lambda v: ravel_pytree(jax.grad(fn)(unravel(v)))[0]  # noqa: E731

    def hvp(v):
        return jax.jvp(grad_flat, (flat,), (v,))[1]

    k = jax.random.PRNGKey(key) if isinstance(key, int) else key
    v0 = jax.random.normal(k, flat.shape, flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)

    def body(_, carry):
        v, _ = carry
        hv = hvp(v)
        n = jnp.linalg.norm(hv)
        return jnp.where(n > tol, hv / jnp.where(n > 0, n, 1.0), v), n

    _, n = jax.lax.fori_loop(0, iters, body, (v0, jnp.asarray(0.0, flat.dtype)))
    return n


def fit_envelope(grad_norms, smoothness) -> tuple[float, float]:
    """The tightest envelope L0 + L1 g lying above every point (g_i, L_i).

    Solves the linear program
        minimise  sum_i (L0 + L1 g_i)   s.t.  L0 + L1 g_i >= L_i,  L0 >= 0,  L1 >= 0,
    i.e. the envelope of least area over the observed g (the mean height over the points).

    Returns:
      (L0, L1) as floats.
    """
    g = np.asarray(grad_norms, dtype=float).ravel()
    L = np.asarray(smoothness, dtype=float).ravel()
    ok = np.isfinite(g) & np.isfinite(L)
    g, L = g[ok], L[ok]
    if g.size == 0:
        raise ValueError("fit_envelope needs at least one finite (grad_norm, smoothness) point.")
    scale_g = max(float(g.max()), 1e-300)
    scale_L = max(float(np.abs(L).max()), 1e-300)
    gs, Ls = g / scale_g, L / scale_L  # well-scaled LP; undone below
    res = optimize.linprog(
        c=[gs.size, gs.sum()],
        A_ub=-np.stack([np.ones_like(gs), gs], axis=1),
        b_ub=-Ls,
        bounds=[(0, None), (0, None)],
        method="highs",
        # tighter than HiGHS's default 1e-7, so the envelope really lies above every point
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if not res.success:
        raise RuntimeError(f"envelope LP failed: {res.message}")
    a, b = res.x
    return float(a * scale_L), float(b * scale_L / scale_g)


def log_correlations(grad_norms, smoothness) -> dict:
    """Pearson and Spearman correlation of log L against log g, and the OLS slope.

    Points with non-positive or non-finite values are dropped; ``n`` says how many remain.
    """
    g = np.asarray(grad_norms, dtype=float).ravel()
    L = np.asarray(smoothness, dtype=float).ravel()
    ok = (g > 0) & (L > 0) & np.isfinite(g) & np.isfinite(L)
    lg, lL = np.log(g[ok]), np.log(L[ok])
    if lg.size < 3 or np.ptp(lg) == 0 or np.ptp(lL) == 0:
        return {"n": int(lg.size), "pearson": float("nan"), "spearman": float("nan"),
                "slope": float("nan")}
    return {
        "n": int(lg.size),
        "pearson": float(stats.pearsonr(lg, lL)[0]),
        "spearman": float(stats.spearmanr(lg, lL)[0]),
        "slope": float(np.polyfit(lg, lL, 1)[0]),
    }
