"""The network problems on real, packaged data: ``char_lm`` (an LSTM language model on the
standard library's source) and ``resnet_digits`` (an equinox ResNet with batch norm on
scikit-learn's digits). Small sizes keep the file fast; the default sizes are only built
(and the language model evaluated once)."""

import hashlib
import os
import platform
import sysconfig

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research import engine, optimizers, problems, smoothness
from research.problems import resnet, text

SMALL_LM = {"embed": 8, "hidden": 8, "length": 12, "n": 16}
SMALL_RES = {"channels": 4, "blocks": 1}


@pytest.fixture(scope="module")
def lm():
    return problems.char_lm(**SMALL_LM)


@pytest.fixture(scope="module")
def res():
    return problems.resnet_digits(**SMALL_RES)


def _leaves(p):
    return jax.tree_util.tree_leaves(p.x0)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", ["lm", "res"])
def test_gradient_check(name, request):
    p = request.getfixturevalue(name)
    assert problems.gradient_check(p.fn, p.x0, directions=8) < 1e-6


def test_gradient_check_detects_a_wrong_gradient(lm):
    """The check has teeth here: f scaled by 1.01 with the unscaled derivative is caught."""

    def wrong(x):
        f = lm.fn(x)
        return f + 0.01 * jax.lax.stop_gradient(f)

    assert problems.gradient_check(wrong, lm.x0, directions=8) > 1e-3


# --------------------------------------------------------------------------- the corpus


def test_corpus_hash_is_that_of_the_module_files():
    root = sysconfig.get_paths()["stdlib"]
    assert 8 <= len(text.MODULES) <= 15
    assert all(os.path.isfile(os.path.join(root, m)) for m in text.MODULES)
    raw = b""
    for m in text.MODULES:
        with open(os.path.join(root, m), "rb") as fh:
            raw += fh.read()
    c = text.corpus()
    assert c.sha256 == hashlib.sha256(raw).hexdigest()
    assert c.sha256 == hashlib.sha256(c.text.encode("utf-8")).hexdigest()
    fresh = text.corpus.__wrapped__()  # read again, not from the cache
    assert fresh == c and c.python_version == platform.python_version()
    assert c.modules == text.MODULES


def test_vocabulary_is_fixed():
    assert text.encode("A\n\t \u00e9~ ").tolist() == [33, 95, 96, 0, 96, 94, 0]
    every = "".join(chr(c) for c in range(32, 127)) + "\n"
    assert text.encode(every).tolist() == list(range(96))
    assert text.decode(text.encode(every)) == every
    tok = text.tokens()
    assert tok.dtype == np.int32 and tok.min() >= 0 and tok.max() < text.VOCAB_SIZE == 97
    assert tok.size == len(text.corpus().text)


def test_split_is_deterministic_and_disjoint(lm):
    n, length = SMALL_LM["n"], SMALL_LM["length"]
    train, val = text.char_data(n, length)
    again = problems.char_lm.__wrapped__(**SMALL_LM)  # a fresh build, not the cached one
    for a, b in [(train, lm.extra["train_windows"]), (val, lm.extra["validation_windows"]),
                 (train, again.extra["train_windows"]), (val, again.extra["validation_windows"])]:
        assert a.dtype == jnp.int32 and np.array_equal(np.asarray(a), np.asarray(b))
    assert train.shape == val.shape == (n, length + 1)
    off_tr, off_val = text.window_offsets(n, length)
    tok, split = text.tokens(), text.split_index()
    assert split == int(0.9 * tok.size)
    assert off_tr.min() == 0 and off_tr.max() + length + 1 <= split <= off_val.min()
    assert off_val.max() + length + 1 <= tok.size
    for offs, windows in [(off_tr, train), (off_val, val)]:
        assert np.array_equal(np.stack([tok[o:o + length + 1] for o in offs]),
                              np.asarray(windows))


# --------------------------------------------------------------------------- the problems


def test_char_lm_defaults_start_at_log_vocab():
    p = problems.char_lm()
    assert p.extra["vocab_size"] == text.VOCAB_SIZE == p.x0["embed"].shape[0]
    assert p.x0["wh"].shape == (64, 256) and p.extra["train_windows"].shape == (256, 33)
    assert abs(float(jax.jit(p.fn)(p.x0)) - np.log(text.VOCAB_SIZE)) < 0.5
    assert p.extra["modules"] == text.MODULES and len(p.extra["corpus_sha256"]) == 64
    assert p.extra["python_version"] == platform.python_version()


def test_resnet_defaults_build():
    p = problems.resnet_digits()
    assert p.extra["X_test"].shape == (297, 1, 8, 8) and p.extra["y_test"].shape == (297,)
    assert {a.dtype for a in _leaves(p)} == {jnp.dtype(jnp.float64)}
    assert p.x0.stem.weight.shape == (8, 1, 3, 3) and len(p.x0.blocks) == 2


@pytest.mark.parametrize("name", ["lm", "res"])
def test_float64_engine_batch_and_training_lowers_the_loss(name, request):
    p = request.getfixturevalue(name)
    assert {a.dtype for a in _leaves(p)} == {jnp.dtype(jnp.float64)}
    out = engine.run(p, optimizers.clipped_gd(0.1, 1.0), p.batch_x0(2), steps=5)
    f = out.trace["f"]
    assert f.shape == (2, 6) and np.all(np.isfinite(f))
    assert np.all(f[:, -1] < f[:, 0] - 0.01)


def test_validation_and_accuracy(lm, res):
    assert np.isfinite(float(lm.extra["validation_loss"](lm.x0)))
    v = float(res.extra["validation_loss"](res.x0))
    acc = res.extra["accuracy"](res.x0)
    assert np.isfinite(v) and isinstance(acc, float) and 0.0 <= acc <= 1.0


@pytest.mark.parametrize("cin, cout, h, w", [(4, 4, 8, 8), (2, 3, 5, 7), (1, 4, 8, 8)])
def test_conv3x3_is_equinox_conv2d(cin, cout, h, w):
    """Also on a non-square image with unequal channel counts, where a shift matrix with
    rows and columns (or dy and dx) swapped gives other outputs."""
    key = jax.random.PRNGKey(3)
    ref = eqx.nn.Conv2d(cin, cout, 3, padding=1, use_bias=False, key=key, dtype=jnp.float64)
    conv = resnet.Conv3x3(cin, cout, key, jnp.float64)
    x = jnp.asarray(np.random.default_rng(4).normal(size=(cin, h, w)))
    assert np.array_equal(np.asarray(conv.weight), np.asarray(ref.weight))
    assert conv(x).shape == (cout, h, w)
    assert np.allclose(np.asarray(conv(x)), np.asarray(ref(x)), rtol=0, atol=1e-13)


def test_resnet_relu_variant(res):
    """Same initial parameters (same seed), another activation."""
    p = problems.resnet_digits(**SMALL_RES, activation="relu")
    assert p.extra["static"].act is jax.nn.relu and res.extra["static"].act is jax.nn.gelu
    assert all(np.array_equal(a, b) for a, b in zip(_leaves(p), _leaves(res), strict=True))


def test_resnet_loss_is_a_pure_function_of_the_parameters(res):
    """Batch norm's state is discarded and never invalidated: the loss repeats exactly."""
    a, b = float(res.fn(res.x0)), float(res.fn(res.x0))
    assert a == b == float(jax.jit(res.fn)(res.x0))


@pytest.mark.parametrize("make", [
    lambda: problems.char_lm(**SMALL_LM, batch_size=4),
    lambda: problems.resnet_digits(**SMALL_RES, batch_size=16),
], ids=["char_lm", "resnet"])
def test_stochastic_fn_depends_on_the_key(make):
    p = make()
    a = float(p.stochastic_fn(p.x0, jax.random.PRNGKey(0)))
    b = float(p.stochastic_fn(p.x0, jax.random.PRNGKey(1)))
    assert np.isfinite(a) and np.isfinite(b) and a != b
    assert p.stochastic and not p.deterministic.stochastic


@pytest.mark.parametrize("make, field", [
    (lambda: problems.char_lm(hidden=0), "hidden"),
    (lambda: problems.char_lm(embed=-1), "embed"),
    (lambda: problems.char_lm(n=0), "n"),
    (lambda: problems.char_lm(length=10**9), "length"),
    (lambda: problems.char_lm(length=0), "length"),
    (lambda: problems.char_lm(batch_size=0), "batch_size"),
    (lambda: problems.char_lm(seed=-1), "seed"),
    (lambda: problems.resnet_digits(channels=0), "channels"),
    (lambda: problems.resnet_digits(blocks=0), "blocks"),
    (lambda: problems.resnet_digits(activation="tanh"), "activation"),
    (lambda: problems.resnet_digits(batch_size=2.5), "batch_size"),
    (lambda: problems.resnet_digits(seed=1.5), "seed"),
    (lambda: problems.resnet_digits(train_size=0), "train_size"),
    (lambda: problems.resnet_digits(train_size=1501), "train_size"),
])
def test_bad_arguments_name_the_field(make, field):
    with pytest.raises(ValueError, match=rf"^{field} must "):
        make()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lm", "res"])
def test_smoothness_along_training(name, request):
    p = request.getfixturevalue(name)
    out = smoothness.along_training(p, optimizers.clipped_gd(0.1, 1.0), 40, 10)
    assert out["diverged_at"] == -1 and out["loss"][-1] < out["loss"][0]
    assert np.all(np.isfinite(out["smoothness_hess"])) and np.all(out["smoothness_hess"] > 0)


def test_resnet_train_size_keeps_a_prefix_of_the_training_images(res):
    """f on the first k images is the cross-entropy of those images alone, batch norm
    included: the model built with ``train_size=k`` matches the full model's logits on
    them (computed with their own batch statistics), and not on another k."""
    from research.problems.networks import digits_data

    k = 100
    small = problems.resnet_digits(**SMALL_RES, train_size=k)
    X, y = digits_data()[:2]
    static, state = res.extra["static"], res.extra["state"]

    def xent(rows):
        logits = resnet.resnet_logits(eqx.combine(res.x0, static), state,
                                      X[rows].reshape(-1, 1, 8, 8))
        logp = jax.nn.log_softmax(logits)
        return float(-jnp.mean(jnp.take_along_axis(logp, y[rows, None], axis=1)))

    f = float(small.fn(small.x0))
    assert f == pytest.approx(xent(np.arange(k)), rel=1e-12)
    assert f != pytest.approx(xent(np.arange(k, 2 * k)), rel=1e-6)
    assert "first 100 training images" in small.description
    assert float(res.fn(res.x0)) == pytest.approx(xent(np.arange(1500)), rel=1e-12)


def test_registered_resnet_factory_has_the_builders_signature():
    """The registered factory and the builder it calls take the same arguments with the same
    defaults, so a config field means the same in both."""
    import inspect

    reg = inspect.signature(inspect.unwrap(resnet.resnet_digits)).parameters
    built = inspect.signature(resnet.build).parameters
    assert [(k, v.default) for k, v in reg.items()] == [(k, v.default) for k, v in built.items()]
