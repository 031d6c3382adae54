"""Hydra's joblib and submitit_local launchers, with faults confined to the job they hit.

``hydra/launcher=joblib`` and ``hydra/launcher=submitit_local`` name these launchers (their
configs replace the plugins' own: ``register``); every key of the originals keeps its
meaning. Two things differ:

- A worker that dies (``kill -9``, the out-of-memory killer) costs only the job it was
  running: the other jobs run to the end and write their records, and the job comes back
  failed with ``WorkerLost``, which names it. joblib's own pool (loky) cannot do this: one
  dead worker breaks it, and it kills the other workers with their jobs.
- When the launcher is interrupted (``KeyboardInterrupt``: Ctrl-C, or SIGTERM where the
  entry point turns it into one) it stops every worker and waits until they are gone before
  it re-raises, so nothing finishes after the launcher has said what finished.

The joblib launcher therefore runs its own pool: ``n_jobs`` worker processes
(``_worker.py``), each in its own process group (a Ctrl-C at the terminal reaches the
launcher only, which stops them), kept across the launches of one sweep so that a worker's
compiled programs serve its later jobs. Its other keys (``backend``, ``prefer``,
``batch_size``, ...) tune joblib's pool and have no effect here.
"""

# (no "from __future__ import annotations": Hydra's plugin scanner runs this module before
# it is in sys.modules, where dataclasses cannot resolve string annotations)

import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.config_store import ConfigStore
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, setup_globals
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

from ._errors import WorkerLost

HERE = "hydra_plugins.guarded_launchers.guarded_launchers"
STOP_WAIT = 10.0
"""Seconds a stopped worker gets to end before it is killed."""


@dataclass
class GuardedJoblibConf(JobLibLauncherConf):
    _target_: str = f"{HERE}.GuardedJoblibLauncher"


@dataclass
class GuardedLocalConf(LocalQueueConf):
    _target_: str = f"{HERE}.GuardedLocalLauncher"


def register() -> None:
    """Store these launchers' configs as ``hydra/launcher/joblib`` and ``submitit_local``,
    replacing the plugins' own."""
    store = ConfigStore.instance()
    store.store(group="hydra/launcher", name="joblib", node=GuardedJoblibConf,
                provider="guarded_launchers")
    store.store(group="hydra/launcher", name="submitit_local", node=GuardedLocalConf,
                provider="guarded_launchers")


class GuardedLaunchersRegistration(SearchPathPlugin):
    """Adds nothing to the search path. Hydra calls it after its scanner has run every plugin
    module (the plugins' own config modules too, in no fixed order) and before it composes a
    config: the moment at which ``register`` is sure to have the last word."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        register()


@dataclass
class FailedJob(JobReturn):
    """A failed job's ``JobReturn`` whose ``return_value`` raises its error without Hydra's
    extra stderr line, so that the error stays one line."""

    @property  # type: ignore[override]
    def return_value(self) -> Any:
        raise self._return_value

    @return_value.setter
    def return_value(self, value: Any) -> None:
        self._return_value = value


def failed(overrides: Sequence[str], error: BaseException) -> JobReturn:
    return FailedJob(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


# --------------------------------------------------------------------------- joblib


class _Worker:
    """One worker process and its socket; ``job`` is (number, overrides) while it runs one."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(p or os.getcwd() for p in sys.path)
        # its own process group: Ctrl-C at the terminal reaches the launcher, which stops it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hydra_plugins.guarded_launchers._worker",
             str(theirs.fileno())], pass_fds=[theirs.fileno()], process_group=0,
            env={**os.environ, "PYTHONPATH": path})
        theirs.close()
        self.conn = Connection(ours.detach())
        self.job: tuple[int, list[str]] | None = None

    def give(self, number: int, overrides: list[str], shared: bytes) -> None:
        import cloudpickle

        self.job = (number, overrides)
        self.conn.send_bytes(cloudpickle.dumps((number, overrides, shared)))

    def take(self) -> tuple[int, JobReturn, bool]:
        """(job number, its return, whether this worker lives on)."""
        import cloudpickle

        assert self.job is not None
        number, overrides = self.job
        self.job = None
        try:
            return number, cloudpickle.loads(self.conn.recv_bytes()), True
        except (EOFError, OSError):
            pass
        try:
            code = self.proc.wait(timeout=STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.stop()
            code = self.proc.returncode
        how = (f"pid {self.proc.pid} was killed by {_signal_name(code)}" if code < 0 else
               f"pid {self.proc.pid} exited with status {code} without a result")
        return number, failed(overrides, WorkerLost([(number, how)])), False

    def stop(self) -> None:
        """Terminate the process and wait for it; kill it if it does not end in time."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.conn.close()


class GuardedJoblibLauncher(JoblibLauncher):
    """``hydra/launcher=joblib`` (see the module's docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.workers: list[_Worker] = []
        weakref.finalize(self, _close, self.workers)  # at the latest when the process exits

    def size(self) -> int:
        """The number of workers, as joblib reads ``n_jobs``: -1 is one per CPU, -2 all but
        one, and so on."""
        n = self.joblib.get("n_jobs") or 1
        return max(1, n if n > 0 else (os.cpu_count() or 1) + 1 + n)

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        import cloudpickle

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        shared = cloudpickle.dumps((self.hydra_context, self.config, self.task_function,
                                    Singleton.get_state()))
        pending = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        size = min(self.size(), len(pending))
        returns: dict[int, JobReturn] = {}
        try:
            while True:
                while pending:
                    idle = next((w for w in self.workers if w.job is None), None)
                    if idle is None and len(self.workers) >= size:
                        break
                    if idle is None:
                        idle = _Worker()
                        self.workers.append(idle)
                    try:
                        idle.give(*pending[0], shared)
                    except OSError:  # it died while idle: the job goes to another
                        idle.job = None
                        self.workers.remove(idle)
                        idle.stop()
                        continue
                    pending.pop(0)
                busy = [w for w in self.workers if w.job is not None]
                if not busy:
                    break
                ready = wait([w.conn for w in busy])
                for w in busy:
                    if w.conn in ready:
                        number, ret, alive = w.take()
                        returns[number] = ret
                        if not alive:
                            self.workers.remove(w)
        except BaseException:
            self.close()
            raise
        return [returns[initial_job_idx + i] for i in range(len(job_overrides))]

    def close(self) -> None:
        """Stop every worker (the running jobs with them) and wait until they are gone."""
        _close(self.workers)


def _close(workers: list[_Worker]) -> None:
    stopping = list(workers)
    workers.clear()
    for w in stopping:
        if w.proc.poll() is None:
            w.proc.terminate()
    for w in stopping:
        w.stop()


# --------------------------------------------------------------------------- submitit


class GuardedLocalLauncher(LocalLauncher):
    """``hydra/launcher=submitit_local`` (see the module's docstring)."""

    def launch(self, job_overrides: Sequence[Sequence[str]],
               initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        params = dict(self.params)
        executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="local")
        executor.update_parameters(**params)
        n = len(job_overrides)
        numbers = list(range(initial_job_idx, initial_job_idx + n))
        # submitit's controllers inherit an ignored SIGINT: a terminal's Ctrl-C, sent to the
        # whole process group, then reaches only this launcher, which stops them in _stop
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            jobs = executor.map_array(self, [list(o) for o in job_overrides],
                                      ["hydra.sweep.dir"] * n, numbers,
                                      [f"job_id_for_{i}" for i in numbers],
                                      [Singleton.get_state()] * n)
        finally:
            signal.signal(signal.SIGINT, previous)
        returns: list[JobReturn] = []
        try:
            for number, overrides, job in zip(numbers, job_overrides, jobs, strict=True):
                try:
                    returns.append(job.results()[0])
                except Exception:  # noqa: BLE001 (submitit: the job's process left no result)
                    returns.append(failed(overrides, _lost(number, job)))
        except BaseException:
            _stop(jobs)
            raise
        return returns


def _lost(number: int, job) -> BaseException:
    """The error of a submitit job that left no result: the job's own one-line error when it
    printed one (it refused its config; exit status 2), else ``WorkerLost``."""
    try:
        said = [line for line in (job.stderr() or "").splitlines() if line.startswith("error: ")]
    except OSError:
        said = []
    if said:
        return ValueError(said[-1][len("error: "):])
    return WorkerLost([(number, "its process ended without a result")])


def _stop(jobs) -> None:
    """Stop submitit's local jobs and wait until they are gone. SIGTERM to a job's controller
    process is passed on to the job's process; a job that has not yet started our code ignores
    it (submitit keeps SIGTERM for SLURM's pre-emption), so it is repeated until all end."""
    controllers = [p for p in (getattr(j, "_process", None) for j in jobs) if p is not None]
    deadline = time.monotonic() + STOP_WAIT
    while any(p.poll() is None for p in controllers) and time.monotonic() < deadline:
        for p in controllers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        time.sleep(0.2)
    for p in controllers:
        if p.poll() is None:
            p.kill()
            p.wait()
