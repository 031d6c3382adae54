"""Structured-config schemas for ``experiments.run``, registered in Hydra's ConfigStore.

The schema of each problem and optimizer is derived from its factory's signature
(``research.problems`` registry, ``research.optimizers.FACTORIES``), so a config can name
exactly the factory's arguments, with the factory's types and defaults. The YAML options in
``conf/problem/`` and ``conf/optimizer/`` extend these schemas (``/schema/<group>/<name>``),
and Hydra type-checks every field and every override against them.

The signatures are read once and kept in ``experiments/catalogue.json`` (``python -m
experiments.schema`` writes it), so that composing a config needs neither JAX nor the
problem modules: a finished sweep is recognised and skipped in about a second. A job that
runs checks its own problem's and optimizer's entries against the live signatures first, and
a test checks the whole file, so a catalogue that a changed factory made stale is named, not
trusted.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.json"
KINDS = ("problem", "optimizer")
_SIMPLE = (int, float, str, bool)


class Progress(enum.Enum):
    """When to draw a progress bar: on a terminal outside CI (auto), always, never."""

    auto = "auto"
    on = "on"
    off = "off"


@dataclasses.dataclass
class EngineConfig:
    """Settings of ``research.engine.run``."""

    steps: int = 1000
    eps: Optional[float] = None  # noqa: UP045 (OmegaConf reads typing.Optional)
    record_every: int = 10
    stop_at_eps: bool = False
    seed: int = 0
    max_memory_gb: float = 4.0
    max_record_gb: float = 2.0


@dataclasses.dataclass
class RunConfig:
    """The generic experiment: problem x optimizer x engine, plus a batched ``sweep``."""

    problem: Any = MISSING
    optimizer: Any = MISSING
    engine: EngineConfig = dataclasses.field(default_factory=EngineConfig)
    x0: Any = None
    sweep: dict[str, Any] = dataclasses.field(default_factory=dict)
    resume: bool = True
    rerun_stale: bool = False
    progress: Progress = Progress.auto
    out: str = "${hydra:runtime.output_dir}"


def _field_type(annotation, default) -> str:
    """The catalogue's name of a factory argument's config type: int, float, str, bool,
    Optional[<one of those>], or Any."""
    if annotation in _SIMPLE:
        return annotation.__name__
    args = typing.get_args(annotation)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] in _SIMPLE:
            return f"Optional[{rest[0].__name__}]"
    if default is not inspect.Parameter.empty and type(default) in _SIMPLE:
        return type(default).__name__
    return "Any"


_TYPES = {**{t.__name__: t for t in _SIMPLE}, "Any": Any,
          **{f"Optional[{t.__name__}]": Optional[t] for t in _SIMPLE}}  # noqa: UP045


def _var_keyword(factory) -> str | None:
    for p in inspect.signature(inspect.unwrap(factory)).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return p.name
    return None


def signature_entry(factory) -> list[dict]:
    """One catalogue entry: a factory's arguments as ``{"arg", "type"[, "default"]}`` (no
    default: required), a ``**kwargs`` argument as type "kwargs"."""
    fn = inspect.unwrap(factory)
    hints = typing.get_type_hints(fn)
    out = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            out.append({"arg": p.name, "type": "kwargs"})
            continue
        entry = {"arg": p.name, "type": _field_type(hints.get(p.name, float), p.default)}
        if p.default is not p.empty:
            entry["default"] = p.default
        out.append(entry)
    return out


def live_catalogue() -> dict:
    """The catalogue read from the factories themselves (imports JAX and every problem)."""
    from research import optimizers

    return {"problem": {name: signature_entry(f) for name, f in problem_factories().items()},
            "optimizer": {name: signature_entry(f) for name, f in optimizers.FACTORIES.items()}}


def load_catalogue() -> dict:
    """The committed catalogue (``experiments/catalogue.json``)."""
    return json.loads(CATALOGUE_FILE.read_text())


def check_entry(kind: str, name: str, factory) -> None:
    """Raise ``ValueError`` when the catalogue's entry for ``factory`` is not its signature
    (a factory changed since ``python -m experiments.schema`` last ran)."""
    stored = load_catalogue().get(kind, {}).get(name)
    if stored != signature_entry(factory):
        raise ValueError(
            f"{kind}.name: experiments/catalogue.json does not match the {kind} factory "
            f"{name!r} (its arguments changed); run `python -m experiments.schema` to "
            "rewrite the catalogue.")


def schema(kind: str, name: str, entry: list[dict]) -> type:
    """A dataclass with ``name`` plus one typed field per argument of a catalogue entry.

    Arguments without a default are required (``???``); a ``**kwargs`` argument becomes a
    dict field of that name, passed on as keywords.
    """
    fields: list = [("name", str, dataclasses.field(default=name))]
    for a in entry:
        if a["type"] == "kwargs":
            fields.append((a["arg"], dict[str, Any], dataclasses.field(default_factory=dict)))
            continue
        fields.append((a["arg"], _TYPES[a["type"]],
                       dataclasses.field(default=a.get("default", MISSING))))
    title = "".join(part.title() for part in name.split("_"))
    return dataclasses.make_dataclass(f"{title}{kind.title()}Config", fields)


def factory_kwargs(factory, node: dict) -> dict:
    """The keyword arguments for ``factory`` from its config node (a plain dict)."""
    kwargs = {k: v for k, v in node.items() if k != "name"}
    extra = _var_keyword(factory)
    if extra is not None:
        kwargs.update(kwargs.pop(extra, None) or {})
    return kwargs


def problem_factories() -> dict:
    from research.problems import base as problem_registry

    return {name: problem_registry.factory(name) for name in problem_registry.names()}


def register() -> None:
    """Store the run schema and every problem and optimizer schema (from the catalogue) in
    the ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    catalogue = load_catalogue()
    for kind in KINDS:
        for name, entry in catalogue[kind].items():
            cs.store(group=f"schema/{kind}", name=name, node=schema(kind, name, entry))


def main() -> int:
    """Write ``experiments/catalogue.json`` from the factories' signatures."""
    catalogue = live_catalogue()
    CATALOGUE_FILE.write_text(catalogue_text(catalogue))
    print(f"[schema] wrote {CATALOGUE_FILE}: "
          + ", ".join(f"{len(v)} {k}s" for k, v in catalogue.items()))
    return 0


def catalogue_text(catalogue: dict) -> str:
    """The catalogue as JSON, one factory per line (a changed factory is a one-line diff)."""
    kinds = []
    for kind in KINDS:
        rows = [f"  {json.dumps(name)}: {json.dumps(entry)}"
                for name, entry in sorted(catalogue[kind].items())]
        kinds.append(f' {json.dumps(kind)}: {{\n' + ",\n".join(rows) + "\n }")
    return "{\n" + ",\n".join(kinds) + "\n}\n"


if __name__ == "__main__":
    sys.exit(main())
