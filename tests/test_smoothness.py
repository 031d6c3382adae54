"""Smoothness estimators against closed forms, and the envelope fit against known envelopes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
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
# found by hypothesis: the LP's tolerance left the envelope 1e-8 below the point (0, 1e-8)
@example(L0=1e-08, L1=2.0, seed=0)
def test_envelope_recovers_known_constants(L0, L1, seed):
    rng = np.random.default_rng(seed)
    g = np.concatenate([[0.0, 50.0], rng.uniform(0, 50, 60)])
    L = L0 + L1 * g
    L[2:] *= rng.uniform(0.3, 1.0, 60)  # points under the envelope, two on it at the ends
    a, b = smoothness.fit_envelope(g, L)
    assert a == pytest.approx(L0, rel=1e-6, abs=1e-6 * (1 + L1 * 50))
    assert b == pytest.approx(L1, rel=1e-6, abs=1e-8 * (1 + L0))
    assert np.all(a + b * g >= L * (1 - 1e-9) - 1e-9)
    assert np.all(a + b * g >= L)  # and exactly, as fit_envelope promises


@given(st.integers(-30, 30), st.integers(-30, 30), st.integers(0, 2**31 - 1))
def test_envelope_covers_every_point_exactly_at_any_scale(kg, kL, seed):
    """Clouds of points with g and L at scales 10^-30 ... 10^30: no point above the line."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(0, 1, 40) * 10.0**kg
    L = (rng.uniform(0, 1, 40) + rng.uniform(0, 3) * g / 10.0**kg) * 10.0**kL
    a, b = smoothness.fit_envelope(g, L)
    assert a >= 0 and b >= 0
    assert np.all(a + b * g >= L)


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
    assert out["spearman_p"] < 1e-10
    rng = np.random.default_rng(0)
    noise = smoothness.log_correlations(g, np.exp(rng.standard_normal(30)))
    assert noise["spearman_p"] > 0.01 or abs(noise["spearman"]) > 0.45


def test_along_training_logs_exact_hessian_and_bounded_estimates():
    from research import optimizers

    # x^4 from 3: ||H|| = 12 x^2 = 12 (|g| / 4)^(2/3); descending towards 0 the Hessian only
    # shrinks along each step, so the trajectory estimate stays under L0 + L1 |g| too.
    p = problems.quartic()
    out = smoothness.along_training(p, optimizers.clipped_gd(0.05, 1.0), 300, 10,
                                    x0=jnp.array([3.0]))
    g = out["grad_norm"]
    np.testing.assert_allclose(out["smoothness_hess"], 12 * np.cbrt(g / 4) ** 2, rtol=1e-9)
    bound = p.L0 + p.L1 * g
    assert np.all(out["smoothness_traj"] <= bound * (1 + 1e-12))
    assert np.all(out["smoothness_hess"] <= bound * (1 + 1e-12))
    assert out["iteration"].tolist() == list(range(0, 300, 10)) and out["diverged_at"] == -1
    # cosh in 3-D: ||H|| = max cosh(x_i), warm-started power iteration finds it
    c = problems.cosh(dim=3)
    out = smoothness.along_training(c, optimizers.gd(0.05), 200, 20,
                                    x0=jnp.array([2.0, -1.0, 0.5]))
    assert np.all(out["smoothness_hess"] <= c.L0 + c.L1 * out["grad_norm"] + 1e-9)
    np.testing.assert_allclose(out["smoothness_hess"][0], np.cosh(2.0), rtol=1e-6)


def test_along_training_on_a_quadratic_and_divergence_is_recorded():
    from research import optimizers

    q = problems.quadratic(dim=4, condition=10.0)
    lam = float(jnp.max(jnp.linalg.eigvalsh(jax.hessian(q.fn)(q.x0))))
    out = smoothness.along_training(q, optimizers.gd(0.01), 100, 10)
    np.testing.assert_allclose(out["smoothness_hess"], lam, rtol=1e-8)
    assert np.all(out["smoothness_traj"] <= lam * (1 + 1e-9))
    # GD with a step far above 2 / lambda diverges; the run freezes and says when
    boom = smoothness.along_training(problems.cosh(), optimizers.gd(5.0), 100, 10,
                                     x0=jnp.array([3.0]))
    assert boom["diverged_at"] >= 0 and np.isnan(boom["loss"][-1])
    assert np.isfinite(boom["loss"][0]) and np.all(np.isfinite(jax.tree_util.tree_leaves(
        boom["x"])[0]))


def test_along_training_rejects_bad_arguments():
    from research import optimizers

    with pytest.raises(ValueError, match="log_every must divide steps"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 7)
    with pytest.raises(ValueError, match="hvp_iters"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 10, hvp_iters=0)
    with pytest.raises(ValueError, match="x0 must be finite"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 10,
                                  x0=jnp.array([jnp.nan]))


NETWORKS = [
    lambda: problems.digits(hidden=8),
    lambda: problems.adding("rnn", hidden=6, length=8, n=16),
    lambda: problems.adding("lstm", hidden=5, length=8, n=16),
]


@pytest.mark.parametrize("make", NETWORKS)
def test_network_problems_have_exact_gradients(make):
    p = make()
    assert problems.gradient_check(p.fn, p.x0, directions=12) < 1e-6


@pytest.mark.parametrize("make", [NETWORKS[0], *(pytest.param(m, marks=pytest.mark.slow)
                                                 for m in NETWORKS[1:])])
def test_network_problems_train_along_training(make):
    """The smoothness estimators' training loop on each network (its compile dominates: the
    recurrent ones run in make test-all)."""
    from research import optimizers

    p = make()
    out = smoothness.along_training(p, optimizers.clipped_gd(0.5, 1.0), 200, 50)
    assert out["diverged_at"] == -1 and out["loss"][-1] < out["loss"][0]


def test_network_problems_minibatch_and_bad_names():
    p = problems.digits(hidden=8, batch_size=16)
    a = p.stochastic_fn(p.x0, jax.random.PRNGKey(0))
    b = p.stochastic_fn(p.x0, jax.random.PRNGKey(1))
    assert a != b and abs(float(p.fn(p.x0)) - np.log(10)) < 1.0
    with pytest.raises(ValueError, match="cell must be one of"):
        problems.adding("gru")
    assert problems.digits().extra["accuracy"](problems.digits().x0) < 0.3
