"""The calibration claims (``experiments.calibration``): each instrument the figure
experiments read agrees with an independent reference, within a tolerance stated here, before
any data: the engine with a NumPy loop, the smoothness estimators with closed forms, the
optimizers and clipping functions with optax (and torch's rule), the statistics with scipy,
and the bootstrap intervals cover at their level."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import Rerun
from experiments.claims.values import fmt, number

if TYPE_CHECKING:
    from experiments.calibration import CalibrationResult



def _calibration(rec) -> CalibrationResult:
    """The calibration metrics, typed by the schema the experiment declares (imported only
    when read: the experiment module imports JAX)."""
    from experiments.calibration import CalibrationResult

    return records.read(rec, "calibration", CalibrationResult)["metrics"]


TRACE_RTOL = 1e-10
"""Engine and along_training traces against the reference loop, relative: the two round
differently (x**4 as products or as pow) by a few units in the last place a step, and the
contraction towards the minimum keeps the accumulated difference below steps x 1e-16, about
4e-13 for 4000 steps."""

SECANT_RTOL = 1e-8
"""A trajectory ratio against the exact secant, relative: f'(x + d/2) - f'(x) cancels, which
multiplies rounding by |f'| / |f'(x + d/2) - f'(x)|, at most about 1e3 on these runs."""

HESSIAN_RTOL = 1e-9
"""The Hessian norm against its closed form, relative: exact in 1-D, and on the quadratic
(eigenvalues 1, 10, 100) the power iteration's error shrinks 100-fold an iteration."""

OPTIMIZER_RTOL = 1e-9
"""An optimizer's iterates against optax's, relative to the distance travelled: the same
arithmetic in another order (v = m v - lr g against -lr (g + m t)), a few units in the last
place a step over at most 10 steps."""

CLIPPING_RTOL = 1e-12
"""A clipping function's output and total norm against the reference, relative: one
evaluation, sums of about 550 terms in another order."""

STATS_ATOL = 1e-12
"""A statistic against scipy (absolute for correlations, relative for a slope): the same ranks
correlated in another order."""

COVERAGE_SDS = 3.0
"""A bootstrap interval's coverage may fall below its level by this many binomial standard
deviations of the share over the replications, and no more."""


def _rounding(tol: float) -> Rerun:
    return Rerun(atol=tol, why="an error at rounding level moves with the instruction set")


def _error(name: str, value, tol: float) -> Number:
    return Number(name, number(value), "<=", tol, rerun=_rounding(tol))


@claim("engine_matches_reference_loop", needs=("calibration",),
       statement="research.engine, run as the figure experiments run it (batches of starts; "
       "thinned and stopped at eps as the complexity counts are), gives the same iterations "
       "to |f'| <= eps and to f <= a target (counted at every step, as Figure 4 counts), "
       "the same divergence steps and the same traces as a plain step-by-step "
       "NumPy loop with closed-form derivatives, for GD, clipped GD and normalized GD on x^4 "
       "and cosh.",
       source="docs/architecture.md (Calibration); docs/theory.md §2", status="[checked]",
       tolerance="exact: every count (to eps and to the target) and every divergence step "
       "equal the loop's, and every trace entry that is NaN or infinite in one is the same in "
       f"the other; the finite entries of f, |f'| and the step within {TRACE_RTOL:g} "
       "relative; at least one trajectory reaches eps, one the target and one diverges, so "
       "that all three are compared")
def _engine(rec):
    runs = _calibration(rec)["engine"]
    pairs = [(c, r) for run in runs.values() for c, r in zip(
        run["iterations_to_eps"], run["reference_iterations_to_eps"], strict=True)]
    to_target = [(c, r) for run in runs.values() for c, r in zip(
        run["iterations_to_target"], run["reference_iterations_to_target"], strict=True)]
    div = [(d, r) for run in runs.values() for d, r in zip(
        run["diverged_at"], run["reference_diverged_at"], strict=True)]
    count_off = sum(c != r for c, r in pairs)
    target_off = sum(c != r for c, r in to_target)
    at_target = sum(r >= 0 for _, r in to_target)
    div_off = sum(d != r for d, r in div)
    reached = sum(r >= 0 for _, r in pairs)
    diverged = sum(r >= 0 for _, r in div)
    err = max(number(r["trace_max_rel_error"]) for r in runs.values())
    pattern = sum(int(r["trace_pattern_mismatches"]) for r in runs.values())
    entries = sum(int(r["compared_entries"]) for r in runs.values())
    margin = min((number(r["crossing_margin"]) for r in runs.values()
                  if math.isfinite(number(r["crossing_margin"]))), default=math.nan)
    return Outcome(
        f"{len(runs)} runs, {len(pairs)} trajectories ({reached} reach eps, {at_target} the "
        f"target, {diverged} diverge): counts to eps equal the loop's in "
        f"{len(pairs) - count_off}/{len(pairs)}, to the target in "
        f"{len(to_target) - target_off}/{len(to_target)}, divergence steps in "
        f"{len(div) - div_off}/{len(div)}; {entries} trace entries, "
        f"{pattern} NaN/inf mismatches, largest relative error {fmt(err)}; |f'| at the "
        f"crossings at least {fmt(margin)} (relative) away from eps",
        "the engine is the loop, vectorised: equal counts and divergence steps, traces equal "
        "up to rounding",
        [Number("count_mismatches", count_off, "==", 0),
         Number("target_count_mismatches", target_off, "==", 0),
         Number("divergence_step_mismatches", div_off, "==", 0),
         Number("trace_nonfinite_mismatches", pattern, "==", 0),
         _error("trace_max_rel_error", err, TRACE_RTOL),
         Number("trajectories_reaching_eps", reached, ">=", 1),
         Number("trajectories_reaching_target", at_target, ">=", 1),
         Number("trajectories_diverging", diverged, ">=", 1),
         Number("crossing_margin", margin, rerun=_rounding(1e-9))])


ESTIMATES = {"loss": TRACE_RTOL, "grad_norm": TRACE_RTOL, "traj": SECANT_RTOL,
             "sub": SECANT_RTOL, "hess": HESSIAN_RTOL, "hess_alone": HESSIAN_RTOL}
"""The series compared with a closed form, and the tolerance of each."""


@claim("smoothness_estimators_match_closed_forms", needs=("calibration",),
       statement="The smoothness estimators (research.smoothness: the trajectory ratio, full "
       "batch and subsample, and the power-iteration Hessian norm, as along_training logs "
       "them; the Hessian norm also called alone) agree with closed forms along clipped-GD "
       "trajectories of x^4, cosh and a quadratic: f'' = 12 x^2, cosh x and the top "
       "eigenvalue 100; the exact secant of f' over the half step; the range of f'' over it.",
       source="docs/architecture.md (Calibration); docs/theory.md §5", status="[checked]",
       tolerance=f"the trajectory ratios within {SECANT_RTOL:g} of the exact secant "
       f"(relative), the Hessian norms within {HESSIAN_RTOL:g} of f'' (relative), the logged "
       f"loss and gradient norm within {TRACE_RTOL:g} of the loop's (relative), no NaN; every "
       "trajectory ratio within the range of f'' over its half step (relative slack 1e-8); "
       "a constant factor such as 1.01 fails")
def _smoothness(rec):
    probs = _calibration(rec)["smoothness"]
    worst = {k: max(number(p["errors"][k]) for p in probs.values()) for k in ESTIMATES}
    outside = sum(int(p["sandwich_violations"]) for p in probs.values())
    points = sum(int(p["points"]) for p in probs.values())
    return Outcome(
        f"{', '.join(probs)}: {points} logged points; largest relative errors "
        + ", ".join(f"{k} {fmt(v, '.2g')}" for k, v in worst.items())
        + f"; {outside} ratios outside the range of f''",
        "each estimator is its closed form up to rounding",
        [_error(f"{k}_max_rel_error", v, ESTIMATES[k]) for k, v in worst.items()]
        + [Number("ratios_outside_the_range_of_f2", outside, "==", 0),
           Number("points", points, ">=", 1)])


@claim("optimizers_match_optax", needs=("calibration",),
       statement="Every optimizer the experiments build (research.optimizers: GD, clipped GD, "
       "normalized GD, value clipping, SGD with momentum 0.9 and 0 with each of Keras's "
       "clippings, Vankov et al.'s four rules, Theorem 7's step) takes the same steps as "
       "optax's implementation (optax.sgd(momentum=...), clip_by_global_norm, clip, "
       "normalize_by_update_norm; the step rules written out) on the MLP of seed 000.",
       source="docs/architecture.md (Calibration); optax documentation", status="[checked]",
       tolerance=f"every iterate within {OPTIMIZER_RTOL:g} of optax's, relative to the "
       "distance travelled from x0 (the largest over the steps); every clipping optimizer's "
       "clipping binds at one step at least")
def _optimizers(rec):
    runs = _calibration(rec)["optimizers"]
    worst = max(runs, key=lambda k: number(runs[k]["max_rel_error"]))
    clipping = {k: r["clipped_steps"] for k, r in runs.items() if r["clipped_steps"] is not None}
    return Outcome(
        f"{len(runs)} optimizers, {rec['calibration']['config']['optimizers']['steps']} steps "
        f"each: largest relative error {fmt(number(runs[worst]['max_rel_error']))} ({worst}); "
        "clipping binds in " + ", ".join(f"{k} {v}" for k, v in clipping.items()) + " steps",
        "the same updates up to rounding",
        [_error(f"rel_error/{k}", r["max_rel_error"], OPTIMIZER_RTOL) for k, r in runs.items()]
        + [Number(f"clipped_steps/{k}", int(v), ">=", 1) for k, v in clipping.items()])


@claim("clipping_matches_references", needs=("calibration",),
       statement="research.clipping's functions, on the first gradient of the MLP of seed 000 "
       "(where they clip) and on a scaled-down copy (where they do not), agree with the "
       "references: clip_grad_norm with torch's documented rule in NumPy (p = 1, 2, 3, 4, "
       "inf), clip_global_norm with optax.clip_by_global_norm, clip_per_tensor_norm with it "
       "leaf by leaf, clip_grad_value with optax.clip.",
       source="docs/clipping_in_practice.md; torch.nn.utils.clip_grad_norm_", status="[checked]",
       tolerance=f"outputs and total norms within {CLIPPING_RTOL:g} relative; each function "
       "clips the first gradient")
def _clipping(rec):
    fns = _calibration(rec)["clipping"]
    worst = max(number(r["max_rel_error"]) for r in fns.values())
    return Outcome(
        f"{len(fns)} functions: largest relative error {fmt(worst)}; clipping the first "
        f"gradient: {sum(number(r['clipped_steps']) == 1 for r in fns.values())}/{len(fns)}",
        "the references' outputs up to rounding",
        [_error(f"rel_error/{k}", r["max_rel_error"], CLIPPING_RTOL) for k, r in fns.items()]
        + [Number(f"clips/{k}", number(r["clipped_steps"]), "==", 1) for k, r in fns.items()])


@claim("statistics_match_scipy", needs=("calibration",),
       statement="research.stats's Spearman, partial Spearman (given the step), detrended "
       "Spearman and OLS slope agree with scipy on random data with and without ties, and "
       "pooled over runs as log_log_evidence computes them; Spearman is 1 on increasing and "
       "-1 on decreasing non-linear data; median_interval (and median_bounds, on values "
       "known up to an interval) is the exact order-statistic interval of the binomial rule.",
       source="docs/architecture.md (Calibration); scipy.stats", status="[checked]",
       tolerance=f"correlations within {STATS_ATOL:g} of scipy's (absolute; the partial one "
       "of the textbook formula on scipy's Spearman correlations), the slope within "
       f"{STATS_ATOL:g} relative, the monotone cases within {STATS_ATOL:g} of +-1; the median "
       f"intervals' ends equal exactly and their coverage within {STATS_ATOL:g}")
def _stats(rec):
    s = _calibration(rec)["stats"]
    diffs = {**s["max_abs_diff"], **{f"pooled_{k}": v for k, v in s["pooled"].items()}}
    mi = s["median_interval"]
    return Outcome(
        f"{s['data_sets']} data sets: largest differences from scipy "
        + ", ".join(f"{k} {fmt(number(v), '.2g')}" for k, v in diffs.items())
        + f"; monotone: {fmt(number(s['monotone_increasing']), '.17g')}, "
        f"{fmt(number(s['monotone_decreasing']), '.17g')}; median intervals (exact and "
        f"censored values) on 1 to {mi['sizes']} values: {mi['mismatches']} ends differ",
        "the same statistics up to rounding",
        [_error(f"{k}_max_diff", v, STATS_ATOL) for k, v in diffs.items()]
        + [Number("monotone_increasing", number(s["monotone_increasing"]), "==", 1.0,
                  STATS_ATOL),
           Number("monotone_decreasing", number(s["monotone_decreasing"]), "==", -1.0,
                  STATS_ATOL),
           Number("median_interval_mismatches", int(mi["mismatches"]), "==", 0),
           _error("median_interval_coverage_diff", mi["coverage_max_abs_diff"], STATS_ATOL)])


@claim("bootstrap_intervals_cover_at_their_level", needs=("calibration",),
       statement="On independent series laid out as the smoothness experiment's (seeds x "
       "logged points), the intervals the smoothness verdicts rest on hold the true value 0 "
       "in at least the share of replications their level states: the bootstrap intervals "
       "of research.stats.log_log_evidence (Spearman, partial Spearman, detrended) and the "
       "intervals over seeds of research.stats.seed_level_evidence (partial Spearman, "
       "detrended, slope).",
       source="docs/architecture.md (Calibration); Politis and White 2004", status="[checked]",
       tolerance=f"each share at least level - {COVERAGE_SDS:g} sd, sd = sqrt(level (1 - "
       "level) / replications), the binomial spread of the share; no upper bound (a "
       "bootstrap over seeds and blocks may be conservative)")
def _coverage(rec):
    c = _calibration(rec)["coverage"]
    level, reps = number(c["level"]), int(c["replications"])
    floor = level - COVERAGE_SDS * math.sqrt(level * (1 - level) / reps)
    return Outcome(
        f"{reps} replications of {c.get('seeds')} seeds x {c.get('points')} points: share "
        "holding 0 " + ", ".join(f"{k} {fmt(number(v))}" for k, v in c["covered"].items())
        + f" (level {fmt(level)})",
        f"at least {fmt(floor)} ({fmt(level)} - {COVERAGE_SDS:g} sd)",
        [Number(f"coverage/{k}", number(v), ">=", round(floor, 12),
                rerun=Rerun(atol=1.0 / reps, why="one replication's interval at 0"))
         for k, v in c["covered"].items()])
