"""Any optax GradientTransformation factory as the optimizer (``optimizer._target_``): a run
computes what optax itself does, a sweep runs one job per value under either sweeper with
one table, resume skips it, and a bad target is one line."""

import json

import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest

from research import engine, problems, results

TINY = ("engine.steps=20", "progress=off")


def test_a_target_runs_as_optax_itself(tmp_path, run_cli):
    out = tmp_path / "r"
    r = run_cli("optimizer=optax", "optimizer._target_=optax.adam",
                "optimizer.learning_rate=0.01", "optimizer.b1=0.5", *TINY, f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["config"]["optimizer"] == {"name": "optax", "_target_": "optax.adam",
                                             "learning_rate": 0.01, "b1": 0.5}
    problem = problems.quartic()
    ref = engine.run(problem, optax.adam(0.01, b1=0.5), jnp.asarray(problem.batch_x0(1)), 20,
                     record_every=10)
    assert results.load(out)["final_f"].tolist() == ref.trace["f"][:, -1].tolist()


@pytest.mark.slow
def test_a_sweep_of_a_target_is_one_job_per_value_and_the_same_table(tmp_path, run_cli):
    # optimizer.lr is adam's learning_rate: one command compares a family and a target
    args = ("-m", "optimizer=clipped_gd,adam", "optimizer.lr=0.01,0.1", *TINY)
    tables = {}
    for sweeper in ("research", "basic"):
        where = tmp_path / sweeper
        r = run_cli(*args, f"hydra/sweeper={sweeper}", f"hydra.sweep.dir={where}")
        assert r.returncode == 0, r.stderr
        table = results.load(where).drop(columns=["record", "trajectory"])
        tables[sweeper] = table.sort_index(axis=1)  # batched axes come last
    # the batching sweeper: clipped_gd's two values batched, adam's one job each
    assert len(list((tmp_path / "research").glob("*/record.json"))) == 3
    pd.testing.assert_frame_equal(tables["research"], tables["basic"])
    adam = tables["basic"][tables["basic"]["optimizer.name"] == "adam"]
    assert adam["optimizer.learning_rate"].tolist() == [0.01, 0.1]
    assert set(adam["optimizer._target_"]) == {"optax.adam"}
    r = run_cli(*args, f"hydra.sweep.dir={tmp_path / 'research'}")  # resume: nothing to run
    assert r.returncode == 0 and r.stdout.count(", skipped") == 3 and "wrote" not in r.stdout


def test_the_sweeper_does_not_batch_a_targets_numbers(tmp_path, run_cli):
    where = tmp_path / "s"
    r = run_cli("-m", "optimizer=adam", "optimizer.learning_rate=0.01,0.1", "engine.steps=10",
                "engine.record_every=10", "progress=off", f"hydra.sweep.dir={where}")
    assert r.returncode == 0, r.stderr
    assert "2 points in 2 jobs" in r.stderr
    table = results.load(where)
    assert table["optimizer.learning_rate"].tolist() == [0.01, 0.1]
    np.testing.assert_array_less(table["final_f"], 1e4)


@pytest.mark.parametrize(("args", "words"), [
    (("optimizer=optax",), "optimizer._target_ is not set; give the dotted path"),
    (("optimizer=optax", "optimizer._target_=optax.no_such"),
     "optimizer._target_=optax.no_such is not importable"),
    (("optimizer=optax", "optimizer._target_=no_such_package.adam"),
     "optimizer._target_=no_such_package.adam is not importable"),
    (("optimizer=optax", "optimizer._target_=optax.apply_updates"),
     "optimizer._target_=optax.apply_updates is not an optax GradientTransformation factory"),
    (("optimizer=optax", "optimizer._target_=optax.contrib"),
     "optimizer._target_=optax.contrib is a module, not an optax GradientTransformation"),
    (("optimizer=optax", "optimizer._target_=numpy.zeros", "optimizer.shape=3"),
     "optimizer._target_ is not an optax GradientTransformation factory: zeros gave a"),
    (("optimizer=adam", "optimizer.learnin_rate=0.1"),
     "optimizer.learnin_rate is not an argument of optax.adam; allowed: learning_rate, b1"),
    (("optimizer=optax", "optimizer._target_=optax.sgd"),
     "optimizer.learning_rate is required by optax.sgd"),
    (("optimizer=adam", "+sweep.optimizer.learning_rate=[0.1,0.2]"),
     "sweep.optimizer.learning_rate: the hyperparameters of an optax target"),
])
def test_a_bad_target_is_one_line_and_exit_2(tmp_path, cli_in_process, args, words):
    out = tmp_path / "r"
    code, _, err = cli_in_process("experiments.run", *args, f"hydra.run.dir={out}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err
    assert not (out / "record.json").exists()


def test_a_bad_target_stops_a_sweep_before_its_first_job(tmp_path, cli_in_process):
    where = tmp_path / "s"
    code, _, err = cli_in_process("experiments.run", "-m", "optimizer=gd,optax",
                                  "optimizer._target_=optax.nothing", "optimizer.lr=0.1,0.2",
                                  f"hydra.sweep.dir={where}")
    assert code == 2 and err.count("\n") == 1 and "optimizer._target_" in err, err
    assert not list(where.glob("*/record.json"))
