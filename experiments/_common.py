"""What every experiment entry point shares: the Hydra wrapper that turns a bad config value
into one line on stderr and exit code 2, and the progress line."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import hydra
from omegaconf import DictConfig

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def hydra_entry(config_name: str, run: Callable[[DictConfig], None]) -> Callable[[], None]:
    """A Hydra main for ``conf/<config_name>.yaml`` that calls ``run(cfg)``.

    A ``ValueError`` (bad config value, raised before any compute) becomes one sentence on
    stderr and exit status 2; nothing is written because records are written last.
    """

    @hydra.main(version_base=None, config_path=str(CONF_DIR), config_name=config_name)
    def main(cfg: DictConfig) -> None:
        try:
            run(cfg)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    return main


def write(cfg: DictConfig, say, metrics: dict, traces: dict | None = None) -> None:
    """Write the run record of ``cfg`` (resolved) to ``cfg.out`` and say where."""
    from omegaconf import OmegaConf

    from research import results

    out = results.write_record(cfg.out, config=OmegaConf.to_container(cfg, resolve=True),
                               metrics=metrics, traces=traces)
    say(f"wrote {out}")


def threshold_metrics(say, apply, params, data, lr: float, momentum: float, multiples,
                      mean_gn: float, epochs: int, batch_size: int, key: str) -> dict:
    """Pascanu's heuristic: train at global-norm thresholds ``multiples`` x the mean pre-clip
    gradient norm, say the progress line (``key`` names the loss reported), return the
    metrics."""
    import numpy as np

    from research import training

    t = training.threshold_sweep(apply, params, data, lr, momentum,
                                 np.asarray(multiples) * mean_gn, epochs, batch_size)
    out = {"mean_preclip_grad_norm": mean_gn, "multiples": multiples, **t}
    say(sweep_line(out, key))
    return out


def sweep_line(t: dict, key: str) -> str:
    """One progress line for a threshold sweep's results."""
    return (f"threshold sweep (global norm; mean pre-clip |g| {t['mean_preclip_grad_norm']:.4g})"
            f": divergence, {key.replace('_', ' ')}: " + ", ".join(
                f"{m:g}x {100 * d:.0f}% {'-' if f is None else round(f, 3)}"
                for m, d, f in zip(t["multiples"], t["divergence_rate"], t[key], strict=True)))


class Progress:
    """Progress lines with elapsed time: ``[name] 12.3s message``."""

    def __init__(self, name: str):
        self.name = name
        self.t0 = time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[{self.name}] {time.perf_counter() - self.t0:6.1f}s {message}", flush=True)
