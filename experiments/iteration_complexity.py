"""Iterations to ||grad f|| <= eps against M on x^4 and cosh.

For each start x0 (1-D, so the sublevel set {f <= f(x0)} is [-|x0|, |x0|] and
M = |f'(x0)|), count the iterations of:
  - GD with Theorem 6's step 1/(2(M L1 + L0)) (a step that depends on x0 through M);
  - GD with the best fixed step for that x0, from a vmapped sweep over a log grid;
  - clipped GD with Theorem 3's parameters; normalized GD with the equivalent ones;
  - GD with Vankov's eta_si.
Beside them, the bounds: Theorem 6 [recalled constant], Theorem 3 [recalled constants],
Vankov's eta_si bound [secondary, from checked per-step progress].
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
from research import complexity, engine, validate
from research.toolkit import REAL, Toolkit

METHODS = ("gd_thm6", "gd_best_fixed", "clipped_thm3", "normalized", "vankov_si")


def summed_progress_ratio(p, opt, x0, iterations, tk: Toolkit) -> list[float]:
    """Per start, (f(x_0) - f(x_K)) / sum_{t<K} of Vankov's guaranteed one-step decrease
    along the eta_si run, K its iterations to eps. Vankov's iteration bound is this sum held
    against F0; the ratio is >= 1 when the guarantee holds and near 1 where it is tight.
    NaN for a start that never reached eps (or needed no step)."""
    its = np.asarray(iterations)
    if not (its > 0).any():
        return [float("nan")] * len(its)
    res = engine.run(p, opt, x0, steps=int(its.max()), record_every=1)
    f, g = np.asarray(res.trace["f"]), np.asarray(res.trace["grad_norm"])
    out = []
    for i, k in enumerate(its):
        if k <= 0:
            out.append(float("nan"))
            continue
        guaranteed = float(np.sum(tk.theory.vankov_progress(g[i, :k], p.L0, p.L1, "si")))
        out.append(float((f[i, 0] - f[i, k]) / guaranteed))
    return out


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    eps = float(validate.positive("eps", cfg.eps))
    cap = validate.positive_int("cap", cfg.cap)
    sweep_cap = validate.positive_int("sweep_cap", cfg.sweep_cap)
    n_h = validate.positive_int("sweep_steps", cfg.sweep_steps, minimum=2)
    starts = {}
    for key in ("quartic_x0", "cosh_x0"):
        vals = [float(v) for v in cfg[key]]
        if not vals or not all(np.isfinite(v) and v > 0 for v in vals):
            raise ValueError(f"{key} must be a non-empty list of finite positive numbers; "
                             f"got {vals}.")
        starts[key] = vals
    say = Progress("iteration_complexity")
    metrics = {"eps": eps, "problems": {}}
    built = {key: made(getattr(tk.problems, key), cfg.problems[key], f"problems.{key}")
             for key in ("quartic", "cosh")}
    for p, key in ((built["quartic"], "quartic_x0"), (built["cosh"], "cosh_x0")):
        x0 = jnp.asarray(starts[key])[:, None]
        M = np.abs(np.asarray(jax.vmap(jax.grad(p.fn))(x0))[:, 0])
        F0 = np.asarray(jax.vmap(p.fn)(x0)) - p.f_star
        eta, gamma = tk.theory.clipped_gd_parameters(p.L0, p.L1)
        eta_n, beta = tk.theory.normalized_from_clipped(eta, gamma)
        counts = {}
        runs = {
            "gd_thm6": tk.optimizers.gd(tk.theory.theorem6_step(p.L0, p.L1, jnp.asarray(M))),
            "clipped_thm3": tk.optimizers.clipped_gd(eta, gamma),
            "normalized": tk.optimizers.normalized_gd(float(eta_n), float(beta)),
            "vankov_si": tk.optimizers.l0l1_gd(p.L0, p.L1, "si"),
        }
        for name, opt in runs.items():
            its, div = complexity.iterations_to_eps(p, opt, x0, eps, cap)
            counts[name] = {"iterations": its.tolist(), "diverged": div.tolist()}
            say(f"{p.name} {name:13s} iterations: {its.tolist()}")
        counts["vankov_si"]["summed_progress_ratio"] = summed_progress_ratio(
            p, runs["vankov_si"], x0, counts["vankov_si"]["iterations"], tk)
        best = complexity.best_fixed_step(p, x0, np.geomspace(1e-9, 1.0, n_h), eps, sweep_cap)
        counts["gd_best_fixed"] = {"iterations": best["iterations"].tolist(),
                                   "step": best["step"].tolist(),
                                   "diverged_fraction": best["diverged_fraction"].tolist()}
        say(f"{p.name} {'gd_best_fixed':13s} iterations: {best['iterations'].tolist()}")
        bounds = {
            "thm6_recalled": np.asarray(tk.theory.theorem6_iteration_bound(F0, eps, p.L0, p.L1, M)),
            "thm3_recalled": np.asarray(tk.theory.theorem3_iteration_bound(F0, eps, p.L0, p.L1)),
            "vankov_si": np.asarray(tk.theory.vankov_iteration_bound(F0, eps, p.L0, p.L1, "si")),
        }
        # failures count as the budget: a method that never reaches eps must not look flat
        slopes = {m: complexity.loglog_slope(M, complexity.censor(
            counts[m]["iterations"], sweep_cap if m == "gd_best_fixed" else cap))
            for m in METHODS}
        metrics["problems"][p.name] = {
            "L0": p.L0, "L1": p.L1, "x0": starts[key], "M": M.tolist(), "F0": F0.tolist(),
            "methods": counts, "bounds": {k: v.tolist() for k, v in bounds.items()},
            "slope_vs_M": slopes,
        }
        say(f"{p.name} log-log slopes of iterations vs M: "
            + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()))
    write(cfg, say, metrics)


EXPERIMENT = Experiment(
    name="iteration_complexity",
    run=run,
    order=4,
    figures=("iteration_complexity",),
    result=records.IterationComplexity,
    quick={"quartic_x0": [1.0, 4.0, 16.0], "cosh_x0": [1.0, 4.0, 8.0],
           "cap": 2_000_000, "sweep_cap": 200_000, "sweep_steps": 16},
    seconds=(30.0, 8.0),
    mutation={},
)

main = hydra_entry("iteration_complexity", run)

if __name__ == "__main__":
    main()
