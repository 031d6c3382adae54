"""The batching sweeper (hydra_plugins/batching_sweeper): Hydra's grammar, numeric sweeps as
one vmapped job, chunks for launchers, seeds as a batch axis, one table whichever way a sweep
ran, resume per chunk, and bad values refused before the first job."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hypothesis import given, settings
from hypothesis import strategies as st

from research import results, sweep

ROOT = Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1"})


def _plan(*args, max_batch=None):
    from hydra_plugins.batching_sweeper.batching_sweeper import plan

    return plan(OverridesParser.create().parse_overrides(list(args)), max_batch)


def test_plan_batches_numeric_keys_and_splits_the_rest():
    jobs, combos = _plan("problem=quartic,cosh", "optimizer.eta=range(0.1,0.4,0.1)",
                         "engine.seed=0,1", "x0=choice(1.0,2.0)", "engine.steps=10,20")
    (eta,) = OverridesParser.create().parse_overrides(["optimizer.eta=range(0.1,0.4,0.1)"])
    etas = list(eta.sweep_string_iterator())  # Hydra's own values, float rounding included
    assert combos == 4 and len(jobs) == 4
    assert all(j.points == len(etas) * 2 * 2 for j in jobs)
    first = jobs[0].overrides
    assert "problem=quartic" in first and "engine.steps=10" in first
    # a range travels as the sweep block's range mapping (Hydra parses a long list slowly),
    # which the job expands to Hydra's own values, float rounding included
    assert "++sweep.optimizer.eta={start:0.1,stop:0.4,step:0.1}" in first
    assert sweep.axis_values("optimizer.eta", {"start": 0.1, "stop": 0.4, "step": 0.1}
                             ).tolist() == [float(v) for v in etas]
    assert "++sweep.engine.seed=[0,1]" in first and "++sweep.x0=[1.0,2.0]" in first


def test_plan_runs_a_target_one_job_per_value_and_still_batches_seeds():
    """A combination whose optimizer takes no batched hyperparameters (an optax target) runs
    one job per value, in the basic sweeper's order; the others, and its seeds, batch."""
    from hydra_plugins.batching_sweeper.batching_sweeper import plan

    overrides = OverridesParser.create().parse_overrides(
        ["optimizer=gd,adam", "optimizer.lr=1,2", "engine.seed=0,1,2"])
    jobs, combos = plan(overrides, None, batches=lambda combo: "optimizer=adam" not in combo)
    assert combos == 3 and [j.points for j in jobs] == [6, 3, 3]
    assert "++sweep.optimizer.lr=[1,2]" in jobs[0].overrides
    assert [[o for o in j.overrides if not o.startswith("++sweep.engine")] for j in jobs[1:]] \
        == [["optimizer=adam", "optimizer.lr=1"], ["optimizer=adam", "optimizer.lr=2"]]
    assert all("++sweep.engine.seed=[0,1,2]" in j.overrides for j in jobs)
    assert len({j.slot for j in jobs}) == 3


@settings(max_examples=40)
@given(start=st.decimals(-5, 5, places=3), step=st.decimals("0.001", 2, places=3),
       n=st.integers(1, 60), shift=st.decimals("-0.0004", "0.0004", places=4))
def test_a_range_expands_to_hydras_values(start, step, n, shift):
    """The job's expansion of the range mapping equals Hydra's range sweep, value for value."""
    stop = start + n * step + shift
    line = f"optimizer.eta=range({start},{stop},{step})"
    (o,) = OverridesParser.create().parse_overrides([line])
    jobs, _ = _plan(line)
    (block,) = [x for x in jobs[0].overrides if x.startswith("++sweep.optimizer.eta=")]
    assert block.split("=", 1)[1].startswith("{start:")
    spec = OverridesParser.create().parse_overrides([block])[0].value()
    assert sweep.axis_values("optimizer.eta", spec).tolist() == [
        float(v) for v in o.sweep_iterator()]


def test_shuffled_and_descending_ranges_travel_as_lists():
    for line in ("optimizer.eta=shuffle(range(1,4))", "optimizer.eta=range(3,0,-1)"):
        jobs, _ = _plan(line)
        (block,) = [x for x in jobs[0].overrides if x.startswith("++sweep.optimizer.eta=")]
        assert block.split("=", 1)[1].startswith("["), block


def test_plan_chunks_every_combination():
    jobs, _ = _plan("optimizer=gd,clipped_gd", "optimizer.lr=1,2,3,4,5", max_batch=2)
    assert [j.points for j in jobs] == [2, 2, 1, 2, 2, 1]
    assert [o for o in jobs[2].overrides if "chunk" in o] == ["++sweep.chunk=[4,5]"]
    # a chunk as large as the sweep is the whole sweep, without a chunk override
    jobs, _ = _plan("optimizer.lr=1,2", max_batch=5)
    assert not any("chunk" in o for o in jobs[0].overrides)


def test_plan_keeps_non_numeric_and_other_keys_as_jobs():
    jobs, combos = _plan("optimizer.rule=si,cl", "problem.dim=1,2")
    assert combos == 4 and all(j.points == 1 for j in jobs)
    with pytest.raises(ValueError, match="no values"):
        _plan("optimizer.eta=range(1,0.5,0.1)")


GRID = ("problem=noisy", "problem.base=cosh", "optimizer=clipped_gd", "optimizer.eta=0.05,0.1",
        "engine.seed=0,1", "x0=1.0,3.0", "engine.steps=60", "engine.record_every=10",
        "engine.eps=0.5", "progress=off")


def _table(path):
    t = results.load(path).drop(columns=["record", "trajectory"])
    keys = ["engine.seed", "optimizer.eta", "x0"]
    return t.sort_values(keys).reset_index(drop=True)[sorted(t.columns)]


def test_one_table_whichever_way_the_sweep_ran(tmp_path, run_cli):
    """Batching sweeper (whole, and in chunks through joblib) and the basic sweeper (one job
    per point): the same rows, columns and values, seeds included (a stochastic problem, so
    each trajectory's noise must depend on its own seed only: bit-identical)."""
    runs = {"batched": (), "chunks_joblib": ("hydra.sweeper.max_batch=5", "hydra/launcher=joblib",
                                             "hydra.launcher.n_jobs=2"),
            "basic": ("hydra/sweeper=basic",)}
    tables = {}
    for name, extra in runs.items():
        r = run_cli("-m", *GRID, *extra, f"hydra.sweep.dir={tmp_path / name}")
        assert r.returncode == 0, (name, r.stderr[-1500:])
        tables[name] = _table(tmp_path / name)
    assert len(tables["basic"]) == 8 and len(list((tmp_path / "batched").glob("*/record.json"))
                                              ) == 1
    # 8 points in chunks of 5: the first chunk ends inside the second seed's points
    assert len(list((tmp_path / "chunks_joblib").glob("*/record.json"))) == 2
    assert tables["basic"]["iterations_to_eps"].dtype == pd.Int64Dtype()
    pd.testing.assert_frame_equal(tables["batched"], tables["basic"])
    pd.testing.assert_frame_equal(tables["chunks_joblib"], tables["basic"])


@pytest.mark.slow
def test_chunks_through_submitit_give_the_same_table(tmp_path):
    tables = {}
    for name, extra in {"batched": (), "submitit": (
            "hydra.sweeper.max_batch=4", "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10")}.items():
        r = _cli("-m", *GRID, *extra, f"hydra.sweep.dir={tmp_path / name}")
        assert r.returncode == 0, (name, r.stderr[-1500:])
        tables[name] = _table(tmp_path / name)
    pd.testing.assert_frame_equal(tables["batched"], tables["submitit"])


def test_resume_computes_only_the_missing_chunks(tmp_path, run_cli):
    import shutil

    args = ("-m", "problem=quartic", "optimizer=clipped_gd", "optimizer.eta=0.1,0.2,0.3,0.4",
            "engine.steps=50", "hydra.sweeper.max_batch=2", f"hydra.sweep.dir={tmp_path}")
    assert run_cli(*args).returncode == 0
    first = results.load(tmp_path)
    shutil.rmtree(tmp_path / "1")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(", skipped") == 1 and r.stdout.count("wrote") == 1, r.stdout
    assert "[sweep] job 2/2: optimizer.eta 0.1..0.4 (4) points 2..3 of 4" in r.stderr
    # the finished chunk was recognised by the sweeper: never handed to the launcher
    assert "[sweep] job 1/2" not in r.stderr and f"complete record at {tmp_path / '0'}" in r.stdout
    pd.testing.assert_frame_equal(results.load(tmp_path), first)
    # a finished sweep: nothing launched, with other display options too
    r = run_cli(*args, "progress=on")
    assert r.returncode == 0 and "[sweep] job " not in r.stderr, r.stderr
    assert r.stdout.count(", skipped") == 2 and "wrote" not in r.stdout, r.stdout
    # resume=false re-runs them (the sweeper leaves the decision to the hook)
    r = run_cli(*args, "resume=false")
    assert r.returncode == 0 and r.stdout.count("wrote") == 2, r.stdout


def test_a_bad_value_in_any_combination_stops_the_sweep_before_any_job(tmp_path, run_cli):
    for bad in (("optimizer.eta=0.1,-1.0",), ("problem=quartic,cosh", "engine.steps=10,0")):
        out = tmp_path / bad[-1].split("=")[0]
        r = run_cli("-m", *bad, f"hydra.sweep.dir={out}")
        assert r.returncode == 2, r.stderr
        err = r.stderr.strip().splitlines()
        assert err[-1].startswith("error: ") and "Traceback" not in r.stderr
        assert not list(out.glob("*/record.json")) if out.exists() else True


def test_presets_say_what_they_run(tmp_path, run_cli):
    r = run_cli("experiment=cosh_methods", f"hydra.run.dir={tmp_path / 'one'}")
    assert r.returncode == 2 and "defines a sweep of 3 jobs" in r.stderr and "-m" in r.stderr
    r = run_cli("-m", "experiment=cosh_methods,quartic_eta_batch", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 2 and "defines its own sweep" in r.stderr
    assert not list(tmp_path.glob("*/record.json"))
    r = run_cli("-m", "experiment=cosh_methods", "engine.steps=200", "engine.record_every=100",
             f"hydra.sweep.dir={tmp_path / 'preset'}")
    assert r.returncode == 0, r.stderr
    table = results.load(tmp_path / "preset")
    assert sorted(set(table["optimizer.name"])) == ["clipped_gd", "gd", "normalized_gd"]
    assert len(table) == 12


@pytest.mark.parametrize("max_batch", ["0", "-1"])
def test_a_max_batch_out_of_range_is_one_line_exit_2_and_writes_nothing(tmp_path, max_batch):
    out = tmp_path / "sweep"
    r = _cli("-m", f"hydra.sweeper.max_batch={max_batch}", "optimizer.eta=0.1,0.2",
             "engine.steps=10", f"hydra.sweep.dir={out}")
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == ("error: hydra.sweeper.max_batch must be a whole number >= 1 "
                                f"or null; got {max_batch}.")
    assert not out.exists()


def test_seeds_swept_on_a_deterministic_problem_give_one_warning_line(tmp_path, capsys):
    r = _cli("-m", "optimizer.eta=0.1,0.2", "engine.steps=10", "engine.seed=1,2",
             f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert r.returncode == 0, r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert warnings == ["[run] warning: sweep.engine.seed gives quartic several seeds, but it "
                        "is deterministic: every seed gives the same rows."]
    from omegaconf import OmegaConf

    from experiments import run
    from research import problems

    cfg = OmegaConf.create({"sweep": {"engine": {"seed": [1, 2]}}})
    run._warn_seeds_of_a_deterministic_problem(cfg, problems.get("noisy"))
    assert capsys.readouterr().err == ""


def test_seeds_stay_integers_up_to_2_to_the_63():
    """Through float64, seeds of 2^53 and above collapsed into one another."""
    from research import problems

    def seeds(axis):
        batch = sweep.prepare(problems.get("noisy"), "clipped_gd", {"eta": 0.1, "gamma": 1.0},
                              None, {"engine": {"seed": axis}})
        return batch.columns["engine.seed"], batch.keys

    big = [2**53 + 1, 2**53, 2**63 - 1]
    column, keys = seeds(big)
    assert column.dtype == np.int64 and column.tolist() == big
    assert not np.array_equal(keys[0], keys[1])
    column, _ = seeds({"start": 2**60, "stop": 2**60 + 3, "step": 1})
    assert column.tolist() == [2**60, 2**60 + 1, 2**60 + 2]
    with pytest.raises(ValueError, match=r"whole numbers in \[0, 2\^63\)"):
        seeds([2**63])


def test_a_key_given_by_hand_and_by_the_sweeper_is_refused_not_dropped():
    with pytest.raises(ValueError, match=r"optimizer.eta is swept twice: by "
                                         r"\+sweep.optimizer.eta=\[0.3,0.4\]"):
        _plan("optimizer.eta=0.1,0.2", "+sweep.optimizer.eta=[0.3,0.4]")


def test_chunks_of_a_grid_larger_than_planned_are_refused_not_run_in_part(tmp_path):
    """max_batch slices the sweeper's axes; a hand axis beside them made each chunk slice a
    larger grid, and half of it never ran while the sweep reported every point done."""
    out = tmp_path / "sweep"
    r = _cli("-m", "optimizer.eta=0.1,0.2", "+sweep.optimizer.gamma=[1.0,2.0]",
             "hydra.sweeper.max_batch=1", "engine.steps=10", f"hydra.sweep.dir={out}")
    assert r.returncode == 2, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert errors[0].startswith("error: hydra.sweeper.max_batch chunks only the axes")
    assert "sweep.optimizer.gamma" in errors[0]
    assert not out.exists()


def test_an_infinite_hyperparameter_batches_as_it_runs_alone():
    """gamma = inf (no clipping) is a valid single run; a batched axis refused it."""
    from research import problems

    batch = sweep.prepare(problems.quartic(), "clipped_gd", {"eta": 0.1, "gamma": 1.0}, None,
                          {"optimizer": {"gamma": [1.0, float("inf")]}})
    assert batch.columns["optimizer.gamma"].tolist() == [1.0, float("inf")]
    with pytest.raises(ValueError, match="sweep.x0 must be finite; got inf"):
        sweep.prepare(problems.quartic(), "clipped_gd", {"eta": 0.1, "gamma": 1.0}, None,
                      {"x0": [1.0, float("inf")]})


@pytest.mark.slow
def test_the_readme_preset_gives_one_table_under_both_sweepers(tmp_path):
    import pandas as pd

    tables = []
    for extra in ([], ["hydra/sweeper=basic"]):
        out = tmp_path / ("basic" if extra else "batching")
        r = _cli("-m", "experiment=mlp_clipping", "engine.steps=10", *extra,
                 f"hydra.sweep.dir={out}")
        assert r.returncode == 0, r.stderr
        t = results.load(out)
        cols = sorted(c for c in t.columns if c not in ("record", "trajectory", "out"))
        tables.append(t[cols].sort_values(["optimizer.gamma", "optimizer.eta"])
                      .reset_index(drop=True))
    assert len(tables[0]) == 6 and np.isinf(tables[0]["optimizer.gamma"]).sum() == 3
    pd.testing.assert_frame_equal(tables[0], tables[1], check_dtype=False)


@settings(max_examples=60)
@given(points=st.integers(1, 500), max_batch=st.integers(1, 120))
def test_chunks_split_the_points_evenly(points, max_batch):
    """The fewest chunks of at most max_batch points, sizes differing by at most one, that
    cover the points in order (101 points in chunks of 50 were 50, 50 and 1)."""
    jobs, _ = _plan(f"optimizer.lr=range(0,{points})", max_batch=max_batch)
    sizes = [j.points for j in jobs]
    assert len(jobs) == -(-points // max_batch) and sum(sizes) == points
    assert max(sizes) <= max_batch and max(sizes) - min(sizes) <= 1
    bounds = [j.chunk or (0, points) for j in jobs]
    assert [b[0] for b in bounds] == [0] + [b[1] for b in bounds[:-1]] and bounds[-1][1] == points


def test_progress_counts_every_point_of_evenly_split_chunks(tmp_path, run_cli):
    r = run_cli("-m", "optimizer.eta=range(0.001,0.102,0.001)", "hydra.sweeper.max_batch=50",
                "engine.steps=10", "progress=off", f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert "[sweep] 101 points in 3 jobs" in r.stderr, r.stderr
    for i, (first, last) in enumerate([(0, 33), (34, 67), (68, 100)], start=1):
        assert f"job {i}/3: " in r.stderr and f"points {first}..{last} of 101 (" in r.stderr
    assert "[sweep] 101/101 points" in r.stderr and len(results.load(tmp_path)) == 101


@pytest.mark.parametrize(("args", "points"), [
    (("experiment=quartic_eta_batch",), 1000),  # the preset's own sweep block
    (("optimizer.eta=0.1,0.2", "+sweep.optimizer.gamma=[1.0,2.0,3.0]"), 6),  # and a hand axis
])
def test_progress_counts_the_trajectories_of_a_sweep_block(tmp_path, run_cli, args, points):
    r = run_cli("-m", *args, "engine.steps=10", "engine.record_every=10", "progress=off",
                f"hydra.sweep.dir={tmp_path}")
    assert r.returncode == 0, r.stderr
    assert len(results.load(tmp_path)) == points
    assert f"[sweep] {points:,} points in 1 job " in r.stderr, r.stderr
    assert f"({points:,} points)" in r.stderr and f"{points:,}/{points:,} points" in r.stderr
