"""Largest descending step vs the theory's step rules, at points of x^4 and cosh.

At each point x: h_desc, the largest h with f(x - h g) <= f(x), and h_half, the largest h
achieving half the first-order decrease, f(x - h g) <= f(x) - h ||g||^2 / 2 (bisection,
``research.audit.max_step``). Beside them, every rule's step at the same ||g||.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig, OmegaConf

from experiments._common import Progress, hydra_entry
from research import _validate, audit, problems, results, theory


def rules(p, g, M: float) -> dict[str, np.ndarray]:
    """Step of every rule at gradient norms g, for problem p (M: for Theorem 6)."""
    eta, gamma = theory.clipped_gd_parameters(p.L0, p.L1)
    out = {
        "inverse": theory.inverse_step(g, p.L0, p.L1),
        "star": theory.vankov_star_step(g, p.L0, p.L1),
        "si": theory.vankov_si_step(g, p.L0, p.L1),
        "cl": theory.vankov_cl_step(g, p.L0, p.L1),
        "clipped_thm3": theory.clipped_step(g, eta, gamma),
        "gd_thm6": jnp.broadcast_to(theory.theorem6_step(p.L0, p.L1, M), g.shape),
    }
    return {k: np.asarray(v) for k, v in out.items()}


def run(cfg: DictConfig) -> None:
    n = _validate.positive_int("points", cfg.points, minimum=2)
    ranges = {}
    for key in ("quartic_range", "cosh_range"):
        lo, hi = (float(v) for v in cfg[key])
        if not 0 < lo < hi:
            raise ValueError(f"{key} must be [low, high] with 0 < low < high; got {[lo, hi]}.")
        ranges[key] = (lo, hi)
    say = Progress("max_step")
    traces, metrics = {}, {"problems": {}}
    for p, key in ((problems.quartic(), "quartic_range"), (problems.cosh(), "cosh_range")):
        x = jnp.geomspace(*ranges[key], n)[:, None]
        h_desc, g = audit.max_step(p.fn, x, c=0.0)
        h_half, _ = audit.max_step(p.fn, x, c=0.5)
        M = float(g.max())  # the sublevel set of the farthest point contains all the others
        r = rules(p, g, M)
        traces[f"{p.name}/x"] = np.asarray(x[:, 0])
        traces[f"{p.name}/grad_norm"] = np.asarray(g)
        traces[f"{p.name}/h_desc"] = np.asarray(h_desc)
        traces[f"{p.name}/h_half"] = np.asarray(h_half)
        ratios = {}
        for name, h in r.items():
            traces[f"{p.name}/rule/{name}"] = h
            ratio = np.asarray(h_desc) / h
            ratios[name] = {"min": float(ratio.min()), "max": float(ratio.max()),
                            "at_largest_g": float(ratio[np.argmax(g)]),
                            "rule_descends_everywhere": bool(np.all(h <= np.asarray(h_desc)))}
        metrics["problems"][p.name] = {"L0": p.L0, "L1": p.L1, "M": M, "ratio_h_desc_over_rule":
                                       ratios}
        say(f"{p.name}: h_desc / rule at the largest |grad| = "
            + ", ".join(f"{k} {v['at_largest_g']:.3g}" for k, v in ratios.items()))
    out = results.write_record(cfg.out, config=OmegaConf.to_container(cfg, resolve=True),
                               metrics=metrics, traces=traces)
    say(f"wrote {out}")


main = hydra_entry("max_step", run)

if __name__ == "__main__":
    main()
