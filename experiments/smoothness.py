"""Local smoothness against gradient norm along training, per model x regime: the data of
the paper's Figures 1-3 and of the correlation table."""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments._common import Progress, hydra_entry, write
from research import _validate, optimizers, problems, smoothness

REGIMES = smoothness.REGIMES[:3]
"""The regimes every model runs (``momentum_clip`` runs for ``momentum_models`` only)."""


def optimizer_for(regime: str, m: dict, momentum: float):
    """The optimizer of one regime (clipping = global-norm clipping of the gradient)."""
    if regime == "large_lr_clip":
        return optimizers.clipped_gd(m["lr_large"], m["clip"])
    if regime == "small_lr":
        return optimizers.gd(m["lr_small"])
    if regime == "small_lr_clip":
        return optimizers.clipped_gd(m["lr_small"], m["clip"])
    if regime == "momentum_clip":
        return optimizers.sgd_momentum(m["lr_small"], momentum, global_clipnorm=m["clip"])
    raise ValueError(f"regimes must be among {', '.join(REGIMES)}; got {regime!r}.")


def run(cfg: DictConfig) -> None:
    steps = _validate.positive_int("steps", cfg.steps)
    log_every = _validate.positive_int("log_every", cfg.log_every)
    if steps % log_every:
        raise ValueError(f"log_every must divide steps; got steps={steps}, "
                         f"log_every={log_every}.")
    hvp_iters = _validate.positive_int("hvp_iters", cfg.hvp_iters)
    momentum = float(_validate.in_interval("momentum", cfg.momentum, 0.0, 1.0))
    regimes = list(cfg.regimes)
    for r in regimes:
        _validate.choice("regimes", r, REGIMES)
    models = OmegaConf.to_container(cfg.models, resolve=True)
    for name in cfg.run_models:
        _validate.choice("run_models", name, tuple(models))
    models = {name: models[name] for name in cfg.run_models}
    for name in cfg.momentum_models:
        _validate.choice("momentum_models", name, tuple(cfg.models))
    built = {}
    for name, m in models.items():
        for key in ("lr_large", "lr_small", "clip"):
            _validate.positive(f"models.{name}.{key}", m[key])
        try:
            built[name] = problems.get(m["problem"], **m.get("args", {}))
        except (ValueError, TypeError) as err:
            raise ValueError(f"models.{name}: {err}") from None
    say = Progress("smoothness")
    metrics, traces = {"steps": steps, "log_every": log_every, "hvp_iters": hvp_iters,
                       "models": list(models), "runs": {}}, {}
    for name, problem in built.items():
        m = models[name]
        todo = regimes + (["momentum_clip"] if name in cfg.momentum_models else [])
        for regime in todo:
            opt = optimizer_for(regime, m, momentum)
            out = smoothness.along_training(problem, opt, steps, log_every, key=cfg.seed,
                                            hvp_iters=hvp_iters)
            key = f"{name}/{regime}"
            for series in ("iteration", "loss", "grad_norm", "used_grad_norm",
                           "smoothness_traj", "smoothness_hess"):
                traces[f"{key}/{series}"] = out[series]
            stats = {}
            for est in ("traj", "hess"):
                g, L = out["grad_norm"], out[f"smoothness_{est}"]
                corr = smoothness.log_correlations(g, L)
                ok = np.isfinite(g) & np.isfinite(L)
                L0, L1 = smoothness.fit_envelope(g[ok], L[ok]) if ok.any() else (None, None)
                stats[est] = {**corr, "L0": L0, "L1": L1}
            loss = out["loss"]
            metrics["runs"][key] = {
                "model": name, "regime": regime, "problem": problem.description,
                "optimizer": {"regime": regime, "lr": m["lr_large" if regime ==
                                                         "large_lr_clip" else "lr_small"],
                              "clip": None if regime == "small_lr" else m["clip"],
                              "momentum": momentum if regime == "momentum_clip" else 0.0},
                "diverged_at": out["diverged_at"],
                "loss_first": float(loss[0]),
                "loss_last": float(loss[np.isfinite(loss)][-1]) if np.isfinite(loss).any()
                else None,
                **{f"{est}": s for est, s in stats.items()},
            }
            s = stats["traj"]
            div = "" if out["diverged_at"] < 0 else f" DIVERGED at {out['diverged_at']}"
            say(f"{key:22s} loss {loss[0]:.3g} -> {metrics['runs'][key]['loss_last']:.3g}{div}; "
                f"log L vs log |g|: spearman {s['spearman']:+.2f}, slope {s['slope']:+.2f}; "
                f"hessian spearman {stats['hess']['spearman']:+.2f}")
    write(cfg, say, metrics, traces)


main = hydra_entry("smoothness", run)

if __name__ == "__main__":
    main()
