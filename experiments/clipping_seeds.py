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
from experiments.registry import Experiment
from research import engine, validate
from research.toolkit import REAL, Toolkit


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    c4, ch = cfg.x4, cfg.chain
    x0 = float(c4.x0)
    validate.finite_tree("x4.x0", jnp.asarray(x0))
    lr = float(validate.positive("x4.lr", c4.lr))
    gamma = float(validate.positive("x4.gamma", c4.gamma))
    steps = validate.positive_int("x4.steps", c4.steps)
    weights = [float(w) for w in ch.weights]
    if not weights:
        raise ValueError("chain.weights must be a non-empty list of numbers.")
    max_norm = float(validate.positive("chain.max_norm", ch.max_norm))
    chain_lr = float(validate.positive("chain.lr", ch.lr))
    say = Progress("clipping_seeds")
    p = tk.problems.quartic()
    traces, metrics = {}, {"x4": {}}
    for name, opt in (("gd", tk.optimizers.gd(lr)),
                      ("clipped_gd", tk.optimizers.clipped_gd(lr, gamma)),
                      ("normalized_gd", tk.optimizers.normalized_gd(lr, gamma))):
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
