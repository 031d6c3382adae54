"""Largest descending step vs the theory's step rules, at points of x^4 and cosh and along a
clipped GD run on the MLP of seed 000 (whose (L0, L1) are fitted along the run).

At each point x: h_desc, the largest h with f(x - h g) <= f(x), and h_half, the largest h
achieving half the first-order decrease, f(x - h g) <= f(x) - h ||g||^2 / 2 (bisection,
``research.audit.max_step``). Beside them, every rule's step at the same ||g||.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from experiments import records
from experiments.common import Progress, hydra_entry, write
from experiments.groups import made
from experiments.registry import Experiment
from research import engine, smoothness, validate
from research.toolkit import REAL, Toolkit


def rules(L0: float, L1: float, g, M, tk: Toolkit) -> dict[str, np.ndarray]:
    """Step of every rule at gradient norms g, for constants (L0, L1).

    M: the sup of |grad f| over the sublevel set that Theorem 6's step is built for, a number
    or one per point.
    """
    eta, gamma = tk.theory.clipped_gd_parameters(L0, L1)
    out = {
        "inverse": tk.theory.inverse_step(g, L0, L1),
        "star": tk.theory.vankov_star_step(g, L0, L1),
        "si": tk.theory.vankov_si_step(g, L0, L1),
        "cl": tk.theory.vankov_cl_step(g, L0, L1),
        "clipped_thm3": tk.theory.clipped_step(g, eta, gamma),
        "gd_thm6": jnp.broadcast_to(tk.theory.theorem6_step(L0, L1, jnp.asarray(M)), g.shape),
    }
    return {k: np.asarray(v) for k, v in out.items()}


def compare(name: str, L0: float, L1: float, g, h_desc, h_half, M, traces: dict,
            tk: Toolkit) -> dict:
    """Store the traces of one problem and summarise h_desc / rule for every rule."""
    traces[f"{name}/grad_norm"] = np.asarray(g)
    traces[f"{name}/h_desc"] = np.asarray(h_desc)
    traces[f"{name}/h_half"] = np.asarray(h_half)
    ratios = {}
    for rule, h in rules(L0, L1, g, M, tk).items():
        traces[f"{name}/rule/{rule}"] = h
        ratio = np.asarray(h_desc) / h
        ratios[rule] = {"min": float(np.nanmin(ratio)), "max": float(np.nanmax(ratio)),
                        "at_largest_g": float(ratio[np.argmax(g)]),
                        "rule_descends_everywhere": bool(np.all(h <= np.asarray(h_desc)))}
    return {"L0": L0, "L1": L1, "M": float(np.max(M)), "ratio_h_desc_over_rule": ratios}


def check_network(cfg, tk: Toolkit) -> tuple:
    """Validate the ``network`` block and its optimizer: (steps, points, optimizer)."""
    net, o = cfg.network, cfg.optimizers.network
    steps = validate.positive_int("network.steps", net.steps)
    n = validate.positive_int("network.points", net.points, minimum=2)
    if steps % (n - 1):
        raise ValueError(f"network.points - 1 must divide network.steps; got {n}, {steps}.")
    validate.positive("optimizers.network.eta", o.eta)
    validate.positive("optimizers.network.gamma", o.gamma)
    return steps, n, made(tk.optimizers.clipped_gd, o, "optimizers.network")


def network_points(cfg, tk: Toolkit) -> tuple:
    """Iterates of a clipped GD run on the MLP, their Hessian norms, and the (L0, L1)
    envelope fitted to (||grad f||, ||hess f||) along the run."""
    steps, n, opt = check_network(cfg, tk)
    p = made(tk.problems.mlp_regression, cfg.problems.mlp_regression,
             "problems.mlp_regression")
    # run, keeping the iterates at the recorded steps: steps // (n - 1) at a time
    x = p.batch_x0(1)
    pts = [x]
    for _ in range(n - 1):
        x = engine.run(p, opt, x, steps=steps // (n - 1), record_every=steps // (n - 1)).x
        pts.append(x)
    pts = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *pts)
    hess = jax.vmap(lambda q: smoothness.hessian_norm(p.fn, q))(pts)
    return p, pts, np.asarray(hess)


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    n = validate.positive_int("points", cfg.points, minimum=2)
    ranges = {}
    for key in ("quartic_range", "cosh_range"):
        lo, hi = (float(v) for v in cfg[key])
        if not 0 < lo < hi:
            raise ValueError(f"{key} must be [low, high] with 0 < low < high; got {[lo, hi]}.")
        ranges[key] = (lo, hi)
    if cfg.network.points:
        check_network(cfg, tk)  # before any compute
    say = Progress("max_step")
    traces, metrics = {}, {"problems": {}}
    built = {key: made(getattr(tk.problems, key), cfg.problems[key], f"problems.{key}")
             for key in ("quartic", "cosh")}
    for p, key in ((built["quartic"], "quartic_range"), (built["cosh"], "cosh_range")):
        x = jnp.geomspace(*ranges[key], n)[:, None]
        h_desc, g = tk.audit.max_step(p.fn, x, c=0.0)
        h_half, _ = tk.audit.max_step(p.fn, x, c=0.5)
        # 1-D and even: the sublevel set of x is [-|x|, |x|] with sup |f'| = |f'(x)|, so
        # Theorem 6's step for the set that x starts from is built with M = |f'(x)|: there it
        # binds, and a step too long cannot hide behind a larger M
        M = g
        traces[f"{p.name}/x"] = np.asarray(x[:, 0])
        info = compare(p.name, p.L0, p.L1, g, h_desc, h_half, M, traces, tk)
        info["constants"] = "stated"
        metrics["problems"][p.name] = info
        say(f"{p.name}: h_desc / rule at the largest |grad| = "
            + ", ".join(f"{k} {v['at_largest_g']:.3g}"
                        for k, v in info["ratio_h_desc_over_rule"].items()))
    if cfg.network.points:
        p, pts, hess = network_points(cfg, tk)
        h_desc, g = tk.audit.max_step(p.fn, pts, c=0.0)
        h_half, _ = tk.audit.max_step(p.fn, pts, c=0.5)
        L0, L1 = smoothness.fit_envelope(g, hess)
        info = compare(p.name, L0, L1, g, h_desc, h_half, float(np.max(g)), traces, tk)
        info.update(constants="fitted: least-area envelope of (||grad f||, ||hess f||) along "
                    "the run", hessian_norm=hess.tolist(),
                    correlation=smoothness.log_correlations(g, hess))
        traces[f"{p.name}/hessian_norm"] = hess
        metrics["problems"][p.name] = info
        say(f"{p.name}: fitted (L0, L1) = ({L0:.4g}, {L1:.4g}); h_desc / rule: "
            + ", ".join(f"{k} min {v['min']:.3g}"
                        for k, v in info["ratio_h_desc_over_rule"].items()))
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="max_step",
    run=run,
    order=3,
    figures=("max_step",),
    result=records.MaxStep,
    quick={"points": 25, "network": {"points": 3, "steps": 20}},
    seconds=(20.0, 12.0),
    mutation={"points": 25, "network": {"points": 0}},
)

main = hydra_entry("max_step", run)

if __name__ == "__main__":
    main()
