"""Step rules and bounds of (L0,L1)-smooth optimization, as plain vectorized functions.

Every function takes scalars or arrays (NumPy or JAX) and broadcasts. The optimizers in
``research.optimizers`` call the step rules defined here, so the optimizer, the theory checks
and the plots share one definition of each rule.

Status tags follow docs/theory.md §0:

- [paper]: read in the text of Zhang, He, Sra, Jadbabaie (ICLR 2020);
- [code]: read in the authors' code;
- [checked]: derived in this project and checked numerically (see the tests);
- [secondary]: restated by later papers, not read in the original;
- [recalled]: the exact constant was not found in any stored copy. Treat as a hypothesis;
  every report that uses such a value says so.

Notation: ``g`` is the gradient norm ||grad f(x)||, ``F0 = f(x0) - f*``, ``M`` the largest
gradient norm on the sublevel set {f <= f(x0)}.
"""

from __future__ import annotations

import jax.numpy as jnp

from research import validate

RECALLED = "recalled"

# --------------------------------------------------------------------------- helpers


def phi(t):
    """phi(t) = e^t - t - 1, computed without cancellation for small t.

    References: docs/theory.md §1 (Gronwall consequence of Definition 1). [secondary]
    """
    t = jnp.asarray(t)
    return jnp.expm1(t) - t


def _phi_over_t2(t):
    """phi(t) / t^2, continuous at t = 0 (value 1/2)."""
    t = jnp.asarray(t)
    small = jnp.abs(t) < 1e-3
    safe = jnp.where(small, 1.0, t)
    series = 0.5 + t / 6.0 + t * t / 24.0 + t**3 / 120.0
    return jnp.where(small, series, (jnp.expm1(safe) - safe) / (safe * safe))


def _log1p_over(u):
    """log(1 + u) / u, continuous at u = 0 (value 1)."""
    u = jnp.asarray(u)
    small = jnp.abs(u) < 1e-6
    safe = jnp.where(small, 1.0, u)
    return jnp.where(small, 1.0 - u / 2.0 + u * u / 3.0, jnp.log1p(safe) / safe)


def _safe_div(num, den):
    """num / den with x / 0 = +inf for x > 0 and 0 / 0 = +inf (a step with no limit)."""
    num = jnp.asarray(num)
    den = jnp.asarray(den)
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.inf)


def _check_constants(L0, L1):
    validate.nonnegative("L0", L0)
    validate.nonnegative("L1", L1)


# --------------------------------------------------------------------------- descent inequality


def descent_bound(f_x, grad_norm, step, L0, L1):
    """Upper bound on f(x - step * grad f(x)) for an (L0,L1)-smooth f.

    f(y) <= f(x) + <grad f(x), y - x> + (L0 + L1 g) / L1^2 * phi(L1 ||y - x||), with
    y = x - h grad f(x), so ||y - x|| = h g and <grad f(x), y - x> = -h g^2. Written as
    (L0 + L1 g) (h g)^2 * phi(t) / t^2 with t = L1 h g, which stays exact as L1 -> 0, where it
    becomes the L-smooth bound f(x) - h g^2 + L0 h^2 g^2 / 2.

    Args:
      f_x: f(x).
      grad_norm: g = ||grad f(x)||.
      step: h >= 0, the scalar step along -grad f(x).
      L0, L1: the smoothness constants.

    Returns:
      The bound on f(x - h grad f(x)).

    References: docs/theory.md §1; Vankov et al. 2024 (arXiv:2410.10800), Hübler et al.
    2024. [secondary; checked numerically on x^4, cosh and x^6/6 in tests/test_theory.py]
    """
    _check_constants(L0, L1)
    g = jnp.asarray(grad_norm)
    s = jnp.asarray(step) * g
    return f_x - jnp.asarray(step) * g * g + (L0 + L1 * g) * s * s * _phi_over_t2(L1 * s)


def guaranteed_decrease(grad_norm, step, L0, L1):
    """f(x) - descent_bound(...): the decrease the phi-inequality guarantees for one step.

    Negative values mean the step is too long for the inequality to promise descent.

    References: docs/theory.md §1. [secondary; checked]
    """
    return -descent_bound(0.0, grad_norm, step, L0, L1)


# --------------------------------------------------------------------------- step rules h(g)


def gd_step(grad_norm, lr):
    """Plain gradient descent: h = lr whatever g is. References: docs/theory.md §2."""
    return jnp.broadcast_to(jnp.asarray(lr, dtype=jnp.result_type(float)),
                            jnp.broadcast_shapes(jnp.shape(grad_norm), jnp.shape(lr)))


def clipped_step(grad_norm, eta, gamma):
    """Clipped GD step h_c = min{eta, gamma * eta / g}.

    The same as optax.chain(optax.clip_by_global_norm(gamma), optax.sgd(eta)) up to optax's
    handling of g == gamma. At g = 0 the step is eta.

    References: Zhang et al. 2020, eq. (5). [paper]
    """
    g = jnp.asarray(grad_norm)
    return jnp.minimum(eta, _safe_div(gamma * jnp.asarray(eta), g))


def normalized_step(grad_norm, eta, beta):
    """Normalized GD step h_n = eta / (g + beta).

    References: Zhang et al. 2020, eq. (6). [paper]
    """
    return eta / (jnp.asarray(grad_norm) + beta)


def normalized_from_clipped(eta_c, gamma):
    """Normalized-GD parameters (eta_n, beta) equivalent to clipped GD (eta_c, gamma).

    With gamma * eta_c = eta_n and eta_c = eta_n / beta, 1/2 h_c <= h_n <= 2 h_c for every g.

    References: Zhang et al. 2020, section 3 [paper for the equivalence; the factors 1/2 and 2
    secondary, checked in tests/test_theory.py].
    """
    return gamma * jnp.asarray(eta_c), jnp.asarray(gamma) * 1.0


def beta_normalized_step(grad_norm, lr, power):
    """beta-normalized GD step h = lr / g^power (power in [0, 1]); lr at g = 0.

    References: Chen, Zhou, Liang, Lu, "Generalized-smooth nonconvex optimization is as
    efficient as smooth nonconvex optimization", ICML 2023. [code]
    """
    g = jnp.asarray(grad_norm)
    return lr / jnp.where(g > 0, g, 1.0) ** power


def inverse_step(grad_norm, L0, L1):
    """The local step 1 / (L0 + L1 g) that minimises the (L0,L1) quadratic model.

    References: docs/theory.md §2 (seed 004's summary of the paper's idea). [paper idea]
    """
    return _safe_div(1.0, L0 + L1 * jnp.asarray(grad_norm))


def vankov_star_step(grad_norm, L0, L1):
    """eta* = ln(1 + L1 g / (L0 + L1 g)) / (L1 g); tends to 1/L0 as L1 g -> 0.

    Computed as [log(1+u)/u] / (L0 + L1 g) with u = L1 g / (L0 + L1 g).

    References: Vankov, Rodomanov, Nedić, Sankar, Stich 2024 (arXiv:2410.10800).
    [secondary; per-step progress checked]
    """
    g = jnp.asarray(grad_norm)
    denom = L0 + L1 * g
    u = _safe_div(L1 * g, denom)
    u = jnp.where(jnp.isfinite(u), u, 0.0)
    return _log1p_over(u) * _safe_div(1.0, denom)


def vankov_si_step(grad_norm, L0, L1):
    """eta_si = 1 / (L0 + 1.5 L1 g).

    References: Vankov et al. 2024. [secondary; per-step progress checked]
    """
    return _safe_div(1.0, L0 + 1.5 * L1 * jnp.asarray(grad_norm))


def vankov_cl_step(grad_norm, L0, L1):
    """eta_cl = min{1 / (2 L0), 1 / (3 L1 g)} (a clipping-type rule).

    References: Vankov et al. 2024. [secondary; per-step progress checked]
    """
    g = jnp.asarray(grad_norm)
    return jnp.minimum(_safe_div(1.0, 2.0 * jnp.asarray(L0)), _safe_div(1.0, 3.0 * L1 * g))


L0L1_RULES = {
    "inverse": inverse_step,
    "star": vankov_star_step,
    "si": vankov_si_step,
    "cl": vankov_cl_step,
}
"""The (L0,L1)-aware step rules by name, as used by ``optimizers.l0l1_gd``."""

_PROGRESS_FACTOR = {"star": 1.0, "si": 1.0, "cl": 0.5}


def l0l1_step(grad_norm, L0, L1, rule: str):
    """Dispatch to one of ``L0L1_RULES`` by name."""
    validate.choice("rule", rule, tuple(L0L1_RULES))
    return L0L1_RULES[rule](grad_norm, L0, L1)


def vankov_progress(grad_norm, L0, L1, rule: str):
    """Guaranteed one-step decrease a * g^2 / (2 L0 + 3 L1 g) of Vankov's rules.

    a = 1 for "star" and "si", a = 1/2 for "cl".

    References: Vankov et al. 2024. [secondary; checked here on x^4, cosh, x^6/6]
    """
    validate.choice("rule", rule, tuple(_PROGRESS_FACTOR))
    g = jnp.asarray(grad_norm)
    return _PROGRESS_FACTOR[rule] * g * g / (2.0 * L0 + 3.0 * L1 * g)


def vankov_iteration_bound(F0, eps, L0, L1, rule: str):
    """Iterations K after which min_{k <= K} ||grad f(x_k)|| <= eps is guaranteed.

    Summing the per-step progress, while every g_k > eps each step removes more than
    a eps^2 / (2 L0 + 3 L1 eps) of F0, so K + 1 >= F0 (2 L0 + 3 L1 eps) / (a eps^2) suffices:
    K = ceil(F0 (2 L0 + 3 L1 eps) / (a eps^2)) - 1.

    References: Vankov et al. 2024 (follows from their per-step progress). [secondary]
    """
    validate.choice("rule", rule, tuple(_PROGRESS_FACTOR))
    validate.positive("eps", eps)
    a = _PROGRESS_FACTOR[rule]
    return jnp.ceil(F0 * (2.0 * L0 + 3.0 * L1 * eps) / (a * eps * eps)) - 1.0


# --------------------------------------------------------------------------- Zhang et al. 2020


def clipped_gd_parameters(L0, L1):
    """Theorem 3's clipped-GD parameters: eta_c = 1/(10 L0), gamma = min{10 L0, L0 / L1}.

    gamma = min{1/eta_c, 1/(10 L1 eta_c)}; with L1 = 0 it is 10 L0.

    Returns:
      (eta, gamma) as floats (or arrays when the inputs are arrays).

    References: Zhang et al. 2020, Theorem 3. [paper]
    """
    validate.positive("L0", L0)
    validate.nonnegative("L1", L1)
    eta = 1.0 / (10.0 * jnp.asarray(L0, dtype=float))
    gamma = jnp.minimum(10.0 * jnp.asarray(L0, dtype=float), _safe_div(L0, L1))
    if eta.ndim == 0 and gamma.ndim == 0:
        return float(eta), float(gamma)
    return eta, gamma


def theorem3_iteration_bound(F0, eps, L0, L1):
    """Clipped GD (Theorem 3 parameters): 20 L0 F0 / eps^2 + 20 max{1, L1^2} F0 / L0.

    References: Zhang et al. 2020, Theorem 3. Order O(L0 F0/eps^2 + L1^2 F0/L0) [paper,
    Remark 5]; the constants 20 are [recalled].
    """
    validate.positive("eps", eps)
    validate.positive("L0", L0)
    return 20.0 * L0 * F0 / eps**2 + 20.0 * jnp.maximum(1.0, jnp.asarray(L1) ** 2) * F0 / L0


def theorem4_lower_bound(F0, eps, L1, M):
    """Fixed-step GD lower bound: L1 M (F0 - 5 eps / 8) / (8 eps^2 (log M + 1)).

    Holds on some function of the class with L0 >= 1, L1 >= 1, M > 1, for every fixed step.

    References: Zhang et al. 2020, Theorem 4. Hypotheses [paper]; the expression [recalled].
    """
    validate.positive("eps", eps)
    return L1 * M * (F0 - 5.0 * eps / 8.0) / (8.0 * eps**2 * (jnp.log(M) + 1.0))


def theorem6_step(L0, L1, M):
    """Fixed GD step h = 1 / (2 (M L1 + L0)).

    References: Zhang et al. 2020, Theorem 6. [paper]
    """
    _check_constants(L0, L1)
    return 1.0 / (2.0 * (M * jnp.asarray(L1) + L0))


def theorem6_iteration_bound(F0, eps, L0, L1, M):
    """Fixed-step GD with Theorem 6's step: 4 (M L1 + L0) F0 / eps^2.

    References: Zhang et al. 2020, Theorem 6. Order O((M L1 + L0) F0 / eps^2) [paper]; the
    constant 4 [recalled: the usual form, unverified].
    """
    validate.positive("eps", eps)
    return 4.0 * (M * jnp.asarray(L1) + L0) * F0 / eps**2


def theorem7_eta(L0, L1, tau, T):
    """Clipped SGD: eta = min{1/(20 L0), 1/(128 L1 tau), 1/sqrt(T)}.

    References: Zhang et al. 2020, Theorem 7. [paper, as printed]
    """
    _check_constants(L0, L1)
    return jnp.minimum(
        jnp.minimum(_safe_div(1.0, 20.0 * jnp.asarray(L0)), _safe_div(1.0, 128.0 * L1 * tau)),
        1.0 / jnp.sqrt(jnp.asarray(T, dtype=float)),
    )


def theorem7_step(grad_norm, eta, L1, tau):
    """Clipped SGD step h = min{1 / (16 eta L1 (g + tau)), eta}.

    References: Zhang et al. 2020, Theorem 7. [paper, as printed; the eta in the first
    denominator may be a typo in the paper]
    """
    return jnp.minimum(_safe_div(1.0, 16.0 * eta * L1 * (jnp.asarray(grad_norm) + tau)), eta)


def theorem7_step_without_eta(grad_norm, eta, L1, tau):
    """Theorem 7's step with the suspected typo removed: h = min{1 / (16 L1 (g + tau)), eta}.

    The printed rule divides by 16 eta L1 (g + tau); with eta <= 1/(20 L0) that makes the
    clipping threshold grow as eta shrinks, which is unusual. This variant is measured beside
    the printed one; neither is asserted to be the intended rule.

    References: Zhang et al. 2020, Theorem 7 [paper, modified here: not a published rule].
    """
    return jnp.minimum(_safe_div(1.0, 16.0 * L1 * (jnp.asarray(grad_norm) + tau)), eta)


def theorem8_step(T, L1, M, tau):
    """SGD fixed step h = min{1/sqrt(T), 1/(L1 (M + tau))}.

    References: Zhang et al. 2020, Theorem 8. [paper]
    """
    return jnp.minimum(1.0 / jnp.sqrt(jnp.asarray(T, dtype=float)), _safe_div(1.0, L1 * (M + tau)))
