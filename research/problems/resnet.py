"""A small residual network with batch normalisation on scikit-learn's digits, built with
equinox: ResNet20 on CIFAR-10 in miniature."""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from research import validate
from research.problems.base import Problem, register
from research.problems.networks import digits_data, minibatch

ACTIVATIONS = {"gelu": jax.nn.gelu, "relu": jax.nn.relu}
"""The activations ``resnet_digits`` accepts, by name."""

AXIS = "batch"
"""The vmap axis name over which batch normalisation takes its statistics."""


@functools.cache
def _shifts(h: int, w: int) -> np.ndarray:
    """The nine 0/1 matrices S_k, shape (9, h*w, h*w), k = 3 dy + dx, with
    (S_k x)[r*w + c] = x[(r + dy - 1)*w + (c + dx - 1)], or 0 where that pixel lies in the
    zero padding: the shifts of a 3x3 convolution with padding 1 on a flattened image."""
    S = np.zeros((9, h * w, h * w))
    for k in range(9):
        dy, dx = divmod(k, 3)
        for r in range(h):
            for c in range(w):
                rr, cc = r + dy - 1, c + dx - 1
                if 0 <= rr < h and 0 <= cc < w:
                    S[k, r * w + c, rr * w + cc] = 1.0
    return S


class Conv3x3(eqx.Module):
    """A 3x3 convolution, stride 1, zero padding 1, no bias, on one channel-first image
    (C, H, W): ``eqx.nn.Conv2d(in, out, 3, padding=1, use_bias=False)``'s parameters and
    initialisation (its weight, shape (out, in, 3, 3), is taken from one), applied as one
    dense matrix, shape (out*H*W, in*H*W), built from the weight and the nine fixed shift
    matrices (``_shifts``), times the flattened image.

    Why not call ``eqx.nn.Conv2d``: its ``lax.conv_general_dilated`` inside the engine's
    ``vmap(scan)`` (a kernel per trajectory) ran about 3-5x slower on XLA:CPU than the same
    gradients outside a loop. Why a dense matrix rather than the sparser im2col product
    (nine shifted copies of the image times the weight): on the 8x8 digits the matrix is
    small (256 x 256 at 4 channels) and the product under ``vmap`` over images and
    trajectories is one well-shaped batched matrix product, where im2col's product has 36
    rows by 4 columns; it does 7x the arithmetic and still took half the time for the whole
    model's full-batch gradient (15 trajectories, 4 channels, 1 block, float64: 44 against
    87 ms per trajectory on 2 cores). Any device runs it as a plain ``dot``. Same outputs to
    rounding as ``eqx.nn.Conv2d`` (tests/test_networks.py).
    """

    weight: jax.Array

    def __init__(self, in_channels: int, out_channels: int, key, dtype):
        self.weight = eqx.nn.Conv2d(in_channels, out_channels, 3, padding=1, use_bias=False,
                                    key=key, dtype=dtype).weight

    def __call__(self, x):
        out, cin = self.weight.shape[:2]
        h, w = x.shape[1:]
        S = jnp.asarray(_shifts(h, w), self.weight.dtype)
        M = jnp.einsum("oik,kpq->opiq", self.weight.reshape(out, cin, 9), S)
        return (M.reshape(out * h * w, cin * h * w) @ x.reshape(-1)).reshape(out, h, w)


class Block(eqx.Module):
    """conv3x3 -> BN -> act -> conv3x3 -> BN, plus the identity, then act."""

    conv1: Conv3x3
    bn1: eqx.nn.BatchNorm
    conv2: Conv3x3
    bn2: eqx.nn.BatchNorm
    act: Callable = eqx.field(static=True)

    def __init__(self, channels: int, act: Callable, key, dtype):
        k1, k2 = jax.random.split(key)
        self.conv1 = Conv3x3(channels, channels, k1, dtype)
        self.bn1 = eqx.nn.BatchNorm(channels, axis_name=AXIS, mode="batch", dtype=dtype)
        self.conv2 = Conv3x3(channels, channels, k2, dtype)
        self.bn2 = eqx.nn.BatchNorm(channels, axis_name=AXIS, mode="batch", dtype=dtype)
        self.act = act

    def __call__(self, x, state):
        y, state = self.bn1(self.conv1(x), state)
        y, state = self.bn2(self.conv2(self.act(y)), state)
        return self.act(x + y), state


class ResNet(eqx.Module):
    """Stem conv3x3 (1 -> C) -> BN -> act -> residual blocks -> global average pool ->
    Linear(C, 10). Called on one image (1, 8, 8) with the BN state, inside a ``jax.vmap``
    with ``axis_name=AXIS``; returns (logits, state)."""

    stem: Conv3x3
    bn: eqx.nn.BatchNorm
    blocks: tuple[Block, ...]
    head: eqx.nn.Linear
    act: Callable = eqx.field(static=True)

    def __init__(self, channels: int, blocks: int, act: Callable, key, dtype=jnp.float64):
        keys = jax.random.split(key, blocks + 2)
        self.stem = Conv3x3(1, channels, keys[0], dtype)
        self.bn = eqx.nn.BatchNorm(channels, axis_name=AXIS, mode="batch", dtype=dtype)
        self.blocks = tuple(Block(channels, act, k, dtype) for k in keys[1:-1])
        self.head = eqx.nn.Linear(channels, 10, key=keys[-1], dtype=dtype)
        self.act = act

    def __call__(self, x, state):
        x, state = self.bn(self.stem(x), state)
        x = self.act(x)
        for block in self.blocks:
            x, state = block(x, state)
        return self.head(jnp.mean(x, axis=(1, 2))), state


def resnet_logits(model: ResNet, state, images):
    """Logits of ``images`` (N, 1, 8, 8), batch norm in training mode: every BN layer
    normalises with the mean and variance of this batch. The updated running statistics are
    discarded, so the result depends on the parameters and the batch only."""
    # A fresh copy of the state each call: equinox invalidates a State object once it is
    # updated, and the running statistics do not enter training-mode outputs anyway.
    leaves, treedef = jax.tree_util.tree_flatten(state)
    state = jax.tree_util.tree_unflatten(treedef, leaves)
    logits, _ = jax.vmap(model, axis_name=AXIS, in_axes=(0, None), out_axes=(0, None))(
        images, state)
    return logits


def resnet_init(seed: int = 0, channels: int = 8, blocks: int = 2, activation: str = "gelu"):
    """The equinox model and its batch-norm state (``eqx.nn.make_with_state``), initialised
    from ``jax.random.PRNGKey(seed)`` with equinox's default initialisers, every floating
    array float64."""
    act = ACTIVATIONS[activation]
    model, state = eqx.nn.make_with_state(ResNet)(channels, blocks, act,
                                                  jax.random.PRNGKey(seed), jnp.float64)
    model = jax.tree_util.tree_map(
        lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model)
    return model, state


def _cross_entropy(logits, y):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def build(channels: int = 8, blocks: int = 2, activation: str = "gelu", seed: int = 0,
          batch_size: int | None = None, train_size: int | None = None) -> Problem:
    """Softmax cross-entropy of a small ResNet with batch normalisation on scikit-learn's
    ``load_digits`` (``networks.digits_data``: 1,500 train / 297 test images, 8x8, pixels in
    [0, 1]): ResNet20 on CIFAR-10 in miniature (docs/theory.md §5).

    Model (equinox): conv3x3 stem (1 -> ``channels``, no bias) -> BN -> act -> ``blocks``
    residual blocks (conv3x3-BN-act-conv3x3-BN plus the identity, then act; no
    down-sampling) -> global average pool -> Linear(``channels``, 10). The convolutions are
    ``Conv3x3`` (``eqx.nn.Conv2d``'s weights and initialiser, applied as a matrix product;
    see there why), the rest ``eqx.nn.BatchNorm`` and ``eqx.nn.Linear``. Equinox's default
    initialisers from ``jax.random.PRNGKey(seed)``, all arrays float64. Parameters are
    ``eqx.partition(model, eqx.is_inexact_array)[0]``: the model's pytree with the
    non-parameter fields set to None (``extra["static"]`` holds the other half; rebuild the
    model with ``eqx.combine(params, extra["static"])``).

    Batch normalisation (``eqx.nn.BatchNorm(mode="batch")``) is always in training mode:
    each BN layer normalises with the mean and (biased) variance, per channel, of the batch
    being evaluated, and the running statistics are discarded. So f is a pure function of
    the parameters: the full-batch loss uses the statistics of all 1,500 training images; a
    minibatch loss (``batch_size``: rows drawn with replacement) uses those of the
    minibatch, which makes it a noisy but *not exactly unbiased* estimate of f (the
    statistics, not only the averaged terms, change with the batch); and
    ``validation_loss`` and ``accuracy`` normalise with the statistics of the 297 test
    images. There is no inference mode with running averages.

    ``train_size`` keeps the first that many of the 1,500 training images (the packaged
    order cycles through the ten classes, so any prefix is close to balanced) as the whole
    training set: f, its full-batch gradient and the minibatches then use only those, and
    the cost of f falls in proportion. None (default) keeps all 1,500. The test split is
    the same either way.

    ``activation`` is "gelu" (default) or "relu". GELU, as in the ``digits`` problem, makes
    f twice differentiable everywhere, so the Hessian that the smoothness estimators
    measure exists at every iterate; with ReLU it exists only almost everywhere, and
    central differences already straddle kinks at the initial point (relative error about
    2e-4 at h = 1e-6 with channels=4, blocks=1, against about 1e-8 with GELU).

    No (L0, L1) are stated; f* = 0 is a lower bound. ``extra`` holds
    ``validation_loss(params)``, ``accuracy(params)`` (test split, a float), X_test (N, 1,
    8, 8), y_test, ``static`` and the BN ``state``.

    Raises:
      ValueError: naming the argument, for sizes that are not integers >= 1, a negative
        seed, an unknown activation, or a train_size above 1,500.
    """
    validate.positive_int("channels", channels)
    validate.positive_int("blocks", blocks)
    validate.choice("activation", activation, tuple(ACTIVATIONS))
    validate.positive_int("seed", seed, minimum=0)
    if batch_size is not None:
        validate.positive_int("batch_size", batch_size)
    X_tr, y_tr, X_te, y_te = digits_data()
    if train_size is not None:
        validate.positive_int("train_size", train_size)
        if train_size > X_tr.shape[0]:
            raise ValueError(f"train_size must be an integer from 1 to {X_tr.shape[0]} (the "
                             f"training images of load_digits); got {train_size!r}.")
        X_tr, y_tr = X_tr[:train_size], y_tr[:train_size]
    X_tr, X_te = X_tr.reshape(-1, 1, 8, 8), X_te.reshape(-1, 1, 8, 8)
    model, state = resnet_init(seed, channels, blocks, activation)
    params, static = eqx.partition(model, eqx.is_inexact_array)

    def logits(p, X):
        return resnet_logits(eqx.combine(p, static), state, X)

    def loss(p, idx=None):
        X, y = (X_tr, y_tr) if idx is None else (X_tr[idx], y_tr[idx])
        return _cross_entropy(logits(p, X), y)

    @jax.jit
    def validation_loss(p):
        return _cross_entropy(logits(p, X_te), y_te)

    @jax.jit
    def _accuracy(p):
        return jnp.mean(jnp.argmax(logits(p, X_te), axis=1) == y_te)

    def accuracy(p):
        return float(_accuracy(p))

    sampled = minibatch(loss, X_tr.shape[0], batch_size)
    return Problem(
        name="resnet_digits",
        fn=jax.jit(lambda p: loss(p)),
        f_star=0.0,
        f_star_exact=False,
        x0=params,
        stochastic_fn=None if sampled is None else jax.jit(sampled),
        description=(f"ResNet ({channels} channels, {blocks} blocks, {activation}, batch "
                     f"norm) on load_digits"
                     + ("" if train_size is None else f" (first {train_size} training images)")),
        extra={"validation_loss": validation_loss, "accuracy": accuracy, "X_test": X_te,
               "y_test": y_te, "static": static, "state": state},
    )


@register("resnet_digits")
@functools.cache
def resnet_digits(channels: int = 8, blocks: int = 2, activation: str = "gelu", seed: int = 0,
                  batch_size: int | None = None, train_size: int | None = None) -> Problem:
    """Softmax cross-entropy of a small ResNet with batch normalisation (equinox) on
    scikit-learn's ``load_digits``: ResNet20 on CIFAR-10 in miniature. The model, its batch
    normalisation and its parameters are described in ``build``.

    Registered in this family, which ``research.problems`` imports only when the name is
    first used, so that nothing else imports equinox.
    """
    return build(channels=channels, blocks=blocks, activation=activation, seed=seed,
                 batch_size=batch_size, train_size=train_size)
