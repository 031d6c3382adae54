"""The calibration's references (experiments/calibration.py) give the answers worked out by
hand, without the code they check; a bad config value is one sentence. (That the real code
meets them and every mutant does not is tests/test_mutants.py.)"""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments import calibration


def _loop(runs: dict, steps: int, eps: float = 1e-3, targets=None):
    targets = targets or {"quartic": 1e-4, "cosh": 1.0000005}
    out, hit, _, div = calibration.reference_loop(json.dumps(runs, sort_keys=True), steps,
                                                  eps, json.dumps(targets))
    return out, hit, div


def test_the_reference_loop_follows_seed_001_by_hand():
    # GD with lr 0.1 on x^4 from 10: x1 = 10 - 0.1 * 4000 = -390, then overflow
    out, hit, div = _loop({"a": {"problem": "quartic", "method": "gd", "lr": 0.1,
                                 "x0": [10.0]}}, 40)
    assert out["f"][0, 1] == 390.0**4 and out["step_size"][0, 0] == 0.1
    x, t = np.float64(10.0), 0
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isfinite(x**4) and np.isfinite(x - 0.4 * x**3):
            x, t = x - 0.4 * x**3, t + 1
    assert div[0] == t and hit[0] == -1
    assert np.isnan(out["f"][0, t + 1:]).all() and np.isnan(out["step_size"][0, t:]).all()


def test_the_reference_steps_are_the_rules_of_theory_md():
    # x^4 from 2: |f'| = 32; clipped h = min(0.025, 2 * 0.025 / 32) = 1/640, x1 = 1.95;
    # normalized h = 0.05 / (32 + 2) ; cosh from 0 has f' = 0, so eps is reached at t = 0
    out, hit, div = _loop({
        "c": {"problem": "quartic", "method": "clipped_gd", "eta": 0.025, "gamma": 2.0,
              "x0": [2.0]},
        "n": {"problem": "quartic", "method": "normalized_gd", "eta": 0.05, "beta": 2.0,
              "x0": [2.0]},
        "z": {"problem": "cosh", "method": "gd", "lr": 0.5, "x0": [0.0]}}, 3)
    assert out["step_size"][0, 0] == pytest.approx(1 / 640, rel=1e-15)
    assert out["f"][0, 1] == pytest.approx(1.95**4, rel=1e-15)
    assert out["step_size"][1, 0] == pytest.approx(0.05 / 34, rel=1e-15)
    assert list(hit) == [-1, -1, 0] and list(div) == [-1, -1, -1]
    assert out["f"][2, 0] == 1.0 and out["grad_norm"][2, 0] == 0.0


def test_the_reference_target_count_is_the_first_step_at_or_below_it():
    # GD with lr 0.1 on x^4 from 1: x1 = 1 - 0.4 = 0.6 (f 0.1296), x2 = 0.6 - 0.4 * 0.216 =
    # 0.5136 (f 0.0696): f <= 0.1 first at t = 2; cosh from 0 is at its target at t = 0
    runs = {"a": {"problem": "quartic", "method": "gd", "lr": 0.1, "x0": [1.0]},
            "b": {"problem": "cosh", "method": "gd", "lr": 0.1, "x0": [0.0]}}
    _, _, reached, _ = calibration.reference_loop(
        json.dumps(runs, sort_keys=True), 5, 1e-3, json.dumps({"quartic": 0.1, "cosh": 1.0}))
    assert list(reached) == [2, 0]


def test_the_closed_form_references():
    # x^4 from x = 1 to 0: half step to 0.5, secant |4 * 0.125 - 4| / 0.5 = 7, between
    # f''(0.5) = 3 and f''(1) = 12
    x, nxt = np.array([[1.0]]), np.array([[0.0]])
    ref = calibration.smoothness_references("quartic", None, x, nxt, 0.0)
    assert ref["traj"][0] == 7.0 and ref["hess"][0] == 12.0
    assert (ref["lo"][0], ref["hi"][0]) == (3.0, 12.0)
    # a half step across 0 reaches f''(0)
    ref = calibration.smoothness_references("cosh", None, np.array([[1.0]]),
                                            np.array([[-3.0]]), 0.0)
    assert ref["lo"][0] == 1.0 and ref["hi"][0] == np.cosh(1.0)


def test_torchs_rule_and_keras_clipnorm_by_hand():
    clipped, total = calibration.torch_clip_grad_norm([np.array([3.0, 4.0])], 1.0, 2.0)
    assert total == 5.0 and np.allclose(clipped[0], [3 / (5 + 1e-6), 4 / (5 + 1e-6)],
                                        rtol=1e-15)
    assert calibration.torch_clip_grad_norm([np.array([3.0, -4.0])], 10.0, np.inf)[1] == 4.0
    per_leaf = calibration._per_leaf(optax.clip_by_global_norm(1.0))
    out, _ = per_leaf.update({"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.3, 0.4])}, None)
    assert np.allclose(out["a"], [0.6, 0.8]) and np.allclose(out["b"], [0.3, 0.4])


def test_the_median_rule_is_the_binomial_table():
    # n = 20 at 95%: [x_(6), x_(15)], coverage P(6 <= B <= 14) = 0.9586
    x = np.arange(20.0)
    lo, hi, cov = calibration.median_interval_reference(x, x, 0.95)
    assert (lo, hi) == (5.0, 14.0) and cov == pytest.approx(0.958610535, abs=1e-9)
    # too few values for the level: [min, max] and the smaller coverage
    lo, hi, cov = calibration.median_interval_reference(x[:5], x[:5] + 1, 0.95)
    assert (lo, hi) == (0.0, 5.0) and cov == pytest.approx(1 - 2 / 32)


def test_a_distance_error_is_relative_to_the_distance_travelled():
    ref = np.array([[1.0, 1.0], [1.0, 2.0], [1.0, 3.0]])
    assert calibration.distance_error(ref + [[0, 0], [0, 1e-3], [0, 0]], ref) == pytest.approx(
        1e-3, rel=1e-12)
    assert calibration.distance_error(ref + [[0, 0], [0, np.nan], [0, 0]], ref) == np.inf


@pytest.mark.parametrize(("override", "field"), [
    ("engine.runs.quartic_gd.method=newton", "engine.runs.quartic_gd.method"),
    ("engine.runs.cosh_gd.record_every=7", "engine.runs.cosh_gd.record_every"),
    ("engine.f_target.cosh=-1", "engine.f_target.cosh"),
    ("smoothness.log_every=7", "smoothness.log_every"),
    ("coverage.level=1.5", "coverage.level"),
])
def test_a_bad_config_value_is_one_sentence(tmp_path, cli_in_process, override, field):
    code, _, err = cli_in_process("experiments.calibration", override, f"out={tmp_path / 'r'}")
    assert code == 2, err
    assert field in err and err.strip().count("\n") == 0
    assert not any(tmp_path.iterdir())
