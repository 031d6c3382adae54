"""Seed 003 in JAX: gradient-norm traces of a tanh RNN on the adding problem with and without
norm clipping, the cosine between the update and -grad for norm versus value clipping, and
the threshold sweep of Pascanu's heuristic on the same model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments import records
from experiments.common import Progress, hydra_entry, threshold_metrics, write
from experiments.groups import made
from experiments.registry import Experiment
from research import problems, training, validate
from research.toolkit import REAL, Toolkit


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    seeds = validate.positive_int("seeds", cfg.seeds)
    epochs = validate.positive_int("epochs", cfg.epochs)
    bs = validate.positive_int("batch_size", cfg.batch_size)
    base = OmegaConf.to_container(cfg.optimizers.sgd, resolve=True)
    lr = float(validate.positive("optimizers.sgd.lr", base["lr"]))
    mom = float(validate.in_interval("optimizers.sgd.momentum", base["momentum"], 0.0, 1.0))
    length = validate.positive_int("length", cfg.length, minimum=2)
    n_tr = validate.positive_int("train_size", cfg.train_size)
    n_te = validate.positive_int("test_size", cfg.test_size)
    hidden = validate.positive_int("hidden", cfg.hidden)
    scale = float(validate.positive("recurrent_scale", cfg.recurrent_scale))
    multiples = [float(validate.positive("threshold_multiples", m))
                 for m in cfg.threshold_multiples]
    variants = {
        "none": made(tk.optimizers.sgd_momentum, base, "optimizers.sgd"),
        "norm": made(tk.optimizers.sgd_momentum, {**base, "global_clipnorm": cfg.norm_threshold},
                     "norm_threshold"),
        "value": made(tk.optimizers.sgd_momentum, {**base, "clipvalue": cfg.clip_value},
                      "clip_value"),
    }
    say = Progress("clipping_rnn")
    X, y = problems.adding_data(n_tr + n_te, length, seed=0)
    data = (X[:n_tr], y[:n_tr], X[n_tr:], y[n_tr:])
    params = jax.tree_util.tree_map(
        lambda *a: jnp.stack(a),
        *[problems.rnn_init(s, hidden, recurrent_scale=scale) for s in range(seeds)])
    traces, metrics = {}, {"seeds": seeds, "variants": {}}
    for i, (name, opt) in enumerate(variants.items()):
        r = training.train(problems.rnn_apply, params, data, opt, epochs, bs, key=i)
        traces[f"{name}/grad_norm"] = r.grad_norm
        traces[f"{name}/cosine"] = r.cosine
        traces[f"{name}/test_mse"] = r.test_loss
        ok = ~r.diverged
        gn = r.grad_norm[np.isfinite(r.grad_norm)]
        metrics["variants"][name] = {
            "divergence_rate": float(r.diverged.mean()),
            "median_final_test_mse": float(np.median(r.test_loss[ok, -1])) if ok.any() else None,
            "final_test_mse_interval": training.median_over_seeds(r.test_loss[ok, -1]),
            "median_grad_norm": float(np.median(gn)),
            "max_grad_norm": float(gn.max()),
            "min_cosine": float(np.nanmin(r.cosine)),
            "median_cosine": float(np.nanmedian(r.cosine)),
        }
        m = metrics["variants"][name]
        say(f"{name:6s} diverged {100 * m['divergence_rate']:.0f}%, pre-clip |g| median "
            f"{m['median_grad_norm']:.3g} max {m['max_grad_norm']:.3g}, cosine(update, -g) "
            f"min {m['min_cosine']:.3f} median {m['median_cosine']:.3f}")
        if name == "norm":
            mean_gn = float(np.nanmean(r.grad_norm))
    metrics["thresholds"] = threshold_metrics(say, problems.rnn_apply, params, data, lr, mom,
                                              multiples, mean_gn, epochs, bs,
                                              "median_final_test_mse")
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="clipping_rnn",
    run=run,
    order=8,
    figures=("clipping_rnn", "clipping_thresholds"),
    result=records.ClippingRNN,
    quick={"seeds": 2, "epochs": 1, "train_size": 256, "test_size": 64,
           "length": 20, "threshold_multiples": [1.0]},
    seconds=(60.0, 3.0),
    mutation={"seeds": 1, "epochs": 1, "train_size": 64, "test_size": 32,
              "length": 10, "threshold_multiples": [1.0]},
    bigger=("train_size=2000",
            "the seed's full training set"),
)

main = hydra_entry("clipping_rnn", run)

if __name__ == "__main__":
    main()
