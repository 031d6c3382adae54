"""Run records: one directory per job, written atomically, read back as plain Python.

A record directory holds:

- ``record.json``: the resolved config, the seed, package versions, the git commit (when
  known), the float precision, and the summary metrics (plain floats, ints, bools, lists);
- ``traces.npz``: named arrays (the traces), compressed.

The directory is first written under a temporary name beside its destination and renamed
into place, so a killed job never leaves a half-written record: either the whole record
exists or none of it does.
"""

from __future__ import annotations

import datetime as _dt
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
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "scipy", "matplotlib", "hydra-core")


def package_versions() -> dict[str, str]:
    """Installed versions of the packages the numbers depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The current commit of the repository holding ``path`` (with "-dirty" when the work
    tree has changes), or None outside a repository."""
    cwd = Path(path or Path(__file__).parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("-dirty" if dirty else "")


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


def read_record(directory: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """Read a record written by ``write_record``: (record dict, traces dict)."""
    directory = Path(directory)
    path = directory / RECORD_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"no run record at {directory}: run the experiment that writes it first.")
    with open(path) as fh:
        record = json.load(fh)
    with np.load(directory / TRACES_FILE) as data:
        traces = {k: data[k] for k in data.files}
    return record, traces
