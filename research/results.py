"""Run records: one directory per job, written atomically, read back as plain Python.

A record directory holds:

- ``record.json``: the resolved config, the seed, package versions, the git commit (when
  known), the float precision, and the summary metrics (plain floats, ints, bools, lists);
- ``traces.npz``: named arrays (the traces), compressed.

A record may hold one row per trajectory: ``metrics["rows"]`` maps column names to lists of
equal length (``research.sweep.run_batch`` writes them), and the traces then have the
trajectories on their first axis. ``load`` gathers records, a sweep directory or several,
into one ``pandas.DataFrame`` with one row per trajectory and the config fields as columns.

The directory is first written under a temporary name beside its destination and renamed
into place, so a killed job never leaves a half-written record: either the whole record
exists or none of it does.
"""

from __future__ import annotations

import datetime as _dt
import functools
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

RECORD_FILE = "record.json"
TRACES_FILE = "traces.npz"
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "scipy", "matplotlib", "hydra-core", "pandas")
ROWS = "rows"


@functools.cache
def package_versions() -> dict[str, str]:
    """Installed versions of the packages the numbers depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@functools.cache
def _git_commit(cwd: Path) -> str | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The current commit of the repository holding ``path`` (with "-dirty" when the work
    tree has changes), or None outside a repository. Asked once per process and path: a
    sweep's jobs share it."""
    return _git_commit(Path(path or Path(__file__).parent).resolve())


def to_plain(value: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays inside dicts and lists to plain Python.

    Non-finite floats become the strings "nan", "inf" and "-inf" so that the JSON stays
    standard; ``from_plain`` is not needed to read them back as numbers because
    ``float("nan")`` accepts them.
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, str):
        return to_plain(value.tolist())
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else str(v)
    return value


def write_record(directory: str | os.PathLike, *, config: dict, metrics: dict,
                 traces: dict[str, np.ndarray] | None = None, seed: int | None = None,
                 precision: str = "float64") -> Path:
    """Write one run record atomically to ``directory`` (replacing an older one).

    Returns:
      The record directory.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "config": to_plain(config),
        "seed": seed,
        "precision": precision,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "metrics": to_plain(metrics),
    }
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        np.savez_compressed(tmp / TRACES_FILE, **{k: np.asarray(v) for k, v in
                                                  (traces or {}).items()})
        with open(tmp / RECORD_FILE, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=True)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            if old.exists():
                shutil.rmtree(old)
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def read_record(directory: str | os.PathLike,
                traces: bool = True) -> tuple[dict, dict[str, np.ndarray] | None]:
    """Read a record written by ``write_record``: (record dict, traces dict, or None when
    ``traces`` is False)."""
    directory = Path(directory)
    path = directory / RECORD_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no run record at {directory}: run the experiment that writes it first.")
    with open(path) as fh:
        record = json.load(fh)
    if not traces:
        return record, None
    with np.load(directory / TRACES_FILE) as data:
        arrays = {k: data[k] for k in data.files}
    return record, arrays


def is_complete(directory: str | os.PathLike, config: dict | None = None) -> bool:
    """True when ``directory`` holds a whole record (and, if given, of this ``config``).

    Records are renamed into place whole, so a present ``record.json`` and ``traces.npz``
    mean a finished job. Used to resume sweeps.
    """
    directory = Path(directory)
    if not ((directory / RECORD_FILE).is_file() and (directory / TRACES_FILE).is_file()):
        return False
    if config is None:
        return True
    try:
        with open(directory / RECORD_FILE) as fh:
            return json.load(fh).get("config") == to_plain(config)
    except (OSError, ValueError):
        return False


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _natural(path: Path):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in path.parts]


def _record_dirs(path: Path) -> list[Path]:
    if (path / RECORD_FILE).is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"no run record or sweep directory at {path}.")
    found = [p.parent for p in path.rglob(RECORD_FILE) if not any(
        part.startswith(".") for part in p.relative_to(path).parts)]
    if not found:
        raise FileNotFoundError(f"no run records under {path}: run the sweep first.")
    return sorted(found, key=lambda p: _natural(p.relative_to(path)))


def load(paths, traces: bool = False):
    """Gather run records into one ``pandas.DataFrame``, one row per trajectory.

    Args:
      paths: a record directory, a sweep directory (searched recursively for records), or a
        list of them.
      traces: also add a column per trace ("trace.f", "trace.grad_norm", ...), each cell
        the trajectory's array.

    Returns:
      A DataFrame with the columns "record" (the record's path relative to the directory it
      was found in), "trajectory" (its index within the record), every config field
      flattened with dots ("problem.name", "optimizer.eta", ...; a batched sweep axis
      replaces the field it sweeps), and the metrics. Records without per-trajectory rows
      give one row, with their scalar metrics flattened. Rows are in job order.
    """
    import pandas as pd

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    frames = []
    for root in map(Path, paths):
        for directory in _record_dirs(root):
            record, arrays = read_record(directory, traces=traces)
            metrics = record["metrics"]
            skip = ("out", "sweep") if ROWS in metrics else ("out",)
            config: dict = {}
            _flat("", {k: v for k, v in record["config"].items() if k not in skip}, config)
            if ROWS in metrics:
                table = pd.DataFrame(metrics[ROWS])
            else:
                flat: dict = {}
                _flat("", metrics, flat)
                table = pd.DataFrame([{k: v for k, v in flat.items()
                                       if not isinstance(v, list)}])
            for column in table.columns:
                if table[column].dtype == object:
                    table[column] = table[column].map(_number_or_self)
            table = table.infer_objects()
            fixed = {k: [v] * len(table) for k, v in config.items() if k not in table.columns}
            table = pd.concat([pd.DataFrame(fixed, index=table.index), table], axis=1)
            if traces:
                n = len(table)
                for name, arr in arrays.items():
                    arr = np.asarray(arr)
                    if arr.ndim >= 1 and arr.shape[0] == n and name != "iterations":
                        table[f"trace.{name}"] = list(arr)
                    else:
                        table[f"trace.{name}"] = [arr] * n
            rel = directory.relative_to(root).as_posix() if directory != root else "."
            table.insert(0, "trajectory", np.arange(len(table)))
            table.insert(0, "record", rel)
            frames.append(table)
    return pd.concat(frames, ignore_index=True)


def _number_or_self(value):
    """JSON keeps non-finite floats as the strings "nan", "inf", "-inf": turn them back."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return float(value)
    return value
