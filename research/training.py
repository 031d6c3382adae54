"""Minibatch training with Keras semantics, many seeds in one compiled call.

``train`` runs epochs of shuffled minibatches (the last, partial batch kept, as Keras's
``fit`` does) with any optax transformation, vmapped over seeds: each seed has its own
initial parameters and its own shuffling. It records per epoch the train and test loss, and
per step the pre-clip gradient norm and the cosine between the update and the negative
gradient (1 for norm clipping, below 1 when value clipping turns the update).

A seed whose loss, gradient or parameters become non-finite is frozen and flagged with the
epoch it happened in; later entries are NaN. The other seeds run on.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from research import engine, validate
from research.clipping import global_norm
from research.engine import all_finite, freeze, scan_recorded


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """Per seed (rows): train_loss and test_loss (epochs + 1 columns, column 0 before
    training), grad_norm and cosine (one column per step), diverged and diverged_epoch (the
    1-based epoch in which the seed became non-finite, -1 if never), final params."""

    train_loss: np.ndarray
    test_loss: np.ndarray
    grad_norm: np.ndarray
    cosine: np.ndarray
    diverged: np.ndarray
    diverged_epoch: np.ndarray
    params: object


def mse(pred, y, mask):
    """Mean squared error over the rows where mask is 1."""
    return jnp.sum(mask * (pred - y) ** 2) / jnp.sum(mask)


class TrainCarry(NamedTuple):
    """The state of one seed's training between minibatch steps: parameters, optimizer
    state, whether it is still finite, and the step reached within the epoch."""

    params: Any
    state: Any
    alive: Any
    t: Any


def _seed_run(apply_fn, update, epochs, batch_size, X, y, X_test, y_test, params, state, key):
    n = X.shape[0]
    nb = -(-n // batch_size)
    pad = nb * batch_size - n
    nan = jnp.asarray(jnp.nan, dtype=jnp.result_type(float))

    def loss(p, Xb, yb, mb):
        return mse(apply_fn(p, Xb), yb, mb)

    full = lambda p, A, b: loss(p, A, b, jnp.ones(A.shape[0]))  # noqa: E731

    def epoch(carry, key_e):
        perm = jax.random.permutation(key_e, n)
        idx = jnp.concatenate([perm, jnp.zeros(pad, perm.dtype)]).reshape(nb, batch_size)
        mask = (jnp.arange(nb * batch_size) < n).astype(X.dtype).reshape(nb, batch_size)

        def step(c: TrainCarry, record: bool):
            rows, mb = idx[c.t], mask[c.t]
            value, g = jax.value_and_grad(loss)(c.params, X[rows], y[rows], mb)
            u, s_new = update(g, c.state, c.params)
            p_new = optax.apply_updates(c.params, u)
            ok = c.alive & jnp.isfinite(value) & all_finite(g) & all_finite(p_new)
            fu, fg = ravel_pytree(u)[0], ravel_pytree(g)[0]
            cos = -jnp.dot(fu, fg) / (jnp.linalg.norm(fu) * jnp.linalg.norm(fg))
            rec = (jnp.where(c.alive, global_norm(g), nan), jnp.where(ok, cos, nan))
            return TrainCarry(freeze(ok, p_new, c.params), freeze(ok, s_new, c.state), ok,
                              c.t + 1), rec

        # every minibatch step is recorded (its gradient norm and cosine)
        carry, rec = scan_recorded(step, carry._replace(t=jnp.asarray(0, jnp.int32)), nb)
        losses = (jnp.where(carry.alive, full(carry.params, X, y), nan),
                  jnp.where(carry.alive, full(carry.params, X_test, y_test), nan))
        return carry, (losses, rec, carry.alive)

    keys = jax.random.split(key, epochs)
    carry0 = TrainCarry(params, state, jnp.asarray(True), jnp.asarray(0, jnp.int32))
    last, ((tr, te), (gn, cos), alive) = jax.lax.scan(epoch, carry0, keys)
    p = last.params
    tr0, te0 = full(params, X, y), full(params, X_test, y_test)
    dead = ~alive
    div_epoch = jnp.where(dead.any(), jnp.argmax(dead) + 1, -1)
    return (jnp.concatenate([tr0[None], tr]), jnp.concatenate([te0[None], te]),
            gn.reshape(-1), cos.reshape(-1), div_epoch, p)


@functools.partial(jax.jit, static_argnames=("apply_fn", "update", "epochs", "batch_size"))
def _train_batch(apply_fn, update, epochs, batch_size, X, y, X_test, y_test, params, state,
                 keys):
    run = functools.partial(_seed_run, apply_fn, update, epochs, batch_size,
                            X, y, X_test, y_test)
    return jax.vmap(run)(params, state, keys)


def threshold_sweep(apply_fn, params, data, lr: float, momentum: float, thresholds,
                    epochs: int, batch_size: int, key=99) -> dict:
    """Global-norm clipping at every threshold, every seed of ``params``, in one call.

    Returns:
      dict with, per threshold, "divergence_rate" and the medians over non-diverged seeds of
      the final train and test loss (None where every seed diverged), with their 95%
      intervals over seeds (``median_over_seeds``).
    """
    from research import optimizers

    thresholds = np.asarray(thresholds, dtype=float)
    k, seeds = thresholds.size, engine.batch_size(params)
    many = jax.tree_util.tree_map(lambda a: jnp.tile(a, (k,) + (1,) * (a.ndim - 1)), params)
    opt = optimizers.sgd_momentum(lr, momentum,
                                  global_clipnorm=jnp.repeat(jnp.asarray(thresholds), seeds))
    r = train(apply_fn, many, data, opt, epochs, batch_size, key=key)
    div = r.diverged.reshape(k, seeds)

    def medians(loss):
        final = loss[:, -1].reshape(k, seeds)
        return [float(np.median(f[~d])) if (~d).any() else None
                for f, d in zip(final, div, strict=True)]

    def intervals(loss):
        final = loss[:, -1].reshape(k, seeds)
        return [median_over_seeds(f[~d]) for f, d in zip(final, div, strict=True)]

    return {"thresholds": thresholds.tolist(), "divergence_rate": div.mean(axis=1).tolist(),
            "median_final_train_mse": medians(r.train_loss),
            "median_final_test_mse": medians(r.test_loss),
            "final_train_mse_interval": intervals(r.train_loss),
            "final_test_mse_interval": intervals(r.test_loss)}


def median_over_seeds(values) -> dict | None:
    """The 95% distribution-free interval of a median over seeds (``stats.median_interval``)
    as a record entry {lo, hi, coverage, n}; None without a value."""
    from research import stats

    m = stats.median_interval(values)
    if m.n == 0:
        return None
    return {"lo": m.lo, "hi": m.hi, "coverage": m.coverage, "n": m.n}


def train(apply_fn, params, data, optimizer: optax.GradientTransformation, epochs: int,
          batch_size: int, key=0) -> TrainResult:
    """Train ``apply_fn`` with MSE from the batched initial ``params`` (one row per seed).

    Args:
      apply_fn: (params, X) -> predictions, pure JAX. A stable function object (module
        level) so that the compiled program is reused.
      params: initial parameters, a pytree whose leaves have a leading seed axis.
      data: (X_train, y_train, X_test, y_test) arrays.
      optimizer: an optax transformation; with ``research.optimizers`` the hyperparameters
        may be arrays of shape (seeds,).
      epochs, batch_size: as in Keras's ``fit``; the last partial batch is kept.
      key: int seed or PRNG key for the shuffling (one stream per seed).
    """
    epochs = validate.positive_int("epochs", epochs)
    batch_size = validate.positive_int("batch_size", batch_size)
    validate.finite_tree("params", params)
    X, y, X_test, y_test = (jnp.asarray(a) for a in data)
    seeds = engine.batch_size(params)
    state = engine.batched_state(optimizer, params, seeds)
    if isinstance(key, int | np.integer):
        key = jax.random.PRNGKey(int(key))
    keys = jax.random.split(key, seeds)
    tr, te, gn, cos, div, p = _train_batch(apply_fn, optimizer.update, epochs, batch_size,
                                           X, y, X_test, y_test, params, state, keys)
    tr, te, gn, cos, div = jax.device_get((tr, te, gn, cos, div))
    return TrainResult(train_loss=tr, test_loss=te, grad_norm=gn, cosine=cos,
                       diverged=div >= 0, diverged_epoch=div, params=p)
