"""Run records: round trip (non-finite numbers included), plain numbers, provenance, atomic
replacement, one notion of a complete record, typed tables, and concurrent writers."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import run as run_mod
from research import results, sweep

ROOT = Path(__file__).resolve().parents[1]


def _same(a, b) -> bool:
    """Equality that takes NaN for NaN and does not confuse 1 with True."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return type(a) is type(b) and a == b


def _strict_json(path: Path):
    """Parse as standard JSON: NaN and Infinity literals are refused."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(path.read_text(), parse_constant=refuse)


def test_round_trip(tmp_path):
    nan, inf = float("nan"), float("inf")
    config = {"a": 1, "nested": {"b": [1.5, 2, inf], "c": {"d": -inf}}, "gamma": inf}
    out = results.write_record(
        tmp_path / "rec", config=config,
        metrics={"n": np.int64(3), "x": np.float32(0.5), "bad": nan, "big": np.float64(inf),
                 "flags": np.array([True, False]), "rows": {"v": np.array([1.0, nan, -inf])}},
        traces={"f": np.arange(6.0).reshape(3, 2)}, seed=7)
    record, traces = results.read_record(out)
    assert _same(record["config"], config)
    assert _same(record["metrics"], {"n": 3, "x": 0.5, "bad": nan, "big": inf,
                                     "flags": [True, False], "rows": {"v": [1.0, nan, -inf]}})
    assert record["seed"] == 7 and record["precision"] == "float64"
    assert record["versions"]["jax"] != "not installed"
    assert "git_commit" in record
    assert np.array_equal(traces["f"], np.arange(6.0).reshape(3, 2))
    on_disk = _strict_json(out / "record.json")  # standard JSON (no NaN literals)
    assert on_disk["config"]["gamma"] == "inf" and on_disk["metrics"]["bad"] == "nan"


plain = st.recursive(
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**60, 2**60),
              st.booleans(), st.none(), st.text(max_size=5).filter(
                  lambda s: s not in results.NON_FINITE)),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=4), children, max_size=4)),
    max_leaves=12)


@settings(max_examples=40, deadline=None)
@given(config=st.dictionaries(st.text(max_size=4), plain, max_size=4),
       metrics=st.dictionaries(st.text(max_size=4).filter(lambda k: k != results.ROWS), plain,
                               max_size=4))
def test_every_value_reads_back_as_written(tmp_path_factory, config, metrics):
    out = results.write_record(tmp_path_factory.mktemp("r") / "rec", config=config,
                               metrics=metrics)
    record, _ = results.read_record(out, traces=False)
    assert _same(record["config"], config) and _same(record["metrics"], metrics)
    _strict_json(out / "record.json")
    assert results.fingerprint(record["config"]) == results.fingerprint(config)


def test_fingerprint_ignores_key_order_and_sees_values():
    a = {"x": 1.0, "y": {"p": float("inf"), "q": [1, 2]}}
    b = {"y": {"q": [1, 2], "p": float("inf")}, "x": 1.0}
    assert results.fingerprint(a) == results.fingerprint(b)
    assert results.fingerprint(a) != results.fingerprint({**a, "x": 2.0})


def test_failed_write_leaves_old_record_and_no_debris(tmp_path):
    results.write_record(tmp_path / "rec", config={"v": 1}, metrics={})

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        results.write_record(tmp_path / "rec", config={"v": 2}, metrics={},
                             traces={"f": Boom()})
    record, _ = results.read_record(tmp_path / "rec")
    assert record["config"] == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_debris_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    (tmp_path / ".rec.tmp-killed").mkdir()
    (tmp_path / ".rec.old-killed").mkdir()
    (tmp_path / ".other.tmp-x").mkdir()
    results.write_record(tmp_path / "rec", config={"v": 1}, metrics={})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.tmp-x", "rec"]


def test_missing_record_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the experiment"):
        results.read_record(tmp_path / "nothing")


# --------------------------------------------------------------------------- completeness


def _engine_config(directory: Path, etas=(0.1, 0.2, 0.5), **sweep_extra) -> dict:
    return {"problem": {"name": "quartic"}, "engine": {"steps": 10},
            "sweep": {"optimizer": {"eta": list(etas)}, **sweep_extra}, "out": str(directory)}


def _engine_metrics(etas, iterations=None, diverged_at=None) -> dict:
    n = len(etas)
    rows = {"optimizer.eta": list(etas), "final_f": [1.0] * n, "final_grad_norm": [0.5] * n,
            "min_grad_norm": [0.1] * n,
            "iterations_to_eps": list(iterations or [-1] * n), "diverged": [False] * n,
            "diverged_at": list(diverged_at or [-1] * n)}
    assert set(rows) == {"optimizer.eta", *sweep.ROW_METRICS}
    return {results.ROWS: rows, "trajectories": n}


def _engine_record(directory: Path, etas=(0.1, 0.2, 0.5), iterations=None, diverged_at=None,
                   **sweep_extra):
    """A record shaped like experiments.run's: an engine block, a sweep axis, rows, and the
    job's identity."""
    config = _engine_config(directory, etas, **sweep_extra)
    return results.write_record(
        directory, config=config, metrics=_engine_metrics(etas, iterations, diverged_at),
        traces={"f": np.ones((len(etas), 3)), "iterations": np.arange(3)},
        identity=run_mod.identity(config))


def _edit_json(path: Path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _truncate(path: Path, n: int = 100):
    path.write_bytes(path.read_bytes()[:n])


def _drop_column(column):
    return lambda d: d["metrics"]["rows"].pop(column)


def _cell(column, value, row=0):
    """Set one cell of metrics.rows in a record directory."""
    return lambda d: _edit_json(d / "record.json",
                                lambda r: r["metrics"]["rows"][column].__setitem__(row, value))


def _traces(**arrays):
    """Replace a record directory's traces.npz (whole, readable) by ``arrays``."""
    return lambda d: np.savez_compressed(d / "traces.npz", **arrays)


CORRUPTIONS = {
    # name: (how, the file the problem names, a word of the problem)
    "null": (lambda d: (d / "record.json").write_text("null\n"), "record.json", "null"),
    "list": (lambda d: (d / "record.json").write_text("[1, 2]"), "record.json", "list"),
    "empty": (lambda d: (d / "record.json").write_text(""), "record.json", "empty"),
    "truncated json": (lambda d: _truncate(d / "record.json"), "record.json", "truncated"),
    "garbage json": (lambda d: (d / "record.json").write_text("{oops} trailing"),
                     "record.json", "not valid JSON"),
    "no metrics": (lambda d: _edit_json(d / "record.json", lambda r: r.pop("metrics")),
                   "record.json", "'metrics'"),
    "config not a dict": (lambda d: _edit_json(d / "record.json",
                                               lambda r: r.update(config=3)),
                          "record.json", "'config'"),
    "rows of unequal length": (
        lambda d: _edit_json(d / "record.json",
                             lambda r: r["metrics"]["rows"]["final_f"].pop()),
        "record.json", "different lengths"),
    "engine column missing": (
        lambda d: _edit_json(d / "record.json", _drop_column("diverged_at")),
        "record.json", "diverged_at"),
    "axis column missing": (
        lambda d: _edit_json(d / "record.json", _drop_column("optimizer.eta")),
        "record.json", "optimizer.eta"),
    "trajectory count": (
        lambda d: _edit_json(d / "record.json",
                             lambda r: r["metrics"].update(trajectories=7)),
        "record.json", "trajectories"),
    "truncated traces": (lambda d: _truncate(d / "traces.npz"), "traces.npz", "corrupt"),
    "empty traces": (lambda d: (d / "traces.npz").write_bytes(b""), "traces.npz", "corrupt"),
    "garbage traces": (lambda d: (d / "traces.npz").write_bytes(b"not a zip at all" * 20),
                       "traces.npz", ""),
    # whole files that are not what they say: they would load with wrong labels or values
    "config edited after the run": (
        lambda d: _edit_json(d / "record.json",
                             lambda r: r["config"]["problem"].update(name="cosh")),
        "record.json", "identity"),
    "text in a metric column": (_cell("final_f", "low"), "record.json", "'final_f'"),
    "a boolean in a number column": (_cell("final_grad_norm", True), "record.json",
                                     "'final_grad_norm'"),
    "an object in a metric column": (_cell("min_grad_norm", {"v": 1.0}, row=1), "record.json",
                                     "'min_grad_norm'"),
    "text in an axis column": (_cell("optimizer.eta", "0.1"), "record.json", "'optimizer.eta'"),
    "a number in the boolean column": (_cell("diverged", 1, row=2), "record.json",
                                       "'diverged'"),
    "a count below -1": (_cell("iterations_to_eps", -5), "record.json", "'iterations_to_eps'"),
    "a fractional count": (_cell("diverged_at", 2.5), "record.json", "'diverged_at'"),
    "a trace of other rows": (_traces(f=np.ones((2, 3)), iterations=np.arange(3)),
                              "traces.npz", "'f'"),
    "a trace of other iterations": (_traces(f=np.ones((3, 4)), iterations=np.arange(3)),
                                    "traces.npz", "'f'"),
    "iterations of two dimensions": (_traces(f=np.ones((3, 3)),
                                             iterations=np.arange(6).reshape(2, 3)),
                                     "traces.npz", "'iterations'"),
    "a trace of text": (_traces(f=np.full((3, 3), "x"), iterations=np.arange(3)),
                        "traces.npz", "'f'"),
}


def test_a_whole_record_is_complete(tmp_path):
    d = _engine_record(tmp_path / "ok")
    assert results.check_record(d) is None and results.is_complete(d)
    # a chunk of a sweep is not a column of its rows
    chunk = _engine_record(tmp_path / "chunk", chunk=[0, 3])
    assert results.check_record(chunk) is None
    d2 = results.write_record(tmp_path / "plain", config={"k": 1},
                              metrics={results.ROWS: {"v": [1.0, 2.0]}})
    assert results.check_record(d2) is None  # no engine block: no required columns
    (d2 / "traces.npz").unlink()
    assert results.check_record(d2) is None  # traces.npz is checked when present
    assert results.read_record(d2)[1] == {}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_every_corruption_is_incomplete_and_named(tmp_path, name):
    how, file, word = CORRUPTIONS[name]
    d = _engine_record(tmp_path / "2")
    how(d)
    problem = results.check_record(d)
    assert problem is not None and problem.startswith(file) and word in problem, problem
    assert not results.is_complete(d)
    with pytest.raises(results.RecordError) as info:
        results.read_record(d, traces=False)
    msg = str(info.value)
    assert str(d) in msg and file in msg and msg.count("\n") == 0, msg
    assert info.value.problem == problem and info.value.directory == d
    assert type(info.value.__cause__).__name__ not in ("JSONDecodeError", "BadZipFile")
    with pytest.raises(results.RecordError, match=file):
        results.load(d)  # a record named explicitly raises
    # resuming re-runs it, saying the same
    assert run_mod.rerun_reason(d, run_mod.identity(_engine_config(d))) == problem


def test_load_skips_incomplete_records_of_a_sweep_with_a_warning(tmp_path):
    good, mixed = tmp_path / "good", tmp_path / "mixed"
    for i, etas in enumerate([(0.1, 0.2), (0.3,), (0.4, 0.5)]):
        _engine_record(good / str(i), etas)
        _engine_record(mixed / str(i), etas)
    for i, name in [(3, "null"), (4, "truncated traces"), (5, "engine column missing")]:
        _engine_record(mixed / str(i), (9.0,))
        CORRUPTIONS[name][0](mixed / str(i))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = results.load(mixed)
    named = [str(w.message) for w in caught if issubclass(w.category, results.RecordWarning)]
    assert len(named) == 3 and all(
        str(mixed / str(i)) in m for i, m in zip((3, 4, 5), named, strict=True)), named
    pd.testing.assert_frame_equal(table, results.load(good))
    CORRUPTIONS["null"][0](good / "0")
    with pytest.warns(results.RecordWarning):
        assert len(results.load(good)) == 3
    only_bad = tmp_path / "bad"
    _engine_record(only_bad / "0")
    CORRUPTIONS["null"][0](only_bad / "0")
    with pytest.warns(results.RecordWarning), pytest.raises(results.RecordError,
                                                            match="no complete run records"):
        results.load(only_bad)


UNTRUE = ("config edited after the run", "text in a metric column",
          "a boolean in a number column", "an object in a metric column",
          "text in an axis column", "a number in the boolean column", "a count below -1",
          "a fractional count", "a trace of other rows", "a trace of other iterations",
          "iterations of two dimensions", "a trace of text")
"""Damage that leaves whole, readable files: records that are not what they say."""


def test_load_names_and_skips_each_record_that_is_not_what_it_says(tmp_path):
    sweep_dir = tmp_path / "s"
    _engine_record(sweep_dir / "0", (0.1, 0.2))
    for job, name in enumerate(UNTRUE, start=1):
        CORRUPTIONS[name][0](_engine_record(sweep_dir / str(job)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = results.load(sweep_dir, traces=True)
    named = [str(w.message) for w in caught if issubclass(w.category, results.RecordWarning)]
    assert len(named) == len(UNTRUE), named
    for job, (name, message) in enumerate(zip(UNTRUE, named, strict=True), start=1):
        assert f"{sweep_dir / str(job)}: " in message and CORRUPTIONS[name][2] in message, (
            name, message)
    assert list(table["record"]) == ["0", "0"]
    assert list(table["optimizer.eta"]) == [0.1, 0.2]


def test_load_reads_a_record_at_the_top_of_a_sweep_and_every_job_below(tmp_path):
    sweep_dir = tmp_path / "s"
    _engine_record(sweep_dir, (0.7,))
    _engine_record(sweep_dir / "0", (0.1, 0.2))
    _engine_record(sweep_dir / "10" / "inner", (0.3,))
    _engine_record(sweep_dir / "2", (0.4,))
    table = results.load(sweep_dir)
    assert list(table["record"]) == [".", "0", "0", "2", "10/inner"]
    assert list(table["optimizer.eta"]) == [0.7, 0.1, 0.2, 0.4, 0.3]
    # damaged at the top, it is one skipped record of the sweep, not an error hiding the rest
    CORRUPTIONS["null"][0](sweep_dir)
    with pytest.warns(results.RecordWarning, match=f"{sweep_dir}: record.json"):
        assert list(results.load(sweep_dir)["record"]) == ["0", "0", "2", "10/inner"]


def test_a_symlinked_job_is_loaded_as_resume_counts_it(tmp_path):
    sweep_dir, elsewhere = tmp_path / "s", tmp_path / "elsewhere"
    _engine_record(sweep_dir / "0", (0.1,))
    _engine_record(elsewhere / "1", (0.2,))
    (sweep_dir / "1").symlink_to(elsewhere / "1", target_is_directory=True)
    (sweep_dir / "again").symlink_to(sweep_dir / "0")  # one record by two paths: read once
    (sweep_dir / "0" / "up").symlink_to(sweep_dir)  # a loop ends
    ident = run_mod.identity(_engine_config(sweep_dir / "1", (0.2,)))
    assert run_mod.rerun_reason(sweep_dir / "1", ident) is None  # resume: complete, skipped
    with warnings.catch_warnings():
        warnings.simplefilter("error", results.RecordWarning)
        table = results.load(sweep_dir)
    assert list(table["record"]) == ["0", "1"] and list(table["optimizer.eta"]) == [0.1, 0.2]
    assert [p.name for p in results.record_dirs(sweep_dir)] == ["0", "1"]


def test_other_records_are_typed_as_load_reads_them(tmp_path):
    """Without an engine block a column may hold any one kind of scalar, and a scalar
    metric any value, but what load reads as a count (-1: never) must be one."""
    d = results.write_record(tmp_path / "mixed", config={"k": 1},
                             metrics={results.ROWS: {"v": [1.0, "two"], "n": [1, None]}})
    problem = results.check_record(d)
    assert problem is not None and "'v'" in problem and "a string" in problem, problem
    d = results.write_record(tmp_path / "count", config={"k": 1},
                             metrics={"a": {"iterations_to_eps": -3, "diverged": 2}})
    problem = results.check_record(d)
    assert problem is not None and "'a.iterations_to_eps'" in problem, problem
    d = results.write_record(tmp_path / "fine", config={"k": 1},
                             metrics={"a": {"iterations_to_eps": -1, "diverged": 2},
                                      results.ROWS: {"v": [1.0, None], "s": ["x", "y"]}})
    assert results.check_record(d) is None


def test_a_record_is_never_written_with_an_identity_its_config_does_not_give(tmp_path):
    config = _engine_config(tmp_path / "job")
    wrong = run_mod.identity({**config, "problem": {"name": "cosh"}})
    with pytest.raises(ValueError, match=str(tmp_path / "job")) as info:
        results.write_record(tmp_path / "job", config=config, metrics={}, identity=wrong)
    assert str(info.value).count("\n") == 0
    assert list(tmp_path.iterdir()) == []


def test_rewriting_a_linked_job_leaves_its_target_and_no_debris(tmp_path):
    elsewhere = _engine_record(tmp_path / "elsewhere" / "1", (0.2,))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "1").symlink_to(elsewhere)
    _engine_record(tmp_path / "s" / "1", (0.3,))
    assert not (tmp_path / "s" / "1").is_symlink()
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["1"]
    assert _etas(tmp_path / "s" / "1") == (0.3,) and _etas(elsewhere) == (0.2,)


def test_load_types_the_columns(tmp_path):
    _engine_record(tmp_path / "s" / "0", (0.1, 0.2), iterations=[5, -1], diverged_at=[-1, 3])
    results.write_record(tmp_path / "s" / "1", config={"optimizer": {"gamma": float("inf")}},
                         metrics={"final_f": 1.0})
    results.write_record(tmp_path / "s" / "2", config={"optimizer": {"gamma": 1.0}},
                         metrics={"final_f": 2.0})
    table = results.load(tmp_path / "s")
    for column in ("iterations_to_eps", "diverged_at"):
        assert table[column].dtype == pd.Int64Dtype()
    assert table["iterations_to_eps"].iloc[0] == 5 and table["iterations_to_eps"].iloc[1] is pd.NA
    assert table["diverged_at"].iloc[0] is pd.NA and table["diverged_at"].iloc[1] == 3
    gamma = table["optimizer.gamma"].dropna()
    assert gamma.dtype == np.float64 and gamma.iloc[0] == np.inf
    assert list(gamma.sort_values()) == [1.0, np.inf]
    assert table["optimizer.eta"].dtype == np.float64


# --------------------------------------------------------------------------- concurrency


# The writers load research/results.py alone (it needs only NumPy), not the research package,
# which would import JAX: four processes start in a fraction of a second.
LOAD_RESULTS = """
import importlib.util
spec = importlib.util.spec_from_file_location("results", "research/results.py")
results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results)
"""

WRITER = LOAD_RESULTS + """
import sys, time
from pathlib import Path
import numpy as np
target, me, n, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.01)
for k in range(n):
    results.write_record(target, config={"writer": me, "k": k},
                         metrics={results.ROWS: {"v": [k, float("nan")]}},
                         traces={"f": np.full((2, 3), k)})
"""


@pytest.mark.parametrize("calls", [40, pytest.param(150, marks=pytest.mark.slow)])
def test_concurrent_writers_of_one_record_never_fail(tmp_path, calls):
    """4 processes write one record ``calls`` times each, all at once (before the lock:
    FileNotFoundError or ENOTEMPTY from the rename dance)."""
    target, go = tmp_path / "sweep" / "0", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(i), str(calls),
                               str(go)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    time.sleep(0.5)
    go.touch()
    errors = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    record, traces = results.read_record(target)
    assert record["config"]["k"] == calls - 1 and np.all(traces["f"] == calls - 1)
    assert sorted(p.name for p in target.parent.iterdir()) == ["0"]  # no temp dirs, no lock


HOLDER = LOAD_RESULTS + """
import sys, time
with results.lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_lock_is_exclusive_reentrant_and_dies_with_its_holder(tmp_path):
    d = tmp_path / "job"
    with results.lock(d) as held:
        assert held and results.lock_path(d).exists()
        with results.lock(d, blocking=False) as again:
            assert again  # re-entrant within a process
    assert not results.lock_path(d).exists()  # removed on release
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(d)], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with results.lock(d, blocking=False) as held:
            assert not held
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with results.lock(d, blocking=False) as held:
        assert held  # the OS released the dead holder's lock


def test_two_uncommitted_edits_never_share_a_code_identity(tmp_path):
    """A record made from uncommitted code names a hash of that code, so rerun_stale sees
    an edit that a bare "-dirty" hid."""
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                       cwd=tmp_path, check=True, capture_output=True)

    def ident():
        return results._git_commit.__wrapped__(tmp_path)

    git("init", "-q")
    (tmp_path / "m.py").write_text("x = 1\n")
    git("add", "m.py")
    git("commit", "-qm", "base")
    clean = ident()
    assert clean is not None and "dirty" not in clean
    (tmp_path / "m.py").write_text("x = 2\n")
    first = ident()
    (tmp_path / "m.py").write_text("x = 3\n")
    second = ident()
    assert first.startswith(clean + "-dirty-") and second.startswith(clean + "-dirty-")
    assert first != second
    (tmp_path / "m.py").write_text("x = 1\n")
    assert ident() == clean
    (tmp_path / "new.py").write_text("y = 1\n")
    assert ident().startswith(clean + "-dirty-")


def test_load_names_the_code_of_every_row(tmp_path):
    import json

    for i, name in enumerate(("a", "b")):
        results.write_record(tmp_path / name, config={"x": i}, metrics={"v": i})
    path = tmp_path / "b" / results.RECORD_FILE
    rec = json.loads(path.read_text())
    rec["git_commit"] = "0123abc-dirty-feedbeef0000"
    path.write_text(json.dumps(rec))
    table = results.load(tmp_path).set_index("record")
    assert table.loc["a", "git_commit"] == results.git_commit()
    assert table.loc["b", "git_commit"] == "0123abc-dirty-feedbeef0000"


# --------------------------------------------------------------------------- crashes

KILLER = LOAD_RESULTS + """
import builtins, io, json, os, signal, sys
from pathlib import Path
import numpy as np
base, sig, spec = Path(sys.argv[1]), getattr(signal, sys.argv[2]), json.loads(sys.argv[3])
CALLS = [(os, n) for n in ("rename", "replace", "unlink", "rmdir", "mkdir", "open")]
CALLS += [(builtins, "open"), (io, "open")]
ORIGINAL = [getattr(m, n) for m, n in CALLS]

def write(d, which):
    n = len(spec[which]["etas"])
    results.write_record(d, config=spec[which]["config"], metrics=spec[which]["metrics"],
                         traces={"f": np.full((n, 3), n), "iterations": np.arange(3)},
                         identity=spec[which]["identity"])

def die_at(call):
    # every file-system call of the rewrite counts; the process dies before the call-th one
    count = [0]
    def wrap(fn):
        def inner(*args, **kwargs):
            count[0] += 1
            if count[0] == call:
                os.kill(os.getpid(), sig)
            return fn(*args, **kwargs)
        return inner
    for (module, name), fn in zip(CALLS, ORIGINAL):
        setattr(module, name, wrap(fn))
    return count

write(base / "dry" / "job", "old")
count = die_at(0)
write(base / "dry" / "job", "new")
total = count[0]
for (module, name), fn in zip(CALLS, ORIGINAL):
    setattr(module, name, fn)
for call in range(1, total + 2):
    write(base / str(call) / "job", "old")
    pid = os.fork()
    if pid == 0:
        die_at(call)
        write(base / str(call) / "job", "new")
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) == (call <= total), (call, status)
print(total)
"""


def _etas(directory: Path):
    """The sweep axis of the record in ``directory``, or what reading it raised."""
    try:
        record, _ = results.read_record(directory)
    except (FileNotFoundError, results.RecordError) as err:
        return f"{type(err).__name__}: {err}"
    return tuple(record["config"]["sweep"]["optimizer"]["eta"])


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_rewrite_killed_at_any_step_leaves_the_old_or_the_new_record(tmp_path, sig):
    """A process rewriting a record is killed before each file-system call it makes in turn:
    the old record or the new one loads, never neither; resuming uses that one, in place,
    and leaves no debris."""
    versions = {"old": (0.1, 0.2), "new": (0.3, 0.4, 0.5)}
    spec = {}
    for which, etas in versions.items():
        config = _engine_config(tmp_path / "job", etas)
        spec[which] = {"etas": etas, "config": config, "metrics": _engine_metrics(etas),
                       "identity": run_mod.identity(config)}
    done = subprocess.run([sys.executable, "-c", KILLER, str(tmp_path), sig, json.dumps(spec)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = [tmp_path / str(call) / "job" for call in range(1, int(done.stdout) + 2)]
    found = {job: _etas(job) for job in jobs}
    assert all(etas in versions.values() for etas in found.values()), found
    seen = ["old" if etas == versions["old"] else "new" for etas in found.values()]
    assert seen[0] == "old" and seen[-1] == "new" and seen == sorted(seen, reverse=True)
    for job, etas in found.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", results.RecordWarning)
            table = results.load(job.parent)
        assert list(table["record"]) == ["job"] * len(etas)
        assert tuple(table["optimizer.eta"]) == etas, job
        which = "old" if etas == versions["old"] else "new"
        assert run_mod.rerun_reason(job, spec[which]["identity"]) is None, job
        assert _etas(job) == etas and (job / "record.json").is_file(), job
        assert sorted(p.name for p in job.parent.iterdir()) == ["job"], job
