"""The heavy-tailed noise of problems.noisy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import problems


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
