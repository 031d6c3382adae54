"""Step-descent audit: f(x_{t+1}) against the phi-inequality's bound for every recorded step of
every run on the problems with known (L0, L1), and Vankov's per-step progress for his rules.

Writes one record: per (problem, method) the number of steps, the violations, the worst
excess and the quantiles of the slack (measured / guaranteed decrease).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from experiments import records
from experiments.common import Progress, hydra_entry, write
from experiments.groups import made
from experiments.registry import Experiment
from research import audit, engine, validate
from research.toolkit import REAL, Toolkit

VANKOV = ("star", "si", "cl")
QUANTILES = np.linspace(0.0, 1.0, 201)


def methods(p, x0, tk: Toolkit) -> dict:
    """Method name -> optimizer, for problem p and the batch of starts x0."""
    g0 = jnp.linalg.norm(jax.vmap(jax.grad(p.fn))(x0).reshape(x0.shape[0], -1), axis=1)
    eta, gamma = tk.theory.clipped_gd_parameters(p.L0, max(p.L1, 1e-12))
    eta_n, beta = tk.theory.normalized_from_clipped(eta, gamma)
    out = {
        "gd_local": tk.optimizers.gd(tk.theory.inverse_step(g0, p.L0, p.L1)),  # fixed at x0's rule
        "clipped_gd": tk.optimizers.clipped_gd(eta, gamma),
        "normalized_gd": tk.optimizers.normalized_gd(float(eta_n), float(beta)),
    }
    for rule in ("inverse", *VANKOV):
        out[f"l0l1_{rule}"] = tk.optimizers.l0l1_gd(p.L0, p.L1, rule)
    return out


def summary(a: audit.Audit) -> dict:
    slack = a.slack
    return {
        "steps": a.n_steps,
        "violations": a.violations,
        "underflow_skipped": a.underflow_skipped,
        "worst_excess": a.worst_excess,
        "slack_quantiles": np.quantile(slack, QUANTILES).tolist() if slack.size else [],
        "steps_with_positive_guarantee": int(slack.size),
    }


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    steps = validate.positive_int("steps", cfg.steps)
    names = list(cfg.audit)
    if not names:
        raise ValueError("audit must name at least one problem.")
    for name in names:
        validate.choice("audit", name, tuple(cfg.problems))
    scales = [float(s) for s in cfg.start_scales]
    for s in scales:
        validate.positive("start_scales", s)
    say = Progress("descent_audit")
    metrics = {"problems": {}}
    for name in names:
        node = cfg.problems[name]
        p = made(functools.partial(tk.problems.get, node.name), node,
                 f"problems.{name}").deterministic
        if not p.has_constants:
            raise ValueError(f"problems: {name!r} has no stated (L0, L1) and cannot be audited.")
        x0 = jnp.stack([p.x0 * s for s in scales])
        per_method = {}
        for mname, opt in methods(p, x0, tk).items():
            res = engine.run(p, opt, x0, steps=steps)
            entry = {"phi": summary(tk.audit.descent_audit(
                res.trace["f"], res.trace["grad_norm"], res.trace["step_size"], p.L0, p.L1))}
            rule = mname.removeprefix("l0l1_")
            if rule in VANKOV:
                entry["vankov"] = summary(tk.audit.progress_audit(
                    res.trace["f"], res.trace["grad_norm"], p.L0, p.L1, rule))
            entry["diverged"] = int(res.diverged.sum())
            per_method[mname] = entry
        total = sum(e["phi"]["steps"] for e in per_method.values())
        bad = sum(e["phi"]["violations"] for e in per_method.values())
        skipped = sum(e["phi"]["underflow_skipped"] for e in per_method.values())
        say(f"{p.name:18s} (L0={p.L0:.3g}, L1={p.L1:g}): {total} steps audited, "
            f"{bad} violations of the phi-inequality ({skipped} skipped: f below 1e-292)")
        metrics["problems"][p.name] = {"L0": p.L0, "L1": p.L1, "methods": per_method}
    metrics["quantile_levels"] = QUANTILES.tolist()
    metrics["float_rtol"] = audit.FLOAT_RTOL
    write(cfg, say, metrics)


EXPERIMENT = Experiment(
    name="descent_audit",
    run=run,
    order=2,
    figures=("descent_audit",),
    result=records.DescentAudit,
    quick={"audit": ["quartic", "hard"], "steps": 100,
           "start_scales": [0.5, 1.0]},
    seconds=(50.0, 5.0),
    mutation={"audit": ["quartic", "cosh"], "steps": 60, "start_scales": [0.5, 2.0]},
)

main = hydra_entry("descent_audit", run)

if __name__ == "__main__":
    main()
