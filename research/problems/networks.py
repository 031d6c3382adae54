"""Small networks as ``Problem``s, with pytree parameters and packaged data (no download)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from research import _validate
from research.problems.base import Problem, register


def _uniform(rng, shape, limit):
    return rng.uniform(-limit, limit, size=shape)


def mlp_apply(params, X):
    """Dense(hidden, relu) -> Dense(1), as in seed 000."""
    h = jax.nn.relu(X @ params["w1"] + params["b1"])
    return (h @ params["w2"] + params["b2"])[..., 0]


@register("mlp_regression")
@functools.cache
def mlp_regression(hidden: int = 25, seed: int = 0, batch_size: int | None = None) -> Problem:
    """Mean squared error of an MLP on seed 000's regression data.

    Data: scikit-learn ``make_regression(n_samples=1000, n_features=20, noise=0.1,
    random_state=1)``; the first 500 rows train (``fn``), the rest test (``extra``).
    Model: Dense(hidden, relu, he_uniform) -> Dense(1, glorot_uniform), biases zero, Keras's
    initialisers with a NumPy generator seeded by ``seed``. Parameters are the pytree
    {"w1", "b1", "w2", "b2"}. With ``batch_size`` the problem is stochastic: a minibatch of
    rows drawn with replacement per step.

    No (L0, L1) are stated: they are for the smoothness estimators to measure. f* = 0 is only
    a lower bound (f_star_exact = False). ReLU makes f piecewise smooth; its Hessian exists
    almost everywhere.

    References: seed 000 (Keras gradient clipping tutorial); theory.md section 7.
    """
    from sklearn.datasets import make_regression

    _validate.positive_int("hidden", hidden)
    if batch_size is not None:
        _validate.positive_int("batch_size", batch_size)
    X, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=1)
    X_tr, y_tr = jnp.asarray(X[:500]), jnp.asarray(y[:500])
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(_uniform(rng, (20, hidden), np.sqrt(6.0 / 20))),
        "b1": jnp.zeros(hidden),
        "w2": jnp.asarray(_uniform(rng, (hidden, 1), np.sqrt(6.0 / (hidden + 1)))),
        "b2": jnp.zeros(1),
    }

    def fn(p):
        return jnp.mean((mlp_apply(p, X_tr) - y_tr) ** 2)

    stochastic_fn = None
    if batch_size is not None:
        def stochastic_fn(p, key):
            idx = jax.random.randint(key, (batch_size,), 0, X_tr.shape[0])
            return jnp.mean((mlp_apply(p, X_tr[idx]) - y_tr[idx]) ** 2)

    return Problem(
        name="mlp_regression",
        fn=fn,
        f_star=0.0,
        f_star_exact=False,
        x0=params,
        stochastic_fn=stochastic_fn,
        description=f"MLP 20-{hidden}-1 (relu), MSE on make_regression, 500 training rows",
        extra={"X_test": jnp.asarray(X[500:]), "y_test": jnp.asarray(y[500:])},
    )
