"""A Hydra sweeper that turns numeric sweeps into vmapped batches.

``python -m experiments.run -m optimizer.eta=range(0.001,1.001,0.001) ...`` is one job, not
1,000: the sweeper parses the multirun overrides with Hydra's own parser (so ``a,b,c``,
``range(...)``, ``choice(...)`` and ``glob(...)`` mean what they mean to Hydra) and splits the
swept keys in two:

- batchable axes: numeric values of ``optimizer.<name>``, ``x0`` and ``engine.seed``. They go
  into the job's ``sweep:`` block (``++sweep.<key>=[...]``) and run as one vmapped batch;
- everything else (problem, optimizer family, shapes, steps, ...): one job per combination,
  as the basic sweeper does.

An optax target (``optimizer._target_``; see experiments/schema.py) bakes its numbers into its
compiled program: where a combination's composed optimizer is one, its ``optimizer.<name>``
axes give one job per value, in the basic sweeper's order, and only x0 and seeds batch.

``hydra.sweeper.max_batch=N`` splits the points of each combination into the fewest chunks of
at most N points, of sizes differing by at most one (``++sweep.chunk=[start,stop]``), each its
own job, so that joblib, submitit or SLURM spread a large sweep over processes or array tasks
while each task still runs a batch.

Before the first job runs, the config of every combination is composed once and handed to
``hydra.sweeper.validate`` (a dotted path to ``f(cfg)``, which raises ``ValueError`` on a bad
value), so a bad value anywhere stops the sweep before any record is written. A preset
(``experiment=...``) that brings its own sweep cannot be swept over with another: the sweeper
refuses in one line rather than drop the preset's jobs.

Before the first job runs, too, every job's directory is resolved as the launcher will: two
jobs that would share one are refused, and the records of the sweep directory that this sweep
will not write as they are (chunks laid out otherwise by an earlier run of it, per its
``multirun.yaml``, or records no job of it writes) are moved into ``.retired/`` (``retire``),
so a table never holds a point twice. Whether another sweep may use the directory at all is
the experiment's decision (``experiments.run.Guard``).
"""

# (no "from __future__ import annotations": Hydra's plugin scanner runs this module before
# it is in sys.modules, where dataclasses cannot resolve string annotations)

import contextlib
import dataclasses
import errno
import importlib
import itertools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, RangeSweep
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from hydra_plugins.guarded_launchers import WorkerLost

BATCH_KEYS = ("x0", "engine.seed")
BATCH_PREFIX = "optimizer."
RETIRED = ".retired"
"""Where ``retire`` moves records out of ``results.load``'s sight (it skips hidden folders)."""


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
    again. A ``ValueError`` it raises (``job_dir`` holds a result it must not replace) stops
    the sweep before any job runs."""
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
    slot: tuple[str, ...] = ()
    """Its place in the sweep (swept values, batch block, chunk): a job of an earlier run of
    the same sweep with the same slot and number wrote the same directory and rows."""


def _check_max_batch(max_batch) -> None:
    if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int)
                                  or max_batch < 1):
        raise ValueError(f"hydra.sweeper.max_batch must be a whole number >= 1 or null; "
                         f"got {max_batch!r}.")


def plan(overrides: Sequence[Override], max_batch: int | None,
         batches: Callable[[tuple[str, ...]], bool] | None = None) -> tuple[list[Job], int]:
    """The jobs of a multirun: (jobs, number of combinations).

    ``batches(combination)`` says whether a combination's optimizer takes batched
    hyperparameters; where it does not (an optax target), its ``optimizer.*`` axes give one
    job per value, in the order the basic sweeper runs them, and x0 and seeds still batch.
    """
    _check_max_batch(max_batch)
    lists, axes, compact = _split(overrides)
    for o in overrides:  # a hand sweep block naming a swept key: one value would be dropped
        key = o.get_key_element().lstrip("+")
        if key.startswith("sweep.") and key[len("sweep."):] in axes:
            raise ValueError(f"{key[len('sweep.'):]} is swept twice: by {o.input_line} and by "
                             f"{key[len('sweep.'):]}=...; give its values once.")
    held = tuple(k for k in axes if k.startswith(BATCH_PREFIX)) if batches else ()
    loose = _split(overrides, held)[0] if held else []
    jobs, combos = [], list(itertools.product(*(values for _, values in lists)))
    count = 0
    for combo in combos:
        if not held or batches(combo):
            jobs += _jobs(combo, axes, compact, max_batch, overrides)
            count += 1
            continue
        chosen = iter(combo)
        parts = [values if key in held else [next(chosen)] for key, values in loose]
        rest = {k: v for k, v in axes.items() if k not in held}
        for sub in itertools.product(*parts):
            jobs += _jobs(sub, rest, compact, max_batch, overrides)
            count += 1
    return jobs, count


def takes_batches(loader, config: DictConfig, combo: tuple[str, ...]) -> bool:
    """Whether the optimizer of a combination (composed by Hydra's config ``loader`` from the
    multirun's ``config``) takes batched hyperparameters: not an optax target
    (``optimizer._target_``), whose numbers are constants of its program."""
    try:
        cfg = loader.load_sweep_config(config, list(combo))
        return "_target_" not in list(cfg.optimizer.keys())
    except Exception:  # noqa: BLE001 (the combination's own check names the error)
        return True


def _split(overrides: Sequence[Override], hold: Sequence[str] = ()):
    """The overrides in order as (key, items): one job per item (fixed keys, and swept keys
    that do not batch or are in ``hold``); and the batched axes (key -> values) with their
    range blocks."""
    lists: list[tuple[str, list[str]]] = []
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
            if batchable(o) and o.key_or_group not in hold:
                axes[o.key_or_group] = values
                compact[o.key_or_group] = _range_block(o)
            else:
                lists.append((o.key_or_group, [f"{key}={v}" for v in values]))
        else:
            lists.append((key, [f"{key}={o.get_value_element_as_str()}"]))
    return lists, axes, compact


def _jobs(combo: tuple[str, ...], axes: dict[str, list[str]], compact: dict,
          max_batch: int | None, overrides: Sequence[Override]) -> list[Job]:
    """The jobs of one combination: its points (the cross product of ``axes``) in chunks."""
    points = math.prod(len(v) for v in axes.values())
    batch = [f"++sweep.{k}={compact[k] or '[' + ','.join(v) + ']'}" for k, v in axes.items()]
    swept = tuple(c for c in combo if "=" in c and _swept(c, overrides))
    jobs = []
    for start, stop in chunks(points, max_batch):
        chunked = (start, stop) != (0, points)
        chunk = [f"++sweep.chunk=[{start},{stop}]"] if chunked else []
        label = ", ".join(filter(None, [" ".join(swept),
                                        _axes_label(axes, start, stop, points)]))
        jobs.append(Job((*combo, *batch, *chunk), stop - start, label or "one job",
                        (start, stop) if chunked else None, (*swept, *batch, *chunk)))
    return jobs


def chunks(points: int, max_batch: int | None) -> list[tuple[int, int]]:
    """The fewest slices ``(start, stop)`` of at most ``max_batch`` points covering
    ``range(points)`` in order, sizes differing by at most one, the larger first: 101 points
    in chunks of at most 50 are 34, 34 and 33, not 50, 50 and 1."""
    n = 1 if max_batch is None else max(1, -(-points // max_batch))
    size, extra = divmod(points, n)
    bounds = [0]
    for k in range(n):
        bounds.append(bounds[-1] + size + (k < extra))
    return list(zip(bounds[:-1], bounds[1:], strict=True))


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


def _extra_axes(cfg: DictConfig, combo: tuple[str, ...]) -> tuple[dict, list[str]]:
    """The combination's flattened sweep block, and its axes that the sweeper did not put
    there (a preset's own, or ``+sweep.X=...`` by hand)."""
    from research.rows import CHUNK, flatten

    node = cfg.get("sweep")
    block = flatten(OmegaConf.to_container(node, resolve=True) if node else {})
    mine = {o.split("=", 1)[0][len("++sweep."):] for o in combo if o.startswith("++sweep.")}
    return block, sorted(k for k in block if k != CHUNK and k not in mine)


def _refuse_chunks_of_a_larger_grid(extra: list[str]) -> None:
    """Chunks are slices of the sweeper's own axes. A sweep block with further axes (a
    preset's, or ``+sweep.X=...`` by hand) makes each job's grid larger than planned, and its
    chunk would slice a part of it: refuse, naming the axes, instead of dropping points."""
    if extra:
        raise ValueError(
            f"hydra.sweeper.max_batch chunks only the axes swept on the command line, but the "
            f"sweep block also has {', '.join('sweep.' + k for k in extra)} (from a preset or "
            f"+sweep.*=...); sweep those on the command line too, or drop max_batch.")


def _refuse_a_presets_own_sweep(cfg: DictConfig, combo: tuple[str, ...], own: dict) -> None:
    params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None) or {}
    theirs = {str(k): str(v) for k, v in params.items()}
    if theirs != own:
        preset = next((o for o in combo if o.split("=")[0].lstrip("+") == "experiment"),
                      "a preset")
        raise ValueError(
            f"{preset} defines its own sweep ({', '.join(f'{k}={v}' for k, v in theirs.items())}"
            f"), which a sweep over presets would drop; run each preset alone with -m "
            f"{preset}.")


def _combo(job: Job) -> tuple[str, ...]:
    return tuple(o for o in job.overrides if not o.startswith("++sweep.chunk="))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _subdir(config: DictConfig) -> str:
    """``hydra.sweep.subdir`` as given, interpolations unresolved."""
    return str(OmegaConf.to_container(config.hydra.sweep, resolve=False).get("subdir"))


def arguments(config: DictConfig) -> list[str]:
    """The sweep of a multirun's config: ``hydra.sweeper.params`` (a preset's), then the
    command line's task overrides."""
    params = OmegaConf.select(config, "hydra.sweeper.params", default=None) or {}
    task = OmegaConf.select(config, "hydra.overrides.task", default=None) or []
    return [f"{k}={v}" for k, v in params.items()] + [str(o) for o in task]


def previous(sweep_dir: Path) -> DictConfig | None:
    """The config the last multirun into ``sweep_dir`` saved there (``multirun.yaml``), or
    None."""
    try:
        return OmegaConf.load(sweep_dir / "multirun.yaml")
    except Exception:  # noqa: BLE001 (missing or unreadable: no earlier sweep to compare)
        return None


def records(sweep_dir: Path) -> list[Path]:
    """The record directories below ``sweep_dir`` that ``results.load`` reads."""
    from research import results

    try:
        found = results.record_dirs(sweep_dir)
    except FileNotFoundError:
        return []
    return [d for d in found if d != sweep_dir]


@contextlib.contextmanager
def writing(setting: str):
    """Where a run writes: an ``OSError`` (a read-only or full file system, a name too long, a
    file where a directory must go, ...) becomes a ``ValueError`` of one line naming
    ``setting`` (the directory as the command gave it), the file and the OS's reason."""
    try:
        yield
    except OSError as err:
        where = f" ({err.filename})" if err.filename and str(err.filename) not in setting else ""
        raise ValueError(f"cannot write {setting}: {err.strerror or err}{where}.") from None


def retire(sweep_dir: Path, dirs: Sequence[Path]) -> Path:
    """Move the record directories ``dirs`` (below ``sweep_dir``) into
    ``sweep_dir/.retired/<time>/``, each under its own relative path: out of the table's
    sight, not deleted. Returns that folder. Refuses, moving nothing, when another process
    holds the lock of one of them."""
    from research import results

    stamp = time.strftime("%Y%m%d-%H%M%S")
    target, n = sweep_dir / RETIRED / stamp, 1
    while target.exists():
        target, n = sweep_dir / RETIRED / f"{stamp}-{n}", n + 1
    with contextlib.ExitStack() as held:
        for d in dirs:
            if not held.enter_context(results.lock(d, blocking=False)):
                raise ValueError(f"{d} is being run by another process; wait for it to finish, "
                                 f"or give a new hydra.sweep.dir.")
        for d in dirs:
            results.recover(d)  # a rewrite killed between its renames: its record into place
            dest = target / d.relative_to(sweep_dir)
            dest.parent.mkdir(parents=True, exist_ok=True)
            d.rename(dest)
    return target


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

    def _plan(self, args: list[str], max_batch: int | None) -> tuple[list[Job], int]:
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        return plan(parser.parse_overrides(args), max_batch, self._batches)

    def _batches(self, combo: tuple[str, ...]) -> bool:
        return takes_batches(self.hydra_context.config_loader, self.config, combo)

    # ------------------------------------------------------------------ checks

    def _compose(self, jobs: list[Job]) -> dict[tuple[str, ...], DictConfig]:
        """Compose each combination once; refuse a preset with its own sweep inside a sweep
        over presets, and chunks of a grid larger than planned."""
        loader = self.hydra_context.config_loader
        own = {str(k): str(v) for k, v in self.params.items()}
        configs: dict[tuple[str, ...], DictConfig] = {}
        for job in jobs:
            combo = _combo(job)
            if combo not in configs:
                configs[combo] = loader.load_sweep_config(self.config, list(combo))
                if job.chunk is not None:
                    _refuse_chunks_of_a_larger_grid(_extra_axes(configs[combo], combo)[1])
                _refuse_a_presets_own_sweep(configs[combo], combo, own)
        return configs

    def _dirs(self, jobs: list[Job], scratch: dict) -> list[Path | None]:
        """Each job's directory (absolute), resolved as the launcher will; None where it
        does not resolve here. Two jobs that would write one directory are refused: the
        second would replace the first's record."""
        dirs: list[Path | None] = []
        seen: dict[Path, int] = {}
        for i, job in enumerate(jobs):
            d = self._job_dir(scratch[_combo(job)], job, i)
            if d is not None and d in seen:
                out = next((o for o in job.overrides if _key(o) == "out"), None)
                fix = ("make it differ per job, or drop it: each job then writes "
                       "hydra.sweep.dir/<job number>" if out else
                       "include ${hydra.job.num} in it")
                raise ValueError(f"{out or 'hydra.sweep.subdir=' + _subdir(self.config)} "
                                 f"gives jobs {seen[d] + 1} and {i + 1} of this sweep one "
                                 f"directory, {d}; {fix}.")
            if d is not None:
                seen[d] = i
            dirs.append(d)
        return dirs

    @staticmethod
    def _job_dir(cfg: DictConfig, job: Job, index: int) -> Path | None:
        """Set the job's chunk and number on ``cfg`` (its combination's scratch copy; the jobs
        of a combination are all chunks, or one job) and resolve its directory: ``out`` when
        given on the command line, else ``hydra.sweep.dir/hydra.sweep.subdir``."""
        try:
            with open_dict(cfg):
                if job.chunk is not None:
                    cfg.sweep["chunk"] = list(job.chunk)
                cfg.hydra.job.num = index
                if any(_key(o) == "out" for o in job.overrides):
                    return Path(str(cfg.out)).absolute()
                return (Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)).absolute()
        except Exception:  # noqa: BLE001 (the job itself will resolve it)
            return None

    def _stale(self, jobs: list[Job], dirs: list[Path | None]) -> list[Path]:
        """The records of the sweep directory this sweep will not write as they are: those an
        earlier run of it laid out otherwise (another max_batch, sweeper or subdir: per its
        multirun.yaml, job by job) and those no job of it writes. Left in place, they would
        put points in the table twice, or another sweep's rows beside this one's."""
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        found = records(sweep_dir)
        if not found:
            return []
        old = previous(sweep_dir)
        kept: set[Path] = set()
        target = str(OmegaConf.select(old, "hydra.sweeper._target_", default="")) if old else ""
        if old is not None and target.endswith("BatchingSweeper") \
                and _subdir(old) == _subdir(self.config):
            args, max_batch = arguments(old), OmegaConf.select(old, "hydra.sweeper.max_batch")
            try:  # the same command again needs no parsing
                before = jobs if (args, max_batch) == (arguments(self.config), self.max_batch) \
                    else self._plan(args, max_batch)[0]
            except Exception:  # noqa: BLE001 (an unreadable earlier sweep: keep nothing)
                before = []
            kept = {d for d, job, was in zip(dirs, jobs, before, strict=False)
                    if d is not None and job.slot == was.slot}
        return [d for d in found if d.absolute() not in kept]

    def _check(self, jobs: list[Job], configs: dict, scratch: dict, dirs: list[Path | None],
               stale: list[Path]) -> set[int]:
        """Find the jobs that have finished already (the ``finished`` hook; not those whose
        record is stale) and validate each combination unless all its jobs have.

        Returns:
          The indices (0-based, in ``jobs``) of the finished jobs.
        """
        check = _import(self.validate) if self.validate else None
        hook = _import(self.finished, "finished") if self.finished else None
        moving = {d.absolute() for d in stale}
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, job in enumerate(jobs):
            groups.setdefault(_combo(job), []).append(i)
        done: set[int] = set()
        for combo, members in groups.items():
            for i in members:
                if hook is None or dirs[i] is None or dirs[i] in moving:
                    continue
                line = self._finished(hook, scratch[combo], jobs[i], i, dirs[i])
                if line:
                    print(line, flush=True)
                    done.add(i)
            if check is not None and not set(members) <= done:
                check(configs[combo])
        return done

    def _finished(self, hook, cfg: DictConfig, job: Job, index: int, job_dir: Path):
        """``hook``'s line when the job has finished, else None; a ``ValueError`` it raises
        (the directory holds a result it must not replace) stops the sweep. Any other doubt
        means it has not finished: the job is launched and decides for itself."""
        try:
            self._job_dir(cfg, job, index)
            return hook(cfg, job_dir)
        except OmegaConfBaseException:
            return None
        except ValueError:
            raise
        except Exception:  # noqa: BLE001 (the job itself will check properly)
            return None

    def _count(self, jobs: list[Job], configs: dict) -> list[Job]:
        """A job whose sweep block has axes besides the sweeper's (a preset's own block, or
        ``+sweep.X=...`` by hand) runs the block's whole cross product: count those points,
        so progress counts every trajectory."""
        out = []
        for job in jobs:
            block, extra = _extra_axes(configs[_combo(job)], _combo(job))
            if extra and job.chunk is None:
                from research.sweep import size  # imports JAX: only for such blocks

                job = dataclasses.replace(job, points=size(block))
            out.append(job)
        return out

    # ------------------------------------------------------------------ sweep

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        args = [f"{k}={v}" for k, v in self.params.items()] + list(arguments)
        jobs, combos = self._plan(args, self.max_batch)
        configs = self._compose(jobs)
        jobs = self._count(jobs, configs)
        # one copy per combination, each job's chunk and number set on it in turn: a copy
        # per job cost 25 ms
        scratch = {combo: cfg.copy() for combo, cfg in configs.items()}
        dirs = self._dirs(jobs, scratch)
        stale = self._stale(jobs, dirs)
        # every refusal comes before the first line of progress: an error is one line
        done = self._check(jobs, configs, scratch, dirs, stale)
        sweep_dir = Path(self.config.hydra.sweep.dir)
        setting = f"hydra.sweep.dir={sweep_dir}"
        todo = [i for i in range(len(jobs)) if i not in done]
        with writing(setting):
            for d in (dirs[i] for i in todo):  # the launcher would fail at that job
                if d is not None and d.exists() and not d.is_dir():
                    raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(d))
            moved = retire(sweep_dir, stale) if stale else None
        # a finished sweep re-run writes nothing, so it also runs on a read-only copy
        if todo or stale or not (sweep_dir / "multirun.yaml").exists():
            from research.results import write_text

            with writing(setting):
                write_text(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config))
        say = _Progress(sum(j.points for j in jobs), len(jobs), combos)
        if moved is not None:
            say.line(f"[sweep] moved {len(stale)} record{'s' * (len(stale) != 1)} this sweep "
                     f"does not write as they are (other chunks, or the sweep it replaces) to "
                     f"{moved}")
        group = self._group_size(len(jobs))
        returns = []
        if done:
            say.done(sum(jobs[i].points for i in done))
        lost: list[WorkerLost] = []
        try:
            for first in range(0, len(todo), group):
                part = todo[first:first + group]
                for i in part:
                    say.start(i + 1, jobs[i])
                # the launcher numbers the jobs it gets consecutively from initial_job_idx
                # (their directories): hand it each run of consecutive indices on its own
                for run in _consecutive(part):
                    with writing(setting):  # the launcher makes the job directories
                        results = self.launcher.launch([list(jobs[i].overrides) for i in run],
                                                       initial_job_idx=run[0])
                    for r in results:
                        try:
                            _ = r.return_value  # re-raise a job's failure
                        except WorkerLost as err:  # that job alone: the others still run
                            lost.append(err)
                    returns.append(results)
                say.done(sum(jobs[i].points for i in part))
        finally:
            close = getattr(self.launcher, "close", None)
            if close is not None:  # a launcher's pool lives for one sweep
                close()
        say.close()
        if lost:
            raise WorkerLost.merge(lost)
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
        self.line(f"[sweep] job {i}/{self.jobs}: {job.label} ({job.points:,} points)")

    def line(self, line: str) -> None:
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
