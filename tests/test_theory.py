"""Theory: the phi-inequality and Vankov's per-step progress hold on every problem with stated
constants, over many points and steps (hypothesis, float64); the step rules relate as stated."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from research import theory
from research.clipping import global_norm
from tests.conftest import CONSTANT_PROBLEMS, ids

# Relative float tolerance for comparing f values computed in float64.
RTOL = 1e-12


def _point(p, direction_seed: int, log_scale: float):
    rng = np.random.default_rng(direction_seed)
    d = rng.standard_normal(p.x0.size)
    x = jnp.asarray(d / np.linalg.norm(d) * 10.0**log_scale)
    return x + p.x0 if p.name == "logistic" else x


def _max_log_scale(p):
    return 1.0 if p.name.startswith(("power", "sextic")) else 1.5


@pytest.mark.parametrize("p", CONSTANT_PROBLEMS, ids=ids(CONSTANT_PROBLEMS))
@given(seed=st.integers(0, 2**31 - 1), log_scale=st.floats(-3.0, 1.5),
       log_step=st.floats(-8.0, 1.0))
def test_phi_inequality(p, seed, log_scale, log_step):
    """f(x - h g) <= descent_bound(f(x), ||g||, h, L0, L1) for steps from 1e-8 up to
    10 / (L0 + L1 ||g||)."""
    x = _point(p, seed, min(log_scale, _max_log_scale(p)))
    f, actual, bound = (float(v) for v in _phi_check(p)(x, log_step))
    assert actual <= bound + RTOL * (abs(f) + abs(bound))


@functools.cache
def _phi_check(p):
    """(f(x), f(x - h g), descent_bound) at step h = 10^log_step / (L0 + L1 ||g||), compiled
    once per problem (the examples then cost microseconds, not a re-trace each)."""

    @jax.jit
    def check(x, log_step):
        f, g = jax.value_and_grad(p.fn)(x)
        gn = global_norm(g)
        h = 10.0**log_step / (p.L0 + p.L1 * gn)
        return f, p.fn(x - h * g), theory.descent_bound(f, gn, h, p.L0, p.L1)

    return check


VANKOV_RULES = ("star", "si", "cl")


@pytest.mark.parametrize("rule", VANKOV_RULES)
@pytest.mark.parametrize("p", CONSTANT_PROBLEMS, ids=ids(CONSTANT_PROBLEMS))
@given(seed=st.integers(0, 2**31 - 1), log_scale=st.floats(-3.0, 1.5))
def test_vankov_progress(p, rule, seed, log_scale):
    """f(x) - f(x - eta(g) g) >= a ||g||^2 / (2 L0 + 3 L1 ||g||) for eta*, eta_si, eta_cl."""
    x = _point(p, seed, min(log_scale, _max_log_scale(p)))
    f, decrease, promised = (np.asarray(v) for v in _progress_check(p)(x))
    i = VANKOV_RULES.index(rule)
    assert float(decrease[i]) >= float(promised[i]) - RTOL * abs(float(f))


@functools.cache
def _progress_check(p):
    """(f(x), per rule of VANKOV_RULES: f(x) - f(x - eta(g) g) and the promised progress),
    compiled once per problem for the three rules (not once per problem and rule)."""

    @jax.jit
    def check(x):
        f, g = jax.value_and_grad(p.fn)(x)
        gn = global_norm(g)
        dec, prom = [], []
        for rule in VANKOV_RULES:
            h = theory.l0l1_step(gn, p.L0, p.L1, rule)
            dec.append(f - p.fn(x - h * g))
            prom.append(theory.vankov_progress(gn, p.L0, p.L1, rule))
        return f, jnp.stack(dec), jnp.stack(prom)

    return check


def test_phi_inequality_can_fail():
    """The check is not vacuous: with constants too small for x^4 it is violated."""
    x = jnp.array([3.0])
    f, g = jax.value_and_grad(lambda x: jnp.sum(x**4))(x)
    gn = global_norm(g)
    h = 1.0 / (0.1 + 0.1 * gn)
    assert float(jnp.sum((x - h * g) ** 4)) > float(theory.descent_bound(f, gn, h, 0.1, 0.1))


g_norms = st.floats(0.0, 1e8, allow_nan=False)
consts = st.floats(1e-3, 1e3)


@given(g_norms, consts, consts)
def test_rule_order(g, L0, L1):
    """eta_cl <= eta_si <= eta* and eta_si <= 1/(L0 + L1 g) (Vankov et al.)."""
    cl = float(theory.vankov_cl_step(g, L0, L1))
    si = float(theory.vankov_si_step(g, L0, L1))
    star = float(theory.vankov_star_step(g, L0, L1))
    inv = float(theory.inverse_step(g, L0, L1))
    tol = 1e-13
    assert cl <= si * (1 + tol) and si <= star * (1 + tol) and si <= inv * (1 + tol)


def test_star_step_limits():
    # eta* -> 1/L0 as L1 g -> 0, and equals ln(1 + u)/(L1 g) directly otherwise
    assert float(theory.vankov_star_step(0.0, 2.0, 3.0)) == pytest.approx(0.5, rel=1e-15)
    assert float(theory.vankov_star_step(1e-12, 2.0, 3.0)) == pytest.approx(0.5, rel=1e-11)
    g, L0, L1 = 7.0, 2.0, 3.0
    direct = np.log(1 + L1 * g / (L0 + L1 * g)) / (L1 * g)
    assert float(theory.vankov_star_step(g, L0, L1)) == pytest.approx(direct, rel=1e-14)


@given(g_norms, st.floats(1e-4, 10.0), st.floats(1e-3, 1e3))
def test_normalized_within_factor_two_of_clipped(g, eta_c, gamma):
    eta_n, beta = theory.normalized_from_clipped(eta_c, gamma)
    hc = float(theory.clipped_step(g, eta_c, gamma))
    hn = float(theory.normalized_step(g, eta_n, beta))
    assert 0.5 * hc <= hn * (1 + 1e-14) and hn <= 2 * hc * (1 + 1e-14)


def test_clipped_step_values():
    assert float(theory.clipped_step(0.0, 0.1, 2.0)) == 0.1
    assert float(theory.clipped_step(1.0, 0.1, 2.0)) == 0.1
    assert float(theory.clipped_step(40.0, 0.1, 2.0)) == pytest.approx(0.1 * 2.0 / 40.0, rel=1e-15)
    assert float(theory.clipped_step(1e300, 0.1, jnp.inf)) == 0.1


def test_clipped_gd_parameters_theorem3():
    eta, gamma = theory.clipped_gd_parameters(4.0, 2.0)
    assert (eta, gamma) == (pytest.approx(0.025), pytest.approx(2.0))  # min{40, 4/2}
    eta, gamma = theory.clipped_gd_parameters(1.0, 0.05)
    assert gamma == pytest.approx(10.0)  # min{10, 20}
    eta, gamma = theory.clipped_gd_parameters(3.0, 0.0)
    assert gamma == pytest.approx(30.0)
    e, gm = theory.clipped_gd_parameters(jnp.array([1.0, 4.0]), 2.0)
    assert e.shape == (2,) and np.allclose(gm, [0.5, 2.0])


def test_descent_bound_L1_zero_is_the_L_smooth_bound():
    f, g, h, L = 3.0, 2.0, 0.1, 5.0
    assert float(theory.descent_bound(f, g, h, L, 0.0)) == pytest.approx(
        f - h * g * g + L * h * h * g * g / 2, rel=1e-15)
    # continuity in L1 at 0
    assert float(theory.descent_bound(f, g, h, L, 1e-9)) == pytest.approx(
        float(theory.descent_bound(f, g, h, L, 0.0)), rel=1e-9)


def test_bounds_formulae():
    F0, eps, L0, L1, M = 10.0, 0.1, 2.0, 3.0, 50.0
    assert float(theory.theorem3_iteration_bound(F0, eps, L0, L1)) == pytest.approx(
        20 * L0 * F0 / eps**2 + 20 * L1**2 * F0 / L0)
    assert float(theory.theorem6_step(L0, L1, M)) == pytest.approx(1 / (2 * (M * L1 + L0)))
    assert float(theory.theorem6_iteration_bound(F0, eps, L0, L1, M)) == pytest.approx(
        4 * (M * L1 + L0) * F0 / eps**2)
    assert float(theory.theorem4_lower_bound(F0, eps, L1, M)) == pytest.approx(
        L1 * M * (F0 - 5 * eps / 8) / (8 * eps**2 * (np.log(M) + 1)))
    K = float(theory.vankov_iteration_bound(F0, eps, L0, L1, "si"))
    assert K == np.ceil(F0 * (2 * L0 + 3 * L1 * eps) / eps**2) - 1
    assert float(theory.vankov_iteration_bound(F0, eps, L0, L1, "cl")) == 2 * (K + 1) - 1
    eta = float(theory.theorem7_eta(L0, L1, 0.5, 10_000))
    assert eta == pytest.approx(min(1 / 40, 1 / (128 * 3 * 0.5), 1 / 100))
    assert float(theory.theorem7_step(2.0, eta, L1, 0.5)) == pytest.approx(
        min(1 / (16 * eta * L1 * 2.5), eta))
    assert float(theory.theorem8_step(100, L1, M, 0.5)) == pytest.approx(min(0.1, 1 / (3 * 50.5)))


def test_bad_input():
    with pytest.raises(ValueError, match="L0 must be"):
        theory.descent_bound(1.0, 1.0, 0.1, -1.0, 1.0)
    with pytest.raises(ValueError, match="L1 must be"):
        theory.clipped_gd_parameters(1.0, -2.0)
    with pytest.raises(ValueError, match="rule must be one of"):
        theory.l0l1_step(1.0, 1.0, 1.0, "newton")
    with pytest.raises(ValueError, match="eps must be"):
        theory.vankov_iteration_bound(1.0, 0.0, 1.0, 1.0, "si")
