"""Run records: one directory per job, written atomically, read back as plain Python.

A record directory holds:

- ``record.json``: the resolved config, the seed, package versions, the git commit (when
  known), the float precision, the job's identity hash (``job_identity`` of the config, when
  the writer gives one), and the summary metrics (plain floats, ints, bools, lists);
- ``traces.npz``: named arrays (the traces), compressed.

A record may hold one row per trajectory: ``metrics["rows"]`` maps column names to lists of
equal length (``research.sweep.run_batch`` writes them), and the traces then have the
trajectories on their first axis ("iterations", the recorded iterates, is shared). ``load``
gathers records, a sweep directory or several, into one ``pandas.DataFrame`` with one row per
trajectory and the config fields as columns.

Non-finite floats are written as the strings "nan", "inf" and "-inf" (the JSON stays
standard) and read back as floats, everywhere in the record. So a string value that is
literally "nan", "inf" or "-inf" is read back as a float: no field of this project takes
those words as text (``inf`` in a config is the number, e.g. ``optimizer.gamma=inf``).

Complete records. ``check_record(directory)`` is the one test of a whole record, used by
``read_record``, ``load``, resuming sweeps (``experiments.run``) and the claims: it returns
None for a complete record, else one sentence naming the file and what is wrong with it. A
record must also be what it says: its identity is recomputed from its config, and every
column and trace has its type and shape.

Writing. The directory is first written under a unique temporary name beside its
destination (``.<name>.tmp-<token>``) and renamed into place, so a killed job never leaves a
half-written record. A rewrite renames the old record aside (``.<name>.old-<token>``) first;
killed between those two renames, it leaves the complete new record beside the missing
directory, which readers use and ``recover`` (or the next write) moves into place: at every
moment the old record or the new one is readable. Writers of one directory are serialized by
a lock file beside it (``.<name>.lock``, ``fcntl.flock``; removed when released), so any
number of processes may write the same record at once.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import functools
import glob
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

RECORD_FILE = "record.json"
TRACES_FILE = "traces.npz"
PACKAGES = ("jax", "jaxlib", "optax", "numpy", "scipy", "matplotlib", "hydra-core", "pandas")
ROWS = "rows"
REQUIRED: dict[str, type] = {"config": dict, "metrics": dict, "versions": dict, "created": str}
"""Top-level keys every record has, with their types."""
OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "seed": (int, type(None)), "precision": str, "git_commit": (str, type(None)),
    "identity": str}
"""Top-level keys a record may have, with their types."""
COLUMN_TYPES: dict[str, str] = {
    "final_f": "number", "final_grad_norm": "number", "min_grad_norm": "number",
    "iterations_to_eps": "count", "diverged": "boolean", "diverged_at": "count"}
"""The type of each per-trajectory metric in the rows of an engine record (one whose config
has an ``engine`` block): "count" is a whole number >= -1, -1 meaning never."""
MISSING_IF_NEGATIVE = tuple(k for k, kind in COLUMN_TYPES.items() if kind == "count")
"""Integer columns in which -1 means "never" (never reached eps, never diverged): ``load``
shows them as pandas' nullable integers with ``pd.NA`` there, so in every record, a column
or scalar metric of that name (its dotted name's last part) must be a count."""
IDENTITY_FIELDS = ("problem", "optimizer", "x0", "sweep")
"""The top-level config fields that change a job's result (``job_identity``)."""
ENGINE_IDENTITY = ("steps", "eps", "record_every", "stop_at_eps", "seed")
"""The engine settings that change a job's result (the limits do not)."""
NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


class RecordError(ValueError):
    """A record directory that does not hold a complete record; the message names the file
    and the problem. ``directory`` and ``problem`` (as ``check_record`` says it) are
    attributes, None when the error is about several records."""

    def __init__(self, message: str, directory: Path | None = None,
                 problem: str | None = None):
        super().__init__(message)
        self.directory, self.problem = directory, problem


class RecordWarning(UserWarning):
    """``load`` skipped an incomplete record of a sweep."""


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


def _git(cwd: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=True,
                          timeout=30).stdout


@functools.cache
def _git_commit(cwd: Path) -> str | None:
    try:
        commit = _git(cwd, "rev-parse", "HEAD").decode().strip()
        diff = _git(cwd, "diff", "HEAD", "--binary")
        top = Path(_git(cwd, "rev-parse", "--show-toplevel").decode().strip())
        new = sorted(n for n in _git(cwd, "ls-files", "--others", "--exclude-standard",
                                     "-z").split(b"\0")
                     if n.endswith((b".py", b".yaml")) and (top / n.decode()).is_file())
        if not diff and not new:
            return commit
        # the source the run really used: every change against HEAD and every new source
        # file, so that two different uncommitted edits never share an identity (rerun_stale)
        h = hashlib.sha256(diff)
        for name in new:
            h.update(name + b"\0" + (top / name.decode()).read_bytes())
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty-{h.hexdigest()[:12]}"


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The current commit of the repository holding ``path`` (with "-dirty-<hash>" when the
    work tree has changes: the sha256 of the diff against it and of the new .py and .yaml
    files), or None outside a repository. Asked once per process and path: a
    sweep's jobs share it."""
    return _git_commit(Path(path or Path(__file__).parent).resolve())


def to_plain(value: Any) -> Any:
    """Convert NumPy/JAX scalars and arrays inside dicts and lists to plain Python.

    Non-finite floats become the strings "nan", "inf" and "-inf" so that the JSON stays
    standard; ``from_plain`` (which ``read_record`` applies) turns them back into floats.
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


def from_plain(value: Any) -> Any:
    """The inverse of ``to_plain``'s one lossy step: the strings "nan", "inf" and "-inf",
    anywhere in nested dicts and lists, become floats again."""
    if isinstance(value, dict):
        return {k: from_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_plain(v) for v in value]
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    return value


def fingerprint(value: Any) -> str:
    """A short hash of ``value`` (plain data: dicts, lists, numbers, strings) that does not
    depend on key order, and is the same for a value and its round trip through a record."""
    text = json.dumps(to_plain(value), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_identity(config: dict) -> str:
    """The identity of a job of ``experiments.run``: a hash of the part of its resolved config
    that changes its result (``IDENTITY_FIELDS`` and the engine's ``ENGINE_IDENTITY``), not
    the output path, resume, progress, limits or launcher settings. Equal for a config and
    its record's; ``check_record`` recomputes it from a record's config, so a record edited
    after its run is not taken for the job it was."""
    engine = config.get("engine")
    engine = engine if isinstance(engine, dict) else {}
    core = {key: config.get(key) for key in IDENTITY_FIELDS}
    core["sweep"] = core["sweep"] or {}
    core["engine"] = {key: engine.get(key) for key in ENGINE_IDENTITY}
    return fingerprint(core)


# --------------------------------------------------------------------------- locks

_HELD: dict[str, list] = {}
_HELD_GUARD = threading.Lock()


def lock_path(directory: str | os.PathLike) -> Path:
    """The lock file of a record directory: ``.<name>.lock`` beside it."""
    directory = Path(directory)
    return directory.with_name(f".{directory.name}.lock")


@contextlib.contextmanager
def lock(directory: str | os.PathLike, *, blocking: bool = True):
    """Hold the lock of record directory ``directory`` (an exclusive ``fcntl.flock`` on
    ``lock_path(directory)``) for the ``with`` block; yields True when held.

    With ``blocking=False`` it yields False at once when another process holds the lock. The
    lock is re-entrant within a process, released by the OS when its process dies (so a
    killed job never leaves a stale lock), and its file is removed on release.
    """
    path = lock_path(directory)
    held = _acquire(path, blocking)
    try:
        yield held
    finally:
        if held:
            _release(path)


def _acquire(path: Path, blocking: bool) -> bool:
    key = os.path.abspath(path)
    with _HELD_GUARD:
        if key in _HELD:
            _HELD[key][1] += 1
            return True
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        # The holder before us may have removed the file while we waited: then we hold a
        # lock on a file nobody else will open; start again on the current one.
        try:
            st = os.stat(path)
            mine = os.fstat(fd)
            current = (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    with _HELD_GUARD:
        _HELD[key] = [fd, 1]
    return True


def _release(path: Path) -> None:
    key = os.path.abspath(path)
    with _HELD_GUARD:
        entry = _HELD[key]
        entry[1] -= 1
        if entry[1]:
            return
        del _HELD[key]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # while still holding it: see _acquire
    os.close(entry[0])


# --------------------------------------------------------------------------- writing


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text document (a report, a table) atomically: a reader sees the old text or
    the new, never half of it. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk leaves half a file: not left here
            tmp.unlink()
        raise
    return path


def write_record(directory: str | os.PathLike, *, config: dict, metrics: dict,
                 traces: dict[str, np.ndarray] | None = None, seed: int | None = None,
                 precision: str = "float64", identity: str | None = None) -> Path:
    """Write one run record atomically to ``directory`` (replacing an older one).

    Safe to call from several processes at once for the same directory: the writes are
    serialized by ``lock(directory)`` and the last one wins. Killed at any moment, it leaves
    the old record or the new one readable (see the module docstring). ``identity``:
    ``job_identity(config)`` (``experiments.run`` stores it to recognise a finished job);
    another value is refused (``ValueError``), since the record would not be what it says.

    Returns:
      The record directory.
    """
    directory = Path(directory)
    if identity is not None and identity != job_identity(config):
        raise ValueError(f"{directory}: the identity given ({identity}) is not the one its "
                         f"config gives ({job_identity(config)}).")
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
    if identity is not None:
        record["identity"] = identity
    text = json.dumps(record, indent=1, sort_keys=True, allow_nan=False)
    with lock(directory):
        _settle(directory)  # a killed rewrite's record back in place: restored if this fails
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in (traces or {}).items()}
            np.savez_compressed(tmp / TRACES_FILE, **arrays)
            (tmp / RECORD_FILE).write_text(text)
        except BaseException:
            _discard(tmp)
            raise
        _swap(tmp, directory)
    return directory


def _swap(tmp: Path, directory: Path) -> None:
    """Put the complete record ``tmp`` in place of ``directory`` (its lock held). The old
    record waits beside as ``.<name>.old-<token of tmp>`` between the two renames: killed
    there, the pair tells ``_located`` to read ``tmp``."""
    token = tmp.name.rsplit(".tmp-", 1)[1]
    old = directory.with_name(f".{directory.name}.old-{token}")
    moved = False
    try:
        if directory.exists() or directory.is_symlink():
            os.rename(directory, old)
            moved = True
        os.rename(tmp, directory)
    except BaseException:
        if moved and not (directory.exists() or directory.is_symlink()):
            os.rename(old, directory)
        _discard(tmp)
        raise
    if moved:
        _discard(old)


def _discard(path: Path) -> None:
    """Remove a directory, or the link that stands for one."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def _located(directory: Path) -> Path:
    """Where the record of ``directory`` is: there, or, when a rewrite was killed between its
    two renames (``directory`` gone, its ``.old-`` and ``.tmp-`` copies of one token beside
    it), the new copy if complete, else the old one."""
    if directory.exists() or directory.is_symlink():
        return directory
    prefix = f".{directory.name}.old-"
    for old in sorted(directory.parent.glob(glob.escape(prefix) + "*")):
        tmp = directory.with_name(f".{directory.name}.tmp-{old.name[len(prefix):]}")
        if tmp.is_dir():
            return tmp if _inspect(tmp)[2] is None else old
    return directory


def _settle(directory: Path) -> None:
    """Finish what killed writers of ``directory`` left (call with its lock held: only the
    holder creates these): the record a rewrite left between its renames goes into place,
    and the rest beside it is removed."""
    source = _located(directory)
    if source != directory:
        os.rename(source, directory)
    for pattern in (".tmp-*", ".old-*"):
        for path in directory.parent.glob(f".{glob.escape(directory.name)}{pattern}"):
            _discard(path)


def recover(directory: str | os.PathLike) -> None:
    """Finish a killed writer's work on record directory ``directory`` unless another
    process holds its lock (it is writing): the complete record of a rewrite killed between
    its renames goes into place, and the debris beside it is removed. Resuming a sweep calls
    it for each job. Costs two ``stat`` calls when the directory is there and no writer was
    killed there (a killed one leaves its lock file); without write access it changes
    nothing, and readers still find the record."""
    directory = Path(directory)
    if not lock_path(directory).exists() and _located(directory) == directory:
        return
    with contextlib.suppress(OSError), lock(directory, blocking=False) as held:
        if held:
            _settle(directory)


# --------------------------------------------------------------------------- reading


def _kind(value) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def required_columns(config: dict) -> list[str]:
    """The per-trajectory columns a record of ``config`` must have in ``metrics["rows"]``.

    Records of the generic experiment (their config has an ``engine`` block;
    ``research.sweep.run_batch`` writes their rows) must have ``research.rows.ROW_METRICS``
    and one column per batched axis of their ``sweep`` block
    (``research.rows.row_columns``). Other records only need columns of equal length.
    """
    if not isinstance(config.get("engine"), dict):
        return []
    from research.rows import ROW_METRICS, row_columns

    spec = config.get("sweep") or {}
    return row_columns(spec) if isinstance(spec, dict) else list(ROW_METRICS)


_SCALARS: tuple[set[type], ...] = ({int, float}, {bool}, {str})
"""The kinds of value a column without a ``COLUMN_TYPES`` type may hold, one per column."""
_TYPED: dict[str, tuple[set[type], str]] = {
    "number": ({int, float}, "numbers"), "boolean": ({bool}, "booleans"),
    "count": ({int}, "iteration counts (whole numbers, -1 for never)")}


def _shown(value) -> str:
    if isinstance(value, bool | int | float):
        return repr(value)
    return f"the text {value[:20]!r}" if isinstance(value, str) else _kind(value)


def _column_problem(values: list, kind: str | None, where: str) -> str | None:
    """What is wrong with the values of a column (``where`` names it): ``kind`` is its
    ``COLUMN_TYPES`` type, "number" for a sweep axis, or None: one kind of scalar (numbers,
    booleans or text), nulls allowed."""
    types = {type(v) for v in values}
    if kind is None:
        if any(types - {type(None)} <= allowed for allowed in _SCALARS):
            return None
        odd = next((v for v in values if isinstance(v, dict | list)), None)
        if odd is not None:
            return f"{RECORD_FILE} has {_kind(odd)} in {where}, which holds plain values"
        kinds = sorted({_kind(v) for v in values if v is not None})
        return f"{RECORD_FILE} mixes {' and '.join(kinds)} in {where}"
    allowed, holds = _TYPED[kind]
    if not types <= allowed:
        bad = next(v for v in values if type(v) not in allowed)
    elif kind == "count" and values and min(values) < -1:
        bad = min(values)
    else:
        return None
    return f"{RECORD_FILE} has {_shown(bad)} in {where}, which holds {holds}"


def _check_metrics(record: dict) -> str | None:
    """The scalar metrics of a record without rows that ``load`` reads as counts: each
    experiment gives its other metrics its own meaning (some count "diverged" runs)."""
    flat: dict = {}
    _flat("", record["metrics"], flat)
    for name, value in flat.items():
        if name.rsplit(".", 1)[-1] in MISSING_IF_NEGATIVE and not isinstance(value, list):
            problem = _column_problem([value], "count", f"the metric {name!r}")
            if problem:
                return problem
    return None


def _check_rows(record: dict) -> str | None:
    metrics = record["metrics"]
    if ROWS not in metrics:
        return _check_metrics(record)
    rows = metrics[ROWS]
    if not isinstance(rows, dict):
        return f"{RECORD_FILE} has metrics.rows that is {_kind(rows)}, not an object of columns"
    for name, column in rows.items():
        if not isinstance(column, list):
            return f"{RECORD_FILE} has a column {name!r} in metrics.rows that is not a list"
    lengths = sorted({len(c) for c in rows.values()})
    if len(lengths) > 1:
        return (f"{RECORD_FILE} has columns of different lengths in metrics.rows ("
                + ", ".join(f"{k}: {len(c)}" for k, c in rows.items()) + ")")
    missing = [c for c in required_columns(record["config"]) if c not in rows]
    if missing:
        return (f"{RECORD_FILE} lacks the column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} in metrics.rows")
    n = metrics.get("trajectories")
    if isinstance(n, int) and not isinstance(n, bool) and lengths and n != lengths[0]:
        return (f"{RECORD_FILE} says metrics.trajectories = {n} but metrics.rows has "
                f"{lengths[0]} rows")
    engine = isinstance(record["config"].get("engine"), dict)
    axes = set(required_columns(record["config"])) - set(COLUMN_TYPES)
    for name, column in rows.items():
        if engine:
            kind = COLUMN_TYPES.get(name) or ("number" if name in axes else None)
        else:
            kind = "count" if name in MISSING_IF_NEGATIVE else None
        problem = _column_problem(column, kind, f"the column {name!r} of metrics.rows")
        if problem:
            return problem
    return None


def _check_identity(record: dict) -> str | None:
    stored = record.get("identity")
    if stored is None or stored == job_identity(record["config"]):
        return None
    return (f"{RECORD_FILE} has a config that does not give its identity {stored} (edited "
            f"after the run, or written for another job)")


def _check_traces(arrays: dict, rows: int | None) -> str | None:
    """Every trace holds numbers; in a record of ``rows`` rows, "iterations" (when present)
    is one axis and every other trace has the rows on its first axis and, with
    "iterations", the recorded iterates on its second: each row gets its own trace."""
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biufc":
            return f"{TRACES_FILE} holds {name!r} of type {arr.dtype}, not numbers"
    if rows is None:
        return None
    its = arrays.get("iterations")
    if its is not None and its.ndim != 1:
        return f"{TRACES_FILE} has 'iterations' of shape {its.shape}, not one axis"
    want = (rows,) if its is None else (rows, len(its))
    for name, arr in arrays.items():
        if name != "iterations" and arr.shape[:len(want)] != want:
            what = "rows" if its is None else "rows x recorded iterates"
            return (f"{TRACES_FILE} has {name!r} of shape {arr.shape}, where the record's "
                    f"{what} need {want}")
    return None


def _parse(directory: Path) -> tuple[dict | None, str | None]:
    """(record, None) when ``record.json`` is a JSON object with the keys of their types,
    else (None, the problem)."""
    path = directory / RECORD_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, f"{RECORD_FILE} is missing"
    except (OSError, UnicodeDecodeError) as err:
        return None, f"{RECORD_FILE} cannot be read ({err})"
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as err:
        if not text.strip():
            what = "is empty"
        elif err.pos >= len(text.rstrip()) or err.msg.startswith("Unterminated"):
            what = "is truncated"  # the text ends before the JSON value does
        else:
            what = "is not valid JSON"
        return None, (f"{RECORD_FILE} {what} ({err.msg}: line {err.lineno}, column "
                      f"{err.colno})")
    if not isinstance(raw, dict):
        return None, f"{RECORD_FILE} holds {_kind(raw)}, not a record (a JSON object)"
    for key, kind in REQUIRED.items():
        if key not in raw:
            return None, f"{RECORD_FILE} has no {key!r} field"
        if not isinstance(raw[key], kind):
            return None, (f"{RECORD_FILE} has a {key!r} field that is {_kind(raw[key])}, "
                          f"not {_kind(kind())}")
    for key, kinds in OPTIONAL.items():
        value = raw.get(key)
        if key in raw and (not isinstance(value, kinds) or isinstance(value, bool)):
            return None, f"{RECORD_FILE} has a {key!r} field that is {_kind(value)}"
    return from_plain(raw), None


def _inspect(directory: Path) -> tuple[dict | None, dict | None, str | None]:
    """(record, traces, None) for a complete record, else (…, …, the problem)."""
    record, problem = _parse(directory)
    if record is None:
        return None, None, problem
    problem = _check_identity(record) or _check_rows(record)
    if problem:
        return record, None, problem
    tpath = directory / TRACES_FILE
    if not tpath.exists():
        return record, {}, None
    try:
        with np.load(tpath, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                return record, None, f"{TRACES_FILE} is not an npz archive"
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        return record, None, (f"{TRACES_FILE} is truncated or corrupt ("
                              f"{type(err).__name__}: {err})")
    rows = record["metrics"].get(ROWS)
    problem = _check_traces(arrays, None if rows is None else
                            len(next(iter(rows.values()), [])))
    return record, (None if problem else arrays), problem


def check_record(directory: str | os.PathLike) -> str | None:
    """None when ``directory`` holds a complete record, else the problem, one phrase that
    starts with the file it concerns (e.g. "record.json is truncated (...)").

    Complete means: ``record.json`` parses to a JSON object with the ``REQUIRED`` keys of
    the right types (and ``OPTIONAL`` ones, when present, of theirs); its ``identity``, when
    present, is ``job_identity`` of its config (a config edited after the run is not the
    job's); when it has ``metrics["rows"]``, they are columns (lists) of equal length,
    including every column of ``required_columns(config)`` and as many rows as
    ``metrics["trajectories"]`` says, and every column has its type (in an engine record
    ``COLUMN_TYPES`` and numbers for a sweep axis; elsewhere one kind of scalar, nulls
    allowed); a column or scalar metric named in ``MISSING_IF_NEGATIVE`` holds counts
    (whole numbers >= -1); and ``traces.npz``, when present, is an npz archive whose arrays
    all load and hold numbers and, with rows, give each row its own trace: the rows on the
    first axis and the recorded iterates (the one axis of "iterations", which is shared) on
    the second. This is the one notion of a whole record: ``read_record`` and ``load``
    refuse or skip what it refuses, and resuming a sweep re-runs it. A rewrite killed
    between its renames is read where it left the record (``recover``).
    """
    return _inspect(_located(Path(directory)))[2]


def is_complete(directory: str | os.PathLike) -> bool:
    """True when ``directory`` holds a complete record (``check_record`` finds nothing)."""
    return check_record(directory) is None


def read_record(directory: str | os.PathLike,
                traces: bool = True) -> tuple[dict, dict[str, np.ndarray] | None]:
    """Read a record written by ``write_record``: (record dict, traces dict, or None when
    ``traces`` is False). Non-finite floats come back as floats.

    Raises:
      FileNotFoundError: no ``record.json`` in ``directory``.
      RecordError: the record is not complete (see ``check_record``); the message names the
        directory, the file and the problem.
    """
    directory = Path(directory)
    source = _located(directory)
    if not (source / RECORD_FILE).exists():
        raise FileNotFoundError(
            f"no run record at {directory}: run the experiment that writes it first.")
    record, arrays, problem = _inspect(source)
    if problem or record is None:
        raise RecordError(f"incomplete run record at {directory}: {problem}.", directory,
                          str(problem))
    return record, (arrays if traces else None)


# --------------------------------------------------------------------------- tables


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


def _natural_name(name: str):
    return (0, int(name), "") if name.isdigit() else (1, 0, name)


def _natural(path: Path):
    return [_natural_name(p) for p in path.parts]


def _interrupted(names: set[str]) -> list[str]:
    """The jobs among a directory's entry ``names`` whose rewrite was killed between its two
    renames: ``.<job>.old-<token>`` and ``.<job>.tmp-<token>`` there, ``<job>`` not."""
    out = []
    for name in names:
        job, sep, token = name.rpartition(".old-")
        if (sep and job.startswith(".") and not job.startswith("..")
                and f"{job}.tmp-{token}" in names and job[1:] not in names):
            out.append(job[1:])
    return out


def record_dirs(path: str | os.PathLike) -> list[Path]:
    """The record directories at or below ``path``, in natural order (``path`` first, 2
    before 10): every directory that holds ``record.json``, ``path`` included, hidden ones
    excluded. Links to directories are followed, as resuming a sweep follows a linked job
    directory; a directory reached twice (a link to another job of the sweep, a loop) is
    listed once, under its first path. A job whose rewrite was killed between its renames is
    listed under its own name (``read_record`` finds the record). Complete or not: see
    ``check_record``."""
    path = Path(path)
    if not path.is_dir():
        if _located(path) != path:
            return [path]
        raise FileNotFoundError(f"no run record or sweep directory at {path}.")
    found, seen = [], set()
    for top, dirs, files in os.walk(path, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            dirs[:] = []  # walked already: a link back into the sweep
            continue
        seen.add(real)
        names = {*dirs, *files}
        if RECORD_FILE in names:
            found.append(Path(top))
        found += [Path(top, job) for job in _interrupted(names)]
        # sorted, so that of two paths to one directory the first in natural order is kept
        dirs[:] = sorted((d for d in dirs if not d.startswith(".")), key=_natural_name)
    if not found:
        raise FileNotFoundError(f"no run records under {path}: run the sweep first.")
    return sorted(found, key=lambda p: _natural(p.relative_to(path)))


def _table(record: dict, arrays: dict | None, rel: str):
    import pandas as pd

    metrics = record["metrics"]
    skip = ("out", "sweep") if ROWS in metrics else ("out",)
    config: dict = {}
    _flat("", {k: v for k, v in record["config"].items() if k not in skip}, config)
    if ROWS in metrics:
        table = pd.DataFrame(metrics[ROWS])
    else:
        flat: dict = {}
        _flat("", metrics, flat)
        table = pd.DataFrame([{k: v for k, v in flat.items() if not isinstance(v, list)}])
    table = table.infer_objects()
    fixed = {k: [v] * len(table) for k, v in config.items() if k not in table.columns}
    table = pd.concat([pd.DataFrame(fixed, index=table.index), table], axis=1)
    if arrays is not None:
        n = len(table)
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            if ROWS in metrics:  # check_record: every trace but "iterations" has the rows first
                split = name != "iterations"
            else:
                split = arr.ndim >= 1 and arr.shape[0] == n and name != "iterations"
            table[f"trace.{name}"] = list(arr) if split else [arr] * n
    table.insert(0, "trajectory", np.arange(len(table)))
    # the code identity of each row, so that a resumed sweep's mixed versions show
    table.insert(1, "git_commit", record.get("git_commit"))
    table.insert(0, "record", rel)
    return table


def _typed(table):
    """-1 ("never") in the ``MISSING_IF_NEGATIVE`` columns becomes ``pd.NA`` (Int64)."""
    import pandas as pd

    for column in table.columns:
        if str(column).rsplit(".", 1)[-1] not in MISSING_IF_NEGATIVE:
            continue
        s = table[column]
        if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
            continue
        if pd.api.types.is_float_dtype(s) and not (s.isna() | (s == s.round())).all():
            continue
        s = s.astype("Int64")
        s[(s < 0).fillna(False).astype(bool)] = pd.NA
        table[column] = s
    return table


def load(paths, traces: bool = False):
    """Gather run records into one ``pandas.DataFrame``, one row per trajectory.

    Args:
      paths: a record directory, a sweep directory (searched recursively for records), or a
        list of them.
      traces: also add a column per trace ("trace.f", "trace.grad_norm", ...), each cell
        the trajectory's array.

    Returns:
      A DataFrame with the columns "record" (the record's path relative to the directory it
      was found in), "trajectory" (its index within the record), "git_commit" (the code
      that made it: ``git_commit()`` when the record was written), every config field
      flattened with dots ("problem.name", "optimizer.eta", ...; a batched sweep axis
      replaces the field it sweeps), and the metrics. Records without per-trajectory rows
      give one row, with their scalar metrics flattened. Rows are in job order. Numbers
      keep their type (floats with nan and inf included); "iterations_to_eps" and
      "diverged_at" are nullable integers, ``pd.NA`` where the engine says -1 (never
      reached eps, never diverged).

    A sweep directory gives every record at or below it (``record_dirs``): one at its top
    too (its rows' "record" is "."), and linked job directories, as resuming follows them.
    Incomplete records (see ``check_record``: damaged files, a config edited after its run,
    a value or trace of the wrong type or shape) found in a sweep directory are not loaded:
    each is named in a ``RecordWarning``; a record directory named in ``paths`` (one with no
    record below it) that is incomplete raises ``RecordError``.
    """
    import pandas as pd

    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    frames, skipped = [], []
    for root in map(Path, paths):
        found = record_dirs(root)
        explicit = found == [root]
        for directory in found:
            try:
                record, arrays = read_record(directory, traces=traces)
            except (RecordError, FileNotFoundError) as err:
                if explicit:
                    raise
                skipped.append(directory)
                warnings.warn(f"skipped {err}", RecordWarning, stacklevel=2)
                continue
            rel = directory.relative_to(root).as_posix() if directory != root else "."
            frames.append(_table(record, arrays, rel))
    if not frames:
        raise RecordError(f"no complete run records in {', '.join(map(str, paths))}: "
                          f"{len(skipped)} incomplete ones skipped.")
    return _typed(pd.concat(frames, ignore_index=True))
