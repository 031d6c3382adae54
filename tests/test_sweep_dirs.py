"""A sweep directory belongs to one sweep: another sweep (or a single run of another
configuration) into a directory that holds records is refused in one line before any job
runs, two jobs of one sweep never share a directory, and re-chunking a sweep leaves every
point in the table exactly once."""

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from research import results

TINY = ("problem=quartic", "optimizer=clipped_gd", "engine.record_every=10", "progress=off")
TEN = "engine.steps=10"


def _error(r) -> str:
    """The one error line of a refused command (exit status 2, nothing else on stderr)."""
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and "wrote" not in r.stdout, r.stdout
    return lines[0]


def _rows(path) -> pd.DataFrame:
    return results.load(path).drop(columns=["record", "git_commit"])


LAYOUTS = {  # what is typed besides the sweep itself, each run alike
    "numbered": (),
    "chunks": ("hydra.sweeper.max_batch=1",),
    "problem-named subdir": ("hydra.sweep.subdir=${problem.name}",),
    "fixed subdir": ("hydra.sweep.subdir=fixed",),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_another_sweep_into_an_occupied_directory_is_refused(tmp_path, run_cli, layout):
    where = tmp_path / "sweep"
    first = run_cli("-m", *TINY, TEN, "optimizer.eta=0.1,0.2", *LAYOUTS[layout],
                    f"hydra.sweep.dir={where}")
    assert first.returncode == 0, first.stderr
    before = _rows(where)
    line = _error(run_cli("-m", *TINY, TEN, "optimizer.eta=0.3,0.4", *LAYOUTS[layout],
                          f"hydra.sweep.dir={where}"))
    assert f"hydra.sweep.dir={where}" in line and "resume=false" in line, line
    pd.testing.assert_frame_equal(_rows(where), before)
    # resume=false replaces it: the table holds the new sweep only
    r = run_cli("-m", *TINY, TEN, "optimizer.eta=0.3,0.4", *LAYOUTS[layout], "resume=false",
                f"hydra.sweep.dir={where}")
    assert r.returncode == 0, r.stderr
    assert sorted(_rows(where)["optimizer.eta"]) == [0.3, 0.4]


def test_a_smaller_sweep_into_a_larger_ones_directory_is_refused(tmp_path, run_cli):
    """Its one job is the first job there, finished: the other job's record would have
    stayed in its table."""
    where = tmp_path / "sweep"
    assert run_cli("-m", *TINY, "optimizer.eta=0.1", "engine.steps=10,20",
                   f"hydra.sweep.dir={where}").returncode == 0
    before = _rows(where)
    _error(run_cli("-m", *TINY, "optimizer.eta=0.1", TEN, f"hydra.sweep.dir={where}"))
    pd.testing.assert_frame_equal(_rows(where), before)


def test_the_same_sweep_resumes_however_its_fixed_values_are_spelled(tmp_path, run_cli):
    where = tmp_path / "sweep"
    args = ("-m", "engine.steps=10", "engine.record_every=10", "optimizer.eta=0.1,0.2")
    assert run_cli(*args, f"hydra.sweep.dir={where}").returncode == 0
    r = run_cli(*args, "problem=quartic", "progress=off", "engine.max_memory_gb=8",
                f"hydra.sweep.dir={where}")
    assert r.returncode == 0 and "wrote" not in r.stdout, (r.stdout, r.stderr)


def test_a_fixed_out_is_never_replaced_by_another_configuration(tmp_path, run_cli):
    out = tmp_path / "rec"
    r = run_cli("-m", *TINY, TEN, "optimizer.eta=0.1,0.2", f"out={out}",
                f"hydra.sweep.dir={tmp_path / 'a'}")
    assert r.returncode == 0, r.stderr
    before = _rows(out)
    for args in (("-m", "optimizer.eta=0.3,0.4", f"hydra.sweep.dir={tmp_path / 'b'}"),
                 ("optimizer.eta=0.3", f"hydra.run.dir={tmp_path / 'c'}")):
        line = _error(run_cli(*args, *TINY, TEN, f"out={out}"))
        assert f"out={out}" in line and "resume=false" in line, line
        pd.testing.assert_frame_equal(_rows(out), before)
    r = run_cli("optimizer.eta=0.3", *TINY, TEN, f"out={out}", "resume=false",
                f"hydra.run.dir={tmp_path / 'c'}")
    assert r.returncode == 0, r.stderr
    assert list(_rows(out)["optimizer.eta"]) == [0.3]


def test_a_single_run_into_another_configurations_directory_is_refused(tmp_path, run_cli):
    where = tmp_path / "run"
    assert run_cli(*TINY, TEN, "optimizer.eta=0.1", f"hydra.run.dir={where}").returncode == 0
    line = _error(run_cli(*TINY, TEN, "optimizer.eta=0.2", f"hydra.run.dir={where}"))
    assert f"hydra.run.dir={where}" in line and "resume=false" in line, line
    assert list(_rows(where)["optimizer.eta"]) == [0.1]


@pytest.mark.parametrize(("shared", "named"), [
    ("hydra.sweep.subdir=fixed", "hydra.sweep.subdir=fixed"),
    ("hydra.sweep.subdir=${problem.name}", "hydra.sweep.subdir=${problem.name}"),
    ("out={tmp}/one", "out={tmp}/one"),
])
def test_two_jobs_of_one_sweep_never_share_a_directory(tmp_path, run_cli, shared, named):
    """Two jobs (two step counts) written to one directory: the second replaced the first."""
    where = tmp_path / "sweep"
    shared, named = (s.replace("{tmp}", str(tmp_path)) for s in (shared, named))
    line = _error(run_cli("-m", *TINY, "engine.steps=10,20", "optimizer.eta=0.1", shared,
                          f"hydra.sweep.dir={where}"))
    assert named in line and "jobs 1 and 2" in line, line
    assert not list(tmp_path.rglob("record.json"))


def test_re_chunking_a_sweep_keeps_every_point_once(tmp_path, run_cli):
    where = tmp_path / "sweep"
    args = ("-m", *TINY, TEN, "optimizer.eta=0.1,0.2,0.3,0.4,0.5", f"hydra.sweep.dir={where}")
    assert run_cli(*args, "hydra.sweeper.max_batch=1").returncode == 0
    expected = _rows(where).drop(columns="trajectory")
    key = ["optimizer.eta"]
    for max_batch, wrote in ((2, 3), (3, 2), (4, 0)):  # 4 gives the chunks of 3 again: 3 + 2
        r = run_cli(*args, f"hydra.sweeper.max_batch={max_batch}")
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("wrote") == wrote, (max_batch, r.stdout)
        table = _rows(where).drop(columns="trajectory")
        assert len(table) == 5, (max_batch, table)
        pd.testing.assert_frame_equal(table.sort_values(key).reset_index(drop=True),
                                      expected.sort_values(key).reset_index(drop=True))
    # the chunks it no longer writes were moved out of the table's sight, not deleted
    assert len(list((where / ".retired").rglob("record.json"))) == 5 + 3


def test_under_the_basic_sweeper_the_second_job_into_a_shared_directory_stops(tmp_path,
                                                                              run_cli):
    """Hydra's basic sweeper launches without looking ahead: the job that would replace
    another job's record of this sweep stops the sweep, in one line, and replaces nothing."""
    where = tmp_path / "sweep"
    r = run_cli("-m", "hydra/sweeper=basic", *TINY, "engine.steps=10,20", "optimizer.eta=0.1",
                "hydra.sweep.subdir=fixed", f"hydra.sweep.dir={where}")
    assert r.returncode == 2 and r.stdout.count("wrote") == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == (f"error: hydra.sweep.subdir=fixed gives two jobs of this sweep "
                                f"one directory, {where / 'fixed'}; include ${{hydra.job.num}} "
                                f"in it."), r.stderr
    assert list(_rows(where)["engine.steps"]) == [10]


HOLD = """
import sys, time
from research import results
with results.lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow  # a sweep kept running while another starts: seconds of real jobs
def test_another_sweep_into_a_running_ones_directory_is_refused_before_any_write(tmp_path,
                                                                                 run_cli):
    """A sweep whose first jobs are still running has no record yet; its multirun.yaml and
    the locks its jobs hold say it is there. Another sweep is refused before anything is
    written, that multirun.yaml included."""
    where = tmp_path / "sweep"
    assert run_cli("-m", *TINY, TEN, "optimizer.eta=0.1,0.2",
                   f"hydra.sweep.dir={where}").returncode == 0
    shutil.rmtree(where / "0")  # its one job, as it was before the job finished
    theirs = (where / "multirun.yaml").read_text()
    job = subprocess.Popen([sys.executable, "-c", HOLD, str(where / "0")], text=True,
                           cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE)
    try:
        assert job.stdout.readline().strip() == "held"
        line = _error(run_cli("-m", *TINY, TEN, "optimizer.eta=0.3,0.4",
                              f"hydra.sweep.dir={where}"))
    finally:
        job.kill()
        job.wait()
    assert f"hydra.sweep.dir={where} holds another sweep" in line, line
    assert "still running" in line and "resume=false" in line, line
    assert (where / "multirun.yaml").read_text() == theirs
    assert not list(where.rglob("record.json"))
