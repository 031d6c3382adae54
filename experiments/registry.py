"""The experiments, each declared once in its own module as ``EXPERIMENT = Experiment(...)``.

Everything that lists experiments derives from these declarations: the Makefile's records and
figures (``python -m experiments.deps``), the quick pipeline, the figure index, the records'
schemas and the dependency graph. Adding an experiment touches its own files only:
``experiments/<name>.py``, ``conf/<name>.yaml``, ``paper_figures/<figure>.py`` and, for its
claims, a module of ``experiments/claims/`` (docs/extending.md walks through it).

Two readings of the same declarations:
- ``declared()`` reads the literal fields (name, order, figures, seconds) from the source
  with ``ast``, without importing anything: the Makefile's list costs no JAX start-up.
- ``get(name)`` imports the module and returns its ``Experiment`` (run, result, quick).
A test keeps the two equal.
"""

from __future__ import annotations

import ast
import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS_DIR = ROOT / "experiments"
FIGURES_DIR = ROOT / "paper_figures"
CONF_DIR = ROOT / "conf"
LITERAL_FIELDS = ("name", "order", "figures", "seconds")
"""The fields ``declared()`` reads from the source: each must be written as a literal."""


@dataclass(frozen=True)
class Experiment:
    """One experiment's declaration.

    Attributes:
      name: the module's name; its config is ``conf/<name>.yaml`` and its record
        ``results/<name>/record.json``.
      run: ``run(cfg, tk=REAL)``, writing the record.
      order: its place in the figure index (theory first, then practice); ties by name.
      figures: the figure scripts ``paper_figures/<figure>.py`` it owns. A figure may read
        other experiments' records too: the script's ``records=`` says which.
      result: the ``TypedDict`` of the record's ``metrics`` (None: not checked).
      quick: config overrides for the smoke-test size (``make figures-quick``, the tests).
      seconds: rough (full, quick) durations on 2 cores; only the order of work follows from
        them (the slowest first, so that parallel workers finish together).
      bigger: (overrides, why): what a bigger machine would run instead of the committed
        sizes, which ``make figures`` keeps within 10 minutes on 2 cores (the figure index
        lists them); None: the committed sizes are the paper's.
      mutation: config overrides (on top of ``quick``) for the mutation suite
        (``experiments/mutants.py``), which re-runs the experiment with wrong variants of the
        library that its gating claims must catch; None: the suite does not run it.
      placement: config keys that say where and in which part a run executes (a shard of
        a multirun), not what it computes: the record leaves them out, and the committed
        sizes are compared without them.
    """

    name: str
    run: Callable[..., Any]
    order: int
    figures: tuple[str, ...] = ()
    result: type | None = None
    quick: Mapping[str, Any] = field(default_factory=dict)
    seconds: tuple[float, float] = (60.0, 10.0)
    mutation: Mapping[str, Any] | None = None
    bigger: tuple[str, str] | None = None
    placement: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_files(f"experiment {self.name!r}", self.name, self.figures)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _literal_declaration(path: Path) -> dict | None:
    """The literal fields of ``EXPERIMENT = Experiment(...)`` in ``path``, or None."""
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, call = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, call = node.target, node.value
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id == "EXPERIMENT"):
            continue
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "Experiment"):
            raise ValueError(f"{_shown(path)}: EXPERIMENT must be an "
                             "Experiment(...) call.")
        out: dict[str, Any] = {"figures": (), "seconds": (60.0, 10.0)}
        for kw in call.keywords:
            if kw.arg in LITERAL_FIELDS:
                try:
                    out[kw.arg] = ast.literal_eval(kw.value)
                except ValueError:
                    raise ValueError(f"{_shown(path)}: Experiment's {kw.arg} must be "
                                     "written as a literal.") from None
        missing = [k for k in ("name", "order") if k not in out]
        if missing:
            raise ValueError(f"{_shown(path)}: Experiment(...) needs "
                             f"{' and '.join(missing)} as keyword arguments.")
        if out["name"] != path.stem:
            raise ValueError(f"{_shown(path)}: Experiment's name must be "
                             f"{path.stem!r}, the module's name; got {out['name']!r}.")
        _check_literals(_shown(path), out)
        out["figures"] = tuple(out["figures"])
        out["seconds"] = tuple(float(s) for s in out["seconds"])
        return out
    return None


def _check_literals(where: str, decl: dict) -> None:
    """One sentence naming the field of a declaration whose literal has the wrong type, the
    missing config, or the missing figure script."""
    name, order, figures, seconds = (decl[k] for k in LITERAL_FIELDS)
    if not isinstance(order, int) or isinstance(order, bool):
        raise ValueError(f"{where}: Experiment's order must be an integer; got {order!r}.")
    if not (isinstance(figures, tuple | list) and all(isinstance(f, str) for f in figures)):
        raise ValueError(f"{where}: Experiment's figures must be a tuple of figure names, "
                         f"e.g. ({name!r},); got {figures!r}.")
    if not (isinstance(seconds, tuple | list) and len(seconds) == 2
            and all(isinstance(s, int | float) and s >= 0 for s in seconds)):
        raise ValueError(f"{where}: Experiment's seconds must be (full, quick), two numbers "
                         f">= 0; got {seconds!r}.")
    _check_files(where, name, figures)


def _check_files(where: str, name: str, figures) -> None:
    """One sentence when an experiment's config or one of its figure scripts is missing."""
    if not (CONF_DIR / f"{name}.yaml").is_file():
        raise ValueError(f"{where}: conf/{name}.yaml is missing; add the experiment's config "
                         "(docs/extending.md).")
    missing = [f for f in figures if not (FIGURES_DIR / f"{f}.py").is_file()]
    if missing:
        raise ValueError(f"{where}: Experiment's figures name {', '.join(missing)}, which has "
                         f"no script paper_figures/<figure>.py; add it or drop the name.")


def declared() -> dict[str, dict]:
    """name -> literal fields of every declared experiment, in the figure index's order."""
    return dict(_declared())


@functools.cache
def _declared() -> dict[str, dict]:
    """``declared``, read once per process: parsing every module costs about 40 ms, and the
    schema check of every record written or read asks for it."""
    found = {}
    for path in sorted(EXPERIMENTS_DIR.glob("*.py")):
        if path.name.startswith("_"):
            continue
        decl = _literal_declaration(path)
        if decl is not None:
            found[decl["name"]] = decl
    owners: dict[str, str] = {}
    for name, decl in found.items():
        for fig in decl["figures"]:
            if fig in owners:
                raise ValueError(f"figure {fig!r} is declared by both {owners[fig]!r} and "
                                 f"{name!r}; one experiment owns each figure.")
            owners[fig] = name
    return dict(sorted(found.items(), key=lambda kv: (kv[1]["order"], kv[0])))


def names() -> list[str]:
    """Every experiment, in the figure index's order."""
    return list(declared())


def slowest_first(quick: bool = False) -> list[str]:
    """Every experiment, the longest first (at quick size with ``quick``)."""
    decl = declared()
    return sorted(decl, key=lambda n: (-decl[n]["seconds"][1 if quick else 0], n))


def figures() -> list[str]:
    """Every figure, in the index's order: each experiment's, in its declaration's order."""
    return [f for decl in declared().values() for f in decl["figures"]]


def figure_records(figure: str) -> tuple[str, ...]:
    """The records figure script ``paper_figures/<figure>.py`` reads (its ``records=``)."""
    path = FIGURES_DIR / f"{figure}.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "figure_cli"):
            for kw in node.keywords:
                if kw.arg == "records":
                    return tuple(ast.literal_eval(kw.value))
            return (figure,)
    raise ValueError(f"paper_figures/{figure}.py has no plotting.figure_cli(...) main.")


def get(name: str) -> Experiment:
    """The declaration of experiment ``name`` (imports its module)."""
    known = names()
    if name not in known:
        raise ValueError(f"experiment must be one of {', '.join(known)}; got {name!r}.")
    exp = importlib.import_module(f"experiments.{name}").EXPERIMENT
    if not isinstance(exp, Experiment):
        raise TypeError(f"experiments.{name}.EXPERIMENT is not an Experiment.")
    return exp


def schema(name: str) -> type | None:
    """The ``TypedDict`` of experiment ``name``'s metrics, or None (unknown or unchecked)."""
    return get(name).result if name in declared() else None
