"""Local smoothness estimators and (L0, L1) fitting.

- ``trajectory_smoothness``: the authors' estimator along a step x_k -> x_{k+1}:
  max over alpha of ||grad f(x_k + (1 - alpha) d) - grad f(x_k)|| / ((1 - alpha) ||d||),
  d = x_{k+1} - x_k; default alpha grid: the midpoint.
- ``hessian_norm``: the spectral norm of the Hessian by power iteration on Hessian-vector
  products (forward-over-reverse: jvp of grad), for any pytree of parameters.
- ``along_training``: train with any optax optimizer and log, every k steps, the loss, the
  full-batch gradient norm and the estimates (the trajectory one with full-batch gradients
  and, optionally, with subsample gradients as the authors did; the Hessian norm), in one
  compiled scan.
- ``fit_envelope``: the tightest L0 + L1 g above all measured (g, L_hat) points, by linear
  programming; ``log_correlations``: Pearson and Spearman correlation and the OLS slope of
  log L_hat against log g.

References: Zhang et al. 2020, section 5 and the authors' code (eval_smooth) [paper, code];
docs/theory.md §5.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from scipy import optimize, stats

from research import validate
from research.clipping import global_norm
from research.engine import all_finite, freeze, scan_recorded

REGIMES = ("large_lr_clip", "small_lr", "small_lr_clip", "momentum", "momentum_clip")
"""The training regimes in report order: the paper's large lr with clipping, small lr
without, small lr with, and SGD with momentum 0.9 without and with global-norm clipping (the
paper's image setting uses momentum)."""


def trajectory_smoothness(grad_fn, x, x_next, alphas=(0.5,), g0=None):
    """The authors' estimator of local smoothness along the step from x to x_next.

    Args:
      grad_fn: x -> grad f(x) (full-batch or a sub-sample, as the caller chooses).
      x, x_next: consecutive iterates (pytrees of the same structure).
      alphas: points of the grid, each in [0, 1).
      g0: grad f(x) when the caller has it already (training does); else computed here.

    Returns:
      max over alpha of ||grad f(x + (1 - alpha) d) - grad f(x)|| / ((1 - alpha) ||d||); NaN
      when d = 0.

    References: Zhang et al. 2020, section 5; authors' main.py eval_smooth. [code]
    """
    for a in alphas:
        validate.in_interval("alphas", a, 0.0, 1.0)
    flat, unravel = ravel_pytree(x)
    d = ravel_pytree(x_next)[0] - flat
    g0 = ravel_pytree(grad_fn(x) if g0 is None else g0)[0]
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
    validate.positive_int("iters", iters)
    return power_iteration(fn, x, _random_unit(x, key), iters, tol)[0]


def _random_unit(x, key):
    """A random direction with the structure of the pytree ``x``, of unit global norm."""
    flat, unravel = ravel_pytree(x)
    k = jax.random.PRNGKey(key) if isinstance(key, int) else key
    v = jax.random.normal(k, flat.shape, flat.dtype)
    return unravel(v / jnp.linalg.norm(v))


def power_iteration(fn, x, v, iters: int, tol: float = 1e-10):
    """``iters`` power iterations v <- H v / ||H v|| on Hessian-vector products (jvp of grad)
    from the unit pytree ``v``; a step whose ||H v|| is at most ``tol`` keeps v.

    Returns:
      (||H v|| of the last iteration, the vector reached): warm-starting the next point of a
      trajectory from that vector lets few iterations suffice.
    """
    grad = jax.grad(fn)

    def body(_, carry):
        v, _ = carry
        hv = jax.jvp(grad, (x,), (v,))[1]
        n = global_norm(hv)
        scale = 1.0 / jnp.where(n > 0, n, 1.0)
        v = jax.tree_util.tree_map(lambda a, b: jnp.where(n > tol, a * scale, b), hv, v)
        return v, n

    v, n = jax.lax.fori_loop(0, iters, body, (v, jnp.asarray(0.0, jnp.result_type(float))))
    return n, v


def fit_envelope(grad_norms, smoothness) -> tuple[float, float]:
    """The tightest envelope L0 + L1 g lying above every point (g_i, L_i).

    Solves the linear program
        minimise  sum_i (L0 + L1 g_i)   s.t.  L0 + L1 g_i >= L_i,  L0 >= 0,  L1 >= 0,
    i.e. the envelope of least area over the observed g (the mean height over the points).
    Coverage is exact: after the LP the intercept is lifted by the largest shortfall the
    solver's tolerance left, so a + b * g_i >= L_i holds in float64 for every finite point.

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
    a, b = float(a * scale_L), float(b * scale_L / scale_g)
    # The LP's feasibility tolerance lets the envelope pass slightly below a point (1e-8 below
    # (0, 1e-8) for L0 = 1e-8, L1 = 2). Lift the intercept by the largest shortfall, measured
    # in float64 with the very expression a + b g that users evaluate, until none is left.
    for _ in range(64):
        shortfall = float(np.max(L - (a + b * g)))
        if shortfall <= 0:
            return a, b
        a = a + max(shortfall, float(np.spacing(a)))  # a + b g can round the lift away
    raise RuntimeError("fit_envelope could not lift the envelope above every point.")


def log_correlations(grad_norms, smoothness, steps=None) -> dict:
    """Pearson and Spearman correlation of log L against log g, and the OLS slope.

    Points with non-positive or non-finite values are dropped; ``n`` says how many remain.
    ``spearman_p`` is the two-sided p-value of the Spearman correlation (scipy's); it
    assumes independent points, which consecutive points of one trajectory are not, so it
    overstates the evidence (``research.stats`` gives intervals that do not).

    With ``steps`` (the step index of each point) two trend-robust correlations are added:
    ``partial_spearman``, the Spearman correlation of g and L given the step
    (``research.stats.partial_spearman``), and ``detrended``, the Spearman correlation of
    the step-to-step changes of log g and log L (``research.stats.detrended_correlation``).
    A trend that g and L share along training (both shrink) raises ``spearman`` but not
    these two. Both are NaN when undefined.
    """
    g = np.asarray(grad_norms, dtype=float).ravel()
    L = np.asarray(smoothness, dtype=float).ravel()
    ok = (g > 0) & (L > 0) & np.isfinite(g) & np.isfinite(L)
    lg, lL = np.log(g[ok]), np.log(L[ok])
    extra = {}
    if steps is not None:
        from research import stats as trend_robust

        t = np.asarray(steps, dtype=float).ravel()
        extra = {"partial_spearman": trend_robust.partial_spearman(lg, lL, t[ok]),
                 "detrended": trend_robust.detrended_correlation(g, L, t)}
    if lg.size < 3 or np.ptp(lg) == 0 or np.ptp(lL) == 0:
        return {"n": int(lg.size), "pearson": float("nan"), "spearman": float("nan"),
                "spearman_p": float("nan"), "slope": float("nan"), **extra}
    rho, p = stats.spearmanr(lg, lL)
    return {
        "n": int(lg.size),
        "pearson": float(stats.pearsonr(lg, lL)[0]),
        "spearman": float(rho),
        "spearman_p": float(p),
        "slope": float(np.polyfit(lg, lL, 1)[0]),
        **extra,
    }


SUBSAMPLE_KEY_SALT = 0x53554253
"""The subsample of the logged point at step t is drawn with ``subsample_key(key, t)``: a
stream folded out of the training key, so drawing subsamples leaves the training minibatches
(and so the trajectory) unchanged."""


def subsample_key(key, t):
    """The PRNG key of the subsample at logged step ``t`` of a run trained with ``key``:
    fold_in(fold_in(key, SUBSAMPLE_KEY_SALT), t). The same key serves both gradients of that
    point's estimate (at x_t and at x_t + d/2), so both average over the same rows."""
    return jax.random.fold_in(jax.random.fold_in(key, SUBSAMPLE_KEY_SALT), t)


class AlongCarry(NamedTuple):
    """The state of one run of ``along_training`` between steps: the iterate, the optimizer
    state, the PRNG key, whether it is still finite, the power iteration's vector, the step
    that went non-finite (-1: none) and the iteration reached."""

    x: Any
    state: Any
    key: Any
    alive: Any
    v: Any
    diverged_at: Any
    t: Any


@functools.partial(jax.jit, static_argnames=("problem", "update", "steps", "log_every",
                                             "hvp_iters", "subsample_fn", "hess_every"))
def along_trajectory(problem, update, steps, log_every, hvp_iters, x0, state0, key,
                     subsample_fn=None, hess_every=1):
    """One run of ``along_training`` (jitted; vmap it for a batch): the logged series in
    ``SERIES`` order, the step that went non-finite (-1: none) and the final iterate."""
    full = jax.value_and_grad(problem.fn)
    sampled = jax.grad(problem.stochastic_fn) if problem.stochastic else None
    sub_grad = None if subsample_fn is None else jax.grad(subsample_fn)
    nan = jnp.asarray(jnp.nan, jnp.result_type(float))
    key0 = key

    def take_step(x, s, key, g_full):
        key, sub = jax.random.split(key)
        g = sampled(x, sub) if sampled is not None else g_full
        u, s_new = update(g, s, x)
        return optax.apply_updates(x, u), s_new, key, global_norm(g)

    def step(c: AlongCarry, record: bool):
        if not record:  # a step between logged points: no estimate, no record
            g_full = None if sampled is not None else jax.grad(problem.fn)(c.x)
            x2, s2, key, _ = take_step(c.x, c.state, c.key, g_full)
            ok = c.alive & all_finite(x2)
            return AlongCarry(freeze(ok, x2, c.x), freeze(ok, s2, c.state), key, ok, c.v,
                              jnp.where(c.alive & ~ok, c.t, c.diverged_at), c.t + 1), None
        f, g = full(c.x)
        gn = global_norm(g)
        x2, s2, key, gn_used = take_step(c.x, c.state, c.key, g)
        L_traj = trajectory_smoothness(jax.grad(problem.fn), c.x, x2, g0=g)
        if sub_grad is None:
            L_sub = nan
        else:  # one key, so the same rows at x and at x + d/2
            k_sub = subsample_key(key0, c.t)
            L_sub = trajectory_smoothness(lambda y: sub_grad(y, k_sub), c.x, x2)
        if hvp_iters > 0 and hess_every == 1:
            L_hess, v_new = power_iteration(problem.fn, c.x, c.v, hvp_iters)
        elif hvp_iters > 0:  # t is not batched, so under vmap this stays a branch, not both
            L_hess, v_new = jax.lax.cond(
                (c.t // log_every) % hess_every == 0,
                lambda: power_iteration(problem.fn, c.x, c.v, hvp_iters), lambda: (nan, c.v))
        else:
            L_hess, v_new = nan, c.v
        ok = c.alive & all_finite(x2) & jnp.isfinite(f) & jnp.isfinite(gn)
        rec = tuple(jnp.where(c.alive, r, nan) for r in (f, gn, gn_used, L_traj, L_hess, L_sub))
        return AlongCarry(freeze(ok, x2, c.x), freeze(ok, s2, c.state), key, ok,
                          freeze(ok, v_new, c.v), jnp.where(c.alive & ~ok, c.t, c.diverged_at),
                          c.t + 1), rec

    carry0 = AlongCarry(x0, state0, key, jnp.asarray(True), _random_unit(x0, 0),
                        jnp.asarray(-1, jnp.int32), jnp.asarray(0, jnp.int32))
    carry, recs = scan_recorded(step, carry0, steps // log_every, log_every)
    return recs, carry.diverged_at, carry.x


SERIES = ("loss", "grad_norm", "used_grad_norm", "smoothness_traj", "smoothness_hess",
          "smoothness_sub")
"""The per-point series of ``along_training`` (and of ``along_trajectory``'s records), in
order."""


def run_lengths(metrics: dict) -> tuple[dict[str, tuple[int, int]], bool]:
    """Of a smoothness record's ``metrics``: (each model whose runs have their own (steps,
    log_every), in the order of ``metrics["models"]``; whether any run has the record's
    default ``steps`` and ``log_every``). What the correlation table and the figure say of
    the runs' lengths."""
    own, default = {}, False
    for r in metrics.get("runs", {}).values():
        length = (r.get("steps", metrics["steps"]), r.get("log_every", metrics["log_every"]))
        if length != (metrics["steps"], metrics["log_every"]):
            own[r["model"]] = length
        else:
            default = True
    order = [k for k in metrics.get("models", []) if k in own]
    return {k: own[k] for k in order + [k for k in own if k not in order]}, default


def along_training(problem, optimizer: optax.GradientTransformation, steps: int,
                   log_every: int, *, x0=None, key=0, hvp_iters: int = 20,
                   subsample_fn=None, hess_every: int = 1) -> dict:
    """Train ``problem`` with ``optimizer`` and log the local smoothness every k steps.

    At every logged iterate x_k (k = 0, log_every, 2 log_every, ...) it records, in one
    compiled scan:

    - ``loss``: f(x_k) (full batch), ``grad_norm``: ||grad f(x_k)|| (full batch);
    - ``used_grad_norm``: the norm of the gradient the optimizer used (the minibatch one for
      stochastic problems);
    - ``smoothness_traj``: the authors' estimator on the step actually taken,
      ||grad f(x_k + d/2) - grad f(x_k)|| / (||d|| / 2), d = x_{k+1} - x_k, with full-batch
      gradients: one gradient more than training needs;
    - ``smoothness_hess``: ||hess f(x_k)|| by ``hvp_iters`` power iterations on
      Hessian-vector products, warm-started from the previous logged point's vector (a lower
      bound when not converged); ``hvp_iters=0`` skips it (NaN series), and with
      ``hess_every`` = m only every m-th logged point has it (NaN between: its cost is
      ``hvp_iters`` Hessian-vector products a point);
    - ``smoothness_sub``: the same ratio as ``smoothness_traj`` with the gradients of
      ``subsample_fn(x, key)`` (a loss averaged over a random subsample of the training
      data, as the authors' ``eval_smooth``), the subsample drawn afresh at each logged point
      with ``subsample_key(key, k)`` and the same one at x_k and at x_k + d/2. NaN when
      ``subsample_fn`` is None (the default). It does not change the training steps: the
      other series are the same with or without it.

    Divergence is data: once the iterate turns non-finite the run freezes, later entries are
    NaN, and ``diverged_at`` is the step (else -1).

    Returns:
      A dict of NumPy arrays: "iteration", the six series above, and "diverged_at" (scalar),
      plus "x" (the last finite iterate).
    """
    steps = validate.positive_int("steps", steps)
    log_every = validate.positive_int("log_every", log_every)
    hvp_iters = validate.positive_int("hvp_iters", hvp_iters, minimum=0)
    hess_every = validate.positive_int("hess_every", hess_every)
    if subsample_fn is not None and not callable(subsample_fn):
        raise ValueError("subsample_fn must be None or a callable f_hat(x, key) -> scalar; got "
                         f"{type(subsample_fn).__name__}.")
    if steps % log_every:
        raise ValueError(f"log_every must divide steps; got steps={steps}, "
                         f"log_every={log_every}.")
    x0 = problem.x0 if x0 is None else x0
    if x0 is None:
        raise ValueError(f"x0 must be given: problem {problem.name!r} has no default start.")
    x0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.result_type(a, float)), x0)
    validate.finite_tree("x0", x0)
    state0 = optimizer.init(x0)
    if isinstance(key, int | np.integer):
        key = jax.random.PRNGKey(int(key))
    recs, div_at, x = jax.device_get(along_trajectory(problem, optimizer.update, steps,
                                                      log_every,
                                            hvp_iters, x0, state0, key,
                                            subsample_fn=subsample_fn, hess_every=hess_every))
    out = {n: np.asarray(r) for n, r in zip(SERIES, recs, strict=True)}
    out["iteration"] = np.arange(0, steps, log_every)
    out["diverged_at"] = int(div_at)
    out["x"] = x
    return out
