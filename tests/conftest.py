"""Test configuration: float64 everywhere (``research.runtime.configure``), hypothesis
profiles (``HYPOTHESIS_PROFILE=ci`` uses fewer examples), and the cross-product catalogue of
problems with stated constants."""

import os
import tempfile
from pathlib import Path

# One persistent JAX compilation cache per test session, shared by the pytest-xdist workers
# and by the subprocesses the CLI tests start (they inherit the environment), so a program
# that several processes build (the engine's program for the same problem, optimizer family
# and shapes) is compiled once. It must be set before JAX is imported. Per session, not
# per machine: every session starts cold, as a fresh clone does.
_SESSION = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(Path(tempfile.gettempdir()) / f"research-tests-jax-{_SESSION}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from research import runtime  # noqa: E402

# Tests run as the entry points do: float64 (the theory checks need it), a device per core.
runtime.configure()

from research import problems  # noqa: E402

settings.register_profile(
    "default", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", max_examples=30, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def problems_with_constants():
    """Every registered problem with stated (L0, L1), plus variants with other L1 and dims."""
    out = [problems.get(name) for name in problems.names()]
    out += [
        problems.quartic(dim=3, L1=0.5),
        problems.quartic(L1=8.0),
        problems.sextic(L1=3.0),
        problems.power(n=1, dim=3),
        problems.power(n=3, dim=2),
        problems.power(n=2, dim=4, L1=1.0),
        problems.cosh(dim=4),
        problems.quadratic(dim=5, condition=100.0),
    ]
    return [p for p in out if p.has_constants]


CONSTANT_PROBLEMS = problems_with_constants()
SMALL = {"char_lm": {"embed": 8, "hidden": 8, "length": 12, "n": 16},
         "resnet_digits": {"channels": 4, "blocks": 1}}
"""Sizes of the two larger networks in the generic problem tests (their defaults are checked
in tests/test_networks.py)."""
ALL_PROBLEMS = [problems.get(name, **SMALL.get(name, {})) for name in problems.names()]


def ids(ps):
    return [f"{p.name}-L1={p.L1}-dim={getattr(p.x0, 'size', '?')}" for p in ps]


@pytest.fixture(params=CONSTANT_PROBLEMS, ids=ids(CONSTANT_PROBLEMS))
def constant_problem(request):
    return request.param


def main_in_process(module: str, args, monkeypatch, capsys):
    """``python -m <module> <args>`` run in this process: returns (exit status, stdout,
    stderr). It goes through the module's real ``main`` (Hydra's command-line parsing and the
    one-line error handling), without the 2-3 s of starting Python and importing JAX that a
    subprocess costs; each entry point keeps one real-subprocess test of the same path."""
    import importlib
    import signal
    import sys

    from experiments.common import LAUNCHER_PID

    main = importlib.import_module(module).main
    monkeypatch.setattr(sys, "argv", [module, *args])
    monkeypatch.setenv(LAUNCHER_PID, "0")
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setenv("CI", "1")
    handler = signal.getsignal(signal.SIGINT)
    code = 0
    try:
        main()
    except SystemExit as stop:
        code = stop.code
    finally:
        signal.signal(signal.SIGINT, handler)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_in_process(monkeypatch, capsys):
    """``main_in_process`` with this test's monkeypatch and capsys: call(module, *args)."""

    def call(module: str, *args: str):
        return main_in_process(module, args, monkeypatch, capsys)

    return call


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """``python -m experiments.run <args>`` in this process, as ``subprocess.run`` would report
    it: an object with ``returncode``, ``stdout`` and ``stderr``. For tests that run several
    sweeps; the real-process path keeps its own tests (test_run.py, test_faults.py)."""
    import types

    def call(*args: str):
        code, out, err = main_in_process("experiments.run", args, monkeypatch, capsys)
        return types.SimpleNamespace(returncode=code or 0, stdout=out, stderr=err)

    return call


def record_numbers(path) -> dict:
    """A record.json without what differs between two runs of the same computation (its
    date, commit, package versions and output path): what a determinism test compares."""
    import json

    rec = json.loads(Path(path).read_text())
    for key in ("created", "git_commit", "versions"):
        rec.pop(key, None)
    rec["config"].pop("out")  # where it was written, not what
    return rec
