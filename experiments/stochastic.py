"""Clipped SGD (Theorem 7) and SGD (Theorem 8) under bounded noise, and the bias of clipped SGD
under skewed noise.

Part 1: for each problem (noise uniform, ||xi|| <= tau), ``seeds`` trajectories per method from
the problem's default start; E||grad f(x_t)|| is the seed average of the exact gradient norm
at the recorded iterates; the count is the first recorded t where it is <= eps.
Part 2: clipped SGD (fixed eta, threshold c) on cosh from x = 0 under uniform and skewed
noise; the plateau is E||grad f|| averaged over seeds and the last half of the run.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from omegaconf import DictConfig

from experiments import records
from experiments.common import Progress, hydra_entry, write
from experiments.registry import Experiment
from research import engine, optimizers, problems, theory, validate

CLIP_RULES = {"clipped_sgd_thm7_printed": theory.theorem7_step,
              "clipped_sgd_thm7_without_eta": theory.theorem7_step_without_eta}
"""The step rule of each clipped method, to tell when its clipping is active."""


def first_below(curve: np.ndarray, iterations: np.ndarray, eps: float) -> int:
    hit = np.flatnonzero(curve <= eps)
    return int(iterations[hit[0]]) if hit.size else -1


def run(cfg: DictConfig) -> None:
    for name in cfg.problems:
        validate.choice("problems", name, ("quartic", "cosh", "sextic", "quadratic"))
    tau = float(validate.positive("tau", cfg.tau))
    eps = float(validate.positive("eps", cfg.eps))
    T = validate.positive_int("T", cfg.T)
    seeds = validate.positive_int("seeds", cfg.seeds)
    every = validate.positive_int("record_every", cfg.record_every)
    if T % every:
        raise ValueError(f"record_every must divide T; got T={T}, record_every={every}.")
    b = cfg.bias
    validate.choice("bias.base", b.base, ("quartic", "cosh", "sextic", "quadratic"))
    bias_eta = float(validate.positive("bias.eta", b.eta))
    cs = [float(validate.positive("bias.thresholds", c)) for c in b.thresholds]
    bias_steps = validate.positive_int("bias.steps", b.steps)
    if bias_steps % every:
        raise ValueError(f"record_every must divide bias.steps; got {bias_steps}, {every}.")
    validate.in_interval("bias.p", b.p, 1e-9, 1.0)
    say = Progress("stochastic")
    traces, metrics = {}, {"eps": eps, "tau": tau, "T": T, "seeds": seeds, "problems": {}}
    for name in cfg.problems:
        p = problems.noisy(name, tau=tau, noise="uniform")
        start = cfg.starts.get(name)
        if start is not None:
            validate.finite_tree(f"starts.{name}", jnp.asarray(float(start)))
            p = dataclasses.replace(p, x0=jnp.full_like(p.x0, float(start)))
        x0 = p.batch_x0(seeds)
        M = float(jnp.linalg.norm(jax.grad(p.fn)(p.x0)))  # 1-D even convex: sup on sublevel
        eta7 = float(theory.theorem7_eta(p.L0, p.L1, tau, T))
        h8 = float(theory.theorem8_step(T, p.L1, M, tau))
        methods = {
            "clipped_sgd_thm7_printed": optimizers.clipped_sgd_thm7(eta7, p.L1, tau),
            "clipped_sgd_thm7_without_eta": optimizers.clipped_sgd_thm7(eta7, p.L1, tau,
                                                                        printed=False),
            "sgd_thm8": optimizers.gd(h8),
        }
        out = {"L0": p.L0, "L1": p.L1, "M": M, "x0": float(jnp.ravel(p.x0)[0]),
               "eta_thm7": eta7, "h_thm8": h8, "methods": {}}
        for seed, (mname, opt) in enumerate(methods.items()):
            res = engine.run(p, opt, x0, steps=T, record_every=every, key=seed)
            mean = np.nanmean(res.trace["grad_norm"], axis=0)
            traces[f"{p.name}/{mname}/mean_grad_norm"] = mean
            # the share of (recorded step, seed) pairs where Theorem 7's clipping is surely
            # active: the rule clips even at the smallest sampled norm ||grad f|| - tau
            # (|noise| <= tau), a lower bound on the share clipped; 0 for plain SGD
            rule = CLIP_RULES.get(mname)
            g_low = np.maximum(res.trace["grad_norm"][:, :-1] - tau, 0.0)
            clipped = (np.asarray(rule(g_low, eta7, p.L1, tau)) < eta7 if rule is not None
                       else np.zeros(1, bool))
            out["methods"][mname] = {
                "iterations_to_eps": first_below(mean, res.iterations, eps),
                "clip_fraction": float(np.mean(clipped)),
                "final_mean_grad_norm": float(mean[-1]),
                "diverged": int(res.diverged.sum()),
            }
            say(f"{p.name} {mname}: E||grad f|| <= {eps:g} at t = "
                f"{out['methods'][mname]['iterations_to_eps']} (clipped in "
                f"{100 * out['methods'][mname]['clip_fraction']:.0f}% of recorded steps; "
                f"final {mean[-1]:.3g}, "
                f"{int(res.diverged.sum())}/{seeds} diverged)")
        traces[f"{p.name}/iterations"] = res.iterations
        metrics["problems"][p.name] = out

    plateau = {}
    for noise in ("uniform", "skewed"):
        p = problems.noisy(b.base, tau=tau, noise=noise, p=float(b.p))
        x0 = jnp.zeros((seeds * len(cs), *jnp.shape(p.x0)))
        opt = optimizers.clipped_gd(bias_eta, jnp.repeat(jnp.asarray(cs), seeds))
        res = engine.run(p, opt, x0, steps=bias_steps, record_every=every, key=7)
        g = res.trace["grad_norm"].reshape(len(cs), seeds, -1)
        half = g.shape[-1] // 2
        plateau[noise] = g[:, :, half:].mean(axis=(1, 2)).tolist()
        say(f"bias, {noise} noise: plateau E||grad f|| by threshold "
            + ", ".join(f"{c:g}: {v:.3g}" for c, v in zip(cs, plateau[noise], strict=True)))
    metrics["bias"] = {"base": b.base, "eta": bias_eta, "thresholds": cs, "p": float(b.p),
                       "plateau": plateau}
    write(cfg, say, metrics, traces)


EXPERIMENT = Experiment(
    name="stochastic",
    run=run,
    order=6,
    figures=("stochastic",),
    result=records.Stochastic,
    quick={"T": 2000, "seeds": 8, "record_every": 20,
           "bias": {"steps": 2000, "thresholds": [0.05, 2.0]}},
    seconds=(15.0, 4.0),
)

main = hydra_entry("stochastic", run)

if __name__ == "__main__":
    main()
