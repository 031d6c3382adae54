"""GD, clipped GD, normalized GD and their relatives, as optax ``GradientTransformation``s.

Every factory returns an ``optax.GradientTransformation`` whose updates are to be *added* to
the parameters (``optax.apply_updates``), so they compose with ``optax.chain``.

Hyperparameters are traced, not baked in. They live in the optimizer state
(``HyperState.hparams``, a dict of arrays) and every family has one module-level ``update``
function. Two optimizers of the same family with different numbers therefore share one
compiled program, and ``research.engine`` can batch hyperparameters along the trajectory axis.

The step-size rules h(||g||) are the plain functions of ``research.theory``; the optimizers,
the theory checks and the plots all call the same ones.

Example:
  >>> import optax
  >>> opt = clipped_gd(eta=0.1, gamma=1.0)
  >>> params = jnp.array([10.0])
  >>> state = opt.init(params)
  >>> updates, state = opt.update(4 * params**3, state)
  >>> optax.apply_updates(params, updates)   # step 0.1 * 1 / 4000 along -g
  Array([9.9], dtype=float64)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from research import clipping, theory, validate

_tree_map = jax.tree_util.tree_map


class HyperState(NamedTuple):
    """Optimizer state: traced hyperparameters plus the family's own state (or ())."""

    hparams: dict[str, jax.Array]
    inner: Any


def _transformation(update, hparams: dict, inner_init=None) -> optax.GradientTransformation:
    hparams = {k: jnp.asarray(v, dtype=float) for k, v in hparams.items()}

    def init(params):
        return HyperState(dict(hparams), inner_init(params) if inner_init else ())

    return optax.GradientTransformation(init, update)


def _scaled(grads, step, gnorm):
    """-step * grads; a zero gradient gives a zero update even when the step is infinite."""
    step = jnp.where(gnorm > 0, step, 0.0)
    return _tree_map(lambda g: (-step).astype(g.dtype) * g, grads)


# --------------------------------------------------------------------------- scalar-step family


def _scalar_step_update(rule, *names):
    """The update of a method x+ = x - h(||g||) g, h = rule(||g||, *hparams[names]).

    Built once per family at import, so each family has one ``update`` object (the engine's
    compile-cache key).
    """

    def update(grads, state, params=None):
        del params
        gnorm = clipping.global_norm(grads)
        step = rule(gnorm, *(state.hparams[n] for n in names))
        return _scaled(grads, step, gnorm), state

    update.__name__ = f"_{rule.__name__}_update"
    return update


_GD_UPDATE = _scalar_step_update(theory.gd_step, "lr")
_CLIPPED_UPDATE = _scalar_step_update(theory.clipped_step, "eta", "gamma")
_NORMALIZED_UPDATE = _scalar_step_update(theory.normalized_step, "eta", "beta")
_BETA_NORMALIZED_UPDATE = _scalar_step_update(theory.beta_normalized_step, "lr", "power")
_THM7_UPDATES = {
    True: _scalar_step_update(theory.theorem7_step, "eta", "L1", "tau"),
    False: _scalar_step_update(theory.theorem7_step_without_eta, "eta", "L1", "tau"),
}
_L0L1_UPDATES = {rule: _scalar_step_update(fn, "L0", "L1")
                 for rule, fn in theory.L0L1_RULES.items()}


def gd(lr: float) -> optax.GradientTransformation:
    """Gradient descent with a fixed step: x+ = x - lr grad f(x).

    References: docs/theory.md §2.
    """
    validate.positive("lr", lr)
    return _transformation(_GD_UPDATE, {"lr": lr})


def clipped_gd(eta: float, gamma: float) -> optax.GradientTransformation:
    """Clipped GD: h = min{eta, gamma eta / ||g||}, with the global L2 norm of the gradient.

    Equivalent to ``optax.chain(optax.clip_by_global_norm(gamma), optax.sgd(eta))``.
    ``gamma = inf`` is plain GD.

    References: Zhang et al. 2020, eq. (5); step rule ``theory.clipped_step``. [paper]
    """
    validate.positive("eta", eta)
    validate.positive("gamma", gamma, allow_inf=True)
    return _transformation(_CLIPPED_UPDATE, {"eta": eta, "gamma": gamma})


def normalized_gd(eta: float, beta: float) -> optax.GradientTransformation:
    """Normalized GD: h = eta / (||g|| + beta). beta = 0 gives steps of length exactly eta.

    References: Zhang et al. 2020, eq. (6); ``theory.normalized_step``. [paper]
    """
    validate.positive("eta", eta)
    validate.nonnegative("beta", beta)
    return _transformation(_NORMALIZED_UPDATE, {"eta": eta, "beta": beta})


def beta_normalized_gd(lr: float, power: float) -> optax.GradientTransformation:
    """beta-normalized GD: x+ = x - lr grad f / ||grad f||^power, power in [0, 1].

    power = 0 is GD, power = 1 is normalized GD with beta = 0.

    References: Chen, Zhou, Liang, Lu, ICML 2023; ``theory.beta_normalized_step``. [code]
    """
    validate.positive("lr", lr)
    validate.in_interval("power", power, 0.0, 1.0, closed_hi=True)
    return _transformation(_BETA_NORMALIZED_UPDATE, {"lr": lr, "power": power})


def _value_clipped_update(grads, state, params=None):
    del params
    hp = state.hparams
    clipped = clipping.clip_grad_value(grads, hp["clip_value"])
    return _tree_map(lambda g: -hp["lr"].astype(g.dtype) * g, clipped), state


def value_clipped_gd(lr: float, clip_value: float) -> optax.GradientTransformation:
    """GD on the elementwise-clipped gradient: x+ = x - lr clip(g, -c, c).

    Unlike norm clipping this changes the update's direction.

    References: Keras ``clipvalue``; torch ``clip_grad_value_``; docs/theory.md §2.
    """
    validate.positive("lr", lr)
    validate.positive("clip_value", clip_value, allow_inf=True)
    return _transformation(_value_clipped_update, {"lr": lr, "clip_value": clip_value})


def l0l1_gd(L0: float, L1: float, rule: str = "si") -> optax.GradientTransformation:
    """GD with an (L0,L1)-aware step h(||g||) chosen by ``rule``.

    Rules (``theory.L0L1_RULES``):
      - "inverse": 1 / (L0 + L1 g);
      - "star": ln(1 + L1 g / (L0 + L1 g)) / (L1 g)   (Vankov et al. eta*);
      - "si": 1 / (L0 + 1.5 L1 g)                      (Vankov et al. eta_si);
      - "cl": min{1/(2 L0), 1/(3 L1 g)}                (Vankov et al. eta_cl).

    References: docs/theory.md §2; Vankov et al. 2024 (arXiv:2410.10800). [secondary]
    """
    validate.choice("rule", rule, tuple(theory.L0L1_RULES))
    validate.nonnegative("L0", L0)
    validate.nonnegative("L1", L1)
    return _transformation(_L0L1_UPDATES[rule], {"L0": L0, "L1": L1})


def clipped_sgd_thm7(eta: float, L1: float, tau: float,
                     printed: bool = True) -> optax.GradientTransformation:
    """Clipped SGD with Theorem 7's step h = min{1 / (16 eta L1 (||g|| + tau)), eta}, g the
    stochastic gradient. ``printed=False`` uses min{1 / (16 L1 (||g|| + tau)), eta} instead
    (the suspected typo removed; ``theory.theorem7_step_without_eta``). Get eta from
    ``theory.theorem7_eta(L0, L1, tau, T)``.

    References: Zhang et al. 2020, Theorem 7. [paper, as printed]
    """
    validate.positive("eta", eta)
    validate.nonnegative("L1", L1)
    validate.nonnegative("tau", tau)
    return _transformation(_THM7_UPDATES[bool(printed)], {"eta": eta, "L1": L1, "tau": tau})


# --------------------------------------------------------------------------- momentum family

_CLIP_KINDS = ("none", "clipnorm", "global_clipnorm", "clipvalue")


def _clip_for_kind(kind: str, grads, threshold):
    if kind == "clipnorm":
        return clipping.clip_per_tensor_norm(grads, threshold)
    if kind == "global_clipnorm":
        return clipping.clip_global_norm(grads, threshold)
    if kind == "clipvalue":
        return clipping.clip_grad_value(grads, threshold)
    return grads


def _make_momentum_update(kind: str):
    def update(grads, state, params=None):
        del params
        hp = state.hparams
        grads = _clip_for_kind(kind, grads, hp.get("clip", jnp.inf))
        velocity = _tree_map(
            lambda v, g: hp["momentum"].astype(v.dtype) * v - hp["lr"].astype(v.dtype) * g,
            state.inner, grads,
        )
        return velocity, HyperState(hp, velocity)

    update.__name__ = f"_momentum_{kind}_update"
    return update


_MOMENTUM_UPDATES = {kind: _make_momentum_update(kind) for kind in _CLIP_KINDS}


def sgd_momentum(lr: float, momentum: float = 0.9, *, clipnorm: float | None = None,
                 global_clipnorm: float | None = None,
                 clipvalue: float | None = None) -> optax.GradientTransformation:
    """SGD with heavy-ball momentum and Keras-style gradient clipping.

    v <- momentum * v - lr * clip(g); x <- x + v (Keras ``SGD``; the same iterates as torch's
    ``SGD(momentum=...)`` and ``optax.sgd(lr, momentum)`` for a constant lr). At most one of:
      - ``clipnorm``: each gradient tensor clipped by its own L2 norm;
      - ``global_clipnorm``: all tensors clipped by their joint L2 norm;
      - ``clipvalue``: every entry clipped to [-clipvalue, clipvalue].

    References: Keras optimizers documentation; docs/theory.md §7.
    """
    validate.positive("lr", lr)
    validate.in_interval("momentum", momentum, 0.0, 1.0)
    given = {k: v for k, v in (("clipnorm", clipnorm), ("global_clipnorm", global_clipnorm),
                               ("clipvalue", clipvalue)) if v is not None}
    if len(given) > 1:
        raise ValueError(
            "clipnorm, global_clipnorm and clipvalue are exclusive: set at most one; got "
            + ", ".join(given) + "."
        )
    kind, threshold = next(iter(given.items()), ("none", None))
    hparams = {"lr": lr, "momentum": momentum}
    if threshold is not None:
        validate.positive(kind, threshold, allow_inf=True)
        hparams["clip"] = threshold
    return _transformation(_MOMENTUM_UPDATES[kind], hparams,
                           inner_init=lambda p: _tree_map(jnp.zeros_like, p))


def _mixclip_update(grads, state, params=None):
    del params
    hp = state.hparams
    lr, gamma, beta, nu = hp["lr"], hp["gamma"], hp["momentum"], hp["nu"]
    m = _tree_map(lambda m, g: (beta * m + (1.0 - beta) * g).astype(m.dtype), state.inner, grads)
    m_norm = clipping.global_norm(m)
    g_norm = clipping.global_norm(grads)
    a = lr * nu / (1.0 + lr * m_norm / gamma)
    b = lr * (1.0 - nu) / (1.0 + lr * g_norm / gamma)
    updates = _tree_map(lambda mi, gi: -(a * mi + b * gi).astype(mi.dtype), m, grads)
    return updates, HyperState(hp, m)


def mixclip(lr: float, gamma: float, momentum: float = 0.999,
            nu: float = 0.7) -> optax.GradientTransformation:
    """Clipping with momentum (Zhang, Jin, Fang, Wang 2020), as in the authors' MixClip.

    m <- momentum m + (1 - momentum) g (updated first), then
    x <- x - lr nu / (1 + lr ||m|| / gamma) m - lr (1 - nu) / (1 + lr ||g|| / gamma) g.
    nu = 1 is their momentum clipping ("MomClip").

    References: Zhang, Jin, Fang, Wang, "Improved analysis of clipping algorithms for
    non-convex optimization", NeurIPS 2020; authors' code zbh2047/clipping-algorithms.
    [code, secondary]
    """
    validate.positive("lr", lr)
    validate.positive("gamma", gamma, allow_inf=True)
    validate.in_interval("momentum", momentum, 0.0, 1.0)
    validate.in_interval("nu", nu, 0.0, 1.0, closed_hi=True)
    return _transformation(_mixclip_update, {"lr": lr, "gamma": gamma, "momentum": momentum,
                                             "nu": nu},
                           inner_init=lambda p: _tree_map(jnp.zeros_like, p))


FACTORIES = {
    "gd": gd,
    "clipped_gd": clipped_gd,
    "normalized_gd": normalized_gd,
    "beta_normalized_gd": beta_normalized_gd,
    "value_clipped_gd": value_clipped_gd,
    "l0l1_gd": l0l1_gd,
    "clipped_sgd_thm7": clipped_sgd_thm7,
    "sgd_momentum": sgd_momentum,
    "mixclip": mixclip,
}
"""Optimizer factories by name (used by configs)."""


def get(name: str, **hparams) -> optax.GradientTransformation:
    """Build the optimizer ``name`` from keyword hyperparameters."""
    validate.choice("optimizer", name, tuple(FACTORIES))
    return FACTORIES[name](**hparams)
