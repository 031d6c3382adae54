"""Smoothness estimators against closed forms, and the envelope fit against known envelopes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from research import problems, smoothness


def test_both_estimators_give_lambda_max_on_a_quadratic():
    q = problems.quadratic(dim=6, condition=25.0)
    x = jnp.arange(1.0, 7.0)
    assert float(smoothness.hessian_norm(q.fn, x)) == pytest.approx(25.0, rel=1e-8)
    # the trajectory estimator equals ||A d|| / ||d||, which is lambda_max along the top
    # eigenvector; along any d it never exceeds it
    A = np.asarray(q.extra["A"])
    top = np.linalg.eigh(A)[1][:, -1]
    est = smoothness.trajectory_smoothness(jax.grad(q.fn), x, x + jnp.asarray(top))
    assert float(est) == pytest.approx(25.0, rel=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = jnp.asarray(rng.standard_normal(6))
        assert float(smoothness.trajectory_smoothness(jax.grad(q.fn), x, x + d)) <= 25 * (1 + 1e-12)


@pytest.mark.parametrize("x", [0.1, 1.0, 3.0, -7.0])
def test_hessian_norm_closed_forms(x):
    assert float(smoothness.hessian_norm(problems.quartic().fn, jnp.array([x]))) == \
        pytest.approx(12 * x * x, rel=1e-10)
    assert float(smoothness.hessian_norm(problems.cosh().fn, jnp.array([x]))) == \
        pytest.approx(np.cosh(x), rel=1e-10)


def test_hessian_norm_on_pytrees():
    def fn(p):
        return jnp.sum(p["a"] ** 2) * 1.5 + 4.0 * jnp.sum(p["b"] ** 2)

    assert float(smoothness.hessian_norm(fn, {"a": jnp.ones(3), "b": jnp.ones((2, 2))})) == \
        pytest.approx(8.0, rel=1e-8)


def test_trajectory_estimator_alpha_grid_and_zero_step():
    f = problems.quartic().fn
    x, y = jnp.array([1.0]), jnp.array([0.0])
    mid = float(smoothness.trajectory_smoothness(jax.grad(f), x, y))
    # ||f'(x + d/2) - f'(x)|| / (|d|/2) with f' = 4x^3: (4 - 0.5) / 0.5 = 7
    assert mid == pytest.approx(7.0, rel=1e-14)
    grid = float(smoothness.trajectory_smoothness(jax.grad(f), x, y, alphas=(0.0, 0.5, 0.9)))
    assert grid == pytest.approx(max(4.0, 7.0, (4 - 4 * 0.9**3) / 0.1), rel=1e-12)
    assert np.isnan(float(smoothness.trajectory_smoothness(jax.grad(f), x, x)))


@given(st.floats(0.0, 100.0), st.floats(0.0, 10.0), st.integers(0, 2**31 - 1))
def test_envelope_recovers_known_constants(L0, L1, seed):
    rng = np.random.default_rng(seed)
    g = np.concatenate([[0.0, 50.0], rng.uniform(0, 50, 60)])
    L = L0 + L1 * g
    L[2:] *= rng.uniform(0.3, 1.0, 60)  # points under the envelope, two on it at the ends
    a, b = smoothness.fit_envelope(g, L)
    assert a == pytest.approx(L0, rel=1e-6, abs=1e-6 * (1 + L1 * 50))
    assert b == pytest.approx(L1, rel=1e-6, abs=1e-8 * (1 + L0))
    assert np.all(a + b * g >= L * (1 - 1e-9) - 1e-9)


def test_no_estimate_exceeds_the_stated_envelope():
    for p in (problems.quartic(), problems.cosh(), problems.sextic()):
        xs = jnp.linspace(-6.0, 6.0, 41)[:, None]
        h = jax.vmap(lambda x, p=p: smoothness.hessian_norm(p.fn, x))(xs)
        g = jnp.abs(jax.vmap(jax.grad(p.fn))(xs)[:, 0])
        assert np.all(np.asarray(h) <= (p.L0 + p.L1 * np.asarray(g)) * (1 + 1e-12))
        steps = xs[1:] - xs[:-1]
        traj = jax.vmap(lambda a, d, p=p: smoothness.trajectory_smoothness(
            jax.grad(p.fn), a, a + d))(xs[:-1], steps)
        # along a step the secant ratio is an average of f'' over the step: bounded by the
        # envelope at the step's larger-gradient end
        gmax = jnp.maximum(g[:-1], g[1:])
        assert np.all(np.asarray(traj) <= np.asarray(p.L0 + p.L1 * gmax) * (1 + 1e-12))


def test_log_correlations():
    g = np.geomspace(1, 100, 30)
    out = smoothness.log_correlations(g, 3 * g**0.5)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["slope"] == pytest.approx(0.5) and out["n"] == 30
    neg = smoothness.log_correlations(g, 1 / g)
    assert neg["pearson"] == pytest.approx(-1.0) and neg["slope"] == pytest.approx(-1.0)
    assert np.isnan(smoothness.log_correlations([1.0, 2.0], [1.0, 2.0])["pearson"])
