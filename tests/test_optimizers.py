"""Optimizers: each update matches its formula (independent NumPy oracles), composes with optax,
does not recompile when a hyperparameter changes, and refuses bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research import optimizers, theory

TREE = {"w": jnp.array([[3.0, -4.0], [0.5, 2.0]]), "b": jnp.array([-1.0, 12.0])}


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree_util.tree_leaves(tree)])


def _one_update(opt, grads=TREE, params=None):
    state = opt.init(params if params is not None else grads)
    updates, _ = opt.update(grads, state, params)
    return _flat(updates)


G = _flat(TREE)
GN = np.linalg.norm(G)


@pytest.mark.parametrize(("opt", "h"), [
    (optimizers.gd(0.1), 0.1),
    (optimizers.clipped_gd(eta=0.5, gamma=2.0), min(0.5, 2.0 * 0.5 / GN)),
    (optimizers.clipped_gd(eta=0.5, gamma=100.0), 0.5),
    (optimizers.normalized_gd(eta=0.3, beta=1.5), 0.3 / (GN + 1.5)),
    (optimizers.beta_normalized_gd(lr=0.3, power=0.5), 0.3 / GN**0.5),
    (optimizers.l0l1_gd(2.0, 3.0, "inverse"), 1 / (2 + 3 * GN)),
    (optimizers.l0l1_gd(2.0, 3.0, "si"), 1 / (2 + 4.5 * GN)),
    (optimizers.l0l1_gd(2.0, 3.0, "cl"), min(1 / 4, 1 / (9 * GN))),
    (optimizers.l0l1_gd(2.0, 3.0, "star"), np.log(1 + 3 * GN / (2 + 3 * GN)) / (3 * GN)),
    (optimizers.clipped_sgd_thm7(0.01, 2.0, 0.5), min(1 / (16 * 0.01 * 2 * (GN + 0.5)), 0.01)),
    (optimizers.clipped_sgd_thm7(0.5, 2.0, 0.5, printed=False),
     min(1 / (16 * 2 * (GN + 0.5)), 0.5)),
])
def test_scalar_step_updates(opt, h):
    assert np.allclose(_one_update(opt), -h * G, rtol=1e-14, atol=0)


def test_clipped_gd_equals_optax_chain():
    for gamma in (0.5, 5.0, 50.0):
        ours = _one_update(optimizers.clipped_gd(eta=0.2, gamma=gamma))
        ref = optax.chain(optax.clip_by_global_norm(gamma), optax.sgd(0.2))
        assert np.allclose(ours, _one_update(ref), rtol=1e-14)


def test_value_clipped_gd():
    out = _one_update(optimizers.value_clipped_gd(lr=0.1, clip_value=2.5))
    assert np.allclose(out, -0.1 * np.clip(G, -2.5, 2.5), rtol=1e-15)


def test_zero_gradient_gives_zero_update():
    zero = jax.tree_util.tree_map(jnp.zeros_like, TREE)
    for name, kw in [("normalized_gd", {"eta": 1.0, "beta": 0.0}),
                     ("beta_normalized_gd", {"lr": 1.0, "power": 1.0}),
                     ("l0l1_gd", {"L0": 0.0, "L1": 1.0, "rule": "cl"}),
                     ("clipped_gd", {"eta": 1.0, "gamma": 1.0})]:
        out = _one_update(optimizers.get(name, **kw), zero)
        assert np.array_equal(out, np.zeros_like(out)), name


def _run(opt, grads_seq, params):
    state = opt.init(params)
    out = []
    for g in grads_seq:
        u, state = opt.update(g, state, params)
        params = optax.apply_updates(params, u)
        out.append(_flat(params))
    return np.array(out)


GRADS = [jax.tree_util.tree_map(lambda x, k=k: x * (1.0 + 0.7 * np.sin(k)) + k, TREE)
         for k in range(6)]


@pytest.mark.parametrize("kind", ["none", "clipnorm", "global_clipnorm", "clipvalue"])
def test_sgd_momentum_keras(kind):
    """Keras SGD: v <- mu v - lr clip(g); x <- x + v. Oracle written in NumPy per leaf."""
    lr, mu, c = 0.01, 0.9, 1.5
    kw = {} if kind == "none" else {kind: c}
    ours = _run(optimizers.sgd_momentum(lr, mu, **kw), GRADS, TREE)
    x = {k: np.asarray(v) for k, v in TREE.items()}
    v = {k: np.zeros_like(a) for k, a in x.items()}
    ref = []
    for g in GRADS:
        g = {k: np.asarray(a) for k, a in g.items()}
        if kind == "clipnorm":
            g = {k: a * c / max(np.linalg.norm(a), c) for k, a in g.items()}
        elif kind == "global_clipnorm":
            t = np.sqrt(sum(np.sum(a * a) for a in g.values()))
            g = {k: a * c / max(t, c) for k, a in g.items()}
        elif kind == "clipvalue":
            g = {k: np.clip(a, -c, c) for k, a in g.items()}
        for k in x:
            v[k] = mu * v[k] - lr * g[k]
            x[k] = x[k] + v[k]
        ref.append(np.concatenate([x["b"].ravel(), x["w"].ravel()]))
    assert np.allclose(ours, np.array(ref), rtol=1e-13)


def test_sgd_momentum_matches_optax_sgd():
    ours = _run(optimizers.sgd_momentum(0.05, 0.8), GRADS, TREE)
    ref = _run(optax.sgd(0.05, momentum=0.8), GRADS, TREE)
    assert np.allclose(ours, ref, rtol=1e-13)


def test_mixclip_matches_authors_rule():
    """Zhang et al. 2020 MixClip: m updated first, then two clipped terms (NumPy oracle)."""
    lr, gamma, beta, nu = 0.1, 0.5, 0.9, 0.7
    ours = _run(optimizers.mixclip(lr, gamma, momentum=beta, nu=nu), GRADS, TREE)
    x, m, ref = _flat(TREE), np.zeros(G.size), []
    for g in GRADS:
        g = _flat(g)
        m = beta * m + (1 - beta) * g
        x = (x - lr * nu / (1 + lr * np.linalg.norm(m) / gamma) * m
             - lr * (1 - nu) / (1 + lr * np.linalg.norm(g) / gamma) * g)
        ref.append(x)
    assert np.allclose(ours, np.array(ref), rtol=1e-13)


def test_composes_with_optax_chain():
    opt = optax.chain(optax.clip(1.0), optimizers.normalized_gd(eta=0.2, beta=0.0))
    out = _one_update(opt)
    clipped = np.clip(G, -1.0, 1.0)
    assert np.allclose(out, -0.2 * clipped / np.linalg.norm(clipped), rtol=1e-14)


def test_float32_params_stay_float32():
    p32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), TREE)
    for name, kw in [("gd", {"lr": 0.1}), ("clipped_gd", {"eta": 0.1, "gamma": 1.0}),
                     ("sgd_momentum", {"lr": 0.1, "clipnorm": 1.0}),
                     ("mixclip", {"lr": 0.1, "gamma": 1.0})]:
        opt = optimizers.get(name, **kw)
        u, _ = opt.update(p32, opt.init(p32), p32)
        assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(u)), name


def test_step_rule_is_the_theory_function():
    """The optimizer's h(||g||) is theory's function: same numbers over many gradient norms."""
    for g in np.geomspace(1e-6, 1e6, 25):
        grad = jnp.array([g, 0.0])
        u = _one_update(optimizers.l0l1_gd(1.0, 2.0, "star"), grad)
        assert -u[0] / g == pytest.approx(float(theory.vankov_star_step(g, 1.0, 2.0)), rel=1e-14)


def test_changing_hyperparameters_does_not_recompile():
    """Like optax's tests: count traces of a jitted step across optimizers of one family."""
    traces = {"n": 0}

    def step(update, grads, state):
        traces["n"] += 1
        return update(grads, state, None)

    jstep = jax.jit(step, static_argnums=0)
    for name, values in [("clipped_gd", [{"eta": e, "gamma": 1.0} for e in (0.1, 0.2, 0.3)]),
                         ("l0l1_gd", [{"L0": a, "L1": 1.0, "rule": "si"} for a in (1.0, 2.0)]),
                         ("sgd_momentum", [{"lr": a, "clipvalue": 0.5} for a in (0.1, 0.2)])]:
        before = traces["n"]
        results = []
        for kw in values:
            opt = optimizers.get(name, **kw)
            results.append(_flat(jstep(opt.update, TREE, opt.init(TREE))[0]))
        assert traces["n"] - before == 1, name
        assert not np.allclose(results[0], results[1])  # the new value took effect


@pytest.mark.parametrize(("name", "kw", "field"), [
    ("gd", {"lr": 0.0}, "lr"),
    ("gd", {"lr": -1.0}, "lr"),
    ("gd", {"lr": float("inf")}, "lr"),
    ("gd", {"lr": float("nan")}, "lr"),
    ("clipped_gd", {"eta": 0.0, "gamma": 1.0}, "eta"),
    ("clipped_gd", {"eta": 0.1, "gamma": -1.0}, "gamma"),
    ("normalized_gd", {"eta": -0.1, "beta": 1.0}, "eta"),
    ("normalized_gd", {"eta": 0.1, "beta": -1.0}, "beta"),
    ("value_clipped_gd", {"lr": 0.1, "clip_value": 0.0}, "clip_value"),
    ("l0l1_gd", {"L0": -1.0, "L1": 1.0}, "L0"),
    ("l0l1_gd", {"L0": 1.0, "L1": -1.0}, "L1"),
    ("l0l1_gd", {"L0": 1.0, "L1": 1.0, "rule": "newton"}, "rule"),
    ("sgd_momentum", {"lr": 0.1, "momentum": 1.0}, "momentum"),
    ("sgd_momentum", {"lr": 0.1, "clipnorm": 0.0}, "clipnorm"),
    ("sgd_momentum", {"lr": 0.1, "clipnorm": 1.0, "clipvalue": 1.0}, "exclusive"),
    ("mixclip", {"lr": 0.1, "gamma": 1.0, "nu": 1.5}, "nu"),
    ("beta_normalized_gd", {"lr": 0.1, "power": 2.0}, "power"),
])
def test_bad_input(name, kw, field):
    with pytest.raises(ValueError, match=field):
        optimizers.get(name, **kw)


def test_unknown_optimizer():
    with pytest.raises(ValueError, match="optimizer must be one of 'gd'"):
        optimizers.get("adam")
