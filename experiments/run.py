"""The generic experiment: problem x optimizer x engine settings -> one run record per job.

    python -m experiments.run -m problem=quartic optimizer=clipped_gd optimizer.gamma=1.0 \\
        'optimizer.eta=range(0.001,1.001,0.001)' engine.steps=10000 hydra.sweep.dir=<dir>

Config: conf/config.yaml (groups problem/, optimizer/, experiment/, hydra/launcher/), typed
by experiments/schema.py. The work is done by ``research.sweep``; this file only
turns the config into its arguments, writes the record, and reports errors.

- Optimizers: a family of ``research.optimizers`` (``optimizer.lr`` is every family's step
  size, recorded under the family's own name: ``schema.canonical``), or any optax factory
  named by ``optimizer._target_`` (one job per value of its numbers).
- Compile once: every job of a multirun that shares the problem, the optimizer family and
  the engine's shape settings reuses one compiled program (``research.engine`` caches it).
- Resume: a job is identified by what changes its result (``identity``: the problem, the
  optimizer, the engine's numerics, x0, the batched sweep; not the output path, progress,
  resume or launcher settings). A job whose complete record (``results.check_record``) has
  the same identity is skipped, so re-running a sweep command, even with other display
  options or from a copied directory, computes only the missing jobs; an incomplete record
  is re-run with one line saying why. ``rerun_stale=true`` also re-runs records written at
  another git commit.
- One sweep per directory: a multirun into a directory that holds another sweep's records
  (per its ``multirun.yaml``: ``sweep_identity``) is refused before any job runs, and a job
  never replaces a complete record of another configuration outside its own sweep (``out=``,
  a single run) or another job's of the same sweep; ``resume=false`` replaces them.
- Concurrency: a job holds its directory's lock while it runs (``hold``); a second process
  that finds the lock taken skips the job when it is the same job (two identical multiruns
  into one directory split it) and refuses otherwise.
- Limits: a job estimated to need more than ``engine.max_memory_gb`` of memory or to write a
  record larger than ``engine.max_record_gb`` is refused before any compute.
- Bad input (a bad value, an unknown key, an empty sweep) gives one line ``error: <field>
  ...`` on stderr and exit status 2, before any compute, and no record. Ctrl-C gives one
  line (how many jobs finished, how to resume) and exit status 130. A launcher's worker
  stops when its launcher dies.
- A file system that refuses a write (read-only, full, a name too long, a file where the
  job directory must go) gives one line naming the directory as typed, the file and the
  OS's reason, exit status 2, and no record (``batching_sweeper.writing``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from experiments import schema
from experiments.common import (
    LAUNCHER_HOST,
    LAUNCHER_PID,
    cli,
    explain,
    hydra_entry,
    interrupt,
    launcher_here,
    running,
    watch_parent,
)

schema.register()

__all__ = ["Guard", "build", "explain", "finished", "hold", "holder", "identity", "main", "run",
           "sweep_identity"]

MAX_STEPS = 2**31 - 1
"""The engine counts iterations in int32."""
MAX_SEED = 2**63 - 1
"""``jax.random.PRNGKey`` takes a signed 64-bit integer; seeds are >= 0."""
GB = 1e9
OTHER_CONFIGURATION = "its record is of another configuration"


def _use_bar(setting) -> bool:
    value = getattr(setting, "value", setting)
    if value == "auto":
        return sys.stderr.isatty() and not os.environ.get("CI")
    return value == "on"


class _Bar:
    """A progress bar over the engine's iterations (tqdm on stderr)."""

    def __init__(self, total: int, label: str):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit="it", leave=False, file=sys.stderr,
                        dynamic_ncols=True)
        self.done = 0

    def __call__(self, t: int) -> None:
        if t > self.done:
            self.bar.update(t - self.done)
            self.done = t

    def close(self) -> None:
        self.bar.close()


def build(cfg: DictConfig):
    """Validate ``cfg`` and build (problem, optimizer name, the prepared ``sweep.Batch``,
    engine kwargs).

    Raises ``ValueError`` naming the field on any bad value. Nothing is computed.
    """
    from research import sweep, validate

    allowed = [f.name for f in dataclasses.fields(schema.RunConfig)]
    unknown = [k for k in cfg if k not in allowed and k != "hydra"]
    if unknown:  # a +key=value override adds a key the schema does not have
        raise ValueError(f"{unknown[0]} is not a field of this config; allowed: "
                         f"{', '.join(allowed)}.")
    pnode = OmegaConf.to_container(cfg.problem, resolve=True)
    onode = OmegaConf.to_container(cfg.optimizer, resolve=True)
    factories = schema.problem_factories()
    validate.choice("problem.name", pnode["name"], tuple(factories))
    schema.check_entry("problem", pnode["name"], factories[pnode["name"]])
    problem = _problem(pnode, factories[pnode["name"]])
    _refuse_two_step_sizes(cfg, onode)
    plain = schema.canonical({"optimizer": onode,
                              "sweep": OmegaConf.to_container(cfg.sweep, resolve=True)})
    onode, spec = plain["optimizer"], plain["sweep"]
    optimizer, hparams = _optimizer(onode)
    e = cfg.engine
    steps = validate.bounded_int("engine.steps", e.steps, 1, MAX_STEPS,
                                  "the engine counts steps in int32")
    record_every = validate.positive_int("engine.record_every", e.record_every)
    if steps % record_every:
        raise ValueError(f"engine.record_every must divide engine.steps; got steps={steps}, "
                         f"record_every={record_every}.")
    if e.eps is not None:
        validate.positive("engine.eps", e.eps)
    elif e.stop_at_eps:
        raise ValueError("engine.stop_at_eps: true needs engine.eps > 0; got eps=null.")
    seed = validate.bounded_int("engine.seed", e.seed, 0, MAX_SEED,
                                 "jax.random.PRNGKey takes a 64-bit integer")
    x0 = OmegaConf.to_container(cfg.x0) if OmegaConf.is_config(cfg.x0) else cfg.x0
    check_size(cfg, problem, spec, x0, steps, record_every)
    batch = sweep.prepare(problem, optimizer, hparams, x0, spec, seed=seed)
    engine = dict(steps=steps, eps=e.eps, record_every=record_every,
                  stop_at_eps=bool(e.stop_at_eps), seed=seed)
    return problem, schema.label(onode), batch, engine


def _optimizer(node: dict):
    """(a family's name, or an optax target's factory; its keyword arguments) for the
    canonical optimizer node ``node``; a bad name, target or argument raises ``ValueError``."""
    from research import optimizers, validate

    if schema.TARGET in node:
        factory = schema.target_factory(node)
        return factory, schema.target_kwargs(factory, node)
    validate.choice("optimizer.name", node["name"], tuple(optimizers.FACTORIES))
    schema.check_entry("optimizer", node["name"], optimizers.FACTORIES[node["name"]])
    return node["name"], schema.factory_kwargs(optimizers.FACTORIES[node["name"]], node)


def _refuse_two_step_sizes(cfg: DictConfig, node: dict) -> None:
    """``optimizer.lr`` and the family's own step size both typed: one would silently win."""
    own = schema.step_size_arg(node)
    hc = _hydra()
    task = OmegaConf.select(cfg, "hydra.overrides.task", default=None) or (
        hc.overrides.task if hc is not None else [])
    if own not in (None, schema.ALIAS) and all(_typed(task, f"optimizer.{k}")
                                                 for k in (schema.ALIAS, own)):
        raise ValueError(f"optimizer.{schema.ALIAS} and optimizer.{own} both set the step size "
                         f"(optimizer.{schema.ALIAS} means optimizer.{own} here); give one.")


def _problem(node: dict, factory):
    """The problem of config node ``node`` (a plain dict). A value the factory refuses raises
    ``ValueError`` naming the field; so does one that takes the problem's constants out of
    float64's range (an ``ArithmeticError`` in the factory, or an infinite L0 or L1)."""
    from research import problems

    def make(values: dict):
        try:
            made = problems.get(node["name"], **schema.factory_kwargs(factory, values))
        except (ValueError, TypeError) as err:
            field = str(err).split(" ", 1)[0]
            if field in ("L0", "L1") and field not in values:  # derived, not given
                raise OverflowError(str(err)) from None
            raise ValueError(f"problem.{err}") from None
        stated = [c for c in (made.L0, made.L1) if c is not None]
        if not all(math.isfinite(c) for c in stated):
            raise OverflowError(f"constants (L0, L1) = ({made.L0}, {made.L1})")
        return made

    try:
        return make(node)
    except ArithmeticError:
        raise ValueError(_out_of_range(node, make)) from None


def _out_of_range(node: dict, make) -> str:
    """The line for a config ``node`` whose problem constants leave float64's range: the
    field that does it (the one whose factory default, put back, brings them into range) and,
    for a float field, the largest or smallest value of it that keeps them finite."""
    entry = {a["arg"]: a for a in schema.load_catalogue()["problem"].get(node["name"], [])}

    def fits(key: str, value) -> bool:
        try:
            make({**node, key: value})
        except ArithmeticError:
            return False
        except ValueError:  # refused for another reason: not this bound
            return True
        return True

    for key, value in node.items():
        arg = entry.get(key, {})
        good = arg.get("default")
        good = 1.0 if good is None and "float" in arg.get("type", "") else good
        if (isinstance(value, bool) or not isinstance(value, float | int)
                or not isinstance(good, float | int) or value == good or not fits(key, good)):
            continue
        said = f"problem.{key}={value:g} takes the {node['name']} problem's constants out of " \
               f"float64's range"
        if "float" not in arg["type"] or value * good <= 0:
            return f"{said}; give a value nearer its default {good:g}."
        # bisect log|value| between the default (in range) and the value given (out of it)
        lo, hi = math.log(abs(good)), math.log(abs(value))
        for _ in range(48):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if fits(key, math.copysign(math.exp(mid), good)) else (lo, mid)
        edge, larger = math.exp(lo), abs(value) > abs(good)
        unit = 10.0 ** (math.floor(math.log10(edge)) - 2)  # 3 digits, rounded into range
        edge = (math.floor if larger else math.ceil)(edge / unit) * unit
        return f"{said}; allowed: |problem.{key}| {'<=' if larger else '>='} {edge:.3g}."
    given = ", ".join(f"problem.{k}={v}" for k, v in node.items() if k != "name")
    return (f"problem: {given} take the {node['name']} problem's constants out of float64's "
            f"range; give values nearer its defaults.")


def check_size(cfg: DictConfig, problem, spec: dict, x0, steps: int, record_every: int):
    """Refuse, before any array is built, a job whose estimated memory or record size
    (``research.sweep.footprint``) exceeds ``engine.max_memory_gb`` or
    ``engine.max_record_gb``; the message names the fields the size comes from. Returns the
    estimate."""
    import jax
    import numpy as np

    from research import sweep, validate

    limits = {key: float(validate.positive(f"engine.{key}", cfg.engine[key]))
              for key in ("max_memory_gb", "max_record_gb")}
    axes = sweep.flatten(spec)
    points = sweep.size(axes)
    base = problem.x0 if problem.x0 is not None else x0
    try:
        params = sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(base)) or 1
    except (TypeError, ValueError):
        params = 1
    est = sweep.footprint(points, steps, record_every, params,
                          columns=len(sweep.ROW_METRICS) + len(axes))
    for key, need, what in (("max_memory_gb", est.memory, "of memory"),
                            ("max_record_gb", est.record, "for its record")):
        if need > limits[key] * GB:
            source = (" x ".join(f"sweep.{a}" for a in axes) if axes else "no sweep block")
            raise ValueError(
                f"engine.{key}: this job would need about {need / GB:.3g} GB {what}, more "
                f"than engine.{key}={limits[key]:g}: {points:,} point{'s' * (points != 1)} "
                f"({source}) x "
                f"{est.recorded:,} recorded iterates (engine.steps={steps:,} / "
                f"engine.record_every={record_every:,} + 1) x {len(sweep.TRACE_FIELDS)} "
                f"traces x 8 bytes; lower them or raise engine.{key}.")
    return est


def identity(config: dict) -> str:
    """The identity of a job: a hash of the part of its resolved config that changes its
    result, not the output path, resume, progress, limits or launcher settings. Equal for a
    config and its record's. It is ``results.job_identity``, so that reading a record
    recomputes it from the record's config."""
    from research import results

    return results.job_identity(config)


def rerun_reason(out: Path, ident: str, stale: bool = False) -> str | None:
    """Why the job with identity ``ident`` must run in ``out``: None when its complete
    record is there (skip it), "" when there is no record, else one phrase (an incomplete
    record, another configuration's record, or, with ``stale``, another commit's)."""
    from research import results

    results.recover(out)  # a writer killed here may have left the record beside ``out``
    if not any((out / name).exists() for name in (results.RECORD_FILE, results.TRACES_FILE)):
        return ""
    try:
        record, _ = results.read_record(out, traces=False)  # checks it (check_record)
    except FileNotFoundError:
        return results.check_record(out)
    except results.RecordError as err:
        return err.problem
    if (record.get("identity") or identity(record["config"])) != ident:
        return OTHER_CONFIGURATION
    if stale and record.get("git_commit") != (now := results.git_commit()):
        return (f"its record was written at commit {record.get('git_commit')}, the code is now "
                f"at {now} (rerun_stale=true)")
    return None


def finished(cfg: DictConfig, job_dir: Path) -> str | None:
    """The batching sweeper's ``finished`` hook (conf/hydra/sweeper/research.yaml): the line
    ``run`` would print when it skips the job of ``cfg`` in ``job_dir`` (a complete record of
    the same identity; see ``rerun_reason``), or None when the job must run. Checked before
    any job is launched, so a finished sweep re-run costs one config composition per
    combination, not one job each. Raises ``ValueError`` (the sweep stops before any job)
    where ``run`` would refuse: an ``out=`` that holds another configuration's record."""
    from research import results

    if not cfg.resume:
        return None
    config = {key: OmegaConf.to_container(cfg[key], resolve=True, enum_to_str=True)
              if OmegaConf.is_config(cfg[key]) else cfg[key]
              for key in (*results.IDENTITY_FIELDS, "engine")}
    reason = rerun_reason(Path(job_dir), identity(schema.canonical(config)),
                          bool(cfg.rerun_stale))
    typed = _typed(OmegaConf.select(cfg, "hydra.overrides.task", default=None), "out")
    if reason == OTHER_CONFIGURATION and typed:
        raise ValueError(_occupied(typed))
    if reason is not None:
        return None
    return (f"[run] {cfg.problem.name} x {schema.label(cfg.optimizer)}: complete record at "
            f"{job_dir}, skipped")


def _refuse_preset_without_multirun() -> None:
    """A preset that defines a sweep (``hydra.sweeper.params``) run without -m would run one
    job of several, silently: say so instead."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    params = OmegaConf.select(hc, "sweeper.params", default=None) or {}
    if hc.mode == RunMode.RUN and params:
        given = " ".join(str(o) for o in hc.overrides.task)
        sweep = " ".join(f"{k}={v}" for k, v in params.items())
        jobs = count_jobs(OmegaConf.create({"hydra": {"sweeper": {"params": dict(params)},
                                                      "overrides": {"task": []}}}))
        raise ValueError(f"this preset defines a sweep of {jobs or 'several'} jobs ({sweep}); "
                         f"run them with -m: python -m experiments.run -m {given}")


def _warn_seeds_of_a_deterministic_problem(cfg: DictConfig, problem) -> None:
    """One line when a job's batch sweeps seeds of a problem without noise: its rows repeat."""
    from research import rows, sweep

    spec = OmegaConf.to_container(cfg.sweep, resolve=True)
    if sweep.SEED_AXIS in rows.flatten(spec) and problem.stochastic_fn is None:
        print(f"[run] warning: sweep.{sweep.SEED_AXIS} gives {problem.name} several seeds, but "
              "it is deterministic: every seed gives the same rows.", file=sys.stderr,
              flush=True)


def run(cfg: DictConfig) -> str:
    """Run one job: build, skip it if its record is complete (resume) or another process is
    running it, else run it and write the record.

    Returns:
      "ran", "skipped" (complete record) or "busy" (locked by another process).
    """
    from research import results, sweep

    _enter_job()
    _refuse_preset_without_multirun()
    problem, opt_name, batch, engine = build(cfg)
    _warn_seeds_of_a_deterministic_problem(cfg, problem)
    # the record states the family's own step-size name, whichever the command used
    config = schema.canonical(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    ident = identity(config)
    out = Path(cfg.out)
    label = f"{problem.name} x {opt_name}"
    with contextlib.ExitStack() as stack:
        with _writing(out):  # the lock and its marker: the job's first writes
            if out.exists() and not out.is_dir():  # the record would move it aside
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(out))
            held = stack.enter_context(hold(out, ident))
        if not held:
            return _busy(out, ident, label)
        if cfg.resume:
            reason = rerun_reason(out, ident, bool(cfg.rerun_stale))
            if reason is None:
                print(f"[run] {label}: complete record at {out}, skipped", flush=True)
                return "skipped"
            if reason == OTHER_CONFIGURATION:
                _refuse_replacing(out)
            if reason:
                print(f"[run] re-running {out}: {reason}", flush=True)
        bar = _Bar(engine["steps"], label) if _use_bar(cfg.progress) else None
        try:
            rows, traces = sweep.run_batch(problem, batch, progress=bar, **engine)
        except Exception:
            if _INTERRUPTED.is_set():  # Ctrl-C reached the engine as an XLA error
                raise KeyboardInterrupt from None
            raise
        finally:
            if bar is not None:
                bar.close()
        n = len(rows["diverged"])
        metrics = {
            results.ROWS: rows,
            "trajectories": n,
            "diverged": int(rows["diverged"].sum()),
            "problem": {"L0": problem.L0, "L1": problem.L1, "f_star": problem.f_star},
        }
        with _writing(out):
            results.write_record(out, config=config, metrics=metrics, traces=traces,
                                 seed=engine["seed"], identity=ident)
    print(f"[run] {label}: {n} trajectories x {engine['steps']} steps, "
          f"{metrics['diverged']} diverged; wrote {out}", flush=True)
    return "ran"


# --------------------------------------------------------------------------- directories


def _typed(task, key: str) -> str | None:
    """The override of ``key`` among the task overrides ``task``, as typed, or None."""
    found = [str(o) for o in task or [] if str(o).split("=", 1)[0].lstrip("+~") == key]
    return found[-1] if found else None


def _occupied(setting: str) -> str:
    return (f"{setting} holds the record of another configuration; give another directory, "
            f"or resume=false to replace it.")


def _hydra():
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _setting(out: Path) -> str:
    """How the command named the job directory ``out``: ``out=...`` as typed, else
    ``hydra.run.dir=...``, or the job's directory of ``hydra.sweep.dir=...``."""
    from hydra.types import RunMode

    hc = _hydra()
    if hc is None:
        return f"out={out}"
    typed = _typed(hc.overrides.task, "out")
    if typed:
        return typed
    if hc.mode == RunMode.MULTIRUN:
        return f"{out} (hydra.sweep.dir={hc.sweep.dir})"
    return f"hydra.run.dir={hc.run.dir}"


def _writing(out: Path):
    """``batching_sweeper.writing`` for job directory ``out``, named as the command did."""
    from hydra_plugins.batching_sweeper.batching_sweeper import writing

    return writing(_setting(out))


def _refuse_replacing(out: Path) -> None:
    """``out`` holds a complete record of another configuration, and resume is on. A job of
    a multirun writing its own job directory re-runs a record that was there before its sweep
    began: the Guard checked that the directory holds this sweep, so it is damage. Anything
    else would replace another run's result, or another job's of this sweep: refused."""
    from hydra.types import RunMode

    from research import results

    hc = _hydra()
    if hc is None or hc.mode != RunMode.MULTIRUN or _typed(hc.overrides.task, "out"):
        raise ValueError(_occupied(_setting(out)))
    began = Path(str(hc.sweep.dir)) / "multirun.yaml"  # the sweeper writes it as it starts
    try:
        newer = (out / results.RECORD_FILE).stat().st_mtime >= began.stat().st_mtime
    except OSError:  # no multirun.yaml there, or the record waits beside ``out``
        newer = False
    if newer:
        subdir = OmegaConf.to_container(hc.sweep, resolve=False).get("subdir")
        raise ValueError(f"hydra.sweep.subdir={subdir} gives two jobs of this sweep one "
                         f"directory, {out}; include ${{hydra.job.num}} in it.")


def _marker(out: Path) -> Path:
    return out.with_name(f".{out.name}.job")


@contextlib.contextmanager
def hold(out: Path, ident: str):
    """Hold the lock of job directory ``out`` without waiting: yields False at once when
    another process holds it. While held, ``.<name>.job`` beside ``out`` names this process
    and the identity of its job, for a process that finds the lock taken (``holder``)."""
    from research import results

    with results.lock(out, blocking=False) as held:
        if not held:
            yield False
            return
        results.write_text(_marker(out), json.dumps({"pid": os.getpid(), "identity": ident}))
        try:
            yield True
        finally:
            _marker(out).unlink(missing_ok=True)


def holder(out: Path, wait: float = 1.0) -> tuple[str | None, str]:
    """(identity, pid) of the job whose process holds the lock of ``out``; the identity is
    None when the holder names no job (a lock taken by other code). A holder writes its
    marker just after it takes the lock, so a marker of another pid is waited for, briefly."""
    from research import results

    deadline, pid = time.monotonic() + wait, ""
    while True:
        try:
            pid = results.lock_path(out).read_text().strip()
            mark = json.loads(_marker(out).read_text())
            if pid and str(mark.get("pid")) == pid:
                return mark.get("identity"), pid
        except (OSError, ValueError, AttributeError):
            pass
        if time.monotonic() > deadline:
            return None, pid or "unknown"
        time.sleep(0.05)


def _busy(out: Path, ident: str, label: str) -> str:
    """Another process holds ``out``'s lock. The same job running there is left to it (two
    runs of one sweep split the work); anything else is refused, since this job would
    otherwise be reported done without having run."""
    theirs, pid = holder(out)
    if theirs != ident:
        raise ValueError(f"{_setting(out)} is being run by another process (pid {pid}), not "
                         f"for this configuration; give another directory, or wait for it to "
                         f"finish.")
    print(f"[run] {label}: {out} is being run by another process, skipped", flush=True)
    return "busy"


def sweep_identity(config: DictConfig) -> str:
    """The identity of a multirun's grid: its base config's identity fields (the fixed
    values, a preset's included) and each swept key with its values, in order (they number
    the jobs). Not output paths, display options, launcher, sweeper or max_batch: a sweep
    re-chunked is the same sweep. Equal for a multirun's config and the ``multirun.yaml`` it
    saves."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.batching_sweeper.batching_sweeper import arguments
    from research import results

    core = {key: OmegaConf.to_container(node, resolve=False, enum_to_str=True)
            if OmegaConf.is_config(node := config.get(key)) else node
            for key in (*results.IDENTITY_FIELDS, "engine")}
    core["engine"] = {key: (core["engine"] or {}).get(key) for key in results.ENGINE_IDENTITY}
    parser, swept = OverridesParser.create(), []
    for arg in arguments(config):
        try:
            (o,) = parser.parse_overrides([arg])
            if o.is_sweep_override():
                swept.append([o.get_key_element(), list(o.sweep_string_iterator())])
        except Exception:  # noqa: BLE001 (compared as typed)
            swept.append([arg])
    return results.fingerprint({"config": core, "swept": swept})


def _claim(config: DictConfig) -> None:
    """A sweep directory belongs to one sweep: refuse, before anything is written, a
    multirun into a directory whose records another sweep wrote, unless resume=false
    replaces it. The batching sweeper moves away the records it will not write as they are
    once every combination is checked; under the basic sweeper that happens here."""
    from hydra_plugins.batching_sweeper.batching_sweeper import (
        arguments,
        previous,
        records,
        retire,
    )
    from research import results

    where = Path(str(config.hydra.sweep.dir))
    if (where / results.RECORD_FILE).exists():
        raise ValueError(f"hydra.sweep.dir={where} holds a single run's record, not a sweep; "
                         f"give a new hydra.sweep.dir.")
    found = records(where)
    old = previous(where)
    # the same command again needs no parsing (a long list takes Hydra about a second)
    same = old is not None and (OmegaConf.to_container(old, enum_to_str=True)
                                == OmegaConf.to_container(config, enum_to_str=True)
                                or sweep_identity(old) == sweep_identity(config))
    # another sweep still running there has no record yet, but its jobs hold their locks
    running = not found and old is not None and not same and _running_here(where)
    if (found or running) and not same and config.resume:
        what = (f"another sweep ({' '.join(arguments(old))})" if old is not None
                else "records no sweep wrote (no multirun.yaml)")
        still = ", which is still running" if running else ""
        raise ValueError(f"hydra.sweep.dir={where} holds {what}{still}; give a new "
                         f"hydra.sweep.dir, or resume=false to replace it.")
    layout = ("hydra.sweeper._target_", "hydra.sweep.subdir")
    basic = not str(OmegaConf.select(config, layout[0], default="")).endswith("BatchingSweeper")
    if found and basic and not (same and all(
            _raw(old, key) == _raw(config, key) for key in layout)):
        print(f"[sweep] moved {len(found)} records of another sweep or layout to "
              f"{retire(where, found)}", file=sys.stderr, flush=True)


def _running_here(where: Path) -> bool:
    """Whether a job of this host holds a lock below sweep directory ``where``: its lock file
    names a live process. Read, never taken: taking it, even briefly, could make that job
    refuse itself as busy."""
    from hydra_plugins.batching_sweeper.batching_sweeper import RETIRED

    for path in where.rglob(".*.lock"):
        if RETIRED in path.relative_to(where).parts:
            continue
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            continue
        if running(pid):
            return True
    return False


def _raw(config: DictConfig, key: str):
    """The value at dotted ``key`` as given, interpolations unresolved."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(config, parent, default=None)
    return OmegaConf.to_container(node, resolve=False).get(leaf) if node is not None else None


# --------------------------------------------------------------------------- the process

_INTERRUPTED = threading.Event()
_WHERE: dict = {}
"""What the interrupt line reports: set by ``Guard`` (the sweep directory and its number of
jobs, or the run directory) in the launcher's process."""


def _enter_job() -> None:
    """Where each job starts: in a launcher's worker (a process other than the one that read
    the command line), stop with the launcher and leave Ctrl-C to it. Every job runs in
    float64 on every core, whichever process it lands in."""
    from research import runtime

    runtime.configure()
    launcher = os.environ.get(LAUNCHER_PID)
    if launcher and launcher != str(os.getpid()):
        watch_parent()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            if launcher_here() is not None:
                # the launcher stops its local workers with SIGTERM, which submitit's job
                # processes ignore (kept for SLURM's pre-emption notice)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _on_signal(signum, frame):
    _INTERRUPTED.set()
    interrupt(signum, frame)


def count_jobs(config: DictConfig) -> int | None:
    """The number of jobs of a multirun (the basic sweeper's cross product of the sweep
    overrides and ``hydra.sweeper.params``; the batching sweeper's plan, composing each
    combination whose optimizer axes are swept to see whether they batch), or None when it
    cannot tell.

    Raises ``ValueError`` naming the override when a sweep has no values (e.g.
    ``optimizer.eta=range(1,0.5,0.1)``): the multirun would have no jobs.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
    args = [f"{k}={v}" for k, v in params.items()] + list(task)
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except Exception:  # noqa: BLE001 (Hydra reports its own parse errors)
        return None
    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
    if target.endswith("BatchingSweeper"):
        from hydra.core.global_hydra import GlobalHydra

        from hydra_plugins.batching_sweeper.batching_sweeper import plan, takes_batches

        max_batch = OmegaConf.select(config, "hydra.sweeper.max_batch", default=None)
        if not GlobalHydra.instance().is_initialized():
            return None  # an optax target's values are jobs: only composing tells
        loader = GlobalHydra.instance().config_loader()
        return len(plan(overrides, max_batch,
                        lambda combo: takes_batches(loader, config, combo))[0])
    sizes: dict[str, int] = {}
    for o in overrides:
        key = o.get_key_element()
        if not o.is_sweep_override():
            sizes[key] = 1
            continue
        if not o.is_discrete_sweep():
            return None
        n = len(list(o.sweep_string_iterator()))
        if n == 0:
            raise ValueError(f"{key}: the sweep {o.input_line or key} has no values, so the "
                             f"multirun has no jobs; nothing was run.")
        sizes[key] = n
    return math.prod(sizes.values())


def _given(config: DictConfig, key: str) -> bool:
    overrides = OmegaConf.select(config, "hydra.overrides.hydra", default=None) or []
    return any(str(o).split("=", 1)[0].lstrip("+~") == key for o in overrides)


class Guard(Callback):
    """Hydra callback (``hydra.callbacks.guard`` in conf/config.yaml): refuses an empty
    multirun, or one into another sweep's directory (``_claim``), before Hydra writes
    anything, and remembers where the jobs write, for the line printed on Ctrl-C."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from hydra_plugins.batching_sweeper.batching_sweeper import writing

        try:
            jobs = count_jobs(config)
            with writing(f"hydra.sweep.dir={config.hydra.sweep.dir}"):
                _claim(config)
        except ValueError as err:
            # Hydra turns a callback's exceptions into warnings; SystemExit passes through.
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        _WHERE.update(mode="multirun", dir=str(config.hydra.sweep.dir), jobs=jobs,
                      given=_given(config, "hydra.sweep.dir"))

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        from hydra_plugins.batching_sweeper.batching_sweeper import writing

        try:  # Hydra makes the run directory next, and would fail in a traceback
            with writing(f"hydra.run.dir={config.hydra.run.dir}"):
                Path(str(config.hydra.run.dir)).mkdir(parents=True, exist_ok=True)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        task = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
        _WHERE.update(mode="run", dir=str(config.hydra.run.dir),
                      given=_given(config, "hydra.run.dir")
                      or any(str(o).startswith("out=") for o in task))


def _finished_jobs() -> str:
    """How many jobs of the multirun have their complete record on disk now, and how to
    resume: "2 of 3 jobs finished (records in <dir>); the same command resumes the rest"."""
    from research import results

    where = Path(_WHERE["dir"])
    try:
        done = sum(results.is_complete(d) for d in results.record_dirs(where))
    except FileNotFoundError:
        done = 0
    of = f" of {_WHERE['jobs']}" if _WHERE.get("jobs") else ""
    how = "the same command" + ("" if _WHERE["given"] else f" with hydra.sweep.dir={where}")
    return f"{done}{of} jobs finished (records in {where}); {how} resumes the rest"


def interrupted_line() -> str:
    """The line printed on Ctrl-C or SIGTERM: how many jobs finished, and how to resume. The
    launchers have stopped their workers by now, so the count is final."""
    if _WHERE.get("mode") == "multirun":
        return f"interrupted: {_finished_jobs()}."
    if _WHERE.get("mode") == "run":
        how = "the same command" + ("" if _WHERE["given"]
                                    else f" with hydra.run.dir={_WHERE['dir']}")
        return f"interrupted: the job did not finish; {how} runs it again."
    return "interrupted."


_entry = hydra_entry("config", run)


# On Ctrl-C the launcher exits at once (``cli``); loky's resource tracker then frees the
# joblib workers' semaphores itself and would warn about each on the terminal.
QUIET = "ignore::UserWarning:joblib.externals.loky.backend.resource_tracker"


def main() -> None:
    import socket

    from research import runtime

    runtime.configure()
    os.environ[LAUNCHER_PID] = str(os.getpid())
    os.environ[LAUNCHER_HOST] = socket.gethostname()
    os.environ["PYTHONWARNINGS"] = ",".join(
        w for w in (os.environ.get("PYTHONWARNINGS"), QUIET) if w)
    signal.signal(signal.SIGINT, _on_signal)
    before = signal.signal(signal.SIGTERM, _on_signal)
    try:
        cli(_outputs_checked, interrupted=interrupted_line)
    finally:  # run in process (the tests), the caller keeps its own handler
        signal.signal(signal.SIGTERM, before)


def _outputs_checked() -> None:
    """Hydra's own writes (a launcher making a job directory) fail outside this module's
    code: an ``OSError`` on a path in the run's or sweep's directory is still one line."""
    from hydra_plugins.batching_sweeper.batching_sweeper import writing
    from hydra_plugins.guarded_launchers import WorkerLost

    try:
        _entry.hydra_main()
    except WorkerLost as err:
        # the launcher ran every other job to its end: the records on disk are final
        print(f"error: {err}; {_finished_jobs()}.", file=sys.stderr)
        sys.exit(1)
    except OSError as err:
        top = Path(_WHERE.get("dir") or "/nonexistent").absolute()
        if err.filename is None or not Path(str(err.filename)).absolute().is_relative_to(top):
            raise
        key = "hydra.sweep.dir" if _WHERE.get("mode") == "multirun" else "hydra.run.dir"
        with writing(f"{key}={_WHERE['dir']}"):
            raise


if __name__ == "__main__":
    # Run the importable module, not this __main__ copy: the launchers pickle ``run`` by
    # reference, and the Guard callback (experiments.run.Guard) updates that module's state.
    from experiments.run import main as _main

    _main()
