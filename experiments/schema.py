"""Structured-config schemas for ``experiments.run``, registered in Hydra's ConfigStore.

The schema of each problem and optimizer is derived from its factory's signature
(``research.problems`` registry, ``research.optimizers.FACTORIES``), so a config can name
exactly the factory's arguments, with the factory's types and defaults. The YAML options in
``conf/problem/`` and ``conf/optimizer/`` extend these schemas (``/schema/<group>/<name>``),
and Hydra type-checks every field and every override against them.

One learning-rate name: ``optimizer.lr`` is accepted by every family that has a step size
and means its own parameter (``eta`` for clipped and normalized GD, ``learning_rate`` for an
optax target); ``canonical`` writes it under that name before a job is identified or
recorded, so a record states the family's parameter and either spelling is one job.

An optax target: ``optimizer=optax optimizer._target_=optax.adam optimizer.learning_rate=...``
(or a ``conf/optimizer/<name>.yaml`` with ``_target_``) names any optax
``GradientTransformation`` factory. Its node is open (``target_schema``) since its arguments
are the target's, checked against the target's signature when the job is built
(``target_factory``, ``target_kwargs``).

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
import importlib
import inspect
import json
import sys
import typing
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

CATALOGUE_FILE = Path(__file__).resolve().parent / "catalogue.json"
KINDS = ("problem", "optimizer")
_SIMPLE = (int, float, str, bool)
ALIAS = "lr"
"""The one learning-rate name every family with a step size accepts (``step_size_arg``)."""
STEP_SIZE_ARGS = ("lr", "eta")
"""A family's step size is its first argument of these names (the papers say eta)."""
TARGET = "_target_"
TARGET_STEP_SIZE = "learning_rate"
"""The step size of optax's factories (``optax.sgd``, ``optax.adam``, ...)."""
TARGET_OPTION = "optax"
"""The optimizer option and schema whose node names an optax factory in ``_target_``."""


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
    dict field of that name, passed on as keywords. An optimizer whose step size has another
    name gets the alias ``lr`` too (None: not given; see ``canonical``).
    """
    fields: list = [("name", str, dataclasses.field(default=name))]
    for a in entry:
        if a["type"] == "kwargs":
            fields.append((a["arg"], dict[str, Any], dataclasses.field(default_factory=dict)))
            continue
        fields.append((a["arg"], _TYPES[a["type"]],
                       dataclasses.field(default=a.get("default", MISSING))))
    own = _step_size(entry) if kind == "optimizer" else None
    if own not in (None, ALIAS):
        fields.append((ALIAS, Optional[float], dataclasses.field(default=None)))  # noqa: UP045
    title = "".join(part.title() for part in name.split("_"))
    return dataclasses.make_dataclass(f"{title}{kind.title()}Config", fields)


def _step_size(entry: list[dict]) -> str | None:
    args = [a["arg"] for a in entry]
    return next((a for a in STEP_SIZE_ARGS if a in args), None)


def step_size_arg(node: dict) -> str | None:
    """The argument ``optimizer.lr`` stands for in the optimizer config node ``node``: its
    family's step size, an optax target's ``learning_rate``; None for a family without one
    (``l0l1_gd`` takes its step from L0 and L1)."""
    if TARGET in node:
        return TARGET_STEP_SIZE
    return _step_size(load_catalogue()["optimizer"].get(node.get("name"), []))


def canonical(config: dict) -> dict:
    """``config`` (plain data with ``optimizer`` and ``sweep``) with the alias ``optimizer.lr``
    written as the optimizer's own step-size argument, in its node and in the sweep block
    (axis order kept), and a null alias dropped: what a job is identified and recorded by,
    so that a record states the family's own parameter and ``lr=`` or ``eta=`` is one job.
    Needs no JAX (the finished-sweep check calls it)."""
    node = config.get("optimizer")
    own = step_size_arg(node) if isinstance(node, dict) else None
    if own is None or own == ALIAS:
        return config
    node = dict(node)
    value = node.pop(ALIAS, None)
    if value is not None:
        node[own] = value
    return {**config, "optimizer": node, "sweep": _renamed_axis(config.get("sweep"), own)}


def _renamed_axis(block, own: str):
    """A sweep block (nested or dotted keys) with the axis ``optimizer.lr`` renamed to
    ``optimizer.<own>``; both present is refused, since one would silently win."""
    if not isinstance(block, dict):
        return block
    flat = {**{f"optimizer.{k}": v for k, v in (block.get("optimizer") or {}).items()},
            **{k: v for k, v in block.items() if k.startswith("optimizer.")}}
    if f"optimizer.{ALIAS}" in flat and f"optimizer.{own}" in flat:
        raise ValueError(f"sweep.optimizer.{ALIAS} and sweep.optimizer.{own} both sweep the "
                         f"step size (optimizer.{ALIAS} means optimizer.{own} here); give one.")
    out: dict = {}
    for key, value in block.items():
        if key == "optimizer" and isinstance(value, dict):
            out[key] = {(own if k == ALIAS else k): v for k, v in value.items()}
        else:
            out[f"optimizer.{own}" if key == f"optimizer.{ALIAS}" else key] = value
    return out


def label(node) -> str:
    """How a progress line names the optimizer of config node ``node``."""
    keys = list(node.keys())
    return str(node[TARGET]) if TARGET in keys else str(node["name"])


def target_schema():
    """The schema of an optax target's node: ``name`` and ``_target_``, open to the
    target's own arguments (a struct node would need ``+optimizer.<arg>=``); build checks
    them against the target's signature."""
    return OmegaConf.create({"name": TARGET_OPTION, TARGET: MISSING}, flags={"struct": False})


def target_factory(node: dict):
    """The factory ``node['_target_']`` names. Raises ``ValueError`` naming
    ``optimizer._target_`` when it is not importable, not callable, or declared to return
    something other than an optax ``GradientTransformation`` (its result is checked too,
    by ``research.sweep.prepare``)."""
    import optax

    path = node.get(TARGET)
    hint = "give the dotted path of an optax GradientTransformation factory, e.g. " \
           "optimizer._target_=optax.adam"
    if not isinstance(path, str) or not path or path == MISSING:
        raise ValueError(f"optimizer._target_ is not set; {hint}.")
    module, _, attr = path.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"optimizer._target_={path} is not importable ({err}); "
                         f"{hint}.") from None
    if not callable(factory):
        raise ValueError(f"optimizer._target_={path} is a {type(factory).__name__}, not an "
                         f"optax GradientTransformation factory; {hint}.")
    try:
        returns = inspect.signature(factory).return_annotation
    except (TypeError, ValueError):  # a builtin without a signature: its result is checked
        returns = inspect.Signature.empty
    declared = (returns is inspect.Signature.empty
                or (isinstance(returns, str) and "GradientTransformation" in returns)
                or (isinstance(returns, type) and issubclass(returns,
                                                             optax.GradientTransformation)))
    if not declared:
        raise ValueError(f"optimizer._target_={path} is not an optax GradientTransformation "
                         f"factory (it returns {getattr(returns, '__name__', returns)}); "
                         f"{hint}.")
    return factory


def target_kwargs(factory, node: dict) -> dict:
    """The keyword arguments for an optax target from its node; an argument the target does
    not take, or a required one not given, is one ``ValueError`` naming the allowed ones."""
    path, given = node[TARGET], {k: v for k, v in node.items() if k not in ("name", TARGET)}
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return given
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        unknown = [k for k in given if k not in names]
        if unknown:
            raise ValueError(f"optimizer.{unknown[0]} is not an argument of {path}; allowed: "
                             f"{', '.join(names)}.")
    needed = [p.name for p in params if p.name in names and p.default is p.empty
              and p.name not in given]
    if needed:
        raise ValueError(f"optimizer.{needed[0]} is required by {path}; give "
                         f"optimizer.{needed[0]}=<value>.")
    return given


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
    cs.store(group="schema/optimizer", name=TARGET_OPTION, node=target_schema())
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
