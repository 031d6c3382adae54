"""A character-level LSTM language model on the Python standard library's own source.

The corpus ships with every Python (no download): a fixed tuple of pure-Python modules of
the running interpreter's standard library, read from ``sysconfig.get_paths()["stdlib"]``
and concatenated in order. Its text changes between Python versions, so a problem built
from it records the corpus's sha256 digest and the Python version (``extra``).
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import sysconfig
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from research import validate
from research.problems.base import Problem, register
from research.problems.networks import lstm_states, minibatch, uniform

MODULES = ("textwrap.py", "string.py", "heapq.py", "bisect.py", "fnmatch.py", "shlex.py",
           "colorsys.py", "calendar.py", "difflib.py", "argparse.py")
"""The standard-library files of the corpus, in the order they are concatenated (all exist
in every CPython >= 3.11)."""

NEWLINE = 95
"""Token of the newline character."""
OTHER = 96
"""Token of every character that is neither printable ASCII nor a newline."""
VOCAB_SIZE = 97
"""Printable ASCII (codes 32..126, tokens 0..94), the newline (95) and "other" (96)."""

TRAIN_FRACTION = 0.9
"""The first 90% of the token stream is for training, the last 10% for validation."""


class Corpus(NamedTuple):
    """The text of the corpus and what identifies it."""

    text: str
    sha256: str
    python_version: str
    modules: tuple[str, ...]


@functools.cache
def corpus() -> Corpus:
    """The ``MODULES`` of this interpreter's standard library, concatenated in order with
    nothing between them, decoded as UTF-8 (no newline translation).

    Returns:
      A ``Corpus``: the text, the sha256 hex digest of its UTF-8 bytes (equal to the digest
      of the concatenated files), ``platform.python_version()`` and ``MODULES``.
    """
    root = sysconfig.get_paths()["stdlib"]
    data = b""
    for name in MODULES:
        with open(os.path.join(root, name), "rb") as fh:
            data += fh.read()
    return Corpus(data.decode("utf-8"), hashlib.sha256(data).hexdigest(),
                  platform.python_version(), MODULES)


def encode(text: str) -> np.ndarray:
    """Tokens of ``text`` (int32): character code c in 32..126 -> c - 32, newline -> 95,
    anything else (tab, carriage return, non-ASCII) -> 96. Fixed, independent of the text."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    out = np.full(codes.shape, OTHER, dtype=np.int32)
    printable = (codes >= 32) & (codes <= 126)
    out[printable] = codes[printable].astype(np.int32) - 32
    out[codes == 10] = NEWLINE
    return out


def decode(tokens) -> str:
    """The text of ``tokens``; the "other" token shows as U+FFFD."""
    table = [chr(32 + i) for i in range(95)] + ["\n", "\ufffd"]
    return "".join(table[int(t)] for t in np.asarray(tokens).ravel())


@functools.cache
def tokens() -> np.ndarray:
    """The whole corpus as tokens (a read-only int32 array)."""
    out = encode(corpus().text)
    out.setflags(write=False)
    return out


def split_index() -> int:
    """Where validation starts in ``tokens()``: floor(0.9 * number of tokens)."""
    return int(TRAIN_FRACTION * tokens().size)


def window_offsets(n: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Start offsets, in ``tokens()``, of the ``n`` training and ``n`` validation windows of
    ``length + 1`` tokens: evenly spaced over each part (no randomness), with every training
    window inside the training part and every validation window inside the validation part,
    so the two never share a token.

    Raises:
      ValueError: naming ``n`` or ``length`` when they are not integers >= 1, or ``length``
        when a window does not fit in the validation part.
    """
    validate.positive_int("n", n)
    validate.positive_int("length", length)
    split, total = split_index(), tokens().size
    longest = min(split, total - split) - 1
    if length > longest:
        raise ValueError(f"length must be an integer >= 1 and <= {longest} (a window of "
                         f"length + 1 tokens must fit in the validation part of the corpus); "
                         f"got {length!r}.")
    train = np.linspace(0, split - (length + 1), n).astype(np.int64)
    val = split + np.linspace(0, total - split - (length + 1), n).astype(np.int64)
    return train, val


def char_data(n: int = 256, length: int = 32) -> tuple[jax.Array, jax.Array]:
    """Training and validation windows of the corpus (``window_offsets``).

    Returns:
      (train, validation), int32 arrays of shape (n, length + 1): position t + 1 of a window
      is the target of the prediction made after reading positions 0..t.
    """
    train, val = window_offsets(n, length)
    tok = tokens()
    idx = np.arange(length + 1)
    return jnp.asarray(tok[train[:, None] + idx]), jnp.asarray(tok[val[:, None] + idx])


def char_lm_init(seed: int, embed: int = 16, hidden: int = 64,
                 vocab: int = VOCAB_SIZE) -> dict:
    """Parameters of the character model, from a NumPy generator seeded by ``seed``: an
    embedding table uniform in [-0.1, 0.1], an LSTM cell as ``networks.lstm_init``
    (glorot-uniform input weights, orthogonal recurrent weights, forget-gate bias 1) and a
    glorot-uniform read-out to ``vocab`` logits with zero bias."""
    rng = np.random.default_rng(seed)
    wh = np.concatenate([np.linalg.qr(rng.standard_normal((hidden, hidden)))[0]
                         for _ in range(4)], axis=1)
    b = np.zeros(4 * hidden)
    b[hidden:2 * hidden] = 1.0
    return {
        "embed": jnp.asarray(uniform(rng, (vocab, embed), 0.1)),
        "wx": jnp.asarray(uniform(rng, (embed, 4 * hidden),
                                   np.sqrt(6.0 / (embed + 4 * hidden)))),
        "wh": jnp.asarray(wh),
        "b": jnp.asarray(b),
        "wo": jnp.asarray(uniform(rng, (hidden, vocab), np.sqrt(6.0 / (hidden + vocab)))),
        "bo": jnp.zeros(vocab),
    }


def char_lm_apply(params, inputs):
    """Logits of the next character after each position of ``inputs`` (int tokens of shape
    (batch, length)): embedding -> one LSTM layer -> linear read-out; shape
    (batch, length, vocab)."""
    x = params["embed"][inputs]  # (batch, length, embed)
    return lstm_states(params, x, every_step=True) @ params["wo"] + params["bo"]


def char_lm_loss(params, windows):
    """Mean next-character cross-entropy (nats) over every position of ``windows``, int
    tokens of shape (batch, length + 1)."""
    logp = jax.nn.log_softmax(char_lm_apply(params, windows[:, :-1]))
    return -jnp.mean(jnp.take_along_axis(logp, windows[:, 1:, None], axis=-1))


@register("char_lm")
@functools.cache
def char_lm(embed: int = 16, hidden: int = 64, length: int = 32, n: int = 256, seed: int = 0,
            batch_size: int | None = None) -> Problem:
    """Next-character cross-entropy of a one-layer LSTM language model on the Python
    standard library's own source: a small, packaged stand-in for AWD-LSTM on Penn
    Treebank (docs/theory.md §5).

    Data: ``corpus()`` (the files ``MODULES`` of this interpreter's standard library),
    tokenised by ``encode`` into a fixed vocabulary of 97 (printable ASCII, newline,
    "other"). The first 90% of the token stream trains, the last 10% validates; ``n``
    windows of ``length + 1`` tokens at evenly spaced offsets are taken from each part
    (``window_offsets``), so training and validation share no token. f is the mean
    cross-entropy over all ``n * length`` predictions of the training windows.

    Model (``char_lm_apply``): embedding (97 -> ``embed``) -> LSTM (``hidden`` units) ->
    linear read-out to 97 logits at every step; parameters are the dict
    {"embed", "wx", "wh", "b", "wo", "bo"} drawn by ``char_lm_init`` from ``seed``. At the
    initial point the loss is close to log 97 ≈ 4.57 (near-uniform predictions).

    With ``batch_size`` the problem is stochastic: that many training windows drawn with
    replacement per step. No (L0, L1) are stated; f* = 0 is only a lower bound. ``extra``
    holds ``validation_loss(params)`` (the same loss on the validation windows), the
    validation windows, ``corpus_sha256``, ``python_version``, ``modules`` and
    ``vocab_size``: the text depends on the Python version, so record them with results.

    Raises:
      ValueError: naming the argument, for sizes that are not integers >= 1, a negative
        seed, or a ``length`` whose windows do not fit in the validation part.
    """
    validate.positive_int("embed", embed)
    validate.positive_int("hidden", hidden)
    validate.positive_int("n", n)
    validate.positive_int("length", length)
    validate.positive_int("seed", seed, minimum=0)
    if batch_size is not None:
        validate.positive_int("batch_size", batch_size)
    train, val = char_data(n, length)
    params = char_lm_init(seed, embed, hidden)
    info = corpus()

    def loss(p, idx=None):
        return char_lm_loss(p, train if idx is None else train[idx])

    @jax.jit
    def validation_loss(p):
        return char_lm_loss(p, val)

    sampled = minibatch(loss, n, batch_size)
    return Problem(
        name="char_lm",
        fn=jax.jit(lambda p: loss(p)),
        f_star=0.0,
        f_star_exact=False,
        x0=params,
        stochastic_fn=None if sampled is None else jax.jit(sampled),
        description=(f"char-level LSTM ({embed}-dim embedding, {hidden} units) on stdlib "
                     f"source, {n} windows of {length}"),
        extra={"validation_loss": validation_loss, "train_windows": train,
               "validation_windows": val, "corpus_sha256": info.sha256,
               "python_version": info.python_version, "modules": info.modules,
               "vocab_size": VOCAB_SIZE},
    )
