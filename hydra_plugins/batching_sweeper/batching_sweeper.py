"""A Hydra sweeper that turns numeric sweeps into vmapped batches.

``python -m experiments.run -m optimizer.eta=range(0.001,1.001,0.001) ...`` is one job, not
1,000: the sweeper parses the multirun overrides with Hydra's own parser (so ``a,b,c``,
``range(...)``, ``choice(...)`` and ``glob(...)`` mean what they mean to Hydra) and splits the
swept keys in two:

- batchable axes: numeric values of ``optimizer.<name>``, ``x0`` and ``engine.seed``. They go
  into the job's ``sweep:`` block (``++sweep.<key>=[...]``) and run as one vmapped batch;
- everything else (problem, optimizer family, shapes, steps, ...): one job per combination,
  as the basic sweeper does.

``hydra.sweeper.max_batch=N`` splits the points of each combination into chunks of at most N
points (``++sweep.chunk=[start,stop]``), each its own job, so that joblib, submitit or SLURM
spread a large sweep over processes or array tasks while each task still runs a batch.

Before the first job runs, the config of every combination is composed once and handed to
``hydra.sweeper.validate`` (a dotted path to ``f(cfg)``, which raises ``ValueError`` on a bad
value), so a bad value anywhere stops the sweep before any record is written. A preset
(``experiment=...``) that brings its own sweep cannot be swept over with another: the sweeper
refuses in one line rather than drop the preset's jobs.
"""

# (no "from __future__ import annotations": Hydra's plugin scanner runs this module before
# it is in sys.modules, where dataclasses cannot resolve string annotations)

import importlib
import itertools
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

BATCH_KEYS = ("x0", "engine.seed")
BATCH_PREFIX = "optimizer."


@dataclass
class BatchingSweeperConf:
    _target_: str = "hydra_plugins.batching_sweeper.batching_sweeper.BatchingSweeper"
    max_batch: int | None = None
    """At most this many points per job (None: one job per combination)."""
    validate: str | None = None
    """Dotted path of ``f(cfg)`` that raises ValueError on a bad config, run on every
    combination before the first job."""
    finished: str | None = None
    """Dotted path of ``f(cfg, job_dir) -> str | None``: a line to print when the job with
    this config has already written its complete result in ``job_dir`` (None otherwise);
    such jobs are not launched, and a combination whose jobs all finished is not validated
    again."""
    params: dict[str, str] | None = None


ConfigStore.instance().store(group="hydra/sweeper", name="batching",
                             node=BatchingSweeperConf, provider="research")


def batchable(override: Override) -> bool:
    """A swept key whose values are numbers and that the engine batches."""
    key = override.key_or_group
    if override.is_hydra_override() or override.package is not None:
        return False
    if not (key in BATCH_KEYS or (key.startswith(BATCH_PREFIX) and key.count(".") == 1)):
        return False
    values = list(override.sweep_iterator())
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                for v in values)


@dataclass(frozen=True)
class Job:
    overrides: tuple[str, ...]
    points: int
    label: str
    chunk: tuple[int, int] | None = None


def _check_max_batch(max_batch) -> None:
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int)
                                  or max_batch < 1):
        raise ValueError(f"hydra.sweeper.max_batch must be a whole number >= 1 or null; "
                         f"got {max_batch!r}.")


def plan(overrides: Sequence[Override], max_batch: int | None) -> tuple[list[Job], int]:
    """The jobs of a multirun: (jobs, number of combinations)."""
    _check_max_batch(max_batch)
    fixed: list[list[str]] = []
    axes: dict[str, list[str]] = {}
    compact: dict[str, str | None] = {}
    for o in overrides:
        key = o.get_key_element()
        if o.is_sweep_override():
            if not o.is_discrete_sweep():
                raise ValueError(f"{key}: the batching sweeper runs lists, range() and "
                                 f"choice() sweeps; got {o.input_line}.")
            values = list(o.sweep_string_iterator())
            if not values:
                raise ValueError(f"{key}: the sweep {o.input_line or key} has no values, so "
                                 f"the multirun has no jobs; nothing was run.")
            if batchable(o):
                axes[o.key_or_group] = values
                compact[o.key_or_group] = _range_block(o)
            else:
                fixed.append([f"{key}={v}" for v in values])
        else:
            fixed.append([f"{key}={o.get_value_element_as_str()}"])
    for o in overrides:  # a hand sweep block naming a swept key: one value would be dropped
        key = o.get_key_element().lstrip("+")
        if key.startswith("sweep.") and key[len("sweep."):] in axes:
            raise ValueError(f"{key[len('sweep.'):]} is swept twice: by {o.input_line} and by "
                             f"{key[len('sweep.'):]}=...; give its values once.")
    points = math.prod(len(v) for v in axes.values())
    batch = [f"++sweep.{k}={compact[k] or '[' + ','.join(v) + ']'}" for k, v in axes.items()]
    size = points if max_batch is None else max_batch
    jobs, combos = [], list(itertools.product(*fixed))
    for combo in combos:
        shown = " ".join(c for c in combo if "=" in c and _swept(c, overrides))
        for start in range(0, points, size):
            stop = min(points, start + size)
            chunked = max_batch is not None and (start > 0 or stop < points)
            chunk = [f"++sweep.chunk=[{start},{stop}]"] if chunked else []
            label = ", ".join(filter(None, [shown, _axes_label(axes, start, stop, points)]))
            jobs.append(Job((*combo, *batch, *chunk), stop - start, label or "one job",
                            (start, stop) if chunked else None))
    return jobs, len(combos)


def _range_block(override: Override) -> str | None:
    """A ``range(start, stop, step)`` sweep as the sweep block's range mapping
    ``{start:..,stop:..,step:..}``, which the job expands value for value as Hydra does
    (``research.sweep.axis_values``); None for lists, choices, shuffled and descending
    ranges (they are passed as the list of their values).

    A job's overrides are parsed by Hydra twice (when the sweeper checks the combination and
    when the launcher composes the job): a 1,000-value list costs about a second each time,
    the mapping nothing."""
    sweep = override.value()
    if not isinstance(sweep, RangeSweep) or sweep.shuffle or not sweep.step > 0:
        return None
    return f"{{start:{sweep.start!r},stop:{sweep.stop!r},step:{sweep.step!r}}}"


def _swept(item: str, overrides: Sequence[Override]) -> bool:
    key = item.split("=", 1)[0]
    return any(o.get_key_element() == key and o.is_sweep_override() for o in overrides)


def _axes_label(axes: dict[str, list[str]], start: int, stop: int, points: int) -> str:
    if not axes:
        return ""
    ranges = ", ".join(f"{k} {v[0]}..{v[-1]} ({len(v)})" if len(v) > 1 else f"{k} {v[0]}"
                       for k, v in axes.items())
    part = "" if (start, stop) == (0, points) else f" points {start}..{stop - 1} of {points}"
    return f"{ranges}{part}"


def _refuse_chunks_of_a_larger_grid(cfg: DictConfig, combo: tuple[str, ...]) -> None:
    """Chunks are slices of the sweeper's own axes. A sweep block with further axes (a
    preset's, or ``+sweep.X=...`` by hand) makes each job's grid larger than planned, and its
    chunk would slice a part of it: refuse, naming the axes, instead of dropping points."""
    from research.rows import CHUNK, flatten

    block = OmegaConf.to_container(cfg.get("sweep") or {}, resolve=True)
    mine = {o.split("=", 1)[0][len("++sweep."):] for o in combo if o.startswith("++sweep.")}
    extra = sorted(k for k in flatten(block) if k != CHUNK and k not in mine)
    if extra:
        raise ValueError(
            f"hydra.sweeper.max_batch chunks only the axes swept on the command line, but the "
            f"sweep block also has {', '.join('sweep.' + k for k in extra)} (from a preset or "
            f"+sweep.*=...); sweep those on the command line too, or drop max_batch.")


class BatchingSweeper(Sweeper):
    def __init__(self, max_batch: int | None = None, validate: str | None = None,
                 finished: str | None = None, params: dict[str, str] | None = None) -> None:
        super().__init__()
        _check_max_batch(max_batch)
        self.max_batch = max_batch
        self.validate = validate
        self.finished = finished
        self.params = params or {}
        self.hydra_context: HydraContext | None = None
        self.config: DictConfig | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    # ------------------------------------------------------------------ checks

    def _check(self, jobs: list[Job]) -> set[int]:
        """Compose each combination once; find its jobs that have finished already (the
        ``finished`` hook) and validate the combination unless all of them have; refuse a
        preset with its own sweep inside a sweep over presets.

        Returns:
          The indices (0-based, in ``jobs``) of the finished jobs.
        """
        loader = self.hydra_context.config_loader
        check = _import(self.validate) if self.validate else None
        done_hook = _import(self.finished, "finished") if self.finished else None
        own = {str(k): str(v) for k, v in self.params.items()}
        combos: dict[tuple[str, ...], list[int]] = {}
        for i, job in enumerate(jobs):
            combo = tuple(o for o in job.overrides if not o.startswith("++sweep.chunk="))
            combos.setdefault(combo, []).append(i)
        done: set[int] = set()
        for combo, members in combos.items():
            cfg = loader.load_sweep_config(self.config, list(combo))
            if any(jobs[i].chunk is not None for i in members):
                _refuse_chunks_of_a_larger_grid(cfg, combo)
            params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
            theirs = {str(k): str(v) for k, v in params.items()}
            if theirs != own:
                preset = next((o for o in combo if o.split("=")[0].lstrip("+") == "experiment"),
                              "a preset")
                raise ValueError(
                    f"{preset} defines its own sweep ({', '.join(f'{k}={v}' for k, v in theirs.items())}"  # noqa: E501
                    f"), which a sweep over presets would drop; run each preset alone with -m "
                    f"{preset}.")
            if done_hook is not None:
                # one copy per combination, each job's chunk and number set on it in turn (the
                # jobs of a combination are all chunks, or one job): a copy per job cost 25 ms
                scratch = cfg.copy()
                for i in members:
                    line = self._finished(done_hook, scratch, jobs[i], i)
                    if line:
                        print(line, flush=True)
                        done.add(i)
            if check is not None and not set(members) <= done:
                check(cfg)
        return done

    def _finished(self, hook, cfg: DictConfig, job: Job, index: int) -> str | None:
        """``hook``'s line when the job (its chunk and number set on ``cfg``, a copy of the
        combination's config that this overwrites; its directory resolved as the launcher
        will) has finished, else None. Any doubt (an ``out`` given on the command line, a
        directory that does not resolve) means it has not: the job is launched and decides
        for itself."""
        if any(o.split("=", 1)[0].lstrip("+") == "out" for o in job.overrides):
            return None
        try:
            with open_dict(cfg):
                if job.chunk is not None:
                    cfg.sweep["chunk"] = list(job.chunk)
                cfg.hydra.job.num = index
                job_dir = Path(str(self.config.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
            return hook(cfg, job_dir)
        except Exception:  # noqa: BLE001 (the job itself will check properly)
            return None

    # ------------------------------------------------------------------ sweep

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        args = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs, combos = plan(parser.parse_overrides(args), self.max_batch)
        say = _Progress(sum(j.points for j in jobs), len(jobs), combos)
        try:
            done = self._check(jobs)
        except BaseException:
            say.close()
            raise
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        group = self._group_size(len(jobs))
        returns = []
        todo = [i for i in range(len(jobs)) if i not in done]
        if done:
            say.done(sum(jobs[i].points for i in done))
        for first in range(0, len(todo), group):
            part = todo[first:first + group]
            for i in part:
                say.start(i + 1, jobs[i])
            # the launcher numbers the jobs it gets consecutively from initial_job_idx (their
            # directories): hand it each run of consecutive indices on its own
            for run in _consecutive(part):
                results = self.launcher.launch([list(jobs[i].overrides) for i in run],
                                               initial_job_idx=run[0])
                for r in results:
                    _ = r.return_value  # re-raise a job's failure
                returns.append(results)
            say.done(sum(jobs[i].points for i in part))
        say.close()
        return returns

    def _group_size(self, n: int) -> int:
        """Jobs handed to the launcher at once: one for the in-process launcher (so progress
        moves job by job), the worker count for joblib, all of them otherwise (a SLURM array
        should be submitted whole)."""
        target = str(OmegaConf.select(self.config, "hydra.launcher._target_", default=""))
        if target.endswith("BasicLauncher"):
            return 1
        workers = OmegaConf.select(self.config, "hydra.launcher.n_jobs", default=None)
        if isinstance(workers, int) and workers != 0:
            return max(1, workers if workers > 0 else (os.cpu_count() or 1))
        return max(1, n)


def _consecutive(indices: list[int]) -> list[list[int]]:
    """[0, 1, 3, 4, 5, 7] -> [[0, 1], [3, 4, 5], [7]]."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _import(path: str, field: str = "validate"):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"hydra.sweeper.{field} must be the dotted path of a function; "
                         f"got {path!r} ({err}).") from None


class _Progress:
    """One line per job (which values it runs) and a bar over all points of the sweep:
    done/total, rate and time left."""

    def __init__(self, total: int, jobs: int, combos: int):
        self.total, self.jobs, self.t0, self.n = total, jobs, time.perf_counter(), 0
        self.bar = None
        if sys.stderr.isatty() and not os.environ.get("CI"):
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="pt", desc="sweep", file=sys.stderr,
                            dynamic_ncols=True)
        print(f"[sweep] {total:,} points in {jobs} job{'s' if jobs != 1 else ''} "
              f"({combos} combination{'s' if combos != 1 else ''} of non-batchable values)",
              file=sys.stderr, flush=True)

    def start(self, i: int, job: Job) -> None:
        line = f"[sweep] job {i}/{self.jobs}: {job.label} ({job.points:,} points)"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def done(self, points: int) -> None:
        self.n += points
        if self.bar is not None:
            self.bar.update(points)
            return
        dt = time.perf_counter() - self.t0
        rate = self.n / dt if dt > 0 else float("inf")
        left = (self.total - self.n) / rate if rate > 0 else float("nan")
        print(f"[sweep] {self.n:,}/{self.total:,} points, {rate:,.0f} points/s, "
              f"{left:.0f}s left", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
