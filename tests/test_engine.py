"""Engine: traces agree with a plain Python loop, thinning, divergence as data, batched
hyperparameters, PRNG keys per trajectory, pytrees, one compile per family, bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from research import engine, optimizers, problems, theory
from research.problems import Problem


def test_readme_five_lines():
    from research import engine, optimizers, theory  # noqa: F811
    from research.problems import Problem
    p = Problem(name="mine", fn=lambda x: jnp.sum(x**4), L0=4.0, L1=2.0, f_star=0.0)
    eta, gamma = theory.clipped_gd_parameters(p.L0, p.L1)
    res = engine.run(p, optimizers.clipped_gd(eta=eta, gamma=gamma), x0=jnp.array([[3.0], [30.0]]), steps=10_000, eps=1e-3)  # noqa: E501
    assert res.trace["f"].shape == (2, 10_001)
    assert np.all(res.iterations_to_eps > 0) and not res.diverged.any()
    # each reached ||g|| <= eps at the reported t and not before
    for b, t in enumerate(res.iterations_to_eps):
        assert res.trace["grad_norm"][b, t] <= 1e-3 < res.trace["grad_norm"][b, :t].min()


def _python_loop(fn, x0, h_of_g, steps):
    """Reference: the obvious NumPy loop for x+ = x - h(||g||) g, with gradients from jax."""
    grad = jax.grad(fn)
    x = np.asarray(x0, dtype=float)
    fs, gns, hs = [], [], []
    for _ in range(steps):
        g = np.asarray(grad(jnp.asarray(x)))
        gn = np.linalg.norm(g)
        h = float(h_of_g(gn))
        fs.append(float(fn(jnp.asarray(x))))
        gns.append(gn)
        hs.append(h)
        x = x - h * g
    fs.append(float(fn(jnp.asarray(x))))
    gns.append(np.linalg.norm(np.asarray(grad(jnp.asarray(x)))))
    hs.append(np.nan)
    return np.array(fs), np.array(gns), np.array(hs), x


def test_traces_match_python_loop():
    p = problems.quartic(dim=2)
    eta, gamma = 0.05, 1.5
    x0 = jnp.array([[3.0, -1.0], [0.2, 0.1]])
    res = engine.run(p, optimizers.clipped_gd(eta, gamma), x0, steps=60, eps=0.05)
    for b in range(2):
        fs, gns, hs, x = _python_loop(p.fn, x0[b], lambda g: min(eta, gamma * eta / g), 60)
        assert np.allclose(res.trace["f"][b], fs, rtol=1e-12)
        assert np.allclose(res.trace["grad_norm"][b], gns, rtol=1e-12)
        assert np.allclose(res.trace["step_size"][b, :-1], hs[:-1], rtol=1e-12)
        assert np.isnan(res.trace["step_size"][b, -1])
        assert np.allclose(res.x[b], x, rtol=1e-12)
        first = np.flatnonzero(gns <= 0.05)
        assert res.iterations_to_eps[b] == (first[0] if first.size else -1)


def test_record_every_thins_exactly():
    p = problems.cosh()
    x0 = jnp.linspace(-4, 4, 7)[:, None]
    opt = optimizers.normalized_gd(eta=0.1, beta=1.0)
    full = engine.run(p, opt, x0, steps=120, eps=1e-2)
    thin = engine.run(p, opt, x0, steps=120, eps=1e-2, record_every=8)
    assert np.array_equal(thin.iterations, np.arange(0, 121, 8))
    for k in engine.TRACE_KEYS:
        assert np.array_equal(thin.trace[k], full.trace[k][:, ::8], equal_nan=True)
    assert np.array_equal(thin.iterations_to_eps, full.iterations_to_eps)
    assert np.array_equal(np.asarray(thin.x), np.asarray(full.x))


def test_divergence_is_frozen_flagged_and_isolated():
    """Seed 001: GD with lr 0.1 on x^4 from x = 10 goes to -390, then overflows."""
    p = problems.quartic()
    x0 = jnp.array([[10.0], [1.0], [-10.0]])
    res = engine.run(p, optimizers.gd(0.1), x0, steps=40)
    alone = engine.run(p, optimizers.gd(0.1), jnp.array([[1.0]]), steps=40)
    assert list(res.diverged) == [True, False, True]
    assert res.trace["f"][0, 1] == 390.0**4  # x1 = 10 - 0.1 * 4000 = -390
    # oracle: the first t with a non-finite f(x_t), grad or x_{t+1}, in plain float64 NumPy
    x, t = np.float64(10.0), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(x**4) and np.isfinite(x - 0.1 * 4 * x**3):
            x, t = x - 0.1 * 4 * x**3, t + 1
    assert res.diverged_at[0] == t
    assert np.all(np.isfinite(np.asarray(res.x)))  # frozen at the last finite iterate
    assert np.all(np.isnan(res.trace["f"][0, t + 1:]))  # no made-up values after divergence
    assert np.array_equal(res.trace["f"][1], alone.trace["f"][0])  # the neighbour ran on
    assert res.diverged_at[1] == -1


def test_batched_hyperparameters_equal_separate_runs():
    p = problems.quartic()
    etas = jnp.array([0.001, 0.01, 0.05, 0.2])
    x0 = jnp.full((4, 1), 2.0)
    batched = engine.run(p, optimizers.clipped_gd(eta=etas, gamma=1.0), x0, steps=50, eps=1e-2)
    for i, eta in enumerate(etas):
        one = engine.run(p, optimizers.clipped_gd(eta=float(eta), gamma=1.0), x0[:1], 50,
                         eps=1e-2)
        # the same arithmetic, vectorised differently by XLA: equal up to rounding
        assert np.allclose(batched.trace["f"][i], one.trace["f"][0], rtol=1e-13, atol=0)
        assert batched.iterations_to_eps[i] == one.iterations_to_eps[0]


def test_one_compile_per_family_and_shape():
    p = problems.quartic(dim=3)
    x0 = jnp.ones((5, 3))
    engine.run(p, optimizers.l0l1_gd(4.0, 2.0, "si"), x0, steps=30)
    before = engine.TRACE_COUNT
    for L0 in (1.0, 2.0, 8.0):
        engine.run(p, optimizers.l0l1_gd(L0, 2.0, "si"), x0 * L0, steps=30, eps=L0)
    engine.run(p, optimizers.l0l1_gd(4.0, jnp.arange(5.0), "si"), x0, steps=30)
    assert engine.TRACE_COUNT == before
    engine.run(p, optimizers.l0l1_gd(4.0, 2.0, "cl"), x0, steps=30)  # other rule: other code
    assert engine.TRACE_COUNT == before + 1


def test_stochastic_problem_keys_per_trajectory():
    p = problems.logistic()
    x0 = p.batch_x0(3)
    opt = optimizers.gd(0.5)
    a = engine.run(p, opt, x0, steps=40, record_every=4, key=0)
    b = engine.run(p, opt, x0, steps=40, record_every=4, key=0)
    c = engine.run(p, opt, x0, steps=40, record_every=4, key=1)
    assert np.array_equal(a.trace["f"], b.trace["f"])  # same seed, same trajectories
    assert not np.array_equal(a.trace["f"], c.trace["f"])
    assert len({tuple(r) for r in np.round(a.trace["f"], 12)}) == 3  # one key per trajectory
    assert a.trace["f"][:, 0] == pytest.approx(float(p.fn(p.x0)))  # traces use the exact f
    assert np.all(a.trace["f"][:, -1] < a.trace["f"][:, 0])


def test_pytree_parameters():
    def fn(params):
        return jnp.sum(params["w"] ** 4) + jnp.cosh(params["b"])

    p = Problem(name="tree", fn=fn, L0=None, L1=None, f_star=1.0)
    x0 = {"w": jnp.ones((4, 2, 3)) * jnp.arange(1.0, 5.0)[:, None, None], "b": jnp.ones(4)}
    res = engine.run(p, optimizers.clipped_gd(0.05, 1.0), x0, steps=200, eps=1e-3)
    assert res.x["w"].shape == (4, 2, 3) and res.trace["f"].shape == (4, 201)
    assert np.all(np.diff(res.trace["f"], axis=1) <= 1e-12)  # monotone on this convex f


def test_plain_optax_transformation_runs():
    p = problems.quartic()
    opt = optax.chain(optax.clip_by_global_norm(2.0), optax.sgd(0.025))
    ours = engine.run(p, optimizers.clipped_gd(0.025, 2.0), jnp.array([[3.0]]), 100)
    ref = engine.run(p, opt, jnp.array([[3.0]]), 100)
    assert np.allclose(ours.trace["f"], ref.trace["f"], rtol=1e-13)


def test_theorem3_parameters_descend_on_quartic():
    """Clipped GD with Theorem 3's parameters never increases f (a check that can fail: the
    same run with eta 100x larger does increase f)."""
    p = problems.quartic()
    eta, gamma = theory.clipped_gd_parameters(p.L0, p.L1)
    x0 = jnp.geomspace(0.01, 1e3, 30)[:, None]
    res = engine.run(p, optimizers.clipped_gd(eta, gamma), x0, steps=500)
    assert np.all(np.diff(res.trace["f"], axis=1) <= 0)
    bad = engine.run(p, optimizers.clipped_gd(100 * eta, gamma), x0, steps=500)
    assert np.any(np.diff(bad.trace["f"], axis=1) > 0)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"x0": jnp.array([[1.0], [jnp.nan]])}, "x0"),
    ({"x0": jnp.array([[1.0], [jnp.inf]])}, "x0"),
    ({"x0": jnp.asarray(1.0)}, "x0"),
    ({"record_every": 3}, "record_every"),
    ({"record_every": 0}, "record_every"),
    ({"eps": 0.0}, "eps"),
    ({"optimizer": optimizers.gd(jnp.ones(3) * 0.1)}, "lr"),
    ({"optimizer": "gd"}, "optimizer"),
    ({"problem": lambda x: x}, "problem"),
])
def test_bad_input_before_compiling(kwargs, field):
    args = {"problem": problems.quartic(), "optimizer": optimizers.gd(0.1),
            "x0": jnp.ones((2, 1)), "steps": 10}
    args.update(kwargs)
    before = engine.TRACE_COUNT
    with pytest.raises(ValueError, match=field):
        engine.run(**args)
    assert engine.TRACE_COUNT == before


def test_stop_at_eps_gives_the_same_counts_and_stops():
    p = problems.quartic()
    x0 = jnp.array([[0.5], [3.0], [30.0], [10.0]])
    opt = optimizers.gd(jnp.array([0.05, 0.01, 0.1, 1e-4]))  # the third diverges
    full = engine.run(p, opt, x0, steps=20_000, eps=1e-2, record_every=100)
    stop = engine.run(p, opt, x0, steps=20_000, eps=1e-2, record_every=100, stop_at_eps=True)
    assert np.array_equal(full.iterations_to_eps, stop.iterations_to_eps)
    assert np.array_equal(full.diverged_at, stop.diverged_at)
    assert full.iterations_to_eps[3] == -1  # the slow one never arrives: it runs to the end
    for b in (0, 1):  # finished ones stop at the end of the block in which they arrived
        k = stop.iterations_to_eps[b]
        last_block = k // 100
        assert np.all(np.isfinite(stop.trace["f"][b, :last_block + 1]))
        assert np.all(np.isnan(stop.trace["f"][b, last_block + 1:]))
        assert np.array_equal(stop.trace["f"][b, :last_block + 1],
                              full.trace["f"][b, :last_block + 1])
    with pytest.raises(ValueError, match="stop_at_eps=True needs eps"):
        engine.run(p, opt, x0, steps=100, stop_at_eps=True)


def test_trace_x_keeps_the_iterates():
    p = problems.quartic()
    x0 = jnp.array([[10.0], [1.0]])
    res = engine.run(p, optimizers.gd(0.1), x0, steps=8, trace_x=True)
    xs = res.trace["x"]
    assert xs.shape == (2, 9, 1)
    assert xs[0, 0, 0] == 10.0 and xs[0, 1, 0] == -390.0  # seed 001
    assert np.allclose(xs[1, :, 0] ** 4, res.trace["f"][1], rtol=1e-14)
    assert np.all(np.isnan(xs[0, res.diverged_at[0] + 1:]))
    thin = engine.run(p, optimizers.gd(0.1), x0, steps=8, record_every=4, trace_x=True,
                      eps=1e-9, stop_at_eps=True)
    assert np.array_equal(thin.trace["x"][1], xs[1, ::4], equal_nan=True)


def test_trace_grad_norm_false_skips_only_the_exact_gradient():
    p = problems.noisy(tau=0.5)
    x0 = jnp.array([[2.0], [1.5]])
    full = engine.run(p, optimizers.clipped_gd(0.1, 1.0), x0, steps=20, record_every=5, key=3)
    lean = engine.run(p, optimizers.clipped_gd(0.1, 1.0), x0, steps=20, record_every=5, key=3,
                      trace_grad_norm=False)
    assert np.array_equal(full.trace["f"], lean.trace["f"])  # same samples, same iterates
    assert np.array_equal(full.trace["step_size"], lean.trace["step_size"], equal_nan=True)
    assert np.isnan(lean.trace["grad_norm"][:, :-1]).all()
    assert np.array_equal(full.trace["grad_norm"][:, -1], lean.trace["grad_norm"][:, -1])
    assert np.isfinite(full.trace["grad_norm"]).all()


def test_problems_sharing_their_function_share_the_program():
    a, b = problems.hard_instance(M=31.0), problems.hard_instance(M=310.0)
    assert a.fn is b.fn and a.x0[0] != b.x0[0]
    before = engine.TRACE_COUNT
    ra = engine.run(a, optimizers.gd(1e-3), a.batch_x0(1), steps=5)
    rb = engine.run(b, optimizers.gd(1e-3), b.batch_x0(1), steps=5)
    assert engine.TRACE_COUNT == before + 1
    assert ra.trace["f"][0, 0] == a.fn(a.x0) and rb.trace["f"][0, 0] == b.fn(b.x0)


def _cube(x):
    return jnp.sum(x ** 3)


def test_observe_records_functions_of_the_recorded_iterates():
    p = problems.quartic()
    x0 = jnp.array([[10.0], [1.0]])  # the first diverges (seed 001)
    res = engine.run(p, optimizers.gd(0.1), x0, steps=8, record_every=2, trace_x=True,
                     observe={"cube": _cube})
    xs = res.trace["x"][..., 0]
    assert res.trace["cube"].shape == res.trace["f"].shape == (2, 5)
    assert np.allclose(res.trace["cube"], xs ** 3, rtol=1e-14, equal_nan=True)
    assert np.array_equal(np.isnan(res.trace["cube"]), np.isnan(res.trace["f"]))
    assert np.isnan(res.trace["cube"][0, -1]) and np.isfinite(res.trace["cube"][1]).all()
    stop = engine.run(p, optimizers.gd(0.1), x0[1:], steps=8, record_every=2, eps=0.5,
                      stop_at_eps=True, observe={"cube": _cube})
    assert np.allclose(stop.trace["cube"][0, :2], res.trace["cube"][1, :2], rtol=1e-14)
    assert np.isnan(stop.trace["cube"][0, 2:]).all()  # stopped after t = 3
    before = engine.TRACE_COUNT
    engine.run(p, optimizers.gd(0.2), x0, steps=8, record_every=2, trace_x=True,
               observe={"cube": _cube})
    assert engine.TRACE_COUNT == before  # same function object: the program is reused
    for bad, field in (({"f": _cube}, "trace names"), ({"c": 3.0}, "must be a function"),
                       ([_cube], "dict")):
        with pytest.raises(ValueError, match=field):
            engine.run(p, optimizers.gd(0.1), x0, steps=8, observe=bad)


@pytest.mark.parametrize("make", [lambda: optimizers.clipped_gd(1.0, 1e51),
                                  lambda: optimizers.normalized_gd(1e51, 0.0)],
                         ids=["clipped_gd", "normalized_gd"])
def test_clipped_steps_are_finite_on_huge_finite_gradients(make):
    """x^4 from x0 = +-1e52: f = 1e208 and |f'| = 4e156 are finite, and so is a step of length
    eta * gamma (clipped GD while ||g|| > gamma) or eta (normalized GD with beta = 0). A plain
    sqrt(sum g^2) overflows there ((4e156)^2 > 1.8e308), which flagged the run diverged at t = 0.
    Here every step has length 1e51, so x_t = +-(1e52 - t 1e51)."""
    p = problems.quartic()
    res = engine.run(p, make(), jnp.array([[1e52], [-1e52]]), steps=5, trace_x=True)
    assert not res.diverged.any() and list(res.diverged_at) == [-1, -1]
    x = 1e52 - np.arange(6) * 1e51
    np.testing.assert_allclose(res.trace["x"][0, :, 0], x, rtol=1e-14)
    np.testing.assert_allclose(res.trace["x"][1, :, 0], -x, rtol=1e-14)
    for b in range(2):
        np.testing.assert_allclose(res.trace["f"][b], x**4, rtol=1e-13)
        np.testing.assert_allclose(res.trace["grad_norm"][b], 4 * x**3, rtol=1e-13)
        # effective step ||x_{t+1} - x_t|| / ||g_t|| = 1e51 / (4 x_t^3); none after the last
        np.testing.assert_allclose(res.trace["step_size"][b, :-1], 1e51 / (4 * x[:-1] ** 3),
                                   rtol=1e-13)


def test_steps_to_a_target_loss_are_counted_at_every_step_as_a_plain_loop_counts():
    # minibatch SGD on logistic regression, recorded every 10th step only: the count is the
    # first t with the exact f(x_t) <= target, from a loop that draws the same minibatches
    p = problems.logistic()
    x0, lr, steps, every = p.batch_x0(3), 0.5, 60, 10
    grad = jax.jit(jax.grad(p.stochastic_fn))
    fs = np.empty((3, steps + 1))
    for b, key in enumerate(jax.random.split(jax.random.PRNGKey(7), 3)):
        x = x0[b]
        for t in range(steps + 1):
            fs[b, t] = float(p.fn(x))
            key, sub = jax.random.split(key)
            x = x - lr * grad(x, sub)
    lowest = np.sort(fs.min(axis=1))
    target = float(lowest[:2].mean())  # reached by one trajectory, not by the others
    below = fs <= target
    want = np.where(below.any(axis=1), np.argmax(below, axis=1), -1)
    assert (want >= 0).any() and (want < 0).any()
    assert want[want >= 0].min() % every  # a crossing between two recorded steps
    gap = np.abs(fs - target).min() / target
    assert gap > 1e-9  # no crossing within rounding of the target, so the count is exact
    opt = optimizers.gd(lr)
    plain = engine.run(p, opt, x0, steps, record_every=every, key=7)
    res = engine.run(p, opt, x0, steps, record_every=every, key=7, f_target=target)
    assert list(res.iterations_to_target) == list(want)
    assert list(plain.iterations_to_target) == [-1, -1, -1]
    for k in plain.trace:  # an observation only: nothing else changes
        assert np.array_equal(plain.trace[k], res.trace[k], equal_nan=True), k
    assert np.array_equal(plain.diverged_at, res.diverged_at)


def test_a_diverged_trajectory_reaches_no_target_after_its_divergence():
    # GD with lr 0.1 on x^4: from 10 it overflows; from 1 it reaches f <= 0.1 at t = 2
    p = problems.quartic()
    res = engine.run(p, optimizers.gd(0.1), jnp.array([[1.0], [10.0]]), 20, f_target=0.1)
    assert list(res.iterations_to_target) == [2, -1] and list(res.diverged) == [False, True]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [0.1, 0.2]])
def test_a_target_must_be_one_finite_number(bad):
    with pytest.raises(ValueError, match=r"f_target \(or None\) must be a finite number"):
        engine.run(problems.quartic(), optimizers.gd(0.1), jnp.array([[1.0]]), 5, f_target=bad)
