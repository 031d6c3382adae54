"""Seed 000 in JAX: what clipnorm, global_clipnorm and clipvalue do to an MLP that blows up
without clipping; total_norm against norm_type on its gradients (seed 002); and the
threshold sweep of Pascanu's heuristic (0.1x to 20x the average gradient norm). Without
clipping the gradients overflow within the first epoch, so the average is taken over the
pre-clip gradient norms of the global_clipnorm run."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import records
from experiments.common import Progress, hydra_entry, threshold_metrics, write
from experiments.groups import made
from experiments.registry import Experiment
from research import clipping, problems, training, validate
from research.toolkit import REAL, Toolkit

KINDS = ("clipnorm", "global_clipnorm", "clipvalue")
SEED002 = [125.0, 75.0, 45.0, 15.0, 5.0]


def stacked_params(seeds: int):
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a),
                                  *[problems.mlp_init(s) for s in range(seeds)])


def summary(r: training.TrainResult) -> dict:
    ok = ~r.diverged
    return {
        "divergence_rate": float(r.diverged.mean()),
        "diverged_epoch": r.diverged_epoch.tolist(),
        "median_final_train_mse": float(np.median(r.train_loss[ok, -1])) if ok.any() else None,
        "median_final_test_mse": float(np.median(r.test_loss[ok, -1])) if ok.any() else None,
        "final_train_mse_interval": training.median_over_seeds(r.train_loss[ok, -1]),
        "final_test_mse_interval": training.median_over_seeds(r.test_loss[ok, -1]),
    }


def norm_table(tree, norm_types, tk: Toolkit) -> list[dict]:
    rows = []
    for p in norm_types:
        _, total = tk.clipping.clip_grad_norm(tree, 1.0, norm_type=p)
        t = float(total)
        rows.append({"norm_type": p, "total_norm": t, "clip_coef": min(1.0, 1.0 / (t + 1e-6))})
    return rows


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    seeds = validate.positive_int("seeds", cfg.seeds)
    epochs = validate.positive_int("epochs", cfg.epochs)
    bs = validate.positive_int("batch_size", cfg.batch_size)
    base = OmegaConf.to_container(cfg.optimizers.sgd, resolve=True)
    lr = float(validate.positive("optimizers.sgd.lr", base["lr"]))
    mom = float(validate.in_interval("optimizers.sgd.momentum", base["momentum"], 0.0, 1.0))
    variants = {}
    for name, kw in cfg.variants.items():
        kw = dict(kw or {})
        for k in kw:
            validate.choice(f"variants.{name}", k, KINDS)
        variants[name] = made(tk.optimizers.sgd_momentum, {**base, **kw},  # checks the threshold
                              f"variants.{name}")
    if "global_clipnorm" not in variants:
        raise ValueError("variants must include 'global_clipnorm': the threshold sweep scales "
                         "by the mean pre-clip gradient norm of that run.")
    norm_types = [float(p) for p in cfg.norm_types]
    for p in norm_types:
        clipping.check_norm_type(p)
    multiples = [float(validate.positive("threshold_multiples", m))
                 for m in cfg.threshold_multiples]
    say = Progress("clipping_mlp")
    data = problems.regression_data()
    params = stacked_params(seeds)
    traces, metrics = {}, {"seeds": seeds, "variants": {}}
    for i, (name, opt) in enumerate(variants.items()):
        r = training.train(problems.mlp_apply, params, data, opt, epochs, bs, key=i)
        traces[f"{name}/train_mse"] = r.train_loss
        traces[f"{name}/test_mse"] = r.test_loss
        traces[f"{name}/grad_norm"] = r.grad_norm
        metrics["variants"][name] = summary(r)
        s = metrics["variants"][name]
        say(f"{name:16s} diverged {100 * s['divergence_rate']:.0f}% of {seeds} seeds "
            f"(epochs {sorted(set(e for e in s['diverged_epoch'] if e > 0)) or '-'}), median "
            f"final train/test MSE {s['median_final_train_mse']} / {s['median_final_test_mse']}")
        if name == "global_clipnorm":  # the unclipped run overflows within its first epoch
            mean_gn = float(np.nanmean(r.grad_norm))
    # (e) norm types: the seed vector and the full-batch gradient at seed 0's initialisation
    X, y, _, _ = data
    g0 = jax.grad(lambda p: training.mse(problems.mlp_apply(p, X), y, jnp.ones(X.shape[0])))(
        problems.mlp_init(0))
    metrics["norm_type"] = {"seed_vector": norm_table(jnp.asarray(SEED002), norm_types, tk),
                            "mlp_gradient": norm_table(g0, norm_types, tk)}
    # (f) thresholds in multiples of the mean pre-clip gradient norm of the global_clipnorm run
    metrics["thresholds"] = threshold_metrics(say, problems.mlp_apply, params, data, lr, mom,
                                              multiples, mean_gn, epochs, bs,
                                              "median_final_train_mse")
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="clipping_mlp",
    run=run,
    order=7,
    figures=("clipping_mlp", "norm_type"),
    result=records.ClippingMLP,
    quick={"seeds": 3, "epochs": 3, "threshold_multiples": [0.5, 5.0]},
    seconds=(40.0, 15.0),
    mutation={"seeds": 1, "epochs": 1, "threshold_multiples": [1.0]},
)

main = hydra_entry("clipping_mlp", run)

if __name__ == "__main__":
    main()
