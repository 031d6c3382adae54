"""Fault injection: whatever happens to a sweep (corrupted or half-written records, two
processes on one directory, kill -9, Ctrl-C), re-running the same command gives the table of
an uninterrupted run, and nothing outlives its launcher."""

import contextlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from experiments import run as run_mod
from research import results

ROOT = Path(__file__).resolve().parents[1]
BASIC = "hydra/sweeper=basic"  # one Hydra job per point: the faults hit single jobs
ARGS = (BASIC, "problem=quartic", "optimizer=clipped_gd", "optimizer.eta=0.05,0.2,0.5",
        "engine.steps=300", "engine.record_every=10", "progress=off")
JOBS = 3


def _in_process(sweep_dir: Path, *args) -> tuple[int, str, str]:
    """``python -m experiments.run -m <args> hydra.sweep.dir=<sweep_dir>`` in this process:
    (exit status, stdout, stderr)."""
    saved_argv, saved_env = sys.argv, dict(os.environ)
    handler = signal.getsignal(signal.SIGINT)
    sys.argv = ["experiments.run", "-m", *args, f"hydra.sweep.dir={sweep_dir}"]
    os.environ.update(CI="1")
    out, err, code = io.StringIO(), io.StringIO(), 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run_mod.main()
    except SystemExit as stop:
        code = stop.code
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGINT, handler)
    return code, out.getvalue(), err.getvalue()


def _cli(sweep_dir: Path, *args, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.run", "-m", *args, f"hydra.sweep.dir={sweep_dir}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CI": "1"}, **popen)


def _table(sweep_dir: Path) -> pd.DataFrame:
    """The sweep's table; an incomplete record left in it fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", results.RecordWarning)
        return results.load(sweep_dir)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of the sweep: its directory and its table."""
    where = tmp_path_factory.mktemp("reference") / "sweep"
    code, out, err = _in_process(where, *ARGS)
    assert code == 0 and out.count("wrote") == JOBS, err
    return where, _table(where)


# --------------------------------------------------------------------------- corruption


def _edit(path: Path, fn):
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))


def _rows(fn):
    return lambda d: _edit(d / "record.json", lambda r: fn(r["metrics"]["rows"]))


FAULTS = {
    # name: (how to damage job directory d, does the re-run say "re-running d: ..."?)
    "record.json is null": (lambda d: (d / "record.json").write_text("null\n"), True),
    "record.json truncated": (
        lambda d: (d / "record.json").write_bytes((d / "record.json").read_bytes()[:100]), True),
    "record.json empty": (lambda d: (d / "record.json").write_text(""), True),
    "record.json without metrics": (
        lambda d: _edit(d / "record.json", lambda r: r.pop("metrics")), True),
    "a metric column missing": (_rows(lambda rows: rows.pop("final_grad_norm")), True),
    "columns of unequal length": (_rows(lambda rows: rows["final_f"].append(0.0)), True),
    "traces.npz truncated": (
        lambda d: (d / "traces.npz").write_bytes((d / "traces.npz").read_bytes()[:100]), True),
    "record.json missing, traces.npz left": (lambda d: (d / "record.json").unlink(), True),
    "record of another config": (
        lambda d: _edit(d / "record.json", lambda r: r.pop("identity") and r["config"][
            "optimizer"].update(eta=9.0)), True),
    "record gone": (lambda d: shutil.rmtree(d), False),
    "job directory left empty": (
        lambda d: [p.unlink() for p in list(d.iterdir())], False),
    "killed writer's debris and a stale lock": (
        lambda d: (shutil.move(d, d.with_name(f".{d.name}.tmp-killed")),
                   d.with_name(f".{d.name}.lock").write_text("12345\n")), False),
}


def test_every_damaged_record_is_healed_by_the_same_command(tmp_path):
    """One sweep, one job per fault (job 0 stays whole): the same command re-runs exactly
    the damaged jobs, says why for each incomplete record, and gives the table of an
    uninterrupted run, with no debris left."""
    faults = sorted(FAULTS)
    etas = ",".join(f"{0.05 * (i + 1):g}" for i in range(len(faults) + 1))
    args = tuple(f"optimizer.eta={etas}" if a.startswith("optimizer.eta=") else a
                 for a in ARGS)
    whole, damaged = tmp_path / "whole", tmp_path / "damaged"
    code, _, err = _in_process(whole, *args)
    assert code == 0, err
    expected = _table(whole)
    shutil.copytree(whole, damaged)
    for job, fault in enumerate(faults, start=1):
        FAULTS[fault][0](damaged / str(job))
    code, out, err = _in_process(damaged, *args)
    assert code == 0, err
    assert out.count(", skipped") == 1 and out.count("wrote") == len(faults), out
    for job, fault in enumerate(faults, start=1):
        said = f"re-running {damaged / str(job)}: " in out
        assert said == FAULTS[fault][1], (fault, out)
    pd.testing.assert_frame_equal(_table(damaged), expected)
    assert sorted(p.name for p in damaged.iterdir()) == sorted(
        [*map(str, range(len(faults) + 1)), "multirun.yaml"])  # no debris, no lock files


# --------------------------------------------------------------------------- concurrency


def test_two_multiruns_on_one_directory_split_the_work(tmp_path, reference):
    where, expected = reference
    shared = tmp_path / "shared"
    procs = [_cli(shared, *ARGS) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0 and "Traceback" not in err, err
    written = [out.count("wrote") for out, _ in outs]
    assert sum(written) == JOBS, outs  # each job ran once, in one of the two processes
    pd.testing.assert_frame_equal(_table(shared), expected)


# --------------------------------------------------------------------------- kill -9


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _wait_gone(pids, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(map(_alive, pids)):
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


@pytest.mark.slow
def test_kill_9_at_random_points_then_the_same_command(tmp_path, reference):
    """kill -9 of a sweep at random moments (while starting, or after a random number of
    finished jobs plus a random delay, so also while computing or writing), twice, then the
    same command: the table of an uninterrupted run."""
    where, expected = reference
    rng = random.Random(0)
    for attempt in range(5):
        sweep_dir = tmp_path / f"s{attempt}"
        for _ in range(2):
            proc = _cli(sweep_dir, *ARGS)
            finished = rng.randrange(JOBS)
            if finished == 0:
                time.sleep(rng.uniform(0.5, 6.0))
            else:
                for line in proc.stdout:
                    finished -= "wrote" in line or ", skipped" in line
                    if finished <= 0:
                        break
                time.sleep(rng.uniform(0.0, 0.5))
            proc.kill()
            proc.communicate()
        proc = _cli(sweep_dir, *ARGS)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        pd.testing.assert_frame_equal(_table(sweep_dir), expected)


WATCHED = """
import os, sys, time
from experiments.common import watch_parent
watch_parent(0.1)
print(os.getpid(), flush=True)
time.sleep(60)
"""

PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]], stdout=sys.stdout)
time.sleep(60)
"""


def test_a_watched_worker_exits_when_its_parent_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT, WATCHED], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait()
        assert _wait_gone([child], timeout=5) == []
    finally:
        parent.kill()
        with contextlib.suppress(ProcessLookupError, UnboundLocalError):
            os.kill(child, signal.SIGKILL)


def _lock_holders(sweep_dir: Path, jobs, timeout: float) -> list[int]:
    """The pids written in the job lock files, once every job in ``jobs`` holds its lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = [int((sweep_dir / f".{j}.lock").read_text()) for j in jobs]
            return pids
        except (FileNotFoundError, ValueError):
            time.sleep(0.2)
    raise AssertionError(f"the jobs {jobs} did not start within {timeout} s")


@pytest.mark.slow
def test_kill_9_of_the_joblib_launcher_leaves_no_worker(tmp_path):
    sweep_dir = tmp_path / "s"
    proc = _cli(sweep_dir, BASIC, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "x0=1.0,2.0",
                "engine.steps=2000000000", "engine.record_every=2000000000", "progress=off")
    workers = []
    try:
        workers = _lock_holders(sweep_dir, (0, 1), timeout=120)
        assert proc.pid not in workers and all(map(_alive, workers))
        proc.kill()
        proc.communicate()
        assert _wait_gone(workers, timeout=5) == []
    finally:
        proc.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- Ctrl-C


def test_ctrl_c_is_one_line_naming_the_finished_jobs(tmp_path):
    sweep_dir = tmp_path / "s"
    proc = _cli(sweep_dir, BASIC, "problem=quartic", "optimizer=clipped_gd",
                "engine.steps=100,1000000000", "engine.record_every=100", "x0=1.0",
                "progress=off", "engine.max_memory_gb=8")
    try:
        _lock_holders(sweep_dir, (1,), timeout=120)  # job 0 is done, job 1 is computing
        time.sleep(1.0)  # into the compiled program
        assert proc.poll() is None
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        waited = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.strip() == (f"interrupted: 1 of 2 jobs finished (records in {sweep_dir}); the "
                           "same command resumes the rest."), err
    assert waited < 5, waited
    assert results.is_complete(sweep_dir / "0") and not (sweep_dir / "1" / "record.json").exists()
    assert not (sweep_dir / ".1.lock").exists()


@pytest.mark.slow
def test_ctrl_c_with_the_joblib_launcher_is_one_line_and_stops_the_workers(tmp_path):
    """Ctrl-C at a terminal signals the whole process group: the workers leave it to the
    launcher, which prints one line, exits 130, and leaves no worker behind."""
    sweep_dir = tmp_path / "s"
    proc = _cli(sweep_dir, BASIC, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                "x0=1.0,2.0,3.0", "engine.steps=2000000000", "engine.record_every=2000000000",
                "progress=off", start_new_session=True)
    workers = []
    try:
        workers = _lock_holders(sweep_dir, (0, 1), timeout=120)
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.strip() == (f"interrupted: 0 of 3 jobs finished (records in {sweep_dir}); "
                               "the same command resumes the rest."), err
        assert _wait_gone(workers, timeout=5) == []
    finally:
        proc.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- a dead worker


def _freeze_then_kill(sweep_dir: Path, victim: int, bystander: int) -> int:
    """kill -9 the worker of job ``victim`` while job ``bystander`` is in flight: each is
    stopped (SIGSTOP) as soon as it holds its job's lock, so neither can finish first; the
    bystander goes on once the victim is dead. Returns the victim's pid."""
    pids = {}
    for job in (victim, bystander):
        pids[job] = _lock_holders(sweep_dir, (job,), timeout=120)[0]
        os.kill(pids[job], signal.SIGSTOP)
    os.kill(pids[victim], signal.SIGKILL)
    os.kill(pids[bystander], signal.SIGCONT)
    return pids[victim]


def _same_rows(sweep_dir: Path, expected: pd.DataFrame) -> None:
    def rows(t):
        t = t.drop(columns=["record", "trajectory", "git_commit"])  # others edit the tree
        return t.sort_values("optimizer.eta").reset_index(drop=True)[sorted(t.columns)]

    pd.testing.assert_frame_equal(rows(_table(sweep_dir)), rows(expected))


def _lost_line(stderr: str) -> str:
    """The one line a lost job leaves on stderr (the sweeper's progress lines aside)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line and not line.startswith("[sweep]")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.slow
def test_a_dead_joblib_worker_costs_only_its_job(tmp_path, reference):
    """kill -9 of one joblib worker while the other runs a job: the other job and the job
    still waiting are written, the command says in one line what finished, and the same
    command runs only the lost job."""
    where, expected = reference
    sweep_dir = tmp_path / "s"
    args = (*ARGS[1:], "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            "hydra.sweeper.max_batch=1")  # the batching sweeper: jobs 0 and 1, then job 2
    proc = _cli(sweep_dir, *args)
    try:
        pid = _freeze_then_kill(sweep_dir, victim=0, bystander=1)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert _lost_line(err) == (f"error: job 0 lost its worker (pid {pid} was killed by SIGKILL); "
                               f"2 of 3 jobs finished (records in {sweep_dir}); the same "
                               "command resumes the rest.")
    assert [results.is_complete(sweep_dir / str(j)) for j in range(JOBS)] == [False, True, True]
    proc = _cli(sweep_dir, *args)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.count("wrote") == 1 and f"wrote {sweep_dir / '0'}" in out, out
    _same_rows(sweep_dir, expected)


@pytest.mark.slow
def test_a_dead_submitit_job_fails_alone(tmp_path, reference):
    where, expected = reference
    sweep_dir = tmp_path / "s"
    args = (*ARGS, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    proc = _cli(sweep_dir, *args)
    try:
        _freeze_then_kill(sweep_dir, victim=1, bystander=0)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 1, err
    assert err.strip() == ("error: job 1 lost its worker (its process ended without a result); "
                           f"2 of 3 jobs finished (records in {sweep_dir}); the same command "
                           "resumes the rest."), err
    kept = {j: (sweep_dir / str(j) / "record.json").stat().st_mtime_ns for j in (0, 2)}
    proc = _cli(sweep_dir, *args)  # submitit's jobs print into its logs, not here
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert {j: (sweep_dir / str(j) / "record.json").stat().st_mtime_ns for j in (0, 2)} == kept
    _same_rows(sweep_dir, expected)


@pytest.mark.parametrize("terminal", [
    False, pytest.param(True, marks=pytest.mark.slow)])
def test_sigterm_to_the_launcher_stops_its_submitit_jobs_before_counting(tmp_path, terminal):
    """SIGTERM to the launcher alone, or a terminal's Ctrl-C (SIGINT to the whole process
    group, submitit's controllers included): its submitit jobs, children of submitit's
    controller processes and not of the launcher, are gone when it exits, so its line counts
    the records that will ever be there, and it is the only line."""
    signum = signal.SIGINT if terminal else signal.SIGTERM
    sweep_dir = tmp_path / "s"
    proc = _cli(sweep_dir, BASIC, "hydra/launcher=submitit_local",
                "hydra.launcher.timeout_min=10", "x0=1.0,2.0", "engine.steps=2000000000",
                "engine.record_every=2000000000", "progress=off", start_new_session=True)
    workers = []
    try:
        workers = _lock_holders(sweep_dir, (0, 1), timeout=120)
        if terminal:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 128 + signum, err
        assert "Traceback" not in err, err
        assert err.strip().splitlines()[-1] == (
            f"interrupted: 0 of 2 jobs finished (records in {sweep_dir}); the same command "
            "resumes the rest."), err
        assert [p for p in workers if _alive(p)] == []
    finally:
        proc.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_interrupt_line_counts_one_job_per_value_of_an_optax_target(tmp_path,
                                                                        monkeypatch):
    """An optax target's swept numbers are one job each: Ctrl-C in the second of three jobs
    says 1 of 3 finished."""
    from research import sweep

    calls, real = [], sweep.run_batch

    def interrupted_at_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    def exit_status(code):
        raise SystemExit(code)

    monkeypatch.setattr(sweep, "run_batch", interrupted_at_the_second)
    monkeypatch.setattr(os, "_exit", exit_status)
    sweep_dir = tmp_path / "s"
    code, out, err = _in_process(sweep_dir, "problem=quartic", "optimizer=adam",
                                 "optimizer.learning_rate=0.001,0.01,0.1", "engine.steps=20",
                                 "engine.record_every=10", "progress=off")
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: 1 of 3 jobs finished (records in {sweep_dir}); the same command resumes "
        "the rest."), err
