"""A figure experiment's problems and optimizers come from the groups the sweeps use.

A figure config is a preset: ``conf/figure_base.yaml`` plus what differs. It names each problem
and optimizer it runs with a defaults entry of the ``conf/problem`` or ``conf/optimizer``
group, placed under ``problems.<key>`` or ``optimizers.<key>``::

    defaults:
      - figure_base
      - /problem@problems.quartic: quartic
      - /optimizer@optimizers.gd: gd
      - _self_
    optimizers:
      gd: {lr: 0.1}

so the fields, their defaults and their types are the ones ``python -m experiments.run``
checks, and ``made(tk.problems.quartic, cfg.problems.quartic, "problems.quartic")`` builds
the object. Step sizes
that a theorem fixes are not config: the experiment computes them from ``research.theory``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from experiments import schema
from experiments.common import CONF_DIR


def compose(name: str, *overrides: dict) -> DictConfig:
    """``conf/<name>.yaml`` as Hydra composes it (its defaults list resolved), with plain
    ``overrides`` merged on top in order: what the entry point runs, without a command line."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    schema.register()
    if GlobalHydra.instance().is_initialized():  # inside a Hydra app or after another compose
        GlobalHydra.instance().clear()
    with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
        cfg = hydra_compose(name)
    if not overrides:
        return cfg
    OmegaConf.set_struct(cfg, False)  # a size override may add an optional key (a model's regimes)
    cfg = OmegaConf.merge(cfg, *overrides)
    OmegaConf.set_struct(cfg, True)
    return cfg


def made(factory: Callable[..., Any], node, field: str) -> Any:
    """``factory`` called with the fields of the group entry ``node`` at config key ``field``
    (a problem's or an optimizer's node), ``optimizer.lr`` read as the family's own step
    size. A value the factory refuses raises ``ValueError`` naming ``field``."""
    plain = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if not isinstance(plain, dict):
        raise ValueError(f"{field} must be a mapping of arguments; got {plain!r}.")
    plain = schema.canonical({"optimizer": plain, "sweep": {}})["optimizer"]
    try:
        return factory(**schema.factory_kwargs(factory, plain))
    except (ValueError, TypeError) as err:  # factories name their argument first
        raise ValueError(f"{field}.{err}") from None


def problem_entry(field: str, node) -> tuple[str, dict]:
    """(registered name, factory arguments) of the problem group entry at ``field`` (a plain
    dict, as a network experiment's model holds it); ``ValueError`` naming ``field`` if it is
    not one."""
    if not isinstance(node, dict) or not isinstance(node.get("name"), str):
        raise ValueError(f"{field} must be an entry of conf/problem (a defaults line "
                         f"'- /problem@{field}: <name>'); got {node!r}.")
    return node["name"], {k: v for k, v in node.items() if k != "name"}
