"""Calibration: every instrument the figure experiments read, measured against an independent
reference on the experiments' own kinds of runs.

- The engine (``engine.run``, called as the figure experiments call it): iteration counts to
  |f'| <= eps and to f <= a target (counted at every step, as Figure 4 counts), divergence
  and traces of GD, clipped GD and normalized GD on x^4 and cosh,
  against a plain step-by-step NumPy loop with the closed-form derivatives.
- The smoothness estimators (``smoothness.along_training``, the step function the smoothness
  experiment logs with, and ``hessian_norm`` called alone, as max_step does) along clipped-GD
  trajectories of x^4, cosh and a quadratic, against closed forms: f'' = 12 x^2, cosh x and
  the top eigenvalue for the Hessian norm; for the trajectory ratio, the exact secant of f'
  over the half step, and the range of f'' over it.
- The optimizers and clipping functions the experiments build, step by step on the MLP of
  seed 000, against optax's implementations (and torch's documented rule, in NumPy, for
  ``clip_grad_norm``).
- The statistics (``stats``) against scipy on data with a known answer, and the coverage of
  the intervals the smoothness experiment computes (pooled bootstrap and over seeds) on
  independent series.

Everything measured goes through the toolkit ``tk``; no reference calls the code it checks.
The record holds the disagreements; ``experiments/claims/calibration.py`` holds them to
tolerances stated there.
"""

from __future__ import annotations

import functools
import json
import math
from typing import TypedDict, cast

import jax
import jax.numpy as jnp
import numpy as np
import optax
from omegaconf import DictConfig, OmegaConf
from scipy import stats as sps

from experiments.common import Progress, hydra_entry, write
from experiments.records import Num
from experiments.registry import Experiment
from research import validate
from research.toolkit import REAL, Toolkit

METHODS = ("gd", "clipped_gd", "normalized_gd")
"""The step rules of the engine's sample (their hyperparameters: lr; eta, gamma; eta, beta)."""


class EngineRun(TypedDict):
    iterations_to_eps: list[int]
    reference_iterations_to_eps: list[int]
    iterations_to_target: list[int]
    reference_iterations_to_target: list[int]
    diverged_at: list[int]
    reference_diverged_at: list[int]
    trace_max_rel_error: Num
    trace_pattern_mismatches: int
    compared_entries: int
    crossing_margin: Num


class SmoothnessProblem(TypedDict):
    points: int
    errors: dict[str, Num]
    sandwich_violations: int


class OptimizerRun(TypedDict):
    max_rel_error: Num
    clipped_steps: int | None


class MedianIntervals(TypedDict):
    mismatches: int
    coverage_max_abs_diff: Num
    sizes: int


class Statistics(TypedDict):
    max_abs_diff: dict[str, Num]
    data_sets: int
    monotone_increasing: Num
    monotone_decreasing: Num
    pooled: dict[str, Num]
    median_interval: MedianIntervals


class Coverage(TypedDict):
    level: Num
    replications: int
    seeds: int
    points: int
    n_boot: int
    covered: dict[str, Num]


class CalibrationResult(TypedDict):
    engine: dict[str, EngineRun]
    smoothness: dict[str, SmoothnessProblem]
    optimizers: dict[str, OptimizerRun]
    clipping: dict[str, OptimizerRun]
    stats: Statistics
    coverage: Coverage


# --------------------------------------------------------------------------- comparisons


def rel_errors(a, b) -> tuple[float, int]:
    """(largest |a - b| / |b| where both are finite, entries where only one is finite or the
    two non-finite values differ): how a measured array departs from its reference."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both = np.isfinite(a) & np.isfinite(b)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    pattern = int(np.sum(~both & ~same))
    den = np.maximum(np.abs(b[both]), np.finfo(float).tiny)
    return float(np.max(np.abs(a[both] - b[both]) / den, initial=0.0)), pattern


# --------------------------------------------------------------------------- the engine


def closed_form(name: str):
    """(f, f', f'') of a 1-D closed-form problem, in NumPy."""
    if name == "quartic":
        return (lambda x: x**4), (lambda x: 4.0 * x**3), (lambda x: 12.0 * x**2)
    return np.cosh, np.sinh, np.cosh


def _batch(runs: dict) -> dict:
    """Every trajectory of the engine's sample side by side: its start, whether it is on
    x^4, its method and its hyperparameters (NaN where its method has none)."""
    rows = [(spec, x) for spec in runs.values() for x in spec["x0"]]
    out = {"x0": np.asarray([float(x) for _, x in rows]),
           "quartic": np.asarray([spec["problem"] == "quartic" for spec, _ in rows]),
           "method": np.asarray([METHODS.index(spec["method"]) for spec, _ in rows])}
    for key in ("lr", "eta", "gamma", "beta"):
        out[key] = np.asarray([float(spec.get(key, np.nan)) for spec, _ in rows])
    return out


def reference_step(b: dict, g):
    """The step h(|g|) of docs/theory.md §2 for each trajectory of the batch ``b``:
    lr; min(eta, gamma eta / |g|); eta / (|g| + beta)."""
    return np.select([b["method"] == 0, b["method"] == 1],
                     [b["lr"], np.minimum(b["eta"], b["gamma"] * b["eta"] / g)],
                     b["eta"] / (g + b["beta"]))


@functools.cache
def reference_loop(runs_json: str, steps: int, eps: float, targets_json: str):
    """The plain loop x <- x - h(|f'(x)|) f'(x) for every trajectory of the engine's sample
    (``runs_json``: its runs as JSON), with the engine's documented conventions: traces of f,
    |f'| and the effective step |u| / |f'| per iterate, NaN once a trajectory diverged; the
    first t with |f'(x_t)| <= eps; the first t with f(x_t) <= its problem's target
    (``targets_json``: problem -> target); the t whose f, f' or next iterate was non-finite
    (-1: none). It depends on the config alone, so it is computed once per process."""
    b = _batch(json.loads(runs_json))
    targets = json.loads(targets_json)
    target = np.where(b["quartic"], targets["quartic"], targets["cosh"])
    (f4, df4, _), (fc, dfc, _) = closed_form("quartic"), closed_form("cosh")
    x, q = b["x0"].copy(), b["quartic"]
    out = {k: np.full((x.size, steps + 1), np.nan) for k in ("f", "grad_norm", "step_size")}
    hit, div, reached = np.full(x.size, -1), np.full(x.size, -1), np.full(x.size, -1)
    alive = np.ones(x.size, bool)
    with np.errstate(all="ignore"):
        for t in range(steps + 1):
            fx, gx = np.where(q, f4(x), fc(x)), np.where(q, df4(x), dfc(x))
            g = np.abs(gx)
            out["f"][alive, t], out["grad_norm"][alive, t] = fx[alive], g[alive]
            ok = alive & np.isfinite(fx) & np.isfinite(g)
            hit = np.where((hit < 0) & ok & (g <= eps), t, hit)
            reached = np.where((reached < 0) & ok & (fx <= target), t, reached)
            if t == steps:
                div = np.where(alive & ~ok, t, div)
                break
            u = -reference_step(b, g) * gx
            out["step_size"][ok, t] = (np.abs(u) / np.where(g > 0, g, 1.0))[ok]
            new = x + u
            ok_new = ok & np.isfinite(new)
            div = np.where(alive & ~ok_new, t, div)
            x, alive = np.where(ok_new, new, x), ok_new
    return out, hit, reached, div


def _optimizer(tk: Toolkit, method: str, hp: dict):
    if method == "gd":
        return tk.optimizers.gd(hp["lr"])
    if method == "clipped_gd":
        return tk.optimizers.clipped_gd(hp["eta"], hp["gamma"])
    return tk.optimizers.normalized_gd(hp["eta"], hp["beta"])


def _compared_columns(iterations, hit, every: int, stopped: bool) -> np.ndarray:
    """Which recorded columns each trajectory has: all, or with ``stop_at_eps`` those up to
    the start of the block in which it reached eps (later ones are NaN by design)."""
    cols = np.broadcast_to(np.asarray(iterations), (len(hit), len(iterations)))
    if not stopped:
        return np.ones(cols.shape, bool)
    last = np.where(hit >= 0, (hit // every) * every, np.iinfo(np.int64).max)
    return cols <= last[:, None]


def engine_section(tk: Toolkit, e: dict) -> dict:
    """Every run of the engine's sample against the reference loop."""
    steps, eps = e["steps"], e["eps"]
    ref_all, hit_all, reached_all, div_all = reference_loop(
        json.dumps(e["runs"], sort_keys=True), steps, eps, json.dumps(e["f_target"]))
    out, first = {}, 0
    for label, spec in sorted(e["runs"].items()):
        rows = slice(first, first + len(spec["x0"]))
        first = rows.stop
        out[label] = engine_run(tk, spec, steps, eps, e["f_target"][spec["problem"]],
                                ({k: v[rows] for k, v in ref_all.items()}, hit_all[rows],
                                 reached_all[rows], div_all[rows]))
    return out


def engine_run(tk: Toolkit, spec: dict, steps: int, eps: float, f_target: float,
               reference) -> dict:
    """One run of the engine's sample, called as the figure experiments call it, against its
    rows of the reference loop."""
    problem = {"quartic": tk.problems.quartic, "cosh": tk.problems.cosh}[spec["problem"]]()
    every, stopped = int(spec.get("record_every", 1)), bool(spec.get("stop_at_eps", False))
    x0 = jnp.asarray(spec["x0"], dtype=float)[:, None]
    res = tk.engine.run(problem, _optimizer(tk, spec["method"], spec), x0, steps=steps,
                        eps=eps, record_every=every, stop_at_eps=stopped, f_target=f_target)
    ref, hit, reached, div = reference
    keep = _compared_columns(res.iterations, hit, every, stopped)
    err, pattern = 0.0, 0
    for k in ("f", "grad_norm", "step_size"):
        e, p = rel_errors(res.trace[k][keep], ref[k][:, res.iterations][keep])
        err, pattern = max(err, e), pattern + p
    g = ref["grad_norm"]
    margins = [min(abs(g[b, t] - eps), abs(g[b, t - 1] - eps)) / eps
               for b, t in enumerate(hit) if t > 0]
    return {"iterations_to_eps": [int(c) for c in res.iterations_to_eps],
            "reference_iterations_to_eps": hit.tolist(),
            "iterations_to_target": [int(c) for c in res.iterations_to_target],
            "reference_iterations_to_target": reached.tolist(),
            "diverged_at": [int(d) for d in res.diverged_at],
            "reference_diverged_at": div.tolist(),
            "trace_max_rel_error": err, "trace_pattern_mismatches": pattern,
            "compared_entries": int(keep.sum()) * 3,
            "crossing_margin": min(margins, default=float("nan"))}


# --------------------------------------------------------------------------- smoothness


def forms(name: str, problem):
    """(f, grad f, f'') of a closed-form problem on rows of points (n, dim), in NumPy; f'' is
    None for the quadratic, whose Hessian is its matrix everywhere."""
    if name == "quadratic":
        A = np.asarray(problem.extra["A"])
        return (lambda x: 0.5 * np.einsum("ni,ij,nj->n", x, A, x)), (lambda x: x @ A), None
    f, df, d2f = closed_form(name)
    return (lambda x: f(x[:, 0])), df, (lambda x: d2f(x[:, 0]))


def reference_clipped_gd(grad, x0, eta: float, gamma: float, steps: int) -> np.ndarray:
    """The iterates x_0 .. x_steps of x <- x - min(eta, gamma eta / |g|) g, in NumPy."""
    xs = np.empty((steps + 1, len(x0)))
    xs[0] = x0
    for t in range(steps):
        g = grad(xs[t:t + 1])[0]
        n = np.linalg.norm(g)
        xs[t + 1] = xs[t] - (min(eta, gamma * eta / n) if n > 0 else eta) * g
    return xs


def smoothness_references(name: str, problem, x, nxt, condition: float) -> dict:
    """Closed forms at the steps x -> nxt (rows): f, |grad f|, the secant
    |grad f(x + d/2) - grad f(x)| / (|d| / 2), the Hessian norm at x, and the range [lo, hi]
    of f'' over the half step (the eigenvalues' range, 1 to ``condition``, for the
    quadratic)."""
    f, grad, d2f = forms(name, problem)
    mid = x + 0.5 * (nxt - x)
    secant = np.linalg.norm(grad(mid) - grad(x), axis=1) / (np.linalg.norm(nxt - x, axis=1) / 2)
    if d2f is None:
        hess = np.full(len(x), condition)
        lo, hi = np.ones(len(x)), hess
    else:
        hess, at_mid = d2f(x), d2f(mid)
        crosses = np.sign(x[:, 0]) != np.sign(mid[:, 0])  # f'' is smallest at 0
        lo = np.where(crosses, d2f(np.zeros((1, 1)))[0], np.minimum(hess, at_mid))
        hi = np.maximum(hess, at_mid)
    return {"loss": f(x), "grad_norm": np.linalg.norm(grad(x), axis=1), "traj": secant,
            "hess": hess, "lo": lo, "hi": hi}


@functools.cache
def _full_sample(fn):
    """A "subsample" loss that is the full loss (the key ignored): with it the subsample
    estimator must equal the full-batch one. Cached, so the compiled program is reused."""
    return lambda x, key: fn(x)


@functools.cache
def _hessian_norms(hessian_norm, fn, iters: int):
    return jax.jit(jax.vmap(lambda a: hessian_norm(fn, a, iters=iters)))


SANDWICH_SLACK = 1e-8
"""Relative slack of the check that a trajectory ratio lies within the range of f'' over its
half step (the ratio is the mean of f'' there, computed in floating point)."""


def smoothness_problem(tk: Toolkit, name: str, spec: dict, steps: int, log_every: int,
                       hvp_iters: int) -> dict:
    """The estimators along one clipped-GD run against the closed forms."""
    if name == "quadratic":
        problem = tk.problems.quadratic(dim=len(spec["x0"]), condition=spec["condition"])
    else:
        problem = {"quartic": tk.problems.quartic, "cosh": tk.problems.cosh}[name]()
    x0 = np.asarray(spec["x0"], dtype=float)
    eta, gamma = float(spec["eta"]), float(spec["gamma"])
    out = tk.smoothness.along_training(problem, tk.optimizers.clipped_gd(eta, gamma), steps,
                                       log_every, x0=jnp.asarray(x0), hvp_iters=hvp_iters,
                                       subsample_fn=_full_sample(problem.fn))
    xs = reference_clipped_gd(forms(name, problem)[1], x0, eta, gamma, steps)
    k = np.asarray(out["iteration"])
    ref = smoothness_references(name, problem, xs[k], xs[k + 1], spec.get("condition", 0.0))
    measured = {"loss": out["loss"], "grad_norm": out["grad_norm"],
                "traj": out["smoothness_traj"], "sub": out["smoothness_sub"],
                "hess": out["smoothness_hess"],
                "hess_alone": _hessian_norms(tk.smoothness.hessian_norm, problem.fn,
                                             hvp_iters)(xs[k])}
    errors = {}
    for key, value in measured.items():
        want = ref[key.split("_alone")[0] if key != "sub" else "traj"]
        e, pattern = rel_errors(np.asarray(value), want)
        errors[key] = e if pattern == 0 else float("inf")  # a NaN estimate fails
    est = np.asarray(out["smoothness_traj"])
    outside = (est > ref["hi"] * (1 + SANDWICH_SLACK)) | (est < ref["lo"] * (1 - SANDWICH_SLACK))
    return {"points": int(k.size), "errors": errors,
            "sandwich_violations": int(np.sum(outside | ~np.isfinite(est)))}


# --------------------------------------------------------------------------- optimizers


def _per_leaf(transform: optax.GradientTransformation) -> optax.GradientTransformation:
    """``transform`` (stateless) applied to each leaf on its own: Keras's clipnorm from optax's
    global-norm clipping."""

    def update(updates, state, params=None):
        return jax.tree_util.tree_map(
            lambda u: transform.update(u, transform.init(u))[0], updates), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _scalar_rule(h) -> optax.GradientTransformation:
    """x <- x - h(||g||) g, with optax's norm."""
    return optax.stateless(
        lambda g, params: jax.tree_util.tree_map(lambda a: -h(optax.tree.norm(g)) * a, g))


def reference_rules(L0: float, L1: float, eta: float, tau: float) -> dict:
    """The step rules h(g) of docs/theory.md §2 (Vankov et al.'s four; Theorem 7's, as printed
    and without eta in the denominator), written out."""
    return {
        "l0l1_inverse": lambda g: 1.0 / (L0 + L1 * g),
        "l0l1_star": lambda g: jnp.log1p(L1 * g / (L0 + L1 * g)) / (L1 * g),
        "l0l1_si": lambda g: 1.0 / (L0 + 1.5 * L1 * g),
        "l0l1_cl": lambda g: jnp.minimum(1.0 / (2 * L0), 1.0 / (3 * L1 * g)),
        "thm7_printed": lambda g: jnp.minimum(1.0 / (16 * eta * L1 * (g + tau)), eta),
        "thm7_without_eta": lambda g: jnp.minimum(1.0 / (16 * L1 * (g + tau)), eta),
    }


def reference_optimizers(c: dict, norm_c: float, value_c: float) -> dict:
    """label -> (optax's implementation, what its clipping bounds: None, "global", "leaf" or
    "value")."""
    lr, m = c["lr"], c["momentum"]
    eta_n, beta = c["normalized"]["eta"], c["normalized"]["beta"]
    clip_global = optax.clip_by_global_norm(norm_c)
    refs = {
        "gd": (optax.sgd(lr), None),
        "clipped_gd": (optax.chain(clip_global, optax.sgd(lr)), "global"),
        "normalized_gd": (optax.chain(optax.normalize_by_update_norm(1.0, eps=beta),
                                      optax.sgd(eta_n)), None),
        "value_clipped_gd": (optax.chain(optax.clip(value_c), optax.sgd(lr)), "value"),
        "sgd_momentum": (optax.sgd(lr, momentum=m), None),
        "sgd_momentum_0": (optax.sgd(lr), None),
        "sgd_global_clipnorm": (optax.chain(clip_global, optax.sgd(lr, momentum=m)), "global"),
        "sgd_clipnorm": (optax.chain(_per_leaf(clip_global), optax.sgd(lr, momentum=m)), "leaf"),
        "sgd_clipvalue": (optax.chain(optax.clip(value_c), optax.sgd(lr, momentum=m)), "value"),
    }
    rules = reference_rules(c["l0l1"]["L0"], c["l0l1"]["L1"], c["thm7"]["eta"], c["thm7"]["tau"])
    refs.update({label: (_scalar_rule(h), None) for label, h in rules.items()})
    return refs


def our_optimizers(tk: Toolkit, c: dict, norm_c: float, value_c: float) -> dict:
    """label -> the project's optimizer, as the experiments build it."""
    lr, m, L0, L1, t7 = c["lr"], c["momentum"], c["l0l1"]["L0"], c["l0l1"]["L1"], c["thm7"]
    ours = {
        "gd": tk.optimizers.gd(lr),
        "clipped_gd": tk.optimizers.clipped_gd(lr, norm_c),
        "normalized_gd": tk.optimizers.normalized_gd(c["normalized"]["eta"],
                                                     c["normalized"]["beta"]),
        "value_clipped_gd": tk.optimizers.value_clipped_gd(lr, value_c),
        "sgd_momentum": tk.optimizers.sgd_momentum(lr, m),
        "sgd_momentum_0": tk.optimizers.sgd_momentum(lr, 0.0),
        "sgd_global_clipnorm": tk.optimizers.sgd_momentum(lr, m, global_clipnorm=norm_c),
        "sgd_clipnorm": tk.optimizers.sgd_momentum(lr, m, clipnorm=norm_c),
        "sgd_clipvalue": tk.optimizers.sgd_momentum(lr, m, clipvalue=value_c),
        "thm7_printed": tk.optimizers.clipped_sgd_thm7(t7["eta"], t7["L1"], t7["tau"]),
        "thm7_without_eta": tk.optimizers.clipped_sgd_thm7(t7["eta"], t7["L1"], t7["tau"],
                                                           printed=False),
    }
    for rule in ("inverse", "star", "si", "cl"):
        ours[f"l0l1_{rule}"] = tk.optimizers.l0l1_gd(L0, L1, rule)
    return ours


def _binds(kind: str | None, g, norm_c: float, value_c: float) -> bool:
    """Whether clipping of ``kind`` changes the gradient ``g`` (from its leaves, in NumPy)."""
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(g)]
    if kind == "global":
        return math.sqrt(sum(float(np.sum(a * a)) for a in leaves)) > norm_c
    if kind == "leaf":
        return any(float(np.linalg.norm(a)) > norm_c for a in leaves)
    return any(float(np.max(np.abs(a))) > value_c for a in leaves)


@functools.cache
def _gradient(fn):
    return jax.jit(jax.grad(fn))


def iterates(fn, opt, x0, steps: int, kind=None, norm_c: float = 0.0, value_c: float = 0.0):
    """(x_0 .. x_steps of ``opt`` on f from ``x0``, full batch, each flattened to NumPy; the
    steps whose gradient the clipping of ``kind`` changes)."""
    grad = _gradient(fn)
    x, state = x0, opt.init(x0)
    xs, clipped = [_flat(x0)], 0
    for _ in range(steps):
        g = grad(x)
        clipped += kind is not None and _binds(kind, g, norm_c, value_c)
        u, state = opt.update(g, state, x)
        x = optax.apply_updates(x, u)
        xs.append(_flat(x))
    return np.stack(xs), clipped


def _flat(tree) -> np.ndarray:
    """All entries of a pytree as one NumPy vector (in NumPy: no program to compile)."""
    return np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(tree)])


@functools.cache
def reference_iterates(problem, c_json: str, norm_c: float, value_c: float) -> dict:
    """label -> ``iterates`` of optax's implementation. It depends on the config and the
    problem alone, so it is computed once per process."""
    c = json.loads(c_json)
    return {label: iterates(problem.fn, ref, problem.x0, c["steps"], kind, norm_c, value_c)
            for label, (ref, kind) in reference_optimizers(c, norm_c, value_c).items()}


def distance_error(xs, ref) -> float:
    """The largest ||x_t - x_t^ref|| / ||x_t^ref - x_0|| over t >= 1: the error relative to
    the distance travelled (inf when not finite)."""
    e = np.linalg.norm(xs[1:] - ref[1:], axis=1) / np.linalg.norm(ref[1:] - ref[0], axis=1)
    return float(np.max(e)) if np.all(np.isfinite(e)) else float("inf")


def optimizers_section(tk: Toolkit, c: dict) -> tuple[dict, dict]:
    """Every optimizer against optax on the MLP of seed 000, and the clipping functions on its
    first gradient: ({label: OptimizerRun}, {label: OptimizerRun})."""
    problem = tk.problems.mlp_regression(hidden=c["hidden"])
    g0 = _gradient(problem.fn)(problem.x0)
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(g0)]
    norm_c = c["clip_fraction"] * math.sqrt(sum(float(np.sum(a * a)) for a in leaves))
    value_c = c["clip_fraction"] * max(float(np.max(np.abs(a))) for a in leaves)
    refs = reference_iterates(problem, json.dumps(c, sort_keys=True), norm_c, value_c)
    kinds = {label: kind for label, (_, kind) in reference_optimizers(c, norm_c, value_c).items()}
    runs = {}
    for label, opt in our_optimizers(tk, c, norm_c, value_c).items():
        xs, _ = iterates(problem.fn, opt, problem.x0, c["steps"])
        ref, clipped = refs[label]
        runs[label] = {"max_rel_error": distance_error(xs, ref),
                       "clipped_steps": clipped if kinds[label] is not None else None}
    return runs, clipping_section(tk, g0, c["clip_fraction"], norm_c, value_c)


def _tree_error(a, b) -> float:
    """||a - b|| / ||b|| over all entries of two pytrees of one structure."""
    fa, fb = _flat(a), _flat(b)
    e = np.linalg.norm(fa - fb) / np.linalg.norm(fb)
    return float(e) if np.isfinite(e) else float("inf")


def torch_clip_grad_norm(leaves, max_norm: float, p: float):
    """torch.nn.utils.clip_grad_norm_'s documented rule in NumPy: total = the p-norm of all
    entries; every leaf times min(1, max_norm / (total + 1e-6))."""
    flat = np.concatenate([np.ravel(a) for a in leaves])
    total = float(np.linalg.norm(flat, ord=p))
    return [a * min(1.0, max_norm / (total + 1e-6)) for a in leaves], total


def clipping_section(tk: Toolkit, g0, fraction: float, norm_c: float, value_c: float) -> dict:
    """Each clipping function on the first gradient (where it binds) and on a copy scaled by
    fraction / 2 (where it does not), against its reference."""
    out = {}
    leaves0 = [np.asarray(a) for a in jax.tree_util.tree_leaves(g0)]
    for p in (1.0, 2.0, 3.0, 4.0, math.inf):
        max_norm = fraction * torch_clip_grad_norm(leaves0, 1.0, p)[1]
        worst = 0.0
        for scale in (1.0, fraction / 2):
            g = jax.tree_util.tree_map(lambda a, s=scale: a * s, g0)
            clipped, total = tk.clipping.clip_grad_norm(g, max_norm, norm_type=p)
            want, want_total = torch_clip_grad_norm(
                [np.asarray(a) for a in jax.tree_util.tree_leaves(g)], max_norm, p)
            worst = max(worst, _tree_error(jax.tree_util.tree_leaves(clipped), want),
                        abs(float(total) - want_total) / want_total)
        binds = torch_clip_grad_norm(leaves0, 1.0, p)[1] > max_norm
        out[f"clip_grad_norm_p{p:g}"] = {"max_rel_error": worst, "clipped_steps": int(binds)}
    refs = {"clip_global_norm": (lambda g: tk.clipping.clip_global_norm(g, norm_c),
                                 optax.clip_by_global_norm(norm_c), "global"),
            "clip_per_tensor_norm": (lambda g: tk.clipping.clip_per_tensor_norm(g, norm_c),
                                     _per_leaf(optax.clip_by_global_norm(norm_c)), "leaf"),
            "clip_grad_value": (lambda g: tk.clipping.clip_grad_value(g, value_c),
                                optax.clip(value_c), "value")}
    for label, (ours, ref, kind) in refs.items():
        worst = 0.0
        for scale in (1.0, fraction / 2):
            g = jax.tree_util.tree_map(lambda a, s=scale: a * s, g0)
            worst = max(worst, _tree_error(ours(g), ref.update(g, ref.init(g))[0]))
        out[label] = {"max_rel_error": worst,
                      "clipped_steps": int(_binds(kind, g0, norm_c, value_c))}
    return out


# --------------------------------------------------------------------------- statistics


def partial_reference(x, y, t) -> float:
    """The textbook partial correlation on scipy's Spearman correlations:
    (r_xy - r_xt r_yt) / sqrt((1 - r_xt^2)(1 - r_yt^2))."""
    r = sps.spearmanr(np.column_stack([x, y, t])).statistic
    return float((r[0, 1] - r[0, 2] * r[1, 2]) / math.sqrt((1 - r[0, 2] ** 2)
                                                             * (1 - r[1, 2] ** 2)))


def _draw(rng, n: int, ties: bool):
    """(x, y, t): x and y sharing a trend in t plus a common part, rounded when ``ties``."""
    t = np.arange(n, dtype=float)
    common = rng.standard_normal(n)
    x = 0.02 * t + common + rng.standard_normal(n)
    y = -0.01 * t + 0.5 * common + rng.standard_normal(n)
    return (np.round(x, 1), np.round(y, 1), t) if ties else (x, y, t)


def point_estimates(tk: Toolkit, c: dict) -> dict:
    """Largest disagreement of each statistic with scipy over the random data sets."""
    rng = np.random.default_rng(c["seed"])
    worst = dict.fromkeys(("spearman", "partial_spearman", "detrended", "ols_slope"), 0.0)
    sets = 0
    for n in c["sizes"]:
        for i in range(c["draws"]):
            x, y, t = _draw(rng, n, ties=i % 2 == 1)
            ex, ey = np.exp(x), np.exp(y)
            diffs = {
                "spearman": tk.stats.spearman(x, y) - sps.spearmanr(x, y).statistic,
                "partial_spearman": tk.stats.partial_spearman(x, y, t)
                - partial_reference(x, y, t),
                "detrended": tk.stats.detrended_correlation(ex, ey, t)
                - sps.spearmanr(np.diff(np.log(ex)), np.diff(np.log(ey))).statistic,
                "ols_slope": (tk.stats.ols_slope(x, y) / sps.linregress(x, y).slope - 1),
            }
            for k, d in diffs.items():
                worst[k] = max(worst[k], abs(d) if np.isfinite(d) else math.inf)
            sets += 1
    x = rng.standard_normal(50)
    return {"max_abs_diff": worst, "data_sets": sets,
            "monotone_increasing": tk.stats.spearman(x, np.exp(3 * x)),
            "monotone_decreasing": tk.stats.spearman(x, -(x**3)),
            "pooled": pooled_estimates(tk, rng), "median_interval": median_intervals(tk, rng)}


def pooled_estimates(tk: Toolkit, rng) -> dict:
    """``log_log_evidence``'s pooled point estimates over three runs against scipy on the
    pooled data (levels; differences taken within each run)."""
    n, runs = 40, 3
    data = [_draw(rng, n, ties=False) for _ in range(runs)]
    xs, ys, ts = ([np.exp(d[0]) for d in data], [np.exp(d[1]) for d in data],
                  [d[2] for d in data])
    ev = tk.stats.log_log_evidence(xs, ys, ts, n_boot=20, rng=0)
    lx, ly, t = (np.concatenate(a) for a in ([d[0] for d in data], [d[1] for d in data], ts))
    dx = np.concatenate([np.diff(d[0]) for d in data])
    dy = np.concatenate([np.diff(d[1]) for d in data])
    want = {"spearman": sps.spearmanr(lx, ly).statistic,
            "partial_spearman": partial_reference(lx, ly, t),
            "detrended": sps.spearmanr(dx, dy).statistic}
    return {k: abs(ev[k]["estimate"] - v) if np.isfinite(ev[k]["estimate"]) else math.inf
            for k, v in want.items()}


def median_interval_reference(lo, hi, level: float) -> tuple[float, float, float]:
    """The order-statistic interval [lo_(j+1), hi_(n-j)] (of the sorted lower and upper
    bounds; of the values themselves when they are equal) with the largest j whose coverage
    P(j+1 <= B <= n-j-1), B ~ Binomial(n, 1/2), is at least ``level`` (j = 0 if none), by
    exact binomial sums: (lo, hi, coverage)."""
    lo, hi = np.sort(lo), np.sort(hi)
    n = len(lo)

    def coverage(j: int) -> float:
        return sum(math.comb(n, k) for k in range(j + 1, n - j)) / 2**n

    j = max([j for j in range((n + 1) // 2) if coverage(j) >= level], default=0)
    return float(lo[j]), float(hi[n - 1 - j]), coverage(j)


MEDIAN_LEVEL = 0.95
"""The level of the median intervals the network experiments publish
(``training.median_over_seeds`` and Figure 4's speed-up: ``stats.median_interval``'s and
``stats.median_bounds``'s default)."""


def median_intervals(tk: Toolkit, rng) -> dict:
    """``median_interval`` on 1 to 30 values, and ``median_bounds`` on as many censored ones
    (each known to lie in [v, v + |e|], some ends infinite), against the exact
    order-statistic rule."""
    mismatches, worst = 0, 0.0
    for n in range(1, 31):
        x = rng.standard_normal(n)
        m = tk.stats.median_interval(x)
        lo, hi, cov = median_interval_reference(x, x, MEDIAN_LEVEL)
        mismatches += (m.lo != lo) + (m.hi != hi) + (m.median != float(np.median(x)))
        upper = np.where(rng.random(n) < 0.2, np.inf, x + np.abs(rng.standard_normal(n)))
        b = tk.stats.median_bounds(x, upper)
        blo, bhi, bcov = median_interval_reference(x, upper, MEDIAN_LEVEL)
        mismatches += (b.lo != blo) + (b.hi != bhi)
        worst = max(worst, abs(m.coverage - cov), abs(b.coverage - bcov))
    return {"mismatches": int(mismatches), "coverage_max_abs_diff": worst, "sizes": 30}


COVERED = ("spearman", "partial_spearman", "detrended")
"""The bootstrap intervals of ``log_log_evidence`` whose coverage of 0 is measured (the two
trend-robust ones and the plain Spearman)."""

SEED_LEVEL = ("partial_spearman", "detrended", "slope")
"""The intervals over seeds of ``seed_level_evidence`` (what the smoothness verdicts read)
whose coverage of 0 is measured."""


def coverage_section(tk: Toolkit, c: dict) -> dict:
    """Share of replications whose interval holds 0 when x, y and the step are independent
    (log-normal x and y), with the smoothness experiment's layout (``seeds`` runs of
    ``points`` points each): the pooled bootstrap intervals, and the intervals over seeds
    (as "seed_level/<statistic>")."""
    rng = np.random.default_rng(c["seed"])
    t = np.arange(c["points"], dtype=float)
    covered = dict.fromkeys([*COVERED, *(f"seed_level/{k}" for k in SEED_LEVEL)], 0)
    for r in range(c["replications"]):
        xs = [np.exp(rng.standard_normal(c["points"])) for _ in range(c["seeds"])]
        ys = [np.exp(rng.standard_normal(c["points"])) for _ in range(c["seeds"])]
        ev = tk.stats.log_log_evidence(xs, ys, [t] * c["seeds"], n_boot=c["n_boot"],
                                       level=c["level"], rng=r)
        seed = tk.stats.seed_level_evidence(ev["per_seed"], c["level"])
        for k in COVERED:
            covered[k] += bool(ev[k]["lo"] <= 0.0 <= ev[k]["hi"])
        for k in SEED_LEVEL:
            covered[f"seed_level/{k}"] += bool(seed[k]["lo"] <= 0.0 <= seed[k]["hi"])
    return {"level": c["level"], "replications": c["replications"], "seeds": c["seeds"],
            "points": c["points"], "n_boot": c["n_boot"],
            "covered": {k: v / c["replications"] for k, v in covered.items()}}


# --------------------------------------------------------------------------- the experiment


def checked(cfg: DictConfig) -> dict:
    """The config as plain data, every size and step checked (``ValueError`` naming it)."""
    c = cast(dict, OmegaConf.to_container(cfg, resolve=True))
    e = c["engine"]
    validate.positive_int("engine.steps", e["steps"])
    validate.positive("engine.eps", e["eps"])
    targets = e.get("f_target")
    if not isinstance(targets, dict) or set(targets) != {"quartic", "cosh"}:
        raise ValueError("engine.f_target must give a number for each of quartic and cosh; "
                         f"got {targets!r}.")
    for name, v in targets.items():
        validate.positive(f"engine.f_target.{name}", v)
    for label, spec in e["runs"].items():
        validate.choice(f"engine.runs.{label}.problem", spec.get("problem"), ("quartic", "cosh"))
        validate.choice(f"engine.runs.{label}.method", spec.get("method"), METHODS)
        if not spec.get("x0"):
            raise ValueError(f"engine.runs.{label}.x0 must be a non-empty list of numbers.")
        every = validate.positive_int(f"engine.runs.{label}.record_every",
                                      spec.get("record_every", 1))
        if e["steps"] % every:
            raise ValueError(f"engine.runs.{label}.record_every must divide engine.steps; got "
                             f"{every} and {e['steps']}.")
    s = c["smoothness"]
    for key in ("steps", "log_every", "hvp_iters"):
        validate.positive_int(f"smoothness.{key}", s[key])
    if s["steps"] % s["log_every"]:
        raise ValueError(f"smoothness.log_every must divide smoothness.steps; got "
                         f"{s['log_every']} and {s['steps']}.")
    for name in s["problems"]:
        validate.choice("smoothness.problems", name, ("quartic", "cosh", "quadratic"))
    o = c["optimizers"]
    validate.positive_int("optimizers.steps", o["steps"])
    validate.in_interval("optimizers.clip_fraction", o["clip_fraction"], 0.0, 1.0)
    for key in ("replications", "seeds", "points", "n_boot"):
        validate.positive_int(f"coverage.{key}", c["coverage"][key])
    validate.in_interval("coverage.level", c["coverage"]["level"], 0.0, 1.0)
    validate.positive_int("stats.draws", c["stats"]["draws"])
    return c


def run(cfg: DictConfig, tk: Toolkit = REAL) -> None:
    c = checked(cfg)
    say = Progress("calibration")
    e, s = c["engine"], c["smoothness"]
    metrics: dict = {"engine": engine_section(tk, e)}
    bad = [k for k, r in metrics["engine"].items()
           if r["iterations_to_eps"] != r["reference_iterations_to_eps"]]
    say(f"engine: {len(metrics['engine'])} runs; counts differing from the loop's: "
        f"{', '.join(bad) or 'none'}")
    metrics["smoothness"] = {name: smoothness_problem(tk, name, spec, s["steps"],
                                                      s["log_every"], s["hvp_iters"])
                             for name, spec in s["problems"].items()}
    say("smoothness: largest relative errors " + "; ".join(
        f"{name} " + ", ".join(f"{k} {v:.1e}" for k, v in r["errors"].items())
        for name, r in metrics["smoothness"].items()))
    metrics["optimizers"], metrics["clipping"] = optimizers_section(tk, c["optimizers"])
    both = [*metrics["optimizers"].values(), *metrics["clipping"].values()]
    say(f"optimizers and clipping: largest relative error "
        f"{max(r['max_rel_error'] for r in both):.1e}")
    metrics["stats"] = point_estimates(tk, c["stats"])
    metrics["coverage"] = coverage_section(tk, c["coverage"])
    diffs = metrics["stats"]["max_abs_diff"]
    say("statistics: largest differences from scipy "
        + ", ".join(f"{k} {float(v):.1e}" for k, v in diffs.items())
        + f"; share of intervals holding 0 (level {c['coverage']['level']:g}): "
        + ", ".join(f"{k} {v:g}" for k, v in metrics["coverage"]["covered"].items()))
    write(cfg, say, metrics)


# Every mutant that replaces something calibrated re-runs this experiment, a dozen of them:
# at the mutation size a re-run takes about half a second once compiled (the references are
# computed once per process). 2000 steps still take 17 of the 24 trajectories to eps, and 20
# replications put the coverage floor at 0.80, far above the 0.3 to 0.6 of 50% intervals.
EXPERIMENT = Experiment(
    name="calibration",
    run=run,
    order=0,
    result=CalibrationResult,
    quick={"engine": {"steps": 2000}, "smoothness": {"steps": 100},
           "optimizers": {"steps": 4}, "stats": {"draws": 2},
           "coverage": {"replications": 20, "n_boot": 100}},
    seconds=(15.0, 10.0),
    mutation={"engine": {"steps": 2000}, "optimizers": {"steps": 4},
              "coverage": {"replications": 20, "n_boot": 100}},
)

main = hydra_entry("calibration", run)

if __name__ == "__main__":
    main()
