"""The stochastic experiment's every-step counters against a plain NumPy loop, the heavy-tailed
noise of problems.noisy, and where Theorem 7's step can clip under bounded noise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import stochastic
from research import optimizers, problems, theory


def _numpy_loop(x0, noises, eta, tau, L1, steps):
    """Clipped SGD with Theorem 7's step without eta, on cosh, in plain NumPy: (steps clipped,
    mean of |sinh x_t| over t = 0..steps)."""
    x, clipped, norms = float(x0), 0, []
    for t in range(steps):
        norms.append(abs(np.sinh(x)))
        g = np.sinh(x) + noises[t]
        cap = 1.0 / (16 * L1 * (abs(g) + tau))
        clipped += cap < eta
        x -= min(cap, eta) * g
    norms.append(abs(np.sinh(x)))
    return clipped, float(np.mean(norms))


def _noises(p, key, batch, steps):
    """The draws the engine's loop makes: one key per trajectory, split once per step; the
    noise is the sampled gradient at 0, where cosh's own gradient is 0."""
    out = np.zeros((batch, steps))
    draw = jax.grad(p.stochastic_fn)
    for i, k in enumerate(jax.random.split(jax.random.PRNGKey(key), batch)):
        for t in range(steps):
            k, sub = jax.random.split(k)
            out[i, t] = float(draw(jnp.zeros(1), sub)[0])
    return out


@pytest.mark.parametrize("every", [1, 3])
def test_clipped_share_is_counted_at_every_step(every):
    p = problems.noisy("cosh", tau=0.5, noise="uniform")
    eta, tau, L1, steps = 0.05, 0.5, 1.0, 9
    x0 = jnp.array([[0.5], [0.9], [-0.3]])
    res = stochastic.tally(p, optimizers.clipped_sgd_thm7(eta, L1, tau, printed=False), x0,
                           steps, every, key=4, nominal=eta)
    noises = _noises(p, 4, 3, steps)
    want = [_numpy_loop(x0[i, 0], noises[i], eta, tau, L1, steps) for i in range(3)]
    assert list(res["clipped"]) == [c for c, _ in want]
    np.testing.assert_allclose(res["average"], [a for _, a in want], rtol=1e-12)
    assert 0 < res["clipped"].sum() < 3 * steps  # the test needs clipped and unclipped steps
    assert res["curve"].shape == (3, steps // every + 1)


def test_plain_sgd_counts_no_clipped_step():
    p = problems.noisy("cosh", tau=1.0, noise="heavy")
    res = stochastic.tally(p, optimizers.gd(0.01), jnp.zeros((4, 1)), 30, 10, key=1,
                           nominal=0.01)
    assert res["clipped"].sum() == 0 and res["alive"].all()


def test_a_diverged_trajectory_has_an_infinite_average():
    p = problems.noisy("cosh", tau=1.0, noise="uniform")
    res = stochastic.tally(p, optimizers.gd(5.0), jnp.array([[0.1], [30.0]]), 20, 5, key=0,
                           nominal=5.0)
    assert not res["alive"][1] and res["average"][1] == np.inf


def test_heavy_noise_has_lomax_tails_a_sign_and_mean_zero():
    p = problems.noisy("quartic", tau=2.0, noise="heavy", alpha=1.5, dim=4)
    b = 2.0 / 2  # the per-coordinate scale tau / sqrt(d)
    keys = jax.random.split(jax.random.PRNGKey(3), 50_000)
    x = jnp.array([0.5, -1.0, 2.0, 0.0])
    g = jax.jit(jax.vmap(jax.grad(p.stochastic_fn), in_axes=(None, 0)))(x, keys)
    xi = np.asarray(g - jax.grad(p.fn)(x)).ravel()
    n = xi.size
    assert np.all(np.isfinite(xi))
    for s in (0.5 * b, b, 5 * b, 20 * b):
        want = (1 + s / b) ** -1.5
        got = np.mean(np.abs(xi) > s)
        assert abs(got - want) < 4 * np.sqrt(want * (1 - want) / n), (s, got, want)
    assert abs(np.mean(xi > 0) - 0.5) < 4 * np.sqrt(0.25 / n)
    assert p.extra["alpha"] == 1.5 and p.name.endswith("a1.5")
    # with a finite variance (alpha 3) the sample mean settles on 0
    q = problems.noisy("cosh", tau=1.0, noise="heavy", alpha=3.0)
    z = np.asarray(jax.vmap(jax.grad(q.stochastic_fn), in_axes=(None, 0))(jnp.zeros(1), keys))
    assert abs(z.mean()) < 4 * z.std() / np.sqrt(z.size)


def test_heavy_noise_needs_a_finite_mean():
    with pytest.raises(ValueError, match="alpha must exceed 1"):
        problems.noisy("cosh", noise="heavy", alpha=1.0)


@pytest.mark.parametrize("seed", range(5))
def test_under_bounded_noise_theorem7_clips_only_above_six_tau(seed):
    """Theorem 7's eta puts both variants' threshold on g + tau at 8 tau or more, and
    g <= ||grad f|| + tau under A5: no clipping where ||grad f|| <= 6 tau."""
    rng = np.random.default_rng(seed)
    L0, L1, tau = 10.0 ** rng.uniform(-3, 3, 3)
    T = int(10 ** rng.uniform(0, 6))
    eta = float(theory.theorem7_eta(L0, L1, tau, T))
    for rule in (theory.theorem7_step, theory.theorem7_step_without_eta):
        g = np.linspace(0, 7 * tau, 50) * (1 - 1e-12)  # ||grad f|| <= 6 tau, plus the noise
        assert np.all(np.asarray(rule(g, eta, L1, tau)) == eta), (rule.__name__, L0, L1, tau, T)
