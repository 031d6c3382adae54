"""The generic Hydra experiment: configs compose, presets run, sweeps aggregate, resume,
launchers agree, and bad input gives one sentence."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from experiments import run as run_mod
from experiments import schema
from experiments.common import CONF_DIR
from research import optimizers, results
from tests.conftest import main_in_process

ROOT = Path(__file__).resolve().parents[1]
PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def _compose(*overrides):
    with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
        return compose("config", overrides=list(overrides))


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1", **(env or {})})


def test_every_factory_has_a_config_option_and_every_option_composes():
    problem_files = {p.stem for p in (CONF_DIR / "problem").glob("*.yaml")}
    optimizer_files = {p.stem for p in (CONF_DIR / "optimizer").glob("*.yaml")
                       if "_target_:" not in p.read_text()}  # optax targets: test_optax_target
    assert problem_files == set(schema.problem_factories())
    assert optimizer_files == set(optimizers.FACTORIES) | {schema.TARGET_OPTION}
    optimizer_files -= {schema.TARGET_OPTION}
    for name in sorted(problem_files):
        cfg = _compose(f"problem={name}")
        assert cfg.problem.name == name
        run_mod.build(cfg)  # the factory accepts the composed fields
    for name in sorted(optimizer_files):
        cfg = _compose(f"optimizer={name}")
        assert cfg.optimizer.name == name
        node = schema.canonical({"optimizer": dict(cfg.optimizer)})["optimizer"]
        optimizers.get(name, **schema.factory_kwargs(optimizers.FACTORIES[name], node))


def test_the_catalogue_is_the_factories_signatures_and_a_stale_entry_is_named(monkeypatch):
    # experiments/catalogue.json is what Hydra composes from; `python -m experiments.schema`
    # rewrites it. A factory whose arguments changed since then fails here...
    assert schema.load_catalogue() == schema.live_catalogue()
    assert schema.catalogue_text(schema.live_catalogue()) == schema.CATALOGUE_FILE.read_text()
    # ...and a job of that factory stops with one line naming the command that fixes it
    stale = schema.load_catalogue()
    stale["problem"]["quartic"] = [a for a in stale["problem"]["quartic"] if a["arg"] != "dim"]
    monkeypatch.setattr(schema, "load_catalogue", lambda: stale)
    with pytest.raises(ValueError, match=r"problem.name: .*'quartic'.*python -m experiments"):
        run_mod.build(_compose("problem=quartic", "optimizer=gd", "optimizer.lr=0.1"))


def test_composing_and_checking_a_finished_job_needs_no_jax(tmp_path):
    # what a re-run of a finished sweep does before it skips: compose a job's config, ask the
    # sweeper's hook about it, read and check a record (a committed one, alone in a folder)
    (tmp_path / "rec").mkdir()
    shutil.copy(ROOT / "results" / "quartic_trajectories" / "record.json", tmp_path / "rec")
    code = "\n".join([
        "import sys",
        "from pathlib import Path",
        "from hydra import compose, initialize_config_dir",
        "import experiments.run as r",
        f"with initialize_config_dir(version_base=None, config_dir={str(CONF_DIR)!r}):",
        "    cfg = compose('config', overrides=['problem=quartic', 'optimizer=clipped_gd'])",
        f"assert r.finished(cfg, Path({str(tmp_path / 'empty')!r})) is None",
        f"why = r.rerun_reason(Path({str(tmp_path / 'rec')!r}), r.identity({{}}))",
        "assert why == 'its record is of another configuration', why",
        "assert 'jax' not in sys.modules, 'JAX was imported'"])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]


def test_schema_types_every_field():
    cfg = _compose("problem=power", "optimizer=sgd_momentum")
    with pytest.raises(Exception, match="Integer"):
        cfg.problem.dim = "two"
    with pytest.raises(Exception, match="Float"):
        cfg.optimizer.lr = "fast"
    with pytest.raises(Exception, match="not in"):
        cfg.optimizer.nesterov = True
    assert cfg.optimizer.clipnorm is None  # Optional[float] from the signature


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_composes_and_runs_at_tiny_size(tmp_path, preset):
    cfg = _compose(f"experiment={preset}", "engine.steps=20", "engine.record_every=10",
                   f"out={tmp_path / 'rec'}", "progress=off")
    assert run_mod.run(cfg) == "ran"
    table = results.load(tmp_path / "rec")
    assert len(table) >= 1 and {"final_f", "diverged", "problem.name"} <= set(table.columns)


def test_sweep_axes_expand_as_documented():
    from research import sweep

    got = sweep.axis_values("optimizer.eta", {"start": 0.001, "stop": 1.001, "step": 0.001})
    assert len(got) == 1000 and got[0] == 0.001 and abs(got[-1] - 1.0) < 1e-12
    # Hydra's own range, value for value (its float rounding included)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for args in [(0.001, 1.001, 0.001), (0.1, 1.1, 0.1), (0.5, 3.0, 0.25)]:
        hydra_values = list(OverridesParser.create().parse_overrides(
            [f"x=range({args[0]},{args[1]},{args[2]})"])[0].sweep_iterator())
        ours = sweep.axis_values("x", dict(zip(("start", "stop", "step"), args, strict=True)))
        assert ours.tolist() == hydra_values
    assert np.allclose(sweep.axis_values("a", {"start": 1e-3, "stop": 1.0, "num": 4,
                                               "log": True}), [1e-3, 1e-2, 1e-1, 1.0])
    g = sweep.grid({"optimizer.eta": [1, 2], "x0": [3, 4, 5]})
    assert list(zip(g["optimizer.eta"], g["x0"], strict=True)) == [
        (1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5)]


def test_multirun_table_matches_the_batched_job(tmp_path, run_cli):
    """A step-size multirun (10 points, a job each) gives one row per job, and the same
    numbers as the same points batched inside one job."""
    jobs = tmp_path / "jobs"
    r = run_cli("-m", "hydra/sweeper=basic", "problem=quartic", "optimizer=clipped_gd",
             "optimizer.gamma=1.0", "optimizer.eta=range(0.1,1.1,0.1)", "engine.steps=1000",
             f"hydra.sweep.dir={jobs}")
    assert r.returncode == 0, r.stderr
    table = results.load(jobs)
    assert len(table) == 11 and list(table["record"]) == [str(i) for i in range(11)]
    batched = tmp_path / "batched"
    r = run_cli("optimizer.gamma=1.0", "+sweep.optimizer.eta={start:0.1,stop:1.1,step:0.1}",
             "engine.steps=1000", f"hydra.run.dir={batched}")
    assert r.returncode == 0, r.stderr
    one = results.load(batched)
    assert len(one) == 11
    np.testing.assert_allclose(one["optimizer.eta"], table["optimizer.eta"], rtol=1e-12)
    np.testing.assert_allclose(one["final_f"], table["final_f"], rtol=1e-9)
    pd.testing.assert_series_equal(one["iterations_to_eps"], table["iterations_to_eps"])


def test_divergence_is_a_row_not_a_crash(tmp_path):
    cfg = _compose("problem=cosh", "optimizer=gd", "optimizer.lr=0.5", "engine.steps=100",
                   "+sweep.x0=[0.5,10.0]", f"out={tmp_path / 'rec'}", "progress=off")
    run_mod.run(cfg)
    table = results.load(tmp_path / "rec")
    assert list(table["diverged"]) == [False, True]
    assert table["diverged_at"].iloc[1] >= 0 and np.isnan(table["final_f"].iloc[1])
    assert table["diverged_at"].iloc[0] is pd.NA  # never diverged


def test_lr_is_written_as_each_familys_own_step_size():
    """What a job is identified and recorded by (no compute): clipped_gd's lr is its eta,
    in the node and as a batch axis, and gd's lr stays lr."""
    def plain(*overrides):
        cfg = _compose("out=/a", *overrides)
        return schema.canonical(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))

    got = plain("optimizer=clipped_gd", "optimizer.lr=0.3", "+sweep.optimizer.lr=[1.0,2.0]",
                "+sweep.x0=[1.0]")
    assert got["optimizer"] == {"name": "clipped_gd", "eta": 0.3, "gamma": 1.0}
    assert list(got["sweep"]["optimizer"]) == ["eta"] and "x0" in got["sweep"]
    assert plain("optimizer=clipped_gd")["optimizer"] == {"name": "clipped_gd", "eta": 0.1,
                                                          "gamma": 1.0}
    assert plain("optimizer=gd", "optimizer.lr=0.3")["optimizer"] == {"name": "gd", "lr": 0.3}
    same = ("optimizer=clipped_gd", "out=/a")
    assert _ident(*same, "optimizer.lr=0.3") == _ident(*same, "optimizer.eta=0.3") != _ident(
        *same)


@pytest.mark.slow
def test_one_learning_rate_name_compares_the_families(tmp_path, run_cli):
    """optimizer.lr is every family's step size (clipped GD's eta): one command compares gd
    and clipped_gd, a record names the family's own parameter, either spelling is one job,
    and the basic sweeper gives the same table."""
    tables = {}
    for sweeper in ("research", "basic"):
        where = tmp_path / sweeper
        r = run_cli("-m", f"hydra/sweeper={sweeper}", "optimizer=gd,clipped_gd",
                    "optimizer.lr=0.01,0.1", "engine.steps=20", "progress=off",
                    f"hydra.sweep.dir={where}")
        assert r.returncode == 0, r.stderr
        tables[sweeper] = results.load(where).drop(columns=["record", "trajectory"])
        for path in where.glob("*/record.json"):
            node = json.loads(path.read_text())["config"]["optimizer"]
            assert ("lr" in node) == (node["name"] == "gd") and ("eta" in node) != ("lr" in node)
    table = tables["research"]
    clipped, gd = (table[table["optimizer.name"] == n] for n in ("clipped_gd", "gd"))
    assert clipped["optimizer.eta"].tolist() == gd["optimizer.lr"].tolist() == [0.01, 0.1]
    assert clipped["optimizer.lr"].isna().all()
    pd.testing.assert_frame_equal(table.sort_index(axis=1),
                                  tables["basic"].sort_index(axis=1))


@pytest.mark.parametrize(("args", "words"), [
    (("optimizer=clipped_gd", "optimizer.lrr=0.1"),
     "optimizer.lrr is not a field of this config; allowed: name, eta, gamma, lr."),
    (("optimizer=clipped_gd", "optimizer.lr=0.1", "optimizer.eta=0.2"),
     "optimizer.lr and optimizer.eta both set the step size"),
    (("optimizer=clipped_gd", "+sweep.optimizer.lr=[0.1]", "+sweep.optimizer.eta=[0.2]"),
     "sweep.optimizer.lr and sweep.optimizer.eta both sweep the step size"),
    (("optimizer=l0l1_gd", "optimizer.lr=0.1"),
     "optimizer.lr is not a field of this config; allowed: name, L0, L1, rule."),
])
def test_the_learning_rate_name_is_refused_where_it_is_ambiguous(tmp_path, monkeypatch, capsys,
                                                                 args, words):
    code, _, err = _main(monkeypatch, capsys, *args, f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert words in err, err
    assert not (tmp_path / "r" / "record.json").exists()


def _mtimes(sweep_dir: Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep_dir.glob("*/record.json")
            if not p.parent.name.startswith(".")}


@pytest.mark.slow
def test_resume_runs_only_missing_jobs_and_gives_the_same_table(tmp_path):
    """Resume under the basic sweeper (the default sweeper's resume, per chunk, and the
    healing of damaged records are in make test: test_sweeper.py, test_faults.py)."""
    sweep_dir = tmp_path / "sweep"
    args = ("-m", "hydra/sweeper=basic", "problem=cosh", "optimizer=normalized_gd",
            "optimizer.eta=0.01,0.02,0.05", "x0=1.0,3.0", "engine.steps=500",
            f"hydra.sweep.dir={sweep_dir}")
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    first = results.load(sweep_dir)
    assert len(first) == 6
    before = _mtimes(sweep_dir)
    # An interrupted run: two records gone, one job killed while writing (its temporary
    # directory is left behind, the record never renamed into place).
    import shutil

    shutil.rmtree(sweep_dir / "1")
    shutil.move(sweep_dir / "4", sweep_dir / ".4.tmpkilled")
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("skipped") == 4 and r.stdout.count("wrote") == 2
    after = _mtimes(sweep_dir)
    assert {k: v for k, v in after.items() if k not in ("1", "4")} == \
        {k: v for k, v in before.items() if k not in ("1", "4")}
    again = results.load(sweep_dir)
    pd.testing.assert_frame_equal(first, again)
    # Another sweep into the directory is refused, in one line, before any job runs ...
    r = _cli(*args[:-2], "engine.steps=400", f"hydra.sweep.dir={sweep_dir}")
    assert r.returncode == 2 and r.stderr.startswith(f"error: hydra.sweep.dir={sweep_dir} "
                                                     "holds another sweep"), r.stderr
    assert r.stderr.count("\n") == 1 and "wrote" not in r.stdout
    pd.testing.assert_frame_equal(results.load(sweep_dir), first)
    # ... and replaces it with resume=false: none of its records is taken for a complete one
    r = _cli(*args[:-2], "engine.steps=400", "resume=false", f"hydra.sweep.dir={sweep_dir}")
    assert r.stdout.count("skipped") == 0 and r.stdout.count("wrote") == 6
    assert set(results.load(sweep_dir)["engine.steps"]) == {400}


@pytest.mark.slow
def test_three_launchers_give_the_same_table(tmp_path):
    """The basic sweeper through each launcher (joblib under the batching sweeper is in
    make test: tests/test_sweeper.py::test_one_table_whichever_way_the_sweep_ran)."""
    args = ("-m", "hydra/sweeper=basic", "problem=quartic", "optimizer=clipped_gd",
            "optimizer.eta=0.05,0.5", "x0=2.0,20.0", "engine.steps=300")
    tables = {}
    for launcher, extra in [("basic", ()), ("joblib", ("hydra.launcher.n_jobs=2",)),
                            ("submitit_local", ("hydra.launcher.timeout_min=10",))]:
        out = tmp_path / launcher
        r = _cli(*args, f"hydra/launcher={launcher}", *extra, f"hydra.sweep.dir={out}")
        assert r.returncode == 0, (launcher, r.stderr[-2000:])
        tables[launcher] = results.load(out)
    assert len(tables["basic"]) == 4
    pd.testing.assert_frame_equal(tables["basic"], tables["joblib"])
    pd.testing.assert_frame_equal(tables["basic"], tables["submitit_local"])


def test_slurm_launcher_config_composes():
    with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
        cfg = compose("config", overrides=["hydra/launcher=slurm",
                                           "hydra.launcher.partition=cpu"],
                      return_hydra_config=True)
    assert cfg.hydra.launcher.partition == "cpu"
    assert "submitit" in cfg.hydra.launcher._target_.lower()


@pytest.mark.parametrize(("override", "field", "allowed"), [
    ("problem=quintic", "problem", "quartic"),
    ("optimizer=adamw", "optimizer", "clipped_gd"),
    ("optimizer.eta=fast", "optimizer.eta", "Float"),
    ("engine.steps=ten", "engine.steps", "Integer"),
    ("optimizer.eta=0", "optimizer.eta", "positive"),
    ("optimizer.eta=-0.1", "optimizer.eta", "positive"),
    ("engine.steps=0", "engine.steps", ">= 1"),
    ("engine.eps=0", "engine.eps", "positive"),
    ("problem.L1=-1", "problem.L1", "positive"),
    ("optimizer=l0l1_gd optimizer.L0=-1", "optimizer.L0", ">= 0"),
    ("x0=[nan]", "x0", "finite"),
    ("x0=inf", "x0", "finite"),
    ("engine.record_every=7", "engine.record_every", "divide"),
    ("progress=sometimes", "progress", "auto"),
    ("+sweep.optimizer.eta=[0.1,-1.0]", "sweep.optimizer.eta", "positive"),
    ("+sweep.problem.dim=[1,2]", "sweep.problem.dim", "optimizer.<hyperparameter>"),
    ("problem=noisy problem.base=quintic", "problem.base", "'cosh'"),
    ("problem=adding problem.cell=gru", "problem.cell", "'lstm'"),
    ("problem=mlp_regression x0=1.0", "x0", "parameter tree"),
])
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, cli_in_process, override,
                                                     field, allowed):
    out = tmp_path / "run"
    code, _, err = cli_in_process("experiments.run", *override.split(), f"hydra.run.dir={out}")
    assert code == 2, err
    err = err.strip()
    assert err.count("\n") == 0 and err.startswith("error: "), err
    assert field in err and allowed in err, err
    assert not (out / "record.json").exists()


def test_bad_input_from_a_real_process_is_one_line_and_exit_2(tmp_path):
    """The same path as above through a real ``python -m`` (exit status and stderr as a shell
    sees them)."""
    out = tmp_path / "run"
    r = _cli("optimizer.eta=-0.1", f"hydra.run.dir={out}")
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("error: optimizer.eta"), err
    assert not (out / "record.json").exists()


def test_bad_value_inside_a_multirun_stops_before_its_job_writes(tmp_path):
    out = tmp_path / "sweep"
    r = _cli("-m", "hydra/sweeper=basic", "optimizer.eta=0.1,-1.0", "engine.steps=100",
             f"hydra.sweep.dir={out}")
    assert r.returncode == 2 and "optimizer.eta" in r.stderr
    assert (out / "0" / "record.json").exists() and not (out / "1" / "record.json").exists()


def test_load_reads_several_sweeps_and_plain_records(tmp_path):
    results.write_record(tmp_path / "a" / "0", config={"k": 1, "out": "x"},
                         metrics={results.ROWS: {"v": [1.0, "nan"]}})
    results.write_record(tmp_path / "b", config={"k": 2}, metrics={"score": 0.5, "l": [1, 2]})
    table = results.load([tmp_path / "a", tmp_path / "b"])
    assert list(table["k"]) == [1, 1, 2]
    assert np.isnan(table["v"].iloc[1]) and table["score"].iloc[2] == 0.5
    assert "out" not in table.columns and "l" not in table.columns
    with pytest.raises(FileNotFoundError, match="no run record or sweep directory"):
        results.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no run records under"):
        results.load(tmp_path / "empty")


def test_progress_bar_only_on_a_terminal_outside_ci(tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert run_mod._use_bar(schema.Progress.auto)
    monkeypatch.setenv("CI", "true")
    assert not run_mod._use_bar(schema.Progress.auto) and run_mod._use_bar(schema.Progress.on)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    monkeypatch.delenv("CI")
    assert not run_mod._use_bar(schema.Progress.auto)
    assert not run_mod._use_bar(schema.Progress.off)
    cfg = _compose("engine.steps=2000", "engine.record_every=100", "progress=on",
                   f"out={tmp_path / 'bar'}")
    run_mod.run(cfg)
    err = capfd.readouterr().err
    assert "2000/2000" in err or "it/s" in err or "it]" in err
    cfg = _compose("engine.steps=2000", "engine.record_every=100", "progress=off",
                   f"out={tmp_path / 'quiet'}")
    run_mod.run(cfg)
    assert capfd.readouterr().err == ""


def test_jobs_that_differ_only_in_numbers_share_one_compiled_program(tmp_path):
    from research import engine

    cfgs = [_compose("problem=quartic", "optimizer=clipped_gd", f"optimizer.eta={eta}",
                     f"x0={x0}", "engine.steps=300", "progress=off", f"out={tmp_path / str(i)}")
            for i, (eta, x0) in enumerate([(0.01, 1.0), (0.02, 5.0), (0.5, 50.0)])]
    run_mod.run(cfgs[0])
    before = engine.TRACE_COUNT
    for cfg in cfgs[1:]:
        run_mod.run(cfg)
    assert engine.TRACE_COUNT == before
    # a different step count is a different program
    run_mod.run(_compose("engine.steps=200", "progress=off", f"out={tmp_path / 'other'}"))
    assert engine.TRACE_COUNT == before + 1


# --------------------------------------------------------------------------- resume, limits


def _main(monkeypatch, capsys, *args):
    """``python -m experiments.run <args>`` in this process: (exit status, stdout, stderr)."""
    return main_in_process("experiments.run", args, monkeypatch, capsys)


SMALL = ("hydra/sweeper=basic", "problem=quartic", "optimizer=clipped_gd",
         "optimizer.eta=0.05,0.1,0.2", "engine.steps=200", "progress=off")


def test_identity_is_what_changes_the_result():
    base = OmegaConf.to_container(_compose("optimizer.eta=0.1", "out=/a"), resolve=True,
                                  enum_to_str=True)
    same = [("out=/elsewhere",), ("progress=on",), ("resume=false",), ("rerun_stale=true",),
            ("engine.max_memory_gb=64", "engine.max_record_gb=9")]
    other = [("optimizer.eta=0.2",), ("optimizer.gamma=inf",), ("engine.seed=1",),
             ("engine.steps=2000",), ("engine.record_every=20",), ("engine.eps=0.1",),
             ("x0=3.0",), ("+sweep.x0=[1.0,2.0]",), ("problem=cosh",)]
    ident = run_mod.identity(base)
    for extra in same:
        cfg = _compose("optimizer.eta=0.1", "out=/a", *extra)
        assert run_mod.identity(OmegaConf.to_container(cfg, resolve=True,
                                                       enum_to_str=True)) == ident, extra
    seen = {ident}
    for extra in other:
        cfg = _compose("optimizer.eta=0.1", "out=/a", *extra)
        seen.add(run_mod.identity(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)))
    assert len(seen) == len(other) + 1


def test_finished_sweep_is_skipped_with_other_options_and_from_a_copy(tmp_path, monkeypatch,
                                                                       capsys):
    import json
    import shutil

    first = tmp_path / "first"
    small = tuple("optimizer.eta=0.05,0.2" if a.startswith("optimizer.eta=") else a
                  for a in SMALL)  # 2 x 2 jobs
    code, out, err = _main(monkeypatch, capsys, "-m", *small, "optimizer.gamma=1.0,inf",
                           f"hydra.sweep.dir={first}")
    assert code == 0 and out.count("wrote") == 4, err
    table = results.load(first)
    gamma = table["optimizer.gamma"]
    assert gamma.dtype == np.float64 and np.isinf(gamma).sum() == 2  # inf is a number
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    before = _mtimes(copy)
    code, out, err = _main(monkeypatch, capsys, "-m", *small[:-1], "optimizer.gamma=1.0,inf",
                           "progress=on", "engine.max_memory_gb=8", f"hydra.sweep.dir={copy}")
    assert code == 0 and out.count(", skipped") == 4 and "wrote" not in out, out
    assert _mtimes(copy) == before
    # rerun_stale re-runs a record written at another commit, and only that one
    path = copy / "3" / "record.json"
    record = json.loads(path.read_text())
    record["git_commit"] = "0" * 40
    path.write_text(json.dumps(record))
    code, out, _ = _main(monkeypatch, capsys, "-m", *small, "optimizer.gamma=1.0,inf",
                         f"hydra.sweep.dir={copy}")
    assert out.count(", skipped") == 4
    code, out, _ = _main(monkeypatch, capsys, "-m", *small, "optimizer.gamma=1.0,inf",
                         "rerun_stale=true", f"hydra.sweep.dir={copy}")
    assert out.count(", skipped") == 3 and out.count("wrote") == 1, out
    assert f"re-running {copy / '3'}: " in out and "0" * 40 in out
    again = results.load(copy)
    assert list(again["rerun_stale"]) == [False] * 3 + [True]  # the config it ran with
    pd.testing.assert_frame_equal(again.drop(columns="rerun_stale"),
                                  table.drop(columns="rerun_stale"))


def test_an_incomplete_record_is_rerun_and_said_so(tmp_path, monkeypatch, capsys):
    sweep_dir = tmp_path / "s"
    args = ("-m", *SMALL, f"hydra.sweep.dir={sweep_dir}")
    assert _main(monkeypatch, capsys, *args)[0] == 0
    table = results.load(sweep_dir)
    (sweep_dir / "2" / "record.json").write_text("null\n")
    code, out, err = _main(monkeypatch, capsys, *args)
    assert code == 0, err
    lines = [line for line in out.splitlines() if "re-running" in line]
    assert lines == [f"[run] re-running {sweep_dir / '2'}: record.json holds null, not a record "
                     "(a JSON object)"]
    assert out.count(", skipped") == 2 and out.count("wrote") == 1
    pd.testing.assert_frame_equal(results.load(sweep_dir), table)


HOLD_LOCK = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("results", "research/results.py")
results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results)
with results.lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""
HOLD_JOB = """
import sys, time
from pathlib import Path
from experiments import run
with run.hold(Path(sys.argv[1]), sys.argv[2]) as held:
    print("held" if held else "busy", flush=True)
    time.sleep(60)
"""


def _ident(*overrides) -> str:
    return run_mod.identity(schema.canonical(OmegaConf.to_container(
        _compose(*overrides), resolve=True, enum_to_str=True)))


@pytest.mark.parametrize("holder", ["this job", "another configuration", "a bare lock"])
def test_a_job_another_process_holds(tmp_path, monkeypatch, capsys, holder):
    """The same job running elsewhere is skipped (two runs of one sweep split it); a job of
    another configuration, or a lock of unknown purpose, is refused: the job was reported
    done and the run exited 0 without it."""
    out = tmp_path / "job"
    job = ("engine.steps=100", "progress=off", f"out={out}")
    script, args = ((HOLD_LOCK, [str(out)]) if holder == "a bare lock" else
                    (HOLD_JOB, [str(out), _ident(*job) if holder == "this job" else
                                _ident("engine.steps=200", f"out={out}")]))
    proc = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        if holder == "this job":
            assert run_mod.run(_compose(*job)) == "busy"
            assert "being run by another process, skipped" in capsys.readouterr().out
        else:
            code, stdout, err = _main(monkeypatch, capsys, *job,
                                      f"hydra.run.dir={tmp_path / 'r'}")
            assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
            assert err.startswith(f"error: out={out} is being run by another process "
                                  f"(pid {proc.pid})"), err
            assert "skipped" not in stdout and "wrote" not in stdout, stdout
        assert not (out / "record.json").exists()
    finally:
        proc.kill()
        proc.wait()
    assert run_mod.run(_compose(*job)) == "ran"


@pytest.mark.slow
def test_a_concurrent_run_of_another_configuration_is_refused(tmp_path, monkeypatch, capsys):
    """Two real runs into one out=, the second of another configuration."""
    out = tmp_path / "job"
    first = subprocess.Popen(
        [sys.executable, "-m", "experiments.run", "engine.steps=20000000",
         "engine.record_every=1000000", "progress=off", f"out={out}",
         f"hydra.run.dir={tmp_path / 'a'}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        lock = results.lock_path(out)
        for _ in range(600):
            if lock.exists() and lock.read_text().strip():
                break
            time.sleep(0.1)
        code, stdout, err = _main(monkeypatch, capsys, "engine.steps=100", f"out={out}",
                                  "progress=off", f"hydra.run.dir={tmp_path / 'b'}")
        assert code == 2 and "is being run by another process" in err, (code, stdout, err)
        assert "skipped" not in stdout
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize(("override", "field"), [
    ("stepz=20", "stepz"),
    ("enigne.steps=20", "enigne"),
    ("engine.seed=1e20", "engine.seed"),
    ("engine.seed=100000000000000000000", "engine.seed"),
    ("engine.seed=-1", "engine.seed"),
    ("engine.steps=100000000000", "engine.steps"),
    ("engine.steps=2000000000", "engine.max_memory_gb"),
    ("+sweep.optimizer.eta={start:0.1,stop:1.0,num:1e8}", "sweep.optimizer.eta"),
    ("+foo=1", "foo"),
    ("optimizer.etaa=0.1", "optimizer.etaa"),
    ("engine.steps=1,", "engine.steps=1,"),
    ("optimizer.eta=ünïcode", "optimizer.eta=ünïcode"),
    ("engine.steps=10 =", "engine.steps=10 ="),
])
def test_config_errors_are_one_line_and_exit_2(tmp_path, monkeypatch, capsys, override, field):
    code, out, err = _main(monkeypatch, capsys, override, f"hydra.run.dir={tmp_path / 'r'}")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert field in err and "Traceback" not in err
    if override.startswith(("stepz", "enigne")):
        assert f"{field} is not a field of this config" in err, err
    if override.startswith(("+foo", "optimizer.etaa")):  # the user's key and the allowed ones
        assert f"{field} is not a field of this config; allowed: " in err, err
        assert ("eta, gamma" if "etaa" in override else "engine, x0, sweep") in err, err
    assert not (tmp_path / "r" / "record.json").exists()


def test_an_empty_multirun_is_an_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    for sweep_arg in ("optimizer.eta=range(1,0.5,0.1)", "x0=range(3,1)"):
        code, out, err = _main(monkeypatch, capsys, "-m", "optimizer.gamma=1.0,2.0", sweep_arg,
                               f"hydra.sweep.dir={tmp_path / 's'}")
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
        assert sweep_arg.split("=")[0] in err and "no jobs" in err
        assert not (tmp_path / "s").exists()


def test_limits_are_checked_before_any_array_is_built():
    for override, words in [
        ("engine.steps=2147483648", ("engine.steps", "int32")),
        ("engine.seed=9223372036854775808", ("engine.seed",)),
        ("+sweep.optimizer.eta={start:0.1,stop:1.0,num:1e8}", ("more than 10,000,000 points",)),
        ("+sweep.optimizer.eta={start:0.1,stop:1.0,step:1e-8}", ("more than 10,000,000 points",)),
        ("+sweep.x0={start:1,stop:2,num:4000}", ("more than 10,000,000",)),
    ]:
        extra = ("+sweep.optimizer.eta={start:0.1,stop:1.0,num:4000}",) if "x0" in override \
            else ()
        with pytest.raises(ValueError) as info:
            run_mod.build(_compose(override, *extra))
        assert all(w in str(info.value) for w in words), (override, info.value)
    big = "+sweep.optimizer.eta={start:0.1,stop:1.0,num:1e6}"
    with pytest.raises(ValueError) as info:
        run_mod.build(_compose(big))
    msg = str(info.value)
    for word in ("engine.max_memory_gb", "1,000,000 points", "sweep.optimizer.eta",
                 "engine.steps", "engine.record_every", "GB"):
        assert word in msg, msg
    with pytest.raises(ValueError, match="engine.max_record_gb"):
        run_mod.build(_compose(big, "engine.max_memory_gb=1000"))
    # the user raises the limits: the job builds (nothing runs)
    _, _, batch, _ = run_mod.build(_compose(big, "engine.max_memory_gb=1000",
                                            "engine.max_record_gb=1000"))
    assert batch.starts.shape[0] == 1_000_000


def test_the_size_estimate_covers_the_record(tmp_path):
    from research import sweep

    cfg = _compose("problem=quartic", "+sweep.optimizer.eta=[0.1,0.2,0.3]", "+sweep.x0=[1,2]",
                   "engine.steps=200", "engine.record_every=20", "progress=off",
                   f"out={tmp_path / 'rec'}")
    run_mod.run(cfg)
    _, traces = results.read_record(tmp_path / "rec")
    est = sweep.footprint(6, 200, 20, 1, columns=len(sweep.ROW_METRICS) + 2)
    assert est.traces == sum(traces[k].nbytes for k in sweep.TRACE_FIELDS)
    assert sum(p.stat().st_size for p in (tmp_path / "rec").iterdir()) <= est.record
    assert est.memory >= 3 * est.traces
    twice = sweep.footprint(12, 200, 20, 1, columns=len(sweep.ROW_METRICS) + 2)
    assert twice.traces == 2 * est.traces and twice.memory > est.memory


def test_config_types_follow_the_yaml_defaults(monkeypatch, capsys, tmp_path):
    from experiments.common import check_types

    defaults = {"chain": {"weights": [0.5, 0.5], "lr": 1.0, "name": "x"}, "steps": 10}
    check_types({"chain": {"weights": [1, 2.5], "lr": 3, "name": "y"}, "steps": 5}, defaults)
    for bad, field in [({"chain": {"weights": ["a", "b"]}}, "chain.weights"),
                       ({"chain": {"weights": 0.5}}, "chain.weights"),
                       ({"chain": {"lr": "fast"}}, "chain.lr"),
                       ({"steps": True}, "steps")]:
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            check_types(bad, defaults)
    # the figure experiments' command line: one line, exit 2, naming the field
    from experiments import clipping_seeds

    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    for override, words in [("chain.weights=[a,b]", "chain.weights must be a list of numbers"),
                            ("x4.stepz=1", "x4.stepz is not a field of this config")]:
        monkeypatch.setattr(sys, "argv", ["clipping_seeds", override, f"out={tmp_path / 'cs'}"])
        with pytest.raises(SystemExit) as stop:
            clipping_seeds.main()
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "cs").exists()
