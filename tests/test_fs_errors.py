"""Bad input and a failing environment give one line naming what the user typed, exit status
2, and nothing half-written: constants out of float64's range, and every way writing a
record, a lock or a sweep's directory can fail (read-only, full, a name too long, a file in
the way)."""

import errno
import io
import math
import os
from pathlib import Path

import pytest

RUN = ("problem=quartic", "optimizer=clipped_gd", "engine.steps=20", "engine.record_every=10",
       "progress=off")


def _one_line(code, err):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, (code, err)
    assert "Traceback" not in err
    return err


def _written(top: Path) -> list[str]:
    """Every file below ``top`` (hidden ones included), relative."""
    return sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- constants


@pytest.mark.parametrize(("override", "allowed"), [
    ("problem=quartic problem.L1=1e300", "|problem.L1| <= 1.34e+154"),
    ("problem=quartic problem.L1=1e-200", "|problem.L1| >= 2.99e-154"),
    ("problem=sextic problem.L1=1e-80", "|problem.L1| >= 3.46e-77"),  # L0 = inf, no error
])
def test_constants_out_of_float64_range_are_one_line(tmp_path, cli_in_process, override,
                                                     allowed):
    code, _, err = cli_in_process("experiments.run", *override.split(), "progress=off",
                                  f"hydra.run.dir={tmp_path / 'r'}")
    assert allowed in _one_line(code, err) and "problem.L1=" in err, err
    assert not (tmp_path / "r" / "record.json").exists()
    # the bound given is in range, and 1% beyond it is not
    from research import problems

    name, edge = override.split()[0].split("=")[1], float(allowed.rsplit(" ", 1)[1])
    beyond = edge * (1.01 if "<=" in allowed else 0.99)
    assert all(map(math.isfinite, (problems.get(name, L1=edge).L0, edge)))
    with pytest.raises((ArithmeticError, ValueError)):
        assert math.isfinite(problems.get(name, L1=beyond).L0)


def test_a_later_combination_out_of_range_stops_the_sweep_first(tmp_path, cli_in_process):
    code, _, err = cli_in_process("experiments.run", "-m", *RUN, "problem.L1=1.0,1e300",
                                  f"hydra.sweep.dir={tmp_path / 's'}")
    assert "problem.L1=1e+300" in _one_line(code, err) and "<= 1.34e+154" in err, err
    assert not (tmp_path / "s").exists()


# --------------------------------------------------------------------------- file system


class _Full:
    """A file on a full disk: the first write stores half its data, then fails."""

    def __init__(self, f, name):
        self._f, self._name = f, name

    def write(self, data):
        self._f.write(data[:len(data) // 2])
        self._f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fspath(self._name))

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fail_writes(monkeypatch, under: Path, code: int, only: str = ""):
    """Writes below ``under`` (to files whose name contains ``only``) fail with ``code``: a
    read-only file system (EROFS: no file, directory or rename) or a full one (ENOSPC: a file
    gets half its data). Simulated, since root writes through file permissions."""
    top = os.path.abspath(under)

    def hit(path) -> bool:
        if not isinstance(path, str | bytes | os.PathLike):
            return False
        p = os.path.abspath(os.fsdecode(path))
        return (p == top or p.startswith(top + os.sep)) and only in os.path.basename(p)

    def refuse(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open, real_mkdir = io.open, os.open, os.mkdir
    real_rename, real_replace = os.rename, os.replace

    def fake_open(file, mode="r", *args, **kwargs):
        if not hit(file) or not set(mode) & set("wax+"):
            return real_open(file, mode, *args, **kwargs)
        if code != errno.ENOSPC:
            refuse(file)
        return _Full(real_open(file, mode, *args, **kwargs), file)

    def fake_os_open(path, flags, *args, **kwargs):
        if code != errno.ENOSPC and hit(path) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if code != errno.ENOSPC and hit(path) and not os.path.exists(path):
            refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def moving(real):
        def fake(src, dst, *args, **kwargs):
            if code != errno.ENOSPC and (hit(src) or hit(dst)):
                refuse(dst)
            return real(src, dst, *args, **kwargs)
        return fake

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)
    monkeypatch.setattr(os, "rename", moving(real_rename))
    monkeypatch.setattr(os, "replace", moving(real_replace))


@pytest.mark.parametrize(("code", "only"), [
    (errno.EROFS, ""),                 # a read-only output directory: the lock is refused
    (errno.ENOSPC, ".job"),            # a full disk: the lock's marker, half written
    (errno.ENOSPC, "traces.npz"),      # ... the traces, after the compute
    (errno.ENOSPC, "record.json"),     # ... the record itself
])
def test_a_failing_file_system_is_one_line_and_leaves_no_record(tmp_path, monkeypatch,
                                                                cli_in_process, code, only):
    top = tmp_path / "disk"
    (top / "r").mkdir(parents=True)
    _fail_writes(monkeypatch, top, code, only)
    got, _, err = cli_in_process("experiments.run", *RUN, f"hydra.run.dir={top / 'r'}")
    _one_line(got, err)
    assert f"hydra.run.dir={top / 'r'}" in err and os.strerror(code) in err, err
    assert _written(top) == [], _written(top)  # no record, no half file, no lock


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
def test_a_sweep_on_a_failing_file_system_is_one_line(tmp_path, monkeypatch, cli_in_process,
                                                      code):
    top = tmp_path / "disk"
    top.mkdir()
    _fail_writes(monkeypatch, top, code)
    got, _, err = cli_in_process("experiments.run", "-m", *RUN, "optimizer.eta=0.1,0.2",
                                 f"hydra.sweep.dir={top / 's'}")
    _one_line(got, err)
    assert f"hydra.sweep.dir={top / 's'}" in err and os.strerror(code) in err, err
    assert _written(top) == [], _written(top)  # multirun.yaml is not left half written


def test_a_name_too_long_is_one_line(tmp_path, cli_in_process):
    long = tmp_path / ("x" * 300)
    for args in ([f"hydra.run.dir={long}"], [f"hydra.run.dir={tmp_path / 'r'}", f"out={long}"],
                 ["-m", f"hydra.sweep.dir={long}"]):
        code, _, err = cli_in_process("experiments.run", *args, *RUN)
        assert str(long) in _one_line(code, err) and "File name too long" in err, err
    assert _written(tmp_path) == []


def test_a_file_where_a_job_directory_must_go_is_one_line_and_kept(tmp_path, cli_in_process):
    (tmp_path / "s").mkdir()
    for name in ("file", "s/0"):
        (tmp_path / name).write_text("mine")
    cases = [([f"hydra.run.dir={tmp_path / 'r'}", f"out={tmp_path / 'file'}"], "Not a directory"),
             ([f"hydra.run.dir={tmp_path / 'file' / 'r'}"], "Not a directory"),
             (["-m", f"hydra.sweep.dir={tmp_path / 's'}"], "Not a directory"),
             (["-m", "hydra/sweeper=basic", f"hydra.sweep.dir={tmp_path / 's'}"], "File exists")]
    for args, reason in cases:
        code, _, err = cli_in_process("experiments.run", *args, *RUN)
        assert reason in _one_line(code, err) and str(tmp_path) in err, (args, err)
    # Hydra's basic sweeper writes multirun.yaml before its launcher meets the file
    assert _written(tmp_path) == ["file", "s/0", "s/multirun.yaml"], _written(tmp_path)
    assert (tmp_path / "file").read_text() == "mine" == (tmp_path / "s" / "0").read_text()


def test_a_finished_sweep_re_runs_on_a_read_only_directory(tmp_path, monkeypatch,
                                                          cli_in_process):
    sweep = (*RUN, "optimizer.eta=0.1,0.2", "problem=quartic,cosh")
    code, _, err = cli_in_process("experiments.run", "-m", *sweep,
                                  f"hydra.sweep.dir={tmp_path / 's'}")
    assert code == 0, err
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*") if p.is_file()}
    with monkeypatch.context() as m:
        _fail_writes(m, tmp_path, errno.EROFS)
        code, out, err = cli_in_process("experiments.run", "-m", *sweep,
                                        f"hydra.sweep.dir={tmp_path / 's'}")
        assert code == 0 and out.count("skipped") == 2, (code, out, err)
        # a job left to run: one line, and the records there are untouched
        (tmp_path / "s" / "1" / "record.json").unlink()
        del before[tmp_path / "s" / "1" / "record.json"]
        code, _, err = cli_in_process("experiments.run", "-m", *sweep,
                                      f"hydra.sweep.dir={tmp_path / 's'}")
        assert "Read-only file system" in _one_line(code, err), err
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "s").rglob("*") if p.is_file()} == before
