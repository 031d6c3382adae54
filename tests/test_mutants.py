"""The mutation suite: on the real code every gating claim holds; every named mutant (a wrong
variant injected through research.toolkit) makes at least one gating claim FAIL and no claim
crash; every gating claim is tripped by at least one mutant. Plus determinism: every
experiment run twice with the same seed writes the same record."""

import pytest

from experiments import claims, mutants, quick
from research.toolkit import REAL, Overlay
from tests.conftest import record_numbers


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    work = tmp_path_factory.mktemp("mutants")
    base, results = mutants.run_suite(work)
    return work, base, {r.name: r for r in results}


def test_real_code_passes_every_gating_claim(suite):
    _, base, _ = suite
    failed = [(c.id, c.measured) for c in base if c.gating and c.holds is not True]
    assert not failed


@pytest.mark.parametrize("name", [m.name for m in mutants.MUTANTS])
def test_mutant_is_caught_and_nothing_crashes(suite, name):
    _, _, results = suite
    r = results[name]
    assert r.rerun, "a mutant that touches no experiment tests nothing"
    assert r.caught_by, f"{name} passed every gating claim"
    assert not r.crashed, f"claims crashed on {name}: {r.crashed}"


def test_every_gating_claim_is_tripped_by_some_mutant(suite):
    _, _, results = suite
    tripped = {c for r in results.values() for c in r.caught_by}
    assert {c.id for c in claims.REGISTRY if c.gating} <= tripped


def test_the_two_reported_mutants_fail_named_claims(suite):
    _, _, results = suite
    assert "fixed_step_grows_with_M" in results["clipping_removed"].caught_by
    assert {"rules_are_safe", "fixed_step_grows_with_M"} & set(
        results["thm6_step_x100"].caught_by)


def test_mutants_table(suite):
    _, base, results = suite
    text = mutants.to_markdown(base, list(results.values()))
    assert "**not caught**" not in text and "**no mutant**" not in text
    assert all(f"| {m.name} |" in text for m in mutants.MUTANTS)


def test_every_gating_experiment_is_deterministic(suite, tmp_path):
    work, _, _ = suite
    for name, size in mutants.SIZES.items():
        quick.run_experiment(name, tmp_path, **size)
        assert record_numbers(tmp_path / name / "record.json") == record_numbers(
            work / "baseline" / name / "record.json"), name


# the smoothness study's: also tests/test_smoothness_scaleout.py (two processes, one record)
@pytest.mark.parametrize("name", ["stochastic", pytest.param("smoothness",
                                                              marks=pytest.mark.slow)])
def test_other_experiments_are_deterministic(tmp_path, name):
    small = {"stochastic": {"T": 200, "seeds": 2, "record_every": 20,
                            "regimes": ["cosh_uniform", "cosh_heavy"],
                            "bias": {"steps": 200, "thresholds": [0.5]}},
             "smoothness": {"steps": 20, "log_every": 10, "hvp_iters": 3,
                            "run_models": ["digits"], "momentum_models": [],
                            "regimes": ["large_lr_clip"]}}[name]
    quick.run_experiment(name, tmp_path / "a", **small)
    quick.run_experiment(name, tmp_path / "b", **small)
    assert record_numbers(tmp_path / "a" / name / "record.json") == record_numbers(
        tmp_path / "b" / name / "record.json")


def test_overlay_rejects_a_misspelt_name():
    with pytest.raises(ValueError, match="no public attribute 'clipped_gdd'"):
        REAL.replace(optimizers={"clipped_gdd": None})
    with pytest.raises(ValueError, match="no module 'optimiser'"):
        REAL.replace(optimiser={})
    o = Overlay(REAL.theory, {"gd_step": 1})
    assert o.gd_step == 1 and o.clipped_step is REAL.theory.clipped_step


def test_mutants_name_what_they_rerun():
    # derived from the experiments' source, so a new use of a replaced function is re-run
    m = next(m for m in mutants.MUTANTS if m.name == "clipping_removed")
    assert {"quartic_trajectories", "iteration_complexity", "hard_instance", "max_step",
            "clipping_seeds"} <= set(m.experiments())


def test_baseline_records_carry_the_median_intervals(suite):
    """The network experiments publish medians over seeds with their intervals; the interval
    holds the median, and its claim prints it (a record without them prints the median
    alone)."""
    import json
    work, base, _ = suite
    for name in ("clipping_mlp", "clipping_rnn"):
        rec = json.loads((work / "baseline" / name / "record.json").read_text())["metrics"]
        t = rec["thresholds"]
        key = "train" if name == "clipping_mlp" else "test"
        for med, iv in zip(t[f"median_final_{key}_mse"], t[f"final_{key}_mse_interval"],
                           strict=True):
            assert iv["lo"] <= med <= iv["hi"] and iv["n"] >= 1
    pascanu = next(c for c in base if c.id == "pascanu_threshold_heuristic")
    assert "95% intervals" in pascanu.measured and " [" in pascanu.measured
