"""The claims registry: each claim reads run records, measures, compares with the theory, and
returns a ``ClaimRecord`` with a verdict.

Like PEPit's examples, every claim yields (measured, theoretical) and a verdict. Everything
about a claim that is not measured (id, statement, source, status, tolerance, the records it
reads) is declared once, in its ``@claim(...)`` line.

*Gating* follows from the status tag alone (``is_gating``): a claim whose status carries
[paper] or [checked], and none of [recalled], [observation] or [heuristic], gates ``make
verify``. Every gating claim states its tolerance, and the mutation suite
(``experiments.mutants``) proves that some wrong variant of the code trips it.

A failure is a failure: a run that diverges or never reaches eps within its budget T counts as
"at least T" (``censor``) in every slope, ratio and median, and a method that should converge
but does not fails its claim. A claim meeting a non-finite or malformed value reports FAIL
with the reason; ``evaluate`` never raises.

The registry lives beside ``experiments/verify.py`` rather than in the library: a claim knows
which experiment wrote which record and how, which is the verification layer's knowledge, not
``research``'s. References: docs/theory.md.
"""

from __future__ import annotations

import numpy as np

from experiments.claims.registry import (
    GATING_TAGS,
    REGISTRY,
    REPORT_ONLY_TAGS,
    VERDICT_WORDS,
    Claim,
    ClaimRecord,
    Outcome,
    by_id,
    claim,
    is_gating,
    tags,
    verdict_word,
)
from experiments.claims.rerun import EXACT, MEASURED, Rerun
from experiments.claims.run import evaluate, evaluate_records, load_records
from experiments.claims.values import (
    censor,
    counts_text,
    fmt,
    median_text,
    number,
    numbers,
    reached,
)
from research import complexity

__all__ = ["GATING_TAGS", "REGISTRY", "REPORT_ONLY_TAGS", "VERDICT_WORDS", "Claim", "ClaimRecord",
           "Outcome", "by_id", "claim", "is_gating", "tags", "verdict_word", "EXACT", "MEASURED",
           "Rerun", "evaluate", "evaluate_records", "load_records", "censor", "counts_text", "fmt",
           "median_text", "number", "numbers", "reached"]

UNDERFLOW_COUNTS = Rerun(factor=1.01, factor_above=1000.0,
                         why="how many steps reach float64 underflow depends on rounding; "
                             "paper_figures/RERUN.md")
"""The descent audits' step counts: the steps in float64 underflow are not audited, and how
many there are depends on the order of rounding (counts of violations stay exact)."""
NETWORK_RERUN = {"rnn": Rerun(factor=2.0, factor_above=1.0, words=True,
                              why="the best of near-tied cells can change; " + MEASURED)}
"""``clipping_accelerates_networks/<model>``: the tanh RNN's grid is chaotic at its large
learning rates (the char_lm and ResNet rows did not move)."""


# --------------------------------------------------------------------------- x^4 trajectories

CRAWL = 2.0
"""Theorem 6's step 'crawls' on x^4 when it needs at least this many times clipped GD's
iterations at the largest start (a count that never reached eps counts as T)."""


@claim("x4_clipped_vs_fixed", needs=("quartic_trajectories",),
       statement="On x^4, clipped GD with Theorem 3's parameters reaches |f'| <= eps from every "
       "start; a fixed step either crawls (Theorem 6's, at least 2x clipped GD's count at the "
       "largest start) or diverges from large starts (a common step).",
       source="Zhang et al. 2020, Theorem 3 and Remark 5", status="[paper]",
       tolerance="exact counts; 'crawls' = at least 2x clipped GD's iterations at the largest "
       "start, counting a run that never reached eps within T as T; 'diverges' = the common "
       "step is flagged non-finite from the largest start")
def _x4(rec):
    r = rec["quartic_trajectories"]
    m, T = r["metrics"], int(r["config"]["steps"])
    x0 = numbers(r["config"]["x0"])
    big = int(np.argmax(np.abs(x0)))
    clipped = m["clipped_gd"]
    converges = bool(reached(clipped["iterations_to_eps"]).all() and not any(clipped["diverged"]))
    thm6 = censor(m["gd_theorem6"]["iterations_to_eps"], T)
    clipped_big = censor(clipped["iterations_to_eps"], T)[big]
    crawls = bool(not m["gd_theorem6"]["diverged"][big] and thm6[big] >= CRAWL * clipped_big)
    common_diverges = bool(m["gd_common"]["diverged"][big])
    parts = [f"{name}: " + counts_text(m[name]["iterations_to_eps"], T)
             + (f" (diverged from x0 = {', '.join(f'{x:g}' for x, d in zip(x0, m[name]['diverged'], strict=True) if d)})"  # noqa: E501
                if any(m[name]["diverged"]) else "")
             for name in ("clipped_gd", "normalized_gd", "gd_theorem6", "gd_common")]
    return Outcome(
        f"x0 = {', '.join(f'{x:g}' for x in x0)}, T = {T}; " + "; ".join(parts)
        + f". Clipped converges: {converges}; Theorem 6 crawls ({fmt(thm6[big] / clipped_big)}x"
        f" clipped at x0 = {x0[big]:g}): {crawls}; common step diverges: {common_diverges}",
        "clipped GD converges from every start; fixed steps crawl or diverge",
        converges and crawls and common_diverges)


# --------------------------------------------------------------------------- descent audit


def _audit_entries(rec, key):
    probs = rec["descent_audit"]["metrics"]["problems"]
    return [(p, name, m[key]) for p, info in probs.items()
            for name, m in info["methods"].items() if key in m]


@claim("phi_inequality", needs=("descent_audit",),
       statement="Every GD-type step satisfies f(x - h g) <= f(x) - h|g|^2 + (L0 + L1|g|)/L1^2 "
       "phi(L1 h |g|) on problems with known (L0, L1).",
       source="docs/theory.md §1 (Vankov et al. 2024; Hübler et al. 2024)",
       status="[secondary; checked]",
       tolerance="0 violations; a step violates when f(x+) exceeds the bound by more than "
       "1e-12 (|f(x)| + |bound|) (float64 rounding)",
       rerun=UNDERFLOW_COUNTS)
def _phi(rec):
    entries = _audit_entries(rec, "phi")
    steps = sum(int(e["steps"]) for *_, e in entries)
    bad = [f"{p}/{n}: {int(e['violations'])}" for p, n, e in entries if int(e["violations"])]
    skipped = sum(int(e["underflow_skipped"]) for *_, e in entries)
    return Outcome(
        f"{sum(int(e['violations']) for *_, e in entries)} violations in {steps} steps "
        f"({', '.join(bad) or 'none'}; {skipped} steps in float64 underflow not audited)",
        "0 violations", steps > 0 and not bad)


VANKOV_TIGHT = {"star": 1.75, "si": 1.75, "cl": 2.5}
"""Vankov's per-step guarantee is nearly attained: on the audited runs the smallest ratio
(measured decrease / guaranteed decrease) of each rule must be at most this. Measured: about
1.0 to 1.4 for eta* and eta_si, 1.5 to 1.9 for eta_cl, whose guarantee carries a = 1/2 and
whose step is the shortest of the three. A guarantee 2x too weak doubles the ratio (at least
2.0, 2.7 and 3.0 on the audited problems) and fails."""


@claim("vankov_progress", needs=("descent_audit",),
       statement="Vankov's eta*, eta_si and eta_cl decrease f by at least a|g|^2/(2 L0 + 3 L1|g|) "
       "per step (a = 1, 1, 1/2), and the guarantee is nearly attained.",
       source="Vankov, Rodomanov, Nedić, Sankar, Stich 2024", status="[secondary; checked]",
       tolerance="0 violations (float64 rounding as for phi_inequality); and the smallest "
       "measured/guaranteed decrease over a rule's steps at most 1.75 for eta* and eta_si, "
       "2.5 for eta_cl (measured 1.0-1.4 and 1.5-1.9; a guarantee 2x too weak fails)",
       rerun=UNDERFLOW_COUNTS)
def _vankov(rec):
    entries = _audit_entries(rec, "vankov")
    steps = sum(int(e["steps"]) for *_, e in entries)
    bad = sum(int(e["violations"]) for *_, e in entries)
    by_rule: dict[str, float] = {}
    for _, name, e in entries:
        q = numbers(e["slack_quantiles"])
        low = float(q[0]) if q.size else float("nan")
        by_rule[name] = min(by_rule.get(name, np.inf), low) if np.isfinite(low) else np.nan
    loose = [k for k, v in by_rule.items()
             if not (np.isfinite(v) and v <= VANKOV_TIGHT[k.removeprefix("l0l1_")])]
    return Outcome(
        f"{bad} violations in {steps} steps; smallest measured/guaranteed decrease: "
        + ", ".join(f"{k.removeprefix('l0l1_')} {fmt(v, '.4g')}" for k, v in by_rule.items()),
        "0 violations; smallest ratio in [1, 1.75] (eta*, eta_si), [1, 2.5] (eta_cl)",
        steps > 0 and bad == 0 and bool(by_rule) and not loose)


# --------------------------------------------------------------------------- max step


def _stated(rec):
    return {k: v for k, v in rec["max_step"]["metrics"]["problems"].items()
            if v.get("constants", "stated") == "stated"}


@claim("rules_are_safe", needs=("max_step",),
       statement="Every step rule (1/(L0+L1|g|), eta*, eta_si, eta_cl, clipped GD with Theorem "
       "3's parameters, Theorem 6's fixed step for the sublevel set of each point) is at most "
       "the largest descending step, at points with gradients from tiny to huge.",
       source="Zhang et al. 2020 Thm 3 and 6; Vankov et al. 2024", status="[checked]",
       tolerance="no slack: rule <= largest descending step at every point (bisection to "
       "relative 1e-12). Theorem 6's step is evaluated with M = |f'(x)|, where it binds; its "
       "smallest margin is about 12x on x^4 and 4x on cosh, so a step more than that too long "
       "fails")
def _safe(rec):
    probs = _stated(rec)
    unsafe, worst = [], {}
    for p, info in probs.items():
        for r, v in info["ratio_h_desc_over_rule"].items():
            lo = number(v["min"])
            worst[r] = min(worst.get(r, np.inf), lo)
            if not (v["rule_descends_everywhere"] is True and np.isfinite(lo) and lo >= 1.0):
                unsafe.append(f"{p}:{r}")
    return Outcome(
        "smallest largest-descending-step / rule: "
        + ", ".join(f"{r} {fmt(v)}" for r, v in worst.items())
        + f"; unsafe: {', '.join(unsafe) or 'none'}", "ratio >= 1 everywhere",
        bool(probs) and bool(worst) and not unsafe)


@claim("rules_with_fitted_constants", needs=("max_step",),
       statement="Along a clipped GD run on a network, the step rules with (L0, L1) fitted to "
       "the measured (gradient norm, Hessian norm) points are still descending steps.",
       source="this project's measurement (constants estimated, not proved)",
       status="[observation]")
def _fitted(rec):
    probs = {k: v for k, v in rec["max_step"]["metrics"]["problems"].items()
             if v.get("constants", "stated") != "stated"}
    if not probs:
        return Outcome("not run", "-", None)
    parts = []
    for p, info in probs.items():
        worst = min(number(v["min"]) for v in info["ratio_h_desc_over_rule"].values())
        c = info.get("correlation", {})
        parts.append(f"{p}: fitted (L0, L1) = ({fmt(number(info['L0']), '.4g')}, "
                     f"{fmt(number(info['L1']))}); smallest largest-descending-step / rule "
                     f"{fmt(worst)}; Spearman(log ||H||, log ||g||) = "
                     f"{fmt(number(c.get('spearman')), '.2f')}")
    return Outcome("; ".join(parts), "no guarantee: the constants are local estimates", None)


@claim("rules_grow_conservative", needs=("max_step",),
       statement="At large gradients the (L0,L1) step rules are far below the largest "
       "descending step.", source="this project's measurement", status="[observation]")
def _conservative(rec):
    parts = [f"{p}: x{fmt(number(info['ratio_h_desc_over_rule']['si']['at_largest_g']))} "
             f"(eta_si at |g| = {fmt(number(info['M']), '.2g')})"
             for p, info in _stated(rec).items()]
    return Outcome("; ".join(parts), "no prediction (worst-case rules)", None)


# --------------------------------------------------------------------------- iterations vs M


def _complexity(rec):
    r = rec["iteration_complexity"]
    return r["metrics"], int(r["config"]["cap"]), int(r["config"]["sweep_cap"])


SLOPE_GAP = 0.5
"""How much faster (in log-log slope against M) fixed-step GD's iterations must grow than
clipped and normalized GD's. Theory: order M against order M^0 in the eps-term."""

CONVERGENT = ("gd_thm6", "clipped_thm3", "normalized", "vankov_si")
"""Methods that the theorems promise converge from every start."""


@claim("fixed_step_grows_with_M", needs=("iteration_complexity",),
       statement="Every method with a convergence theorem (GD with Theorem 6's step, clipped "
       "GD, normalized GD, GD with eta_si) reaches eps from every start, and the iterations of "
       "fixed-step GD grow faster with M than those of clipped and normalized GD (log-log "
       "slopes against M, failures counted as the budget).",
       source="Zhang et al. 2020, Theorems 3, 4, 6 and Remark 5", status="[paper]",
       tolerance=f"every convergent method reaches eps within its budget; min(fixed-step "
       f"slopes) - max(clipped, normalized slopes) >= {SLOPE_GAP} (measured gap about 0.9 on "
       "x^4 and cosh)")
def _fixed_grows(rec):
    m, cap, sweep_cap = _complexity(rec)
    parts, ok = [], True
    for p, info in m["problems"].items():
        M = numbers(info["M"])
        methods = info["methods"]
        failed = [k for k in CONVERGENT if not reached(methods[k]["iterations"]).all()]
        s = {k: complexity.loglog_slope(
            M, censor(methods[k]["iterations"], sweep_cap if k == "gd_best_fixed" else cap))
            for k in (*CONVERGENT, "gd_best_fixed")}
        fixed = min(s["gd_thm6"], s["gd_best_fixed"])
        adaptive = max(s["clipped_thm3"], s["normalized"])
        gap_ok = bool(np.isfinite(fixed) and np.isfinite(adaptive)
                      and fixed - adaptive >= SLOPE_GAP)
        ok &= gap_ok and not failed
        parts.append(f"{p}: slopes GD Thm 6 {fmt(s['gd_thm6'], '.2f')}, best fixed "
                     f"{fmt(s['gd_best_fixed'], '.2f')}, clipped {fmt(s['clipped_thm3'], '.2f')}"
                     f", normalized {fmt(s['normalized'], '.2f')}"
                     + (f"; did not reach eps: {', '.join(failed)}" if failed else ""))
    return Outcome("; ".join(parts), "fixed step: O(M) growth; clipped: no M factor in the "
                   "eps-term", bool(m["problems"]) and ok)


def _worst_ratio(rec, method: str, bound: str) -> float:
    """Largest measured / bound over x^4 and cosh; a run that never reached eps counts as inf
    (a count of -1 must not pass as a small ratio)."""
    m, _, _ = _complexity(rec)
    ratios = []
    for info in m["problems"].values():
        its = numbers(info["methods"][method]["iterations"])
        ratios.append(np.where(reached(its), its / numbers(info["bounds"][bound]), np.inf))
    r = np.concatenate(ratios) if ratios else np.array([np.nan])
    return float(np.max(np.where(np.isfinite(r), r, np.inf)))


SI_SUM_TIGHT = 2.5
"""Largest accepted (actual decrease) / (summed per-step guarantee) along an eta_si run: the
sum that Vankov's iteration bound rests on is attained within this factor (measured 1.4 to
1.9 on x^4 and cosh; a guarantee 2x too generous in the bound's derivation gives 2.8 or
more)."""


@claim("vankov_si_within_bound", needs=("iteration_complexity",),
       statement="GD with eta_si reaches |f'| <= eps within ceil(F0 (2 L0 + 3 L1 eps)/eps^2) - 1 "
       "iterations on x^4 and cosh, and along each run the summed per-step guarantee that the "
       "bound rests on is at most the actual decrease f(x_0) - f(x_K) and within "
       f"{SI_SUM_TIGHT}x of it.",
       source="Vankov et al. 2024 (sum of the per-step progress)", status="[secondary; checked]",
       tolerance="count <= bound, no slack (the bound is a worst case, loose by 10^3 here, "
       "so this half only catches gross errors); 1 <= actual decrease / summed guarantee <= "
       f"{SI_SUM_TIGHT} for every start (the tight half: a constant 2x off fails)")
def _si_bound(rec):
    worst = _worst_ratio(rec, "vankov_si", "vankov_si")
    m, _, _ = _complexity(rec)
    ratios = np.concatenate([numbers(info["methods"]["vankov_si"]["summed_progress_ratio"])
                             for info in m["problems"].values()])
    tight = bool(ratios.size and np.all(np.isfinite(ratios)) and np.all(ratios >= 1.0)
                 and np.all(ratios <= SI_SUM_TIGHT))
    return Outcome(f"largest measured / bound = {fmt(worst)}; actual decrease / summed "
                   f"guarantee {fmt(float(np.min(ratios)) if ratios.size else np.nan)} to "
                   f"{fmt(float(np.max(ratios)) if ratios.size else np.nan)}",
                   f"count <= bound; summed-guarantee ratio in [1, {SI_SUM_TIGHT}]",
                   bool(np.isfinite(worst) and worst <= 1.0 and tight))


@claim("clipped_within_thm3", needs=("iteration_complexity",),
       statement="Clipped GD with Theorem 3's parameters needs at most 20 L0 F0/eps^2 + "
       "20 max(1, L1^2) F0/L0 iterations (x^4, cosh).",
       source="Zhang et al. 2020, Theorem 3", status="[recalled constants]")
def _thm3(rec):
    return Outcome(f"largest measured / bound = {fmt(_worst_ratio(rec, 'clipped_thm3', 'thm3_recalled'))}",  # noqa: E501
                   "<= 1 (if the recalled constants are right)", None)


@claim("gd_within_thm6", needs=("iteration_complexity",),
       statement="GD with h = 1/(2(M L1 + L0)) needs at most 4 (M L1 + L0) F0/eps^2 iterations.",
       source="Zhang et al. 2020, Theorem 6", status="[recalled constant]")
def _thm6(rec):
    return Outcome(f"largest measured / bound = {fmt(_worst_ratio(rec, 'gd_thm6', 'thm6_recalled'))}",  # noqa: E501
                   "<= 1 (if the recalled constant is right)", None)


# --------------------------------------------------------------------------- hard instance

RATIO_SLOPE = 0.5
"""Smallest log-log slope against M of (best fixed-step iterations / clipped iterations) that
counts as 'grows without bound' (theory: L1 M / log M, a slope near 1)."""


@claim("clipping_arbitrarily_faster", needs=("hard_instance",),
       statement="On an (L0,L1)-smooth instance with a steep wall, clipped GD reaches eps at "
       "every M, and the ratio of best fixed-step GD iterations to clipped GD iterations grows "
       "without bound in M. (The instance has L0 = 0.02 < 1: it is outside the class of "
       "Theorem 4's lower bound, which asks L0, L1 >= 1; the claim is Remark 5's separation, "
       "not Theorem 4's constant.)",
       source="Zhang et al. 2020, Remark 5 (our own hard instance)", status="[paper]",
       tolerance=f"clipped GD reaches eps at every M; ratio log-log slope >= {RATIO_SLOPE} and "
       "the ratio at the largest M above that at the smallest; fixed-step failures count as the "
       "budget")
def _hard(rec):
    r = rec["hard_instance"]
    rows, cap = r["metrics"]["by_M"], int(r["config"]["cap"])
    Ms = numbers([row["M"] for row in rows])
    clipped = [row["clipped_thm3"] for row in rows]
    fixed = censor([row["gd_best_fixed"] for row in rows], cap)
    ok_clipped = bool(reached(clipped).all())
    ratio = fixed / np.maximum(censor(clipped, cap), 1)
    slope = complexity.loglog_slope(Ms, ratio)
    ok = (ok_clipped and len(rows) >= 3 and np.isfinite(slope) and slope >= RATIO_SLOPE
          and ratio[-1] > ratio[0])
    return Outcome(
        f"ratio {', '.join(fmt(x) for x in ratio)} at M = {', '.join(f'{x:g}' for x in Ms)}; "
        f"log-log slope {fmt(slope, '.2f')}; clipped GD counts {counts_text(clipped, cap)}; "
        f"L0 = {', '.join(sorted({format(number(row['L0']), 'g') for row in rows}))}",
        "grows like L1 M / log M", bool(ok))


@claim("thm4_lower_bound_vs_instance", needs=("hard_instance",),
       statement="Theorem 4's lower bound L1 M (F0 - 5 eps/8)/(8 eps^2 (log M + 1)), evaluated "
       "with our instance's F0, against the best fixed step measured on it. The bound is over "
       "the class L0, L1 >= 1 and this instance has L0 = 0.02, so the bound need not hold here; "
       "it is drawn for scale only.",
       source="Zhang et al. 2020, Theorem 4", status="[recalled expression]")
def _thm4(rec):
    rows = rec["hard_instance"]["metrics"]["by_M"]
    ratios = [number(r["gd_best_fixed"]) / number(r["thm4_lower_recalled"]) for r in rows
              if number(r["gd_best_fixed"]) > 0 and number(r["thm4_lower_recalled"]) > 0]
    return Outcome("measured / bound = " + ", ".join(fmt(x) for x in ratios),
                   "a lower bound over a class this instance is not in", None)


# --------------------------------------------------------------------------- stochastic


@claim("stochastic_rules_reach_eps", needs=("stochastic",),
       statement="Under bounded noise, clipped SGD with Theorem 7's step and SGD with Theorem "
       "8's step bring E||grad f|| below eps within T steps.",
       source="Zhang et al. 2020, Theorems 7 and 8", status="[paper step rules; recalled bounds]")
def _stochastic(rec):
    m = rec["stochastic"]["metrics"]
    parts = []
    for name, info in m["problems"].items():
        counts = {k: v["iterations_to_eps"] for k, v in info["methods"].items()}
        clip = {k: v["clip_fraction"] for k, v in info["methods"].items() if "clip_fraction" in v}
        parts.append(f"{name}: " + ", ".join(f"{k} {counts_text([v], m['T'])}"
                                             for k, v in counts.items())
                     + (" (share of steps clipped: " + ", ".join(
                         f"{k} {100 * number(v):.0f}%" for k, v in clip.items()) + ")"
                        if clip else ""))
    return Outcome(
        f"tau = {number(m['tau']):g}, eps = {number(m['eps']):g}, T = {m['T']}, {m['seeds']} "
        "seeds; iterations to E||grad f|| <= eps: " + "; ".join(parts),
        "O(eps^-4)-type bounds [recalled]; no count asserted", None)


@claim("clipping_bias_skewed_noise", needs=("stochastic",),
       statement="With skewed mean-zero noise, clipped SGD stalls at a gradient-norm plateau "
       "that grows as the threshold shrinks; with symmetric noise it does not.",
       source="Koloskova, Hendrikx, Stich, ICML 2023", status="[secondary]")
def _bias(rec):
    b = rec["stochastic"]["metrics"]["bias"]
    skew, uni = numbers(b["plateau"]["skewed"]), numbers(b["plateau"]["uniform"])
    th = numbers(b["thresholds"])
    return Outcome(
        f"plateau at c = {th[0]:g}: skewed {fmt(skew[0])} vs uniform {fmt(uni[0])} "
        f"({fmt(skew[0] / uni[0])}x); at c = {th[-1]:g}: {fmt(skew[-1])} vs {fmt(uni[-1])}",
        "biased fixed point for c below the noise scale", None)


# --------------------------------------------------------------------------- in practice

_MEDIANS = "[95% intervals of the medians over seeds, from order statistics]"


@claim("seed000_mlp_clipping", needs=("clipping_mlp",),
       statement="Seed 000: the MLP (SGD lr 0.01, momentum 0.9, batch 32) gives NaN without "
       "clipping and trains with clipnorm 1.0, global_clipnorm 1.0 and clipvalue 5.0.",
       source="seed 000 (Keras tutorial)", status="[seed; observation]",
       rerun=Rerun(factor=4.0, factor_above=0.5,
                   why="an interval's ends are single seeds; " + MEASURED))
def _seed000(rec):
    v = rec["clipping_mlp"]["metrics"]["variants"]
    parts = [f"{k}: {100 * number(m['divergence_rate']):.0f}% diverged"
             + (f", median final train/test MSE "
                f"{median_text(m['median_final_train_mse'], m.get('final_train_mse_interval'))}"
                f" / {median_text(m['median_final_test_mse'], m.get('final_test_mse_interval'))}"
                if m["median_final_train_mse"] is not None else "") for k, m in v.items()]
    if any(isinstance(m.get("final_train_mse_interval"), dict) for m in v.values()):
        parts[0] = f"{_MEDIANS}: {parts[0]}"
    ok = (number(v["none"]["divergence_rate"]) == 1.0
          and all(number(v[k]["divergence_rate"]) == 0.0 for k in v if k != "none"))
    return Outcome("; ".join(parts), "NaN without clipping; converges with clipping", ok)


@claim("seed001_x4_explosion", needs=("clipping_seeds",),
       statement="Seed 001: GD with lr 0.1 on x^4 from 10 goes to -390 and overflows; clipped "
       "and normalized GD with the same step reach |f'| <= 1e-3.",
       source="seed 001", status="[seed; checked]",
       tolerance="exact arithmetic: the first iterates are 10 and -390 exactly; GD is flagged "
       "diverged; clipped and normalized GD reach |f'| <= 1e-3 without diverging")
def _seed001(rec):
    x4 = rec["clipping_seeds"]["metrics"]["x4"]
    first = numbers(x4["gd"]["first_iterates"])
    converge = all(not x4[k]["diverged"] and reached([x4[k]["iterations_to_eps"]]).all()
                   for k in ("clipped_gd", "normalized_gd"))
    ok = first.size >= 2 and first[0] == 10.0 and first[1] == -390.0 and x4["gd"]["diverged"]
    return Outcome(
        f"GD: {', '.join(f'{x:.4g}' for x in first)} ... overflow after t = "
        f"{x4['gd']['diverged_at']}; clipped GD reaches |f'| <= 1e-3 at t = "
        f"{x4['clipped_gd']['iterations_to_eps']}, normalized at "
        f"{x4['normalized_gd']['iterations_to_eps']}",
        "10 - 0.1 * 4000 = -390, then overflow", bool(ok and converge))


SEED002_GRADS = [-3.9593e-05, -1.6243e-03, -1.4529e-02, -1.1988e-01]
SEED002_WEIGHTS = [0.5000039, 0.5001625, 0.5014533, 0.5119911]
SEED002_TOTALS = {1.0: 265.0, 2.0: 153.3786, 3.0: 135.1690, 4.0: 129.3492, np.inf: 125.0}
"""Seed 002's printed values (float32 torch, to the printed digits)."""


@claim("seed002_sigmoid_chain", needs=("clipping_seeds",),
       statement="Seed 002: the sigmoid chain's gradients, total norm 0.1208, clipping to "
       "0.01208 scales every gradient by 0.1, and the weights after one SGD step (lr 1).",
       source="seed 002", status="[seed; checked]",
       tolerance="the seed's printed digits: gradients to relative 1e-4, total norm to 5e-5, "
       "coefficient to 2e-4, weights to 1e-7")
def _seed002(rec):
    ch = rec["clipping_seeds"]["metrics"]["chain"]
    grads, weights = numbers(ch["gradients"]), numbers(ch["weights_after_step"])
    total, coef = number(ch["total_norm"]), number(ch["clip_coef"])
    ok = (grads.shape == (4,) and weights.shape == (4,)
          and np.allclose(grads, SEED002_GRADS, rtol=1e-4, atol=0)
          and abs(total - 0.1208) < 5e-5 and abs(coef - 0.1) < 2e-4
          and np.allclose(weights, SEED002_WEIGHTS, rtol=0, atol=1e-7))
    return Outcome(
        f"gradients {', '.join(f'{g:.5g}' for g in grads)}; total norm {fmt(total, '.5g')}; "
        f"coefficient {fmt(coef, '.5g')}; weights {', '.join(f'{w:.7f}' for w in weights)}",
        "the seed's printed values", bool(ok))


@claim("seed002_norm_type_order", needs=("clipping_mlp",),
       statement="total_norm is the seed's printed value for each norm_type (1, 2, 3, 4, inf) "
       "on the seed vector, and strictly decreases as norm_type grows on the seed vector and on "
       "real network gradients.",
       source="seed 002; monotonicity of p-norms", status="[seed; checked]",
       tolerance="seed vector: relative 1e-6 of the printed values (printed to 4 decimals); "
       "strict decrease (the vectors have no repeated magnitudes and several nonzero entries)")
def _norm_type(rec):
    nt = rec["clipping_mlp"]["metrics"]["norm_type"]
    parts, ok = [], bool(nt)
    for key, rows in nt.items():
        totals = numbers([r["total_norm"] for r in rows])
        types = numbers([r["norm_type"] for r in rows])
        ok &= bool(np.all(np.isfinite(totals)) and np.all(np.diff(totals) < 0))
        if key == "seed_vector":
            want = np.asarray([SEED002_TOTALS.get(t, np.nan) for t in types])
            ok &= bool(np.all(np.abs(totals - want) <= 1e-6 * want + 5e-5))
        parts.append(f"{key}: " + ", ".join(f"p={t:g} {fmt(v, '.7g')}"
                                             for t, v in zip(types, totals, strict=True)))
    return Outcome("; ".join(parts), "||g||_p strictly decreasing in p; the seed's values",
                   bool(ok))


@claim("value_clipping_turns_the_update", needs=("clipping_rnn",),
       statement="Norm clipping keeps the update along -grad (cosine 1); value clipping turns "
       "it.", source="seed 003; docs/theory.md §2", status="[checked]",
       rerun=Rerun(atol=0.3, factor=1e12, factor_above=1e10, why=MEASURED),
       tolerance="norm clipping: cosine > 1 - 1e-9 at every step (float rounding); value "
       "clipping: smallest cosine < 1 - 1e-3")
def _cosine(rec):
    v = rec["clipping_rnn"]["metrics"]["variants"]
    norm_c, value_c = number(v["norm"]["min_cosine"]), number(v["value"]["min_cosine"])
    ok = norm_c > 1 - 1e-9 and value_c < 1 - 1e-3
    return Outcome(
        f"RNN: cosine(update, -grad) min {fmt(norm_c, '.6f')} with norm clipping, "
        f"min {fmt(value_c, '.3f')} (median {fmt(number(v['value']['median_cosine']), '.3f')})"
        f" with value clipping; without clipping "
        f"{100 * number(v['none']['divergence_rate']):.0f}% of seeds diverged (max pre-clip norm "
        f"{fmt(number(v['none']['max_grad_norm']))})",
        "cosine = 1 for norm clipping", bool(ok))


@claim("pascanu_threshold_heuristic", needs=("clipping_mlp", "clipping_rnn"),
       statement="A threshold between 0.5x and 10x the average gradient norm trains well "
       "(Pascanu's heuristic).", source="Pascanu, Mikolov, Bengio 2013",
       status="[paper heuristic]",
       rerun=Rerun(atol=1.0, factor=1e4, factor_above=1.0,
                   why="at 10x and 20x some RNN seeds blow up and some do not, so the ends of "
                       "those intervals jump by orders of magnitude; " + MEASURED))
def _pascanu(rec):
    parts = []
    for name, key in (("clipping_mlp", "median_final_train_mse"),
                      ("clipping_rnn", "median_final_test_mse")):
        t = rec[name]["metrics"]["thresholds"]
        which = key.split("_")[2]
        ivs = t.get(f"final_{which}_mse_interval") or [None] * len(t[key])
        parts.append(f"{name}: " + ", ".join(
            f"{number(m):g}x: {100 * number(d):.0f}% div, {which} {median_text(f, iv)}"
            for m, d, f, iv in zip(t["multiples"], t["divergence_rate"], t[key], ivs,
                                   strict=True)))
    intervals = any(rec[n]["metrics"]["thresholds"].get("final_train_mse_interval")
                    for n in ("clipping_mlp", "clipping_rnn"))
    return Outcome((f"{_MEDIANS}; " if intervals else "") + "; ".join(parts),
                   "no guarantee; a rule of thumb", None)


# --------------------------------------------------------------------------- Figure 4

NETWORKS = ("char_lm", "resnet_digits", "rnn")
"""The models of ``experiments.clipping_networks`` (conf/clipping_networks.yaml): one row of
``clipping_accelerates_networks`` each."""


def _best_text(c) -> str:
    if c is None:
        return "none"
    clip = "no clipping" if not np.isfinite(number(c["threshold"])) else (
        f"clip {number(c['threshold']):g}")
    steps = number(c["median_steps"]) if c["median_steps"] is not None else float("nan")
    med = f"{steps:g} steps" if np.isfinite(steps) else "median seed does not reach it"
    return (f"lr {number(c['lr']):g}, {clip}: {med} ({int(c['seeds_reaching'])} seeds reach, "
            f"{int(c['seeds_diverged'])} diverge)")


def network_row(grid: dict) -> Outcome:
    """The ``clipping_accelerates_networks`` row of one model's grid: the measured
    comparison, and whether clipping helped (reported, not gated)."""
    sp = grid["speedup"]
    n_seeds = len(grid["seeds"])
    bu, bc = grid["best_unclipped"], grid["best_clipped"]
    if sp["median"] is None:
        speed = "speed-up not measurable"
    else:
        bound = ">= " if sp["censored"] else ""
        speed = (f"speed-up {bound}{number(sp['median']):.3g}x (seeds: "
                 + ", ".join(f"{number(v):.3g}" for v in sp["per_seed"])
                 + (f"; a run that never reached the target counts as {int(grid['steps'])} "
                    "steps, so the ratio is a bound)" if sp["censored"] else ")"))
    stable = grid["largest_stable_unclipped_lr"]
    exceeds = grid["clipped_lr_exceeds_stable"]
    mech = ("no unclipped lr trains on every seed" if stable is None else
            f"largest unclipped lr that trains on every seed {number(stable):g}")
    mech += {True: "; the best clipped lr is larger", False: "; the best clipped lr is not "
             "larger", None: ""}[exceeds]
    helped = None
    if sp["median"] is not None and bc is not None:
        u = number(bu["median_steps"]) if bu and bu["median_steps"] is not None else np.inf
        c = number(bc["median_steps"]) if bc["median_steps"] is not None else np.inf
        helped = bool(c < u)
    verdict = {True: "clipping trains faster", False: "clipping does not train faster",
               None: "undecided"}[helped]
    return Outcome(
        f"target loss {number(grid['target']):g} within {int(grid['steps'])} steps, "
        f"{n_seeds} seeds: best without clipping {_best_text(bu)}; best with clipping "
        f"{_best_text(bc)}; {speed}; {mech}: {verdict}",
        "an observation (Figure 4 of the paper on AWD-LSTM and ResNet20); no bound", None)


def _network_claim(model: str):
    @claim(f"clipping_accelerates_networks/{model}", needs=("clipping_networks",),
           statement=f"On {model}, the best clipped (learning rate, threshold) reaches the "
           "target training loss in fewer steps than the best learning rate without "
           "clipping, at a learning rate larger than any that trains without clipping.",
           source="Zhang et al. 2020, Figure 4 and Section 5 (on AWD-LSTM/PTB and "
           "ResNet20/CIFAR-10; here small stand-ins)", status="[paper; observation]",
           rerun=NETWORK_RERUN.get(model, EXACT))
    def _row(rec):
        return network_row(rec["clipping_networks"]["metrics"]["models"][model])

    return _row


for _model in NETWORKS:
    _network_claim(_model)


# --------------------------------------------------------------------------- smoothness


def _verdict(stats: dict) -> str:
    """The interval-based verdict of one model x regime (``experiments.smoothness``):
    "positive", "negative", "no evidence", or "not training" (no verdict rests on a run
    whose training loss does not decrease)."""
    v = stats.get("verdict")
    return v if isinstance(v, str) else "no evidence"


SMOOTHNESS_RERUN: dict[str, Rerun] = {
    "rnn": Rerun(atol=0.4, words=True, why="an interval's edge can cross 0; " + MEASURED)}
"""How far a rerun on another machine may move a model's rows of SMOOTHNESS.md (default
``EXACT``)."""


@claim("smoothness_grows_with_gradient_norm", needs=("smoothness",),
       statement="Along training with clipping and a large learning rate, local smoothness "
       "grows with the gradient norm: the 95% interval of the trend-robust correlation of log "
       "L-hat with log ||grad f|| (partial Spearman given the step; Spearman of log-"
       "differences), bootstrapped over seeds and blocks of time, excludes 0 from below.",
       source="Zhang et al. 2020, Figures 1-3 (on ResNet20/CIFAR-10 and AWD-LSTM/PTB; here "
       "small stand-ins)", status="[paper; observation]",
       rerun=Rerun(words_in=("rnn/",), why="the RNN's verdicts at the small learning rate sit "
                   "on an interval's edge, as its SMOOTHNESS.md rows; " + MEASURED))
def _smoothness(rec):
    runs = rec["smoothness"]["metrics"]["runs"]
    big = [r for r in runs.values() if r["regime"] == "large_lr_clip"]
    by = {v: [r["model"] for r in big if _verdict(r["traj"]) == v]
          for v in ("positive", "negative", "no evidence", "not training")}
    others = [f"{r['model']}/{r['regime']} {_verdict(r['traj'])}" for r in runs.values()
              if r["regime"] != "large_lr_clip"]
    return Outcome(
        "large lr + clipping: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in by.items() if v)
        + f" ({len(big)} models); other regimes: {', '.join(others) or 'none'}; table: "
        "paper_figures/SMOOTHNESS.md",
        "an empirical observation, no bound", len(by["positive"]) > len(big) / 2)


def _cell(text: str) -> str:
    """A Markdown table cell: a "|" inside it (as in |g|) would split the row."""
    return text.replace("|", "\\|")


def _interval(c) -> str:
    if not isinstance(c, dict):
        return "-"
    est, lo, hi = (number(c.get(k)) for k in ("estimate", "lo", "hi"))
    if not np.isfinite(est):
        return "-"
    band = f" [{lo:+.2f}, {hi:+.2f}]" if np.isfinite(lo) and np.isfinite(hi) else ""
    return f"{est:+.2f}{band}"


_NOT_COMPUTED = {"computed": False, "verdict": "not computed"}
"""An estimator's entry in a smoothness record when it was skipped (as written by
``experiments.smoothness``)."""


def _subsample_sizes(m: dict) -> str:
    """The subsample sizes per model, e.g. "mlp 50 of 500 rows, ..." ("none" when skipped)."""
    subs = m.get("subsample")
    if not isinstance(subs, dict):
        return "not computed in this run"
    parts = []
    for model in m["models"]:
        s = subs.get(model)
        parts.append(f"{model} {s['rows']} of {s['train_rows']} rows" if isinstance(s, dict)
                     else f"{model} not computed")
    return ", ".join(parts)


def _run_lengths(m: dict) -> str:
    """The runs' lengths: "S steps per run, logged every K" with " (except ...)" for the
    models whose runs have their own steps / log_every, or only the per-model list when no
    run has the default length."""
    from research.smoothness import run_lengths

    own, default = run_lengths(m)
    listed = "; ".join(f"{k}: {s} steps logged every {e}" for k, (s, e) in own.items())
    if own and not default:
        return f"Steps per run, and every how many steps a point is logged: {listed}"
    return (f"{m['steps']} steps per run, logged every {m['log_every']}"
            + (f" (except {listed})" if own else ""))


def smoothness_table(record: dict) -> str:
    """The correlation table of the smoothness experiment, as Markdown: per model x regime,
    the pooled raw Spearman, the trend-robust correlations and the slope with their bootstrap
    intervals, the verdict from the intervals, the same trend-robust intervals and verdict of
    the subsample estimator, the Hessian's verdict, and whether every seed trained."""
    from research.smoothness import REGIMES

    m = record["metrics"]
    b = m.get("bootstrap", {})
    lines = [
        "# Smoothness against gradient norm",
        "",
        "Written by `make verify` from `results/smoothness` (`python -m experiments.smoothness`)."
        f" {_run_lengths(m)}; seeds "
        f"{', '.join(str(s) for s in m.get('seeds', [0]))}. L-hat is the trajectory estimator "
        "(full-batch gradients at x_k and at the midpoint of the step); the subsample estimator "
        "is the same ratio with gradients averaged over a random subsample of the training "
        f"rows (the authors' own; {_subsample_sizes(m)}), drawn afresh at each logged point, "
        "the same rows at both points; ‖H‖ is the Hessian norm by "
        + (f"{m['hvp_iters']} warm-started power iterations" if number(m['hvp_iters']) > 0
           else "power iteration, not computed in this run (hvp_iters = 0)")
        + ". Every correlation is of log L-hat "
        "against log ‖∇f‖ over all seeds' logged points, with a "
        f"{100 * number(b.get('level', 0.95)):.0f}% interval from a bootstrap over seeds and "
        f"blocks of time ({b.get('method', 'block bootstrap')}; {b.get('n_boot', '?')} "
        "resamples). The raw Spearman shares a time trend with both series; the verdict comes "
        "from the trend-robust ones (partial Spearman given the step; Spearman of the "
        "log-differences): positive or negative where the interval excludes 0, else no "
        "evidence, and 'not training' when a seed's loss did not decrease.",
        "",
        "| model | regime | seeds | points | Spearman (raw) | partial given step | "
        "log-differences | slope | verdict | subsample: partial given step | subsample: "
        "log-differences | subsample verdict | ‖H‖ verdict | training | a rerun on another "
        "machine may move each number by |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def rank(k):
        r = m["runs"][k]
        return (m["models"].index(r["model"]), REGIMES.index(r["regime"])
                if r["regime"] in REGIMES else len(REGIMES))

    for key in sorted(m["runs"], key=rank):
        r = m["runs"][key]
        t, h = r["traj"], r["hess"]
        u = r.get("sub", _NOT_COMPUTED)  # records before the subsample estimator lack it
        pooled, sub = t.get("pooled", {}), u.get("pooled", {})
        cells = [r["model"], r["regime"], str(len(r.get("seeds", [0]))),
                 str(pooled.get("n_points", t.get("n", "-"))),
                 _interval(pooled.get("spearman")), _interval(pooled.get("partial_spearman")),
                 _interval(pooled.get("detrended")), _interval(pooled.get("slope")),
                 _verdict(t), _interval(sub.get("partial_spearman")),
                 _interval(sub.get("detrended")), _verdict(u), _verdict(h),
                 "yes" if r.get("training", True) else "**no**",
                 SMOOTHNESS_RERUN.get(r["model"], EXACT).describe()]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"



def to_markdown(claims: list[ClaimRecord], missing: list[str]) -> str:
    """The CLAIMS.md table."""
    verdict = {True: "holds", False: "**FAILS**", None: "reported"}
    lines = [
        "# Claims",
        "",
        "Written by `make verify` (`python -m experiments.verify`) from the run records in "
        "`results/`. A claim is *gating* when its status carries [paper] or [checked] and "
        "nothing recalled, observed or heuristic: `make verify` fails if a gating claim fails. "
        "Every gating claim states its tolerance, and the mutation suite "
        "([MUTANTS.md](MUTANTS.md)) shows a wrong variant of the code that makes it fail. "
        "Runs that diverge or never reach eps count as the budget T, never as absent. "
        "The last column says how far a rerun on another machine may move a row "
        "([RERUN.md](RERUN.md) measures it): `python -m experiments.publish --check` "
        "compares the documents with the records within that allowance.",
        "",
        "| id | claim | source | status | tolerance | measured | theory | verdict | gating | "
        "a rerun on another machine may move each number by |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = (c.id, c.statement, c.source, c.status, c.tolerance or "-", c.measured,
                 c.theoretical, verdict[c.holds], "yes" if c.gating else "no",
                 c.rerun.describe())
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    if missing:
        lines += ["", "Not evaluated (their records are missing): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"
