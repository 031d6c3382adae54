"""What every experiment entry point shares: the command-line wrapper that turns a bad config
value or a Hydra error into one line on stderr and exit code 2 and an interrupt into one line
and exit code 130, the guard that stops a launcher's worker when the launcher dies, and the
progress line."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
LAUNCHER_PID = "EXPERIMENTS_LAUNCHER_PID"
"""Environment variable: the pid of the process that parsed the command line. A job running
in another process runs in a launcher's worker (joblib, submitit)."""
LAUNCHER_HOST = "EXPERIMENTS_LAUNCHER_HOST"
"""Environment variable: the host name of that process (its pid means nothing elsewhere)."""
INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT), as a shell reports it."""
_SIGNALLED: list[int] = []


def hydra_entry(config_name: str, run: Callable[[DictConfig], None]) -> Callable[[], None]:
    """The command-line main for ``conf/<config_name>.yaml`` that calls ``run(cfg)``.

    A ``ValueError`` (bad config value, raised before any compute) becomes one sentence on
    stderr and exit status 2; nothing is written because records are written last. So does a
    value whose type differs from the YAML default's (a number, or a list of numbers: see
    ``check_types``), and a Hydra or OmegaConf error (an unknown key, a wrong type; see
    ``explain``). The Hydra-decorated function is the attribute ``hydra_main``.
    """
    from experiments import schema

    defaults = CONF_DIR / f"{config_name}.yaml"
    schema.register()  # a figure config names conf/problem and conf/optimizer entries

    @hydra.main(version_base=None, config_path=str(CONF_DIR), config_name=config_name)
    def hydra_main(cfg: DictConfig) -> None:
        try:
            check_types(cfg, OmegaConf.to_container(OmegaConf.load(defaults)))
            run(cfg)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    def main() -> None:
        from research import runtime

        runtime.configure()
        cli(hydra_main)

    main.hydra_main = hydra_main
    return main


def cli(hydra_main: Callable[[], None], interrupted: Callable[[], str] | None = None) -> None:
    """Run a Hydra main from the command line: a config error (``ValueError`` or one that
    ``explain`` knows) is one line ``error: ...`` and exit status 2; Ctrl-C is one line
    (``interrupted()``, default "interrupted.") and exit status 130 (128 + the signal's
    number after ``interrupt``), without a traceback."""
    # Hydra's errors are turned into one sentence here, so they must reach this function.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        hydra_main()
    except KeyboardInterrupt:
        try:
            line = interrupted() if interrupted is not None else "interrupted."
        except Exception:  # noqa: BLE001 (the line is a courtesy; the exit status is not)
            line = "interrupted."
        print(line, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # Not sys.exit: XLA may still be running the interrupted program on its own threads,
        # and interpreter shutdown under it can abort; there is nothing left to clean up.
        os._exit(128 + _SIGNALLED[-1] if _SIGNALLED else INTERRUPTED)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:
        sentence = explain(err)
        if sentence is None:
            raise
        print(f"error: {sentence}", file=sys.stderr)
        sys.exit(2)


def explain(err: BaseException) -> str | None:
    """One sentence for a config error raised by Hydra or OmegaConf, else None."""
    from hydra.errors import (
        ConfigCompositionException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    if isinstance(err, OverrideParseException):
        first = str(err).strip().splitlines()[0].rstrip(".")
        bad = _unparsable([a for a in sys.argv[1:] if not a.startswith("-")])
        return (f"{bad!r} is not a valid override ({first}); write key=value, a sweep "
                "key=a,b or key=range(start,stop,step)." if bad else f"{first}.")
    if isinstance(err, InstantiationException) and isinstance(err.__cause__, ValueError):
        return str(err.__cause__)  # a plugin's own check of its settings, already a sentence
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        group, _, name = str(err.missing_cfg_file).rpartition("/")
        if group and err.options:
            options = sorted(o for o in err.options if o)
            return (f"{group.replace('/', '.')} must be one of {', '.join(options)}; "
                    f"got {name!r}.")
        return str(err).strip().splitlines()[0]
    cause = err.__cause__ if isinstance(err, ConfigCompositionException) else err
    unknown = isinstance(cause, ConfigKeyError) or (
        isinstance(cause, ConfigAttributeError) and " not in " in str(cause).split("\n")[0])
    if unknown:
        key = getattr(cause, "full_key", None) or getattr(cause, "key", "?")
        allowed = _fields(getattr(cause, "object_type", None))
        if allowed:
            return f"{key} is not a field of this config; allowed: {', '.join(allowed)}."
        return f"{key} is not a field of this config: {str(cause).splitlines()[0]}."
    if isinstance(cause, OmegaConfBaseException):
        key = getattr(cause, "full_key", None)
        msg = str(cause).splitlines()[0].rstrip(".")
        return f"{key}: {msg}." if key else f"{msg}."
    if isinstance(err, ConfigCompositionException):
        return " ".join(str(err).split())
    return None


def _unparsable(args: list[str]) -> str | None:
    """The first of ``args`` that Hydra's override grammar cannot parse, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in args:
        try:
            parser.parse_overrides([arg])
        except Exception:  # noqa: BLE001 (any parse failure names this argument)
            return arg
    return None


def _fields(object_type) -> list[str]:
    """The field names of a structured config's dataclass ([] for anything else)."""
    import dataclasses

    if isinstance(object_type, type) and dataclasses.is_dataclass(object_type):
        return [f.name for f in dataclasses.fields(object_type)]
    return []


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_types(cfg, defaults: dict, prefix: str = "") -> None:
    """Check every value of ``cfg`` whose default (in ``defaults``, the config file as plain
    data) is a number or a list of numbers: it must be one too (or null). Raises
    ``ValueError`` naming the field, e.g. "chain.weights must be a list of numbers; got
    ['a', 'b']." Configs without a schema are typed this way by their defaults."""
    if OmegaConf.is_config(cfg):
        try:
            cfg = OmegaConf.to_container(cfg, resolve=True)
        except Exception:  # noqa: BLE001 (an interpolation Hydra resolves later)
            return
    for key, default in defaults.items():
        if key in ("defaults", "hydra") and not prefix or key not in cfg:
            continue
        value, name = cfg[key], f"{prefix}{key}"
        if isinstance(default, dict):
            if isinstance(value, dict):
                check_types(value, default, f"{name}.")
        elif _is_number(default):
            if value is not None and not _is_number(value):
                raise ValueError(f"{name} must be a number; got {value!r}.")
        elif isinstance(default, list) and default and all(map(_is_number, default)):
            if value is not None and not (isinstance(value, list)
                                          and all(map(_is_number, value))):
                raise ValueError(f"{name} must be a list of numbers; got {value!r}.")


def interrupt(signum, frame) -> None:
    """A signal handler that stops the process as Ctrl-C does (``KeyboardInterrupt``, which
    ``cli`` turns into one line); the exit status is 128 + the signal's number."""
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt


_WATCHING = threading.Event()


def launcher_here() -> int | None:
    """The pid of the launcher (``LAUNCHER_PID``) when it runs on this host, else None."""
    import socket

    pid = os.environ.get(LAUNCHER_PID, "")
    if not pid.isdigit() or os.environ.get(LAUNCHER_HOST) != socket.gethostname():
        return None
    return int(pid)


def running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def watch_parent(interval: float = 0.5) -> None:
    """Exit this process as soon as its parent changes (the parent died: the process was
    re-parented) or the launcher on this host (``launcher_here``) is gone: submitit runs a
    job as the child of a controller process that outlives the launcher. A launcher's workers
    (joblib, submitit) call it where each job starts, so that ``kill -9`` of the launcher does
    not leave them computing. Starts one daemon thread per process; later calls do nothing."""
    if _WATCHING.is_set():
        return
    _WATCHING.set()
    parent = os.getppid()
    launcher = launcher_here()
    launcher = None if launcher in (parent, os.getpid()) else launcher

    def watch():
        while True:
            time.sleep(interval)
            gone = parent if os.getppid() != parent else launcher
            if gone == launcher and (launcher is None or running(launcher)):
                continue
            try:
                print(f"[run] worker {os.getpid()}: its launcher (pid {gone}) is gone; "
                      "stopping.", file=sys.stderr, flush=True)
            finally:
                os._exit(INTERRUPTED)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def write(cfg: DictConfig, say, metrics: dict, traces: dict | None = None) -> None:
    """Write the run record of ``cfg`` (resolved) to ``cfg.out`` and say where."""
    from omegaconf import OmegaConf

    from experiments import records
    from research import results

    problems = records.check(say.name, metrics)
    if problems:  # a programming error: the claims could not read this record
        raise RuntimeError(f"{say.name}: the metrics do not match experiments/records.py: "
                           + "; ".join(problems[:5]))
    _check_dependencies(say)
    out = results.write_record(cfg.out, config=OmegaConf.to_container(cfg, resolve=True),
                               metrics=metrics, traces=traces)
    say(f"wrote {out}")


def _check_dependencies(say) -> None:
    """Refuse a record whose run loaded a problem family that the Makefile's dependency graph
    does not list for it (a name computed at run time): editing that family would not re-run
    it. Only experiments declared in the registry have a rule to check."""
    from experiments import deps, registry

    new = deps.loaded_families() - say.families_before
    if not new or say.name not in registry.declared():
        return  # nothing loaded during the run: reading the graph (0.5 s) could find nothing
    missing = deps.unlisted_families(say.name, new)
    if missing:
        raise RuntimeError(
            f"{say.name} loaded {', '.join(sorted(missing))}, which experiments/deps.py does not "
            "see it use: name the problem as problems.<name>, as a string constant or in its "
            "config, so that editing that family re-runs it.")


def threshold_metrics(say, apply, params, data, lr: float, momentum: float, multiples,
                      mean_gn: float, epochs: int, batch_size: int, key: str) -> dict:
    """Pascanu's heuristic: train at global-norm thresholds ``multiples`` x the mean pre-clip
    gradient norm, say the progress line (``key`` names the loss reported), return the
    metrics."""
    import numpy as np

    from research import training

    t = training.threshold_sweep(apply, params, data, lr, momentum,
                                 np.asarray(multiples) * mean_gn, epochs, batch_size)
    out = {"mean_preclip_grad_norm": mean_gn, "multiples": multiples, **t}
    say(sweep_line(out, key))
    return out


def sweep_line(t: dict, key: str) -> str:
    """One progress line for a threshold sweep's results."""
    return (f"threshold sweep (global norm; mean pre-clip |g| {t['mean_preclip_grad_norm']:.4g})"
            f": divergence, {key.replace('_', ' ')}: " + ", ".join(
                f"{m:g}x {100 * d:.0f}% {'-' if f is None else round(f, 3)}"
                for m, d, f in zip(t["multiples"], t["divergence_rate"], t[key], strict=True)))


def check_seeds(seeds, key: str = "seeds") -> list[int]:
    """The config's seeds (the field ``key``) as a list of ints; ``ValueError`` naming the
    field unless they are a non-empty list of distinct integers >= 0."""
    from research import validate

    seeds = list(seeds)
    if not seeds:
        raise ValueError(f"{key} must be a non-empty list of distinct integers >= 0; got [].")
    for s in seeds:
        validate.positive_int(key, s, minimum=0)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"{key} must be distinct integers >= 0; got {seeds!r}.")
    return [int(s) for s in seeds]


class Progress:
    """Progress lines with elapsed time: ``[name] 12.3s message``. It also notes which problem
    families were loaded when the run started, so that ``write`` can check the rest against
    the dependency graph."""

    def __init__(self, name: str):
        from experiments import deps

        self.name = name
        self.t0 = time.perf_counter()
        self.families_before = deps.loaded_families()

    def __call__(self, message: str) -> None:
        print(f"[{self.name}] {time.perf_counter() - self.t0:6.1f}s {message}", flush=True)
