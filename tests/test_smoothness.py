"""Smoothness estimators against closed forms, and the envelope fit against known envelopes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from research import problems, smoothness


def test_both_estimators_give_lambda_max_on_a_quadratic():
    q = problems.quadratic(dim=6, condition=25.0)
    x = jnp.arange(1.0, 7.0)
    assert float(smoothness.hessian_norm(q.fn, x)) == pytest.approx(25.0, rel=1e-8)
    # the trajectory estimator equals ||A d|| / ||d||, which is lambda_max along the top
    # eigenvector; along any d it never exceeds it
    A = np.asarray(q.extra["A"])
    top = np.linalg.eigh(A)[1][:, -1]
    est = smoothness.trajectory_smoothness(jax.grad(q.fn), x, x + jnp.asarray(top))
    assert float(est) == pytest.approx(25.0, rel=1e-10)
    rng = np.random.default_rng(0)
    for _ in range(20):
        d = jnp.asarray(rng.standard_normal(6))
        assert float(smoothness.trajectory_smoothness(jax.grad(q.fn), x, x + d)) <= 25 * (1 + 1e-12)


@pytest.mark.parametrize("x", [0.1, 1.0, 3.0, -7.0])
def test_hessian_norm_closed_forms(x):
    assert float(smoothness.hessian_norm(problems.quartic().fn, jnp.array([x]))) == \
        pytest.approx(12 * x * x, rel=1e-10)
    assert float(smoothness.hessian_norm(problems.cosh().fn, jnp.array([x]))) == \
        pytest.approx(np.cosh(x), rel=1e-10)


def test_hessian_norm_on_pytrees():
    def fn(p):
        return jnp.sum(p["a"] ** 2) * 1.5 + 4.0 * jnp.sum(p["b"] ** 2)

    assert float(smoothness.hessian_norm(fn, {"a": jnp.ones(3), "b": jnp.ones((2, 2))})) == \
        pytest.approx(8.0, rel=1e-8)


def test_trajectory_estimator_alpha_grid_and_zero_step():
    f = problems.quartic().fn
    x, y = jnp.array([1.0]), jnp.array([0.0])
    mid = float(smoothness.trajectory_smoothness(jax.grad(f), x, y))
    # ||f'(x + d/2) - f'(x)|| / (|d|/2) with f' = 4x^3: (4 - 0.5) / 0.5 = 7
    assert mid == pytest.approx(7.0, rel=1e-14)
    grid = float(smoothness.trajectory_smoothness(jax.grad(f), x, y, alphas=(0.0, 0.5, 0.9)))
    assert grid == pytest.approx(max(4.0, 7.0, (4 - 4 * 0.9**3) / 0.1), rel=1e-12)
    assert np.isnan(float(smoothness.trajectory_smoothness(jax.grad(f), x, x)))


@given(st.floats(0.0, 100.0), st.floats(0.0, 10.0), st.integers(0, 2**31 - 1))
# found by hypothesis: the LP's tolerance left the envelope 1e-8 below the point (0, 1e-8)
@example(L0=1e-08, L1=2.0, seed=0)
def test_envelope_recovers_known_constants(L0, L1, seed):
    rng = np.random.default_rng(seed)
    g = np.concatenate([[0.0, 50.0], rng.uniform(0, 50, 60)])
    L = L0 + L1 * g
    L[2:] *= rng.uniform(0.3, 1.0, 60)  # points under the envelope, two on it at the ends
    a, b = smoothness.fit_envelope(g, L)
    assert a == pytest.approx(L0, rel=1e-6, abs=1e-6 * (1 + L1 * 50))
    assert b == pytest.approx(L1, rel=1e-6, abs=1e-8 * (1 + L0))
    assert np.all(a + b * g >= L * (1 - 1e-9) - 1e-9)
    assert np.all(a + b * g >= L)  # and exactly, as fit_envelope promises


@given(st.integers(-30, 30), st.integers(-30, 30), st.integers(0, 2**31 - 1))
def test_envelope_covers_every_point_exactly_at_any_scale(kg, kL, seed):
    """Clouds of points with g and L at scales 10^-30 ... 10^30: no point above the line."""
    rng = np.random.default_rng(seed)
    g = rng.uniform(0, 1, 40) * 10.0**kg
    L = (rng.uniform(0, 1, 40) + rng.uniform(0, 3) * g / 10.0**kg) * 10.0**kL
    a, b = smoothness.fit_envelope(g, L)
    assert a >= 0 and b >= 0
    assert np.all(a + b * g >= L)


def test_no_estimate_exceeds_the_stated_envelope():
    for p in (problems.quartic(), problems.cosh(), problems.sextic()):
        xs = jnp.linspace(-6.0, 6.0, 41)[:, None]
        h = jax.vmap(lambda x, p=p: smoothness.hessian_norm(p.fn, x))(xs)
        g = jnp.abs(jax.vmap(jax.grad(p.fn))(xs)[:, 0])
        assert np.all(np.asarray(h) <= (p.L0 + p.L1 * np.asarray(g)) * (1 + 1e-12))
        steps = xs[1:] - xs[:-1]
        traj = jax.vmap(lambda a, d, p=p: smoothness.trajectory_smoothness(
            jax.grad(p.fn), a, a + d))(xs[:-1], steps)
        # along a step the secant ratio is an average of f'' over the step: bounded by the
        # envelope at the step's larger-gradient end
        gmax = jnp.maximum(g[:-1], g[1:])
        assert np.all(np.asarray(traj) <= np.asarray(p.L0 + p.L1 * gmax) * (1 + 1e-12))


def test_log_correlations():
    g = np.geomspace(1, 100, 30)
    out = smoothness.log_correlations(g, 3 * g**0.5)
    assert out["pearson"] == pytest.approx(1.0) and out["spearman"] == pytest.approx(1.0)
    assert out["slope"] == pytest.approx(0.5) and out["n"] == 30
    neg = smoothness.log_correlations(g, 1 / g)
    assert neg["pearson"] == pytest.approx(-1.0) and neg["slope"] == pytest.approx(-1.0)
    assert np.isnan(smoothness.log_correlations([1.0, 2.0], [1.0, 2.0])["pearson"])
    assert out["spearman_p"] < 1e-10
    rng = np.random.default_rng(0)
    noise = smoothness.log_correlations(g, np.exp(rng.standard_normal(30)))
    assert noise["spearman_p"] > 0.01 or abs(noise["spearman"]) > 0.45


def test_along_training_logs_exact_hessian_and_bounded_estimates():
    from research import optimizers

    # x^4 from 3: ||H|| = 12 x^2 = 12 (|g| / 4)^(2/3); descending towards 0 the Hessian only
    # shrinks along each step, so the trajectory estimate stays under L0 + L1 |g| too.
    p = problems.quartic()
    out = smoothness.along_training(p, optimizers.clipped_gd(0.05, 1.0), 300, 10,
                                    x0=jnp.array([3.0]))
    g = out["grad_norm"]
    np.testing.assert_allclose(out["smoothness_hess"], 12 * np.cbrt(g / 4) ** 2, rtol=1e-9)
    bound = p.L0 + p.L1 * g
    assert np.all(out["smoothness_traj"] <= bound * (1 + 1e-12))
    assert np.all(out["smoothness_hess"] <= bound * (1 + 1e-12))
    assert out["iteration"].tolist() == list(range(0, 300, 10)) and out["diverged_at"] == -1
    # cosh in 3-D: ||H|| = max cosh(x_i), warm-started power iteration finds it
    c = problems.cosh(dim=3)
    out = smoothness.along_training(c, optimizers.gd(0.05), 200, 20,
                                    x0=jnp.array([2.0, -1.0, 0.5]))
    assert np.all(out["smoothness_hess"] <= c.L0 + c.L1 * out["grad_norm"] + 1e-9)
    np.testing.assert_allclose(out["smoothness_hess"][0], np.cosh(2.0), rtol=1e-6)


def test_along_training_on_a_quadratic_and_divergence_is_recorded():
    from research import optimizers

    q = problems.quadratic(dim=4, condition=10.0)
    lam = float(jnp.max(jnp.linalg.eigvalsh(jax.hessian(q.fn)(q.x0))))
    out = smoothness.along_training(q, optimizers.gd(0.01), 100, 10)
    np.testing.assert_allclose(out["smoothness_hess"], lam, rtol=1e-8)
    assert np.all(out["smoothness_traj"] <= lam * (1 + 1e-9))
    # GD with a step far above 2 / lambda diverges; the run freezes and says when
    boom = smoothness.along_training(problems.cosh(), optimizers.gd(5.0), 100, 10,
                                     x0=jnp.array([3.0]))
    assert boom["diverged_at"] >= 0 and np.isnan(boom["loss"][-1])
    assert np.isfinite(boom["loss"][0]) and np.all(np.isfinite(jax.tree_util.tree_leaves(
        boom["x"])[0]))


def test_along_training_rejects_bad_arguments():
    from research import optimizers

    with pytest.raises(ValueError, match="log_every must divide steps"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 7)
    with pytest.raises(ValueError, match="hvp_iters"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 10, hvp_iters=-1)
    with pytest.raises(ValueError, match="subsample_fn"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 10,
                                  subsample_fn=3.0)
    with pytest.raises(ValueError, match="x0 must be finite"):
        smoothness.along_training(problems.cosh(), optimizers.gd(0.1), 100, 10,
                                  x0=jnp.array([jnp.nan]))


NETWORKS = [
    lambda: problems.digits(hidden=8),
    lambda: problems.adding("rnn", hidden=6, length=8, n=16),
    lambda: problems.adding("lstm", hidden=5, length=8, n=16),
]


@pytest.mark.parametrize("make", [*(pytest.param(m, marks=pytest.mark.slow)
                                   for m in NETWORKS[:2]), NETWORKS[2]])
def test_network_problems_have_exact_gradients(make):
    """Directional checks; the digits classifier and the tanh RNN are also checked by
    tests/test_problems.py::test_gradient_check_every_problem, so only the LSTM, which that
    test does not build, runs in make test."""
    p = make()
    assert problems.gradient_check(p.fn, p.x0, directions=12) < 1e-6


@pytest.mark.parametrize("make", [NETWORKS[0], *(pytest.param(m, marks=pytest.mark.slow)
                                                 for m in NETWORKS[1:])])
def test_network_problems_train_along_training(make):
    """The smoothness estimators' training loop on each network (its compile dominates: the
    recurrent ones run in make test-all)."""
    from research import optimizers

    p = make()
    out = smoothness.along_training(p, optimizers.clipped_gd(0.5, 1.0), 200, 50)
    assert out["diverged_at"] == -1 and out["loss"][-1] < out["loss"][0]


def test_network_problems_minibatch_and_bad_names():
    p = problems.digits(hidden=8, batch_size=16)
    a = p.stochastic_fn(p.x0, jax.random.PRNGKey(0))
    b = p.stochastic_fn(p.x0, jax.random.PRNGKey(1))
    assert a != b and abs(float(p.fn(p.x0)) - np.log(10)) < 1.0
    with pytest.raises(ValueError, match="cell must be one of"):
        problems.adding("gru")
    assert problems.digits().extra["accuracy"](problems.digits().x0) < 0.3


# --------------------------------------------------------------------------- subsample estimator


def _least_squares(n=20, dim=3, rows=4, seed=0):
    """f(x) = mean_i (a_i.x - b_i)^2 over n rows, and its subsample estimate over ``rows``
    rows drawn with replacement by the key (as the network problems draw minibatches)."""
    rng = np.random.default_rng(seed)
    A, b = rng.standard_normal((n, dim)), rng.standard_normal(n)
    Aj, bj = jnp.asarray(A), jnp.asarray(b)

    def fn(x):
        return jnp.mean((Aj @ x - bj) ** 2)

    def sub_fn(x, key):
        idx = jax.random.randint(key, (rows,), 0, n)
        return jnp.mean((Aj[idx] @ x - bj[idx]) ** 2)

    p = problems.Problem(name="least_squares", fn=fn, x0=jnp.asarray(rng.standard_normal(dim)))
    return p, sub_fn, A, b


def test_subsample_estimator_equals_a_hand_computation():
    """On least squares the subsample gradient is (2/m) A_I^T (A_I x - b_I), so the ratio at
    the midpoint is ||(2/m) A_I^T A_I d|| / ||d||, with I the rows drawn by the point's key:
    computed here in NumPy along GD iterates computed here too."""
    from research import optimizers

    rows, lr, steps = 4, 0.05, 6
    p, sub_fn, A, b = _least_squares(rows=rows)
    key = jax.random.PRNGKey(7)
    out = smoothness.along_training(p, optimizers.gd(lr), steps, 1, key=key, hvp_iters=3,
                                    subsample_fn=sub_fn)
    x = np.asarray(p.x0, dtype=float)
    expect, index_sets = [], []
    for k in range(steps):
        x_next = x - lr * (2 / len(b)) * A.T @ (A @ x - b)
        d = x_next - x
        idx = np.asarray(jax.random.randint(smoothness.subsample_key(key, k), (rows,), 0,
                                            len(b)))
        index_sets.append(tuple(idx))
        AI = A[idx]
        expect.append(np.linalg.norm((2 / rows) * AI.T @ AI @ d) / np.linalg.norm(d))
        x = x_next
    np.testing.assert_allclose(out["smoothness_sub"], expect, rtol=1e-10)
    assert len(set(index_sets)) > 1  # a fresh subsample at each logged point
    # the full-batch ratio is the same formula over all rows: it differs from the subsample's
    assert not np.allclose(out["smoothness_traj"], expect, rtol=1e-3)


def test_subsample_keys_differ_per_point_and_from_the_training_key():
    key = jax.random.PRNGKey(0)
    keys = [tuple(np.asarray(jax.random.key_data(smoothness.subsample_key(key, t))).ravel())
            for t in range(5)]
    assert len(set(keys)) == 5
    assert tuple(np.asarray(key).ravel()) not in keys
    split = {tuple(np.asarray(k).ravel()) for k in jax.random.split(key)}
    assert not split & set(keys)


def test_subsample_series_is_nan_unless_requested_and_leaves_training_unchanged():
    from research import optimizers

    # a stochastic problem: the subsample must not consume the training key's stream (the
    # logistic problem compiles in a third of a network's time; a network runs the subsample
    # estimator in the smoothness experiment's determinism test, tests/test_mutants.py)
    p = problems.logistic(batch_size=16)
    sub = problems.logistic(batch_size=50)
    opt = optimizers.clipped_gd(0.5, 1.0)
    plain = smoothness.along_training(p, opt, 40, 10, hvp_iters=2)
    with_sub = smoothness.along_training(p, opt, 40, 10, hvp_iters=2,
                                         subsample_fn=sub.stochastic_fn)
    assert np.all(np.isnan(plain["smoothness_sub"])) and plain["smoothness_sub"].shape == (4,)
    assert np.all(np.isfinite(with_sub["smoothness_sub"]))
    assert np.all(with_sub["smoothness_sub"] > 0)
    for name in ("loss", "grad_norm", "used_grad_norm", "smoothness_traj", "smoothness_hess"):
        np.testing.assert_array_equal(with_sub[name], plain[name], err_msg=name)


def test_hvp_iters_zero_skips_only_the_hessian():
    from research import optimizers

    q = problems.quadratic(dim=4, condition=10.0)
    on = smoothness.along_training(q, optimizers.gd(0.01), 50, 10, hvp_iters=4)
    off = smoothness.along_training(q, optimizers.gd(0.01), 50, 10, hvp_iters=0)
    assert np.all(np.isfinite(on["smoothness_hess"]))
    assert np.all(np.isnan(off["smoothness_hess"])) and off["smoothness_hess"].shape == (5,)
    for name in ("loss", "grad_norm", "smoothness_traj"):
        np.testing.assert_array_equal(off[name], on[name], err_msg=name)


def test_hess_every_measures_only_every_mth_point_and_leaves_the_rest_unchanged():
    from research import optimizers

    q = problems.quadratic(dim=3, condition=100.0)
    every = smoothness.along_training(q, optimizers.gd(0.005), 60, 5, hvp_iters=30,
                                      hess_every=4)
    each = smoothness.along_training(q, optimizers.gd(0.005), 60, 5, hvp_iters=30)
    h = every["smoothness_hess"]
    measured = np.arange(h.size) % 4 == 0
    assert np.all(np.isnan(h[~measured]))
    np.testing.assert_allclose(h[measured], 100.0, rtol=1e-9)  # lambda_max of the quadratic
    np.testing.assert_allclose(each["smoothness_hess"][measured], h[measured], rtol=1e-9)
    for name in ("loss", "grad_norm", "smoothness_traj"):
        np.testing.assert_array_equal(every[name], each[name], err_msg=name)


def test_the_committed_study_measures_the_hessian_on_one_model_of_each_kind():
    """Definition 1's quantity beside the trajectory estimate: a feed-forward, a
    convolutional and a recurrent network, and the momentum control beside momentum with
    clipping on the image models."""
    from experiments import groups

    cfg = groups.compose("smoothness")
    assert cfg.hvp_iters > 0
    kinds = {"mlp": "feed-forward", "digits": "feed-forward", "resnet_digits": "convolutional",
             "rnn": "recurrent", "lstm": "recurrent", "char_lm": "recurrent"}
    assert {kinds[m] for m in cfg.hessian_models} == {"feed-forward", "convolutional",
                                                      "recurrent"}
    assert set(cfg.hessian_models) <= set(cfg.run_models)
    for name in cfg.hessian_models:
        m = cfg.models[name]
        points = m.get("steps", cfg.steps) // m.get("log_every", cfg.log_every)
        assert points // cfg.hess_every >= 10, name  # enough points per seed for a slope


# --------------------------------------------------------------------------- the experiment

TINY = {"steps": 20, "log_every": 5, "seeds": [0, 1], "n_boot": 50,
        "regimes": ["large_lr_clip", "small_lr", "small_lr_clip"]}


@pytest.mark.slow
def test_new_models_run_through_the_experiment_with_all_estimators(tmp_path):
    from experiments import claims, quick
    from experiments import smoothness as experiment
    from research import results

    quick.run_experiment(
        "smoothness", tmp_path, **TINY, hvp_iters=0,
        run_models=["char_lm", "resnet_digits"], momentum_models=["resnet_digits"],
        models={"char_lm": {"problem": {"embed": 4, "hidden": 8, "length": 8, "n": 40},
                            "steps": TINY["steps"], "log_every": TINY["log_every"]},
                "resnet_digits": {"problem": {"channels": 2, "blocks": 1, "train_size": 200},
                                  "subsample": 0.05, "regimes": ["large_lr_clip", "small_lr"],
                                  "steps": TINY["steps"], "log_every": TINY["log_every"]}})
    record, traces = results.read_record(tmp_path / "smoothness")
    m = record["metrics"]
    assert m["models"] == ["char_lm", "resnet_digits"] and m["hvp_iters"] == 0
    assert m["subsample"]["char_lm"] == {"fraction": 0.1, "rows": 4, "train_rows": 40}
    assert m["subsample"]["resnet_digits"] == {"fraction": 0.05, "rows": 10, "train_rows": 200}
    assert sorted(m["runs"]) == sorted(
        [f"char_lm/{r}" for r in TINY["regimes"]]
        + [f"resnet_digits/{r}" for r in ["large_lr_clip", "small_lr", "momentum_clip"]])
    for key, r in m["runs"].items():
        sub = np.asarray(traces[f"{key}/smoothness_sub"])
        assert sub.shape == (2, 4) and np.all(np.isfinite(sub)) and np.all(sub > 0), key
        assert np.all(np.isnan(np.asarray(traces[f"{key}/smoothness_hess"]))), key
        assert r["hess"] == experiment.NOT_COMPUTED
        assert r["sub"]["pooled"]["n_points"] == 8 and isinstance(r["sub"]["verdict"], str)
        assert r["sub"]["per_seed"]["seed"] == [0, 1]
        assert r["sub"]["pooled"]["partial_spearman"].keys() >= {"estimate", "lo", "hi"}
        assert r["subsample"] == m["subsample"][r["model"]]
        # the two trajectory ratios are different estimates of the same quantity
        assert not np.allclose(sub, np.asarray(traces[f"{key}/smoothness_traj"]))
    # the figure colours each point by its step over its run's steps, whatever the run's
    # length, and leaves the panel of a regime the model does not run empty
    from matplotlib.collections import PathCollection

    from paper_figures import smoothness as figure

    fig = figure.draw(record, traces)
    colours = np.concatenate([c.get_array() for ax in fig.axes
                              for c in ax.collections if isinstance(c, PathCollection)])
    assert colours.min() == 0 and colours.max() == (TINY["steps"] - TINY["log_every"]) / \
        TINY["steps"]
    empty = [ax for ax in fig.axes if not ax.axison]
    assert len(empty) == 2  # char_lm/momentum_clip and resnet_digits/small_lr_clip
    table = claims.smoothness_table(record)
    row = next(line for line in table.splitlines() if line.startswith("| char_lm | small_lr |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[11] == m["runs"]["char_lm/small_lr"]["sub"]["verdict"]
    assert cells[12] == "not computed"
    assert "not computed in this run (hvp_iters = 0)" in table
    assert "char_lm 4 of 40 rows" in table


@pytest.mark.parametrize(("override", "field"), [
    ({"models": {"digits": {"subsample": 0}}}, "models.digits.subsample"),
    ({"models": {"digits": {"subsample": 1.5}}}, "models.digits.subsample"),
    ({"models": {"digits": {"subsample": "tenth"}}}, "models.digits.subsample"),
    ({"models": {"digits": {"subsample": True}}}, "models.digits.subsample"),
    ({"hvp_iters": -1}, "hvp_iters"),
    ({"models": {"digits": {"regimes": ["fast"]}}}, "models.digits.regimes"),
    ({"models": {"digits": {"regimes": []}}}, "models.digits.regimes"),
    ({"models": {"digits": {"regimes": "small_lr"}}}, "models.digits.regimes must be a list"),
    ({"models": {"digits": {"regimes": ["momentum_clip"]}}}, "models.digits.regimes"),
])
def test_bad_config_values_name_the_field(tmp_path, override, field):
    from experiments import quick

    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        quick.run_experiment("smoothness", tmp_path, **{**TINY, "run_models": ["digits"],
                                                        "momentum_models": [], **override})
    assert not (tmp_path / "smoothness").exists()


def test_the_committed_study_logs_200_points_per_run_on_5_seeds_in_the_papers_regimes():
    """The sizes the smoothness study promises (issue: at least 5 seeds and 200 logged points
    per run; the language-model regimes large lr clipped, small lr without and with; the
    image regimes SGD with momentum, lr without clipping, a larger lr with clipping)."""
    from omegaconf import OmegaConf

    from experiments import smoothness as experiment

    cfg = OmegaConf.to_container(OmegaConf.load("conf/smoothness.yaml"), resolve=True)
    assert len(set(cfg["seeds"])) >= 5
    assert set(cfg["run_models"]) >= {"mlp", "digits", "rnn", "lstm", "char_lm",
                                      "resnet_digits"}
    for name in cfg["run_models"]:
        m = cfg["models"][name]
        steps, every = m.get("steps", cfg["steps"]), m.get("log_every", cfg["log_every"])
        assert steps % every == 0 and steps // every >= 200, name
        assert set(m.get("regimes", cfg["regimes"])) <= set(experiment.REGIMES), name
    assert set(cfg["models"]["char_lm"].get("regimes", cfg["regimes"])) == {
        "large_lr_clip", "small_lr", "small_lr_clip"}
    assert "resnet_digits" in cfg["momentum_models"]
    assert set(cfg["models"]["resnet_digits"].get("regimes", cfg["regimes"])) >= {
        "large_lr_clip", "small_lr"}


def test_a_missing_subsample_field_is_named_and_null_skips_the_estimator():
    from omegaconf import OmegaConf

    from experiments import smoothness as experiment

    m = {"problem": "digits", "args": {"hidden": 8}}
    with pytest.raises(ValueError, match=r"models\.digits\.subsample is missing"):
        experiment.subsample_problem("digits", m)
    assert experiment.subsample_problem("digits", {**m, "subsample": None}) == (None, None)
    p, info = experiment.subsample_problem("digits", {**m, "subsample": 1.0})
    assert info["rows"] == info["train_rows"] and p.stochastic
    # the committed config gives every model a valid fraction
    cfg = OmegaConf.load("conf/smoothness.yaml")
    for name, model in OmegaConf.to_container(cfg.models).items():
        assert 0 < model["subsample"] <= 1, name


def test_train_rows_match_the_problems():
    from experiments import smoothness as experiment

    assert experiment.train_rows("a", {"problem": "adding", "args": {"n": 40}}) == 40
    lm = problems.char_lm(embed=2, hidden=2, length=4)  # default n
    assert experiment.train_rows("lm", {"problem": "char_lm", "args": {"length": 4}}) == \
        lm.extra["train_windows"].shape[0]
    assert experiment.train_rows("m", {"problem": "mlp_regression"}) == \
        problems.regression_data()[0].shape[0]
    n_digits = problems.digits_data()[0].shape[0]
    assert experiment.train_rows("r", {"problem": "resnet_digits"}) == n_digits
    assert experiment.train_rows("r", {"problem": "resnet_digits",
                                       "args": {"train_size": 300}}) == 300
    with pytest.raises(ValueError, match=r"models\.q\.subsample"):
        experiment.train_rows("q", {"problem": "quadratic"})


def test_run_lengths_name_the_models_with_their_own_length_in_model_order():
    """What SMOOTHNESS.md's header and the figure's title say of the runs' lengths: the
    default with the exceptions, or only the per-model list when no run has the default."""
    from experiments import claims

    runs = {"b/x": {"model": "b", "steps": 400, "log_every": 2},
            "a/x": {"model": "a", "steps": 1000, "log_every": 5},
            "c/x": {"model": "c"}}
    m = {"steps": 1000, "log_every": 20, "models": ["c", "a", "b"], "runs": runs}
    own, default = smoothness.run_lengths(m)
    assert list(own.items()) == [("a", (1000, 5)), ("b", (400, 2))] and default
    assert claims.run_lengths_text(m) == ("1000 steps per run, logged every 20 (except a: "
                                          "1000 steps logged every 5; b: 400 steps logged "
                                          "every 2)")
    del runs["c/x"]
    assert smoothness.run_lengths(m) == ({"a": (1000, 5), "b": (400, 2)}, False)
    assert claims.run_lengths_text(m).startswith("Steps per run, and every how many steps a "
                                                 "point is logged: a: 1000 steps logged every "
                                                 "5; b:")
