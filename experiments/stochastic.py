"""Clipped SGD (Theorem 7) and SGD (Theorem 8) in regimes of noise and start, and the bias of
clipped SGD under skewed noise.

Part 1: for each regime (a noisy problem of ``problems`` and a start), ``seeds`` trajectories
per method. Counted at every step inside the compiled loop: the share of steps at which the
method moved less than its nominal step times the sampled gradient (Theorem 7's clipping
binds), and each trajectory's sum of the exact ||grad f(x_t)|| over t = 0..T. From them the
quantity the theorems bound: the average over iterates of E||grad f(x_t)|| (E: the seed
mean). The curve E||grad f(x_t)|| is recorded every ``record_every`` steps, for the figure
and the first recorded t where it is <= eps.
Part 2: clipped SGD (fixed eta, threshold c) on the problems ``bias.uniform`` and
``bias.skewed`` from x = 0; the plateau is E||grad f|| averaged over seeds and the last half
of the run.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from omegaconf import DictConfig

from experiments import records
from experiments.common import Progress, hydra_entry, write
from experiments.groups import made
from experiments.registry import Experiment
from research import engine, validate
from research.clipping import global_norm
from research.toolkit import REAL, Toolkit

CLIP_SHARE = 0.2
"""A regime tests clipping for a Theorem 7 variant when it clips at least this share of steps."""

SHORTER = 1e-9
"""A step counts as clipped when it is shorter than the nominal one by more than rounding."""


class Tally(NamedTuple):
    """One trajectory between steps: the iterate, the optimizer state, whether it is still
    finite, its PRNG key, the step t, and the counters kept at every step."""

    x: Any
    state: Any
    alive: Any
    key: Any
    t: Any
    clipped: Any
    grad_sum: Any


def _step_function(fn, stochastic_fn, update, nominal):
    """``step(tally, record)``: one optimizer step on a sampled gradient; counts the step as
    clipped when the update is shorter than ``nominal`` times the sampled gradient, and adds
    the exact ||grad f(x_t)|| to the trajectory's sum; ``record`` returns that norm."""
    exact, sampled = jax.grad(fn), jax.grad(stochastic_fn)

    def step(c: Tally, record: bool):
        key, sub = jax.random.split(c.key)
        g = sampled(c.x, sub)
        gn_exact, gn = global_norm(exact(c.x)), global_norm(g)
        u, state = update(g, c.state, c.x)
        x = optax.apply_updates(c.x, u)
        ok = c.alive & jnp.isfinite(gn) & jnp.isfinite(gn_exact) & engine.all_finite(x)
        shorter = global_norm(u) < nominal * gn * (1.0 - SHORTER)
        out = Tally(engine.freeze(ok, x, c.x), engine.freeze(ok, state, c.state), ok, key,
                    c.t + 1, c.clipped + (c.alive & shorter).astype(jnp.int32),
                    c.grad_sum + jnp.where(c.alive, gn_exact, 0.0))
        return out, (jnp.where(c.alive, gn_exact, jnp.nan) if record else None)

    return step


@functools.partial(jax.jit, static_argnames=("fn", "stochastic_fn", "update", "steps",
                                             "every"))
def _tally_batch(fn, stochastic_fn, update, steps, every, x0, state0, keys, nominal):
    def one(x, state, key):
        step = _step_function(fn, stochastic_fn, update, nominal)
        zero = jnp.asarray(0, jnp.int32)
        c0 = Tally(x, state, jnp.asarray(True), key, zero, zero,
                   jnp.zeros((), jnp.result_type(float)))
        c, recs = engine.scan_recorded(step, c0, steps // every, every)
        gn_last = global_norm(jax.grad(fn)(c.x))
        last = jnp.where(c.alive, gn_last, jnp.nan)
        return (jnp.append(recs, last), c.clipped, c.grad_sum + jnp.where(c.alive, gn_last, 0.0),
                c.alive & jnp.isfinite(gn_last))

    return jax.vmap(one)(x0, state0, keys)


def tally(problem, optimizer, x0, steps: int, every: int, key: int, nominal: float) -> dict:
    """Run ``optimizer`` on the stochastic ``problem`` from each row of ``x0`` for ``steps``
    steps. Returns per trajectory ``clipped`` (steps shorter than ``nominal`` times the
    sampled gradient, counted at every step), ``average`` (the mean of the exact
    ||grad f(x_t)|| over t = 0..steps; inf once the trajectory went non-finite) and
    ``alive``, and ``curve``, the exact norm at t = 0, every, ..., steps (NaN after a
    divergence)."""
    if steps % every:
        raise ValueError(f"record_every must divide the steps; got {steps}, {every}.")
    batch = engine.batch_size(x0)
    state0 = engine.batched_state(optimizer, x0, batch)
    keys = jax.random.split(jax.random.PRNGKey(key), batch)
    args = engine.pad_and_shard((x0, state0, keys), batch)
    out = _tally_batch(problem.fn, problem.stochastic_fn, optimizer.update, steps, every,
                       *args, jnp.asarray(nominal, dtype=float))
    curve, clipped, grad_sum, alive = (np.asarray(a)[:batch] for a in jax.device_get(out))
    return {"curve": curve, "clipped": clipped, "alive": alive,
            "average": np.where(alive, grad_sum / (steps + 1), np.inf)}


def first_below(curve: np.ndarray, iterations: np.ndarray, eps: float) -> int:
    hit = np.flatnonzero(curve <= eps)
    return int(iterations[hit[0]]) if hit.size else -1


def _mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """The seed mean and its standard error (inf when a trajectory diverged)."""
    if not np.all(np.isfinite(values)):
        return float("inf"), float("inf")
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("inf")
    return float(values.mean()), float(se)


def regime(key: str, cfg: DictConfig, tk: Toolkit, T: int, seeds: int, every: int,
           eps: float, say) -> tuple[dict, dict]:
    """Part 1 on one regime: the three methods from the regime's start; (metrics, traces)."""
    p = made(tk.problems.noisy, cfg.problems[key], f"problems.{key}")
    start = cfg.starts.get(key)
    if start is not None:
        validate.finite_tree(f"starts.{key}", jnp.asarray(float(start)))
        p = dataclasses.replace(p, x0=jnp.full_like(p.x0, float(start)))
    tau = float(p.extra["tau"])
    x0 = p.batch_x0(seeds)
    M = float(jnp.linalg.norm(jax.grad(p.fn)(p.x0)))  # 1-D even convex: sup on sublevel
    eta7 = float(tk.theory.theorem7_eta(p.L0, p.L1, tau, T))
    h8 = float(tk.theory.theorem8_step(T, p.L1, M, tau))
    methods = {
        "clipped_sgd_thm7_printed": (tk.optimizers.clipped_sgd_thm7(eta7, p.L1, tau), eta7),
        "clipped_sgd_thm7_without_eta": (
            tk.optimizers.clipped_sgd_thm7(eta7, p.L1, tau, printed=False), eta7),
        "sgd_thm8": (tk.optimizers.gd(h8), h8),
    }
    out = {"problem": p.name, "noise": p.extra["noise"], "tau": tau, "L0": p.L0, "L1": p.L1,
           "M": M, "x0": float(jnp.ravel(p.x0)[0]), "eta_thm7": eta7, "h_thm8": h8,
           # the sampled g + tau above which each Theorem 7 variant's step falls below eta
           "clip_above": {"printed": 1.0 / (16 * eta7**2 * p.L1),
                          "without_eta": 1.0 / (16 * eta7 * p.L1)},
           "methods": {}}
    if p.extra["noise"] == "heavy":
        out["alpha"] = float(p.extra["alpha"])
    traces = {f"{key}/iterations": np.arange(0, T + 1, every)}
    for seed, (mname, (opt, nominal)) in enumerate(methods.items()):
        res = tally(p, opt, x0, T, every, seed, nominal)
        # a diverged trajectory has no finite norm left: the seed mean is infinite from then on
        curve = res["curve"]
        mean = np.where(np.isnan(curve).any(axis=0), np.inf, np.nan_to_num(curve).mean(axis=0))
        traces[f"{key}/{mname}/mean_grad_norm"] = mean
        avg, se = _mean_and_se(res["average"])
        info = {
            "iterations_to_eps": first_below(mean, traces[f"{key}/iterations"], eps),
            "clip_fraction": float(res["clipped"].sum() / (T * seeds)),
            "average_grad_norm": avg,
            "average_grad_norm_se": se,
            "min_recorded_grad_norm": float(np.min(mean)),
            "final_mean_grad_norm": float(mean[-1]),
            "diverged": int((~res["alive"]).sum()),
        }
        out["methods"][mname] = info
        say(f"{key} {mname}: clipped at {100 * info['clip_fraction']:.1f}% of steps; average "
            f"over iterates of E||grad f|| {avg:.4g} (se {se:.2g}); E||grad f|| <= {eps:g} at "
            f"t = {info['iterations_to_eps']}; final {mean[-1]:.3g}; "
            f"{info['diverged']}/{seeds} diverged")
    return out, traces


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    eps = float(validate.positive("eps", cfg.eps))
    T = validate.positive_int("T", cfg.T)
    seeds = validate.positive_int("seeds", cfg.seeds)
    every = validate.positive_int("record_every", cfg.record_every)
    if T % every:
        raise ValueError(f"record_every must divide T; got T={T}, record_every={every}.")
    regimes = list(cfg.regimes)
    for key in regimes:
        validate.choice("regimes", key, tuple(cfg.problems))
    b = cfg.bias
    for noise in ("uniform", "skewed"):
        validate.choice(f"bias.{noise}", b[noise], tuple(cfg.problems))
    bias_eta = float(validate.positive("bias.eta", b.eta))
    cs = [float(validate.positive("bias.thresholds", c)) for c in b.thresholds]
    bias_steps = validate.positive_int("bias.steps", b.steps)
    if bias_steps % every:
        raise ValueError(f"record_every must divide bias.steps; got {bias_steps}, {every}.")
    say = Progress("stochastic")
    traces, metrics = {}, {"eps": eps, "T": T, "seeds": seeds, "clip_share": CLIP_SHARE,
                           "regimes": {}}
    for key in regimes:
        metrics["regimes"][key], tr = regime(key, cfg, tk, T, seeds, every, eps, say)
        traces.update(tr)

    plateau, made_bias = {}, {}
    for noise in ("uniform", "skewed"):
        p = made_bias[noise] = made(tk.problems.noisy, cfg.problems[b[noise]],
                                    f"problems.{b[noise]}")
        x0 = jnp.zeros((seeds * len(cs), *jnp.shape(p.x0)))
        opt = tk.optimizers.clipped_gd(bias_eta, jnp.repeat(jnp.asarray(cs), seeds))
        res = engine.run(p, opt, x0, steps=bias_steps, record_every=every, key=7)
        g = res.trace["grad_norm"].reshape(len(cs), seeds, -1)
        half = g.shape[-1] // 2
        plateau[noise] = g[:, :, half:].mean(axis=(1, 2)).tolist()
        say(f"bias, {noise} noise: plateau E||grad f|| by threshold "
            + ", ".join(f"{c:g}: {v:.3g}" for c, v in zip(cs, plateau[noise], strict=True)))
    skew = made_bias["skewed"]
    metrics["bias"] = {"base": skew.name.split("+")[0], "eta": bias_eta, "thresholds": cs,
                       "tau": float(skew.extra["tau"]), "p": float(skew.extra["p"]),
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
    seconds=(28.0, 4.0),
)

main = hydra_entry("stochastic", run)

if __name__ == "__main__":
    main()
