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


def regression_data():
    """Seed 000's data: make_regression(1000, 20, noise 0.1, random_state 1), split 500/500.

    Returns:
      (X_train, y_train, X_test, y_test) as float64 JAX arrays.
    """
    from sklearn.datasets import make_regression

    X, y = make_regression(n_samples=1000, n_features=20, noise=0.1, random_state=1)
    return tuple(jnp.asarray(a) for a in (X[:500], y[:500], X[500:], y[500:]))


def mlp_init(seed: int, hidden: int = 25, n_in: int = 20) -> dict:
    """Keras's initialisation of Dense(hidden, he_uniform) -> Dense(1, glorot_uniform), zero
    biases, drawn from a NumPy generator seeded by ``seed``."""
    rng = np.random.default_rng(seed)
    return {
        "w1": jnp.asarray(_uniform(rng, (n_in, hidden), np.sqrt(6.0 / n_in))),
        "b1": jnp.zeros(hidden),
        "w2": jnp.asarray(_uniform(rng, (hidden, 1), np.sqrt(6.0 / (hidden + 1)))),
        "b2": jnp.zeros(1),
    }


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
    _validate.positive_int("hidden", hidden)
    if batch_size is not None:
        _validate.positive_int("batch_size", batch_size)
    X_tr, y_tr, X_te, y_te = regression_data()
    params = mlp_init(seed, hidden)

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
        extra={"X_test": X_te, "y_test": y_te},
    )


def adding_data(n: int, length: int = 50, seed: int = 0):
    """The adding problem (Hochreiter and Schmidhuber 1997): inputs (value, marker) per time
    step, values uniform in [0, 1], one marker in each half of the sequence; the target is the
    sum of the two marked values.

    Returns:
      (X, y) with X of shape (n, length, 2) and y of shape (n,), float64.
    """
    _validate.positive_int("n", n)
    _validate.positive_int("length", length, minimum=2)
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    X = np.stack([values, markers], axis=-1)
    y = values[np.arange(n), first] + values[np.arange(n), second]
    return jnp.asarray(X), jnp.asarray(y)


def rnn_init(seed: int, hidden: int = 32, n_in: int = 2, recurrent_scale: float = 1.0) -> dict:
    """A vanilla tanh RNN: input weights glorot-uniform, recurrent weights a random orthogonal
    matrix times ``recurrent_scale`` (above 1 invites exploding gradients), zero biases, and a
    linear read-out of the last hidden state."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    return {
        "wx": jnp.asarray(_uniform(rng, (n_in, hidden), np.sqrt(6.0 / (n_in + hidden)))),
        "wh": jnp.asarray(q * recurrent_scale),
        "b": jnp.zeros(hidden),
        "wo": jnp.asarray(_uniform(rng, (hidden,), np.sqrt(6.0 / (hidden + 1)))),
        "bo": jnp.zeros(()),
    }


def rnn_apply(params, X):
    """Prediction of the tanh RNN for inputs X of shape (batch, length, n_in)."""

    def step(h, x_t):
        return jnp.tanh(x_t @ params["wx"] + h @ params["wh"] + params["b"]), None

    h0 = jnp.zeros((X.shape[0], params["wh"].shape[0]), X.dtype)
    h, _ = jax.lax.scan(step, h0, jnp.swapaxes(X, 0, 1))
    return h @ params["wo"] + params["bo"]


def sigmoid_chain_loss(weights, x: float = 0.1, target: float = 1.0):
    """Seed 002's chain: Linear(1, 1, no bias) then sigmoid, once per weight; MSE to target.

    Args:
      weights: a sequence of scalar weights (a pytree: a list).
    """
    h = jnp.asarray(x, dtype=jnp.result_type(float))
    for w in weights:
        h = jax.nn.sigmoid(w * h)
    return (h - target) ** 2
