"""Split an experiment's trajectories into fixed-shape blocks, deal them to shards, and keep
one record per shard, so that a Hydra multirun over ``shard=range(0,K)`` (any launcher:
basic, joblib, submitit, SLURM) and a single process compute the same numbers.

Why fixed shapes: XLA rounds a vmapped batch differently for different batch shapes (measured
on Figure 4's networks: the same trajectory in a batch of 45 and of 23 differs in the last
bits, and chaotic training grows that to order one). So the numbers are defined by blocks of
one padded size (``split``), whichever process runs them: a single run runs every block, a
shard runs its own (``deal``), and both combine the blocks' outputs with the same function.
The number of CPU devices (cores) splits each block once more, so bitwise equality also needs
the same core count (each shard record keeps its own).

A shard's record lives at ``<shards_dir>/<phase>/<shard>``. It is finished when it is complete
(``results.check_record``), of the same configuration apart from where and which part runs
(``identity``), and made by the same code (``code_version``); ``problem`` says what else it is.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import socket
from pathlib import Path
from typing import NamedTuple

import numpy as np

from research import results

PLACEMENT = ("phase", "shard", "shards_dir", "resume", "out")
"""Config keys that say which part runs and where it is written, not what is computed."""
RECORD_PLACEMENT = ("phase", "shard", "shards", "shards_dir", "resume")
"""The keys an experiment's final record leaves out: how the work was split, not what it
computed, so a sharded run and a single process write the same record."""
EXIT = 1
"""Exit status when shards are missing or mismatched (2 is a bad config value)."""
MISSING = "is missing (not run yet, or its job failed)"


class Incomplete(Exception):
    """Shard records that cannot be combined; the message names every one."""


class Placement(NamedTuple):
    phase: str
    shards: int
    shard: int
    shards_dir: Path
    resume: bool


def placement(cfg, phases: tuple[str, ...]) -> Placement:
    """The config's placement keys, checked (``ValueError`` naming the key). ``phases``: the
    experiment's phases, the first running everything in one process, the last combining
    the shards, the ones between split into shards."""
    from research import validate

    phase = validate.choice("phase", cfg.phase, phases)
    n = validate.positive_int("shards", cfg.shards)
    shard = validate.positive_int("shard", cfg.shard, minimum=0)
    if shard >= n:
        raise ValueError(f"shard must be one of 0 to {n - 1} (shards={n}); got {shard}.")
    if phase == phases[0] and (n, shard) != (1, 0):
        split = [f"phase={p}" for p in phases[1:-1]]
        raise ValueError(f"shards and shard split {' and '.join(split)}; phase={phase} runs "
                         f"everything itself: give {' or '.join(split)}, or drop them (got "
                         f"shards={n}, shard={shard}).")
    if not isinstance(cfg.resume, bool):
        raise ValueError(f"resume must be true or false; got {cfg.resume!r}.")
    return Placement(phase, n, shard, Path(str(cfg.shards_dir)), cfg.resume)


def record_config(config: dict):
    """The final record's config: ``config`` (plain) without ``RECORD_PLACEMENT``."""
    from omegaconf import OmegaConf

    return OmegaConf.create({k: v for k, v in config.items() if k not in RECORD_PLACEMENT})
OTHER_CONFIG = "has another configuration"


def split(total: int, chunk: int | None) -> tuple[int, list[tuple[int, int]]]:
    """(block size, [(start, stop), ...]): ``total`` rows in blocks of ``chunk`` rows (the
    last one padded up to it by its caller), or one block of all of them when ``chunk`` is
    None or not smaller."""
    size = total if chunk is None else min(int(chunk), total)
    return size, [(a, min(a + size, total)) for a in range(0, total, size)]


def deal(n_blocks: int, shards: int, shard: int) -> list[int]:
    """The block indices of shard ``shard`` of ``shards``: contiguous runs of sizes differing
    by at most one (neighbouring blocks share a model, so a shard compiles few programs)."""
    return [int(i) for i in np.array_split(np.arange(n_blocks), shards)[shard]]


def pad(rows: list, size: int) -> list:
    """``rows`` padded to ``size`` with copies of its last row (their results are dropped)."""
    return rows + rows[-1:] * (size - len(rows))


def identity(config: dict) -> str:
    """What a shard computes: its config without the ``PLACEMENT`` keys."""
    return results.fingerprint({k: v for k, v in config.items() if k not in PLACEMENT})


def code_version(name: str) -> str:
    """A hash of the files experiment ``name``'s record depends on (the Makefile's rule for
    it: its config, the configs it names, every project module it imports) and of the
    package versions. Edits elsewhere in the work tree do not change it, unlike the git
    commit, so shards run while others edit unrelated files still combine."""
    from experiments import deps

    root, conf = deps.ROOT, Path(f"conf/{name}.yaml")
    files = [conf, *deps.config_defaults(conf), *deps.closure(f"experiments.{name}",
                                                              (root / conf,))]
    h = hashlib.sha256()
    for f in sorted(set(files)):
        h.update(str(f).encode() + b"\0" + (root / f).read_bytes() + b"\0")
    h.update(results.fingerprint(results.package_versions()).encode())
    return h.hexdigest()[:16]


def first_difference(a, b, prefix: str = "") -> str | None:
    """The first dotted key at which plain configs ``a`` and ``b`` differ, or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key in PLACEMENT and not prefix:
                continue
            name = f"{prefix}{key}"
            if key not in a or key not in b:
                return name
            found = first_difference(a[key], b[key], f"{name}.")
            if found:
                return found
        return None
    same = a == b or (isinstance(a, float) and isinstance(b, float)
                      and math.isnan(a) and math.isnan(b))
    return None if same else prefix.rstrip(".") or "the config"


def directory(shards_dir, phase: str, shard: int) -> Path:
    return Path(shards_dir) / phase / str(shard)


def problem(where: Path, config: dict, code: str, phase: str, shard: int) -> str | None:
    """None when ``where`` holds the finished record of this shard, else what it is: it
    ``MISSING``, "is damaged: ...", ``OTHER_CONFIG`` " (<key> differs)", "was made by other
    code or packages", or "is not a shard record"."""
    results.recover(where)
    if not (where / results.RECORD_FILE).is_file():
        return MISSING
    damage = results.check_record(where)
    if damage:
        return f"is damaged: {damage}"
    record, _ = results.read_record(where, traces=False)
    m = record["metrics"]
    if m.get("phase") != phase or m.get("shard") != shard or "identity" not in m:
        return "is not a shard record of this phase (another experiment wrote there)"
    if m["identity"] != identity(config):
        key = first_difference(config, record["config"]) or "shards"
        return f"{OTHER_CONFIG} ({key} differs)"
    if m.get("code") != code:
        return "was made by other code or packages"
    return None


@contextlib.contextmanager
def turn(where: Path, label: str, config: dict, code: str, phase: str, shard: int,
         resume: bool, shards_dir, say, stale=None):
    """Hold the lock of the shard record at ``where`` and yield whether to run the shard
    (``label``, e.g. "models shard 1 of 3"): False, with a line saying why, when another
    process holds it or its finished record is there and ``resume``. A record of another
    configuration is refused (``ValueError``) while ``resume``; one that is damaged, stale
    or finished (``resume`` false) is run again with a line saying so. ``stale()``: what
    else makes a complete record of this configuration stale (None: nothing)."""
    where.parent.mkdir(parents=True, exist_ok=True)
    with results.lock(where, blocking=False) as held:
        if not held:
            say(f"{label}: another process is running it ({where}); skipped.")
            yield False
            return
        why = problem(where, config, code, phase, shard)
        if why is None and stale is not None:
            why = stale()
        if why is None and resume:
            say(f"{label}: finished already ({where}); nothing to run.")
            yield False
            return
        if why is not None and why.startswith(OTHER_CONFIG) and resume:
            raise ValueError(f"shards_dir={shards_dir} holds {label}, which {why}; give "
                             "another shards_dir, or resume=false to replace it.")
        if why != MISSING:
            say(f"{label}: its record at {where} {why or 'is finished'}; running it again "
                f"{'(resume=false)' if why is None else ''}".rstrip() + ".")
        yield True


def write(where: Path, config: dict, metrics: dict, traces: dict, code: str) -> None:
    """Write a shard's record: its blocks' raw outputs in ``traces``, with what identifies it
    (and the host and CPU device count it ran on, which the rounding depends on)."""
    import jax

    info = {"identity": identity(config), "code": code, "host": socket.gethostname(),
            "devices": jax.local_device_count()}
    results.write_record(where, config=config, metrics={**metrics, **info}, traces=traces)


def devices_of(where: Path) -> int | None:
    """The CPU device count a shard record was made with (None: not recorded)."""
    record, _ = results.read_record(where, traces=False)
    return record["metrics"].get("devices")


def mixed_devices(devices: dict[str, int | None]) -> str | None:
    """One line when shards (name -> CPU device count) ran on different core counts: their
    combined record then equals a single process's to rounding, not bit for bit."""
    if len(set(devices.values())) <= 1:
        return None
    listed = ", ".join(f"{name}: {n}" for name, n in devices.items())
    return (f"warning: the shards ran on different CPU device counts ({listed}), so the "
            "combined record equals a single process's to rounding, not bit for bit")
