"""Small networks as ``Problem``s, with pytree parameters and packaged data (no download)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from research import validate
from research.problems.base import Problem, register


def uniform(rng, shape, limit):
    """A NumPy array uniform in [-limit, limit] (glorot-uniform when limit = sqrt(6/fan))."""
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
        "w1": jnp.asarray(uniform(rng, (n_in, hidden), np.sqrt(6.0 / n_in))),
        "b1": jnp.zeros(hidden),
        "w2": jnp.asarray(uniform(rng, (hidden, 1), np.sqrt(6.0 / (hidden + 1)))),
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

    References: seed 000 (Keras gradient clipping tutorial); docs/theory.md §7.
    """
    validate.positive_int("hidden", hidden)
    if batch_size is not None:
        validate.positive_int("batch_size", batch_size)
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
    validate.positive_int("n", n)
    validate.positive_int("length", length, minimum=2)
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
        "wx": jnp.asarray(uniform(rng, (n_in, hidden), np.sqrt(6.0 / (n_in + hidden)))),
        "wh": jnp.asarray(q * recurrent_scale),
        "b": jnp.zeros(hidden),
        "wo": jnp.asarray(uniform(rng, (hidden,), np.sqrt(6.0 / (hidden + 1)))),
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


def digits_data():
    """scikit-learn's packaged 8x8 digits (1,797 images, 10 classes), pixels scaled to [0, 1],
    split 1,500 train / 297 test in the packaged order.

    Returns:
      (X_train, y_train, X_test, y_test); X float64 of shape (n, 64), y int32 labels.
    """
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return (jnp.asarray(X[:1500]), jnp.asarray(y[:1500], dtype=jnp.int32),
            jnp.asarray(X[1500:]), jnp.asarray(y[1500:], dtype=jnp.int32))


def classifier_apply(params, X):
    """Dense(hidden, gelu) -> Dense(hidden, gelu) -> Dense(10): the logits."""
    h = jax.nn.gelu(X @ params["w1"] + params["b1"])
    h = jax.nn.gelu(h @ params["w2"] + params["b2"])
    return h @ params["w3"] + params["b3"]


def minibatch(loss, n: int, batch_size: int | None):
    """The stochastic f_hat: ``loss`` on rows drawn with replacement, or None (full batch)."""
    if batch_size is None:
        return None
    validate.positive_int("batch_size", batch_size)

    def stochastic_fn(p, key):
        return loss(p, jax.random.randint(key, (batch_size,), 0, n))

    return stochastic_fn


@register("digits")
@functools.cache
def digits(hidden: int = 32, seed: int = 0, batch_size: int | None = None) -> Problem:
    """Softmax cross-entropy of a 64-hidden-hidden-10 GELU classifier on scikit-learn's
    ``load_digits``: the image-classification stand-in for ResNet20 on CIFAR-10.

    GELU rather than ReLU makes f twice differentiable everywhere, so the Hessian that the
    smoothness estimators measure exists at every iterate (with ReLU a finite-difference
    step crosses kinks and the Hessian is only piecewise defined).

    He-uniform weights, zero biases, from a NumPy generator seeded by ``seed``. With
    ``batch_size`` the problem is stochastic (rows drawn with replacement). No (L0, L1) are
    stated; f* = 0 is a lower bound. The test split and ``accuracy(params)`` are in
    ``extra``.
    """
    validate.positive_int("hidden", hidden)
    X_tr, y_tr, X_te, y_te = digits_data()
    rng = np.random.default_rng(seed)
    params = {
        "w1": jnp.asarray(uniform(rng, (64, hidden), np.sqrt(6.0 / 64))),
        "b1": jnp.zeros(hidden),
        "w2": jnp.asarray(uniform(rng, (hidden, hidden), np.sqrt(6.0 / hidden))),
        "b2": jnp.zeros(hidden),
        "w3": jnp.asarray(uniform(rng, (hidden, 10), np.sqrt(6.0 / (hidden + 10)))),
        "b3": jnp.zeros(10),
    }

    def loss(p, idx=None):
        X, y = (X_tr, y_tr) if idx is None else (X_tr[idx], y_tr[idx])
        logp = jax.nn.log_softmax(classifier_apply(p, X))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def accuracy(p):
        return float(jnp.mean(jnp.argmax(classifier_apply(p, X_te), axis=1) == y_te))

    return Problem(
        name="digits",
        fn=lambda p: loss(p),
        f_star=0.0,
        f_star_exact=False,
        x0=params,
        stochastic_fn=minibatch(loss, X_tr.shape[0], batch_size),
        description=f"MLP 64-{hidden}-{hidden}-10 (gelu), cross-entropy on load_digits",
        extra={"X_test": X_te, "y_test": y_te, "accuracy": accuracy},
    )


def lstm_init(seed: int, hidden: int = 32, n_in: int = 2) -> dict:
    """An LSTM cell (gates i, f, g, o stacked), glorot-uniform input weights, orthogonal
    recurrent weights, forget-gate bias 1, and a linear read-out of the last hidden state."""
    rng = np.random.default_rng(seed)
    wh = np.concatenate([np.linalg.qr(rng.standard_normal((hidden, hidden)))[0]
                         for _ in range(4)], axis=1)
    b = np.zeros(4 * hidden)
    b[hidden:2 * hidden] = 1.0
    return {
        "wx": jnp.asarray(uniform(rng, (n_in, 4 * hidden), np.sqrt(6.0 / (n_in + 4 * hidden)))),
        "wh": jnp.asarray(wh),
        "b": jnp.asarray(b),
        "wo": jnp.asarray(uniform(rng, (hidden,), np.sqrt(6.0 / (hidden + 1)))),
        "bo": jnp.zeros(()),
    }


def lstm_states(params, X, every_step: bool = False):
    """The LSTM cell (``params`` wx, wh, b with gates i, f, g, o stacked) run over inputs X
    of shape (batch, length, n_in) from zero states: the last hidden state (batch, hidden),
    or with ``every_step`` the hidden state at every step (batch, length, hidden)."""
    hidden = params["wh"].shape[0]

    def step(carry, x_t):
        h, c = carry
        z = x_t @ params["wx"] + h @ params["wh"] + params["b"]
        i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), (h if every_step else None)

    zeros = jnp.zeros((X.shape[0], hidden), X.dtype)
    (h, _), hs = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(X, 0, 1))
    return jnp.swapaxes(hs, 0, 1) if every_step else h


def lstm_apply(params, X):
    """Prediction of the LSTM for inputs X of shape (batch, length, n_in)."""
    return lstm_states(params, X) @ params["wo"] + params["bo"]


CELLS = ("rnn", "lstm")


@register("adding")
@functools.cache
def adding(cell: str = "rnn", hidden: int = 32, length: int = 50, n: int = 256, seed: int = 0,
           recurrent_scale: float = 1.0, batch_size: int | None = None) -> Problem:
    """Mean squared error of a recurrent network on the adding problem (``adding_data``):
    the stand-in for AWD-LSTM on Penn Treebank.

    ``cell`` is "rnn" (vanilla tanh; ``rnn_init``, with ``recurrent_scale``) or "lstm"
    (``lstm_init``). Sequences of ``length`` steps; ``n`` training sequences and as many test
    sequences (``extra``). Predicting the mean sum, 1, gives a loss of 1/6; f* = 0 is a lower
    bound. With ``batch_size`` the problem is stochastic. ``extra["validation_loss"](params)``
    is the same loss on the test sequences.
    """
    validate.choice("cell", cell, CELLS)
    validate.positive_int("hidden", hidden)
    validate.positive_int("length", length, minimum=2)
    validate.positive("recurrent_scale", recurrent_scale)
    X, y = adding_data(2 * n, length, seed)
    X_tr, y_tr, X_te, y_te = X[:n], y[:n], X[n:], y[n:]
    if cell == "rnn":
        params, apply = rnn_init(seed, hidden, 2, recurrent_scale), rnn_apply
    else:
        params, apply = lstm_init(seed, hidden, 2), lstm_apply

    def loss(p, idx=None):
        Xb, yb = (X_tr, y_tr) if idx is None else (X_tr[idx], y_tr[idx])
        return jnp.mean((apply(p, Xb) - yb) ** 2)

    @jax.jit
    def validation_loss(p):
        return jnp.mean((apply(p, X_te) - y_te) ** 2)

    return Problem(
        name=f"adding_{cell}",
        fn=lambda p: loss(p),
        f_star=0.0,
        f_star_exact=False,
        x0=params,
        stochastic_fn=minibatch(loss, n, batch_size),
        description=f"{cell.upper()} ({hidden} units) on the adding problem, length {length}",
        extra={"X_test": X_te, "y_test": y_te, "validation_loss": validation_loss},
    )
