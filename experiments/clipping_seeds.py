"""Seeds 001 and 002 in JAX: the x^4 explosion of GD with lr 0.1 from x = 10 (and clipped and
normalized GD, which converge), and the sigmoid chain's gradients, total norm, clipping
coefficient and weights after one SGD step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from experiments import records
from experiments.common import Progress, hydra_entry, write
from experiments.groups import made
from experiments.registry import Experiment
from research import engine, validate
from research.toolkit import REAL, Toolkit


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    ch = cfg.chain
    steps = validate.positive_int("x4.steps", cfg.x4.steps)
    o = cfg.optimizers
    for key, arg in (("gd", "lr"), ("clipped_gd", "eta"), ("clipped_gd", "gamma"),
                     ("normalized_gd", "eta"), ("normalized_gd", "beta")):
        validate.positive(f"optimizers.{key}.{arg}", o[key][arg])
    weights = [float(w) for w in ch.weights]
    if not weights:
        raise ValueError("chain.weights must be a non-empty list of numbers.")
    max_norm = float(validate.positive("chain.max_norm", ch.max_norm))
    chain_lr = float(validate.positive("chain.lr", ch.lr))
    say = Progress("clipping_seeds")
    p = made(tk.problems.quartic, cfg.problems.quartic, "problems.quartic")
    x0 = float(p.x0[0])
    validate.finite_tree("problems.quartic.x0", jnp.asarray(x0))
    traces, metrics = {}, {"x4": {}}
    opts = {"gd": made(tk.optimizers.gd, o.gd, "optimizers.gd"),
            "clipped_gd": made(tk.optimizers.clipped_gd, o.clipped_gd, "optimizers.clipped_gd"),
            "normalized_gd": made(tk.optimizers.normalized_gd, o.normalized_gd,
                                  "optimizers.normalized_gd")}
    for name, opt in opts.items():
        r = engine.run(p, opt, jnp.array([[x0]]), steps, eps=1e-3, trace_x=True)
        xs = r.trace["x"][0, :, 0]
        traces[f"x4/{name}"] = xs
        finite = xs[np.isfinite(xs)]
        metrics["x4"][name] = {"first_iterates": finite[:5].tolist(),
                               "diverged": bool(r.diverged[0]),
                               "diverged_at": int(r.diverged_at[0]),
                               "iterations_to_eps": int(r.iterations_to_eps[0]),
                               "final_x": float(finite[-1])}
        say(f"x^4 {name:13s}: x = {', '.join(f'{v:.4g}' for v in finite[:4])}, ... "
            f"diverged: {bool(r.diverged[0])}, |f'| <= 1e-3 at t = {int(r.iterations_to_eps[0])}")
    ws = [jnp.asarray(w) for w in weights]
    loss = lambda w: tk.problems.sigmoid_chain_loss(w, float(ch.input), float(ch.target))  # noqa: E731
    grads = jax.grad(loss)(ws)
    clipped, total = tk.clipping.clip_grad_norm(grads, max_norm)
    new = [w - chain_lr * g for w, g in zip(ws, clipped, strict=True)]
    metrics["chain"] = {
        "gradients": [float(g) for g in grads],
        "total_norm": float(total),
        "clip_coef": float(clipped[0] / grads[0]),
        "clipped_gradients": [float(g) for g in clipped],
        "weights_after_step": [float(w) for w in new],
        "ratio_last_to_first_layer": float(grads[-1] / grads[0]),
    }
    m = metrics["chain"]
    say(f"sigmoid chain: gradients {', '.join(f'{g:.5g}' for g in m['gradients'])}; total norm "
        f"{m['total_norm']:.5g}; clip coefficient {m['clip_coef']:.5g}; weights after one step "
        f"{', '.join(f'{w:.7f}' for w in m['weights_after_step'])}")
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="clipping_seeds",
    run=run,
    order=9,
    figures=("clipping_seeds",),
    result=records.ClippingSeeds,
    quick={"x4": {"steps": 600}},
    seconds=(10.0, 2.0),
    mutation={"x4": {"steps": 600}},
)

main = hydra_entry("clipping_seeds", run)

if __name__ == "__main__":
    main()
