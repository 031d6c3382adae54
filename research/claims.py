"""The claims registry: each claim reads run records, measures, compares with the theory, and
returns a ``ClaimRecord``.

Like PEPit's examples, every claim yields (measured, theoretical) and a verdict. A claim is
*gating* when it rests on facts tagged [checked] or [paper]: if it fails, ``make verify``
exits non-zero. Claims that rest on [recalled] constants only report their ratio.

Each claim declares the experiment records it reads (``needs``); ``evaluate`` runs every claim
whose records are present and lists the others as missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

from research import results
from research.smoothness import REGIMES


@dataclasses.dataclass(frozen=True)
class ClaimRecord:
    """The outcome of one claim.

    Attributes:
      id: short identifier.
      statement: what is claimed, in one sentence.
      source: where the claim comes from (paper, theorem, seed).
      status: the status tag of the facts it rests on ([paper], [checked], [secondary],
        [recalled], [observation]).
      measured: the measured quantity, as text with numbers.
      theoretical: what the theory says, as text.
      holds: True / False, or None when the claim only reports (e.g. [recalled] constants).
      gating: whether a failure fails ``make verify``.
    """

    id: str
    statement: str
    source: str
    status: str
    measured: str
    theoretical: str
    holds: bool | None
    gating: bool


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str
    needs: tuple[str, ...]
    fn: Callable[[dict], ClaimRecord]


REGISTRY: list[Claim] = []


def claim(id: str, needs: tuple[str, ...]):
    """Register ``fn(records) -> ClaimRecord`` as claim ``id`` reading the records ``needs``."""

    def deco(fn):
        REGISTRY.append(Claim(id, needs, fn))
        return fn

    return deco


def _cell(text: str) -> str:
    """A Markdown table cell: a "|" inside it (as in |g|) would split the row."""
    return text.replace("|", "\\|")


def _record(id, statement, source, status, measured, theoretical, holds, gating):
    return ClaimRecord(id, statement, source, status, measured, theoretical,
                       None if holds is None else bool(holds), gating)


# --------------------------------------------------------------------------- x^4 trajectories


@claim("x4_clipped_vs_fixed", needs=("quartic_trajectories",))
def _x4(rec):
    r = rec["quartic_trajectories"]
    m, x0, eps = r["metrics"], r["config"]["x0"], r["config"]["eps"]
    parts = [f"{name}: " + ", ".join(
        f"x0={x:g}: " + (f"div@{m[name]['diverged_at'][i]}" if m[name]["diverged"][i]
                         else (str(k) if (k := m[name]["iterations_to_eps"][i]) >= 0 else ">T"))
        for i, x in enumerate(x0)) for name in ("clipped_gd", "normalized_gd", "gd_theorem6",
                                                 "gd_common")]
    ok = all(k >= 0 for k in m["clipped_gd"]["iterations_to_eps"]) and not any(
        m["clipped_gd"]["diverged"])
    return _record(
        "x4_clipped_vs_fixed",
        f"On x^4, clipped GD with Theorem 3's parameters reaches |f'| <= {eps:g} from every "
        "start; a fixed step either crawls (Theorem 6's) or diverges from large starts.",
        "Zhang et al. 2020, Theorem 3 and Remark 5", "[paper]",
        "iterations to eps: " + "; ".join(parts), "clipped GD converges from every start",
        ok, gating=True)


# --------------------------------------------------------------------------- descent audit


@claim("phi_inequality", needs=("descent_audit",))
def _phi(rec):
    probs = rec["descent_audit"]["metrics"]["problems"]
    steps = sum(m["phi"]["steps"] for p in probs.values() for m in p["methods"].values())
    bad = sum(m["phi"]["violations"] for p in probs.values() for m in p["methods"].values())
    skipped = sum(m["phi"]["underflow_skipped"] for p in probs.values()
                  for m in p["methods"].values())
    return _record(
        "phi_inequality",
        "Every GD-type step satisfies f(x - h g) <= f(x) - h|g|^2 + (L0 + L1|g|)/L1^2 "
        "phi(L1 h |g|) on problems with known (L0, L1).",
        "theory.md section 1 (Vankov et al. 2024; Hübler et al. 2024)",
        "[secondary; checked]",
        f"{bad} violations in {steps} steps over {len(probs)} problems ({skipped} steps in "
        "float64 underflow not audited)",
        "0 violations", bad == 0, gating=True)


@claim("vankov_progress", needs=("descent_audit",))
def _vankov(rec):
    probs = rec["descent_audit"]["metrics"]["problems"]
    entries = [m["vankov"] for p in probs.values() for m in p["methods"].values()
               if "vankov" in m]
    steps = sum(e["steps"] for e in entries)
    bad = sum(e["violations"] for e in entries)
    return _record(
        "vankov_progress",
        "Vankov's eta*, eta_si and eta_cl decrease f by at least a|g|^2/(2 L0 + 3 L1|g|) "
        "per step (a = 1, 1, 1/2).",
        "Vankov, Rodomanov, Nedić, Sankar, Stich 2024", "[secondary; checked]",
        f"{bad} violations in {steps} steps", "0 violations", bad == 0, gating=True)


# --------------------------------------------------------------------------- max step


@claim("rules_are_safe", needs=("max_step",))
def _safe(rec):
    probs = {k: v for k, v in rec["max_step"]["metrics"]["problems"].items()
             if v.get("constants", "stated") == "stated"}
    unsafe = [f"{p}:{r}" for p, info in probs.items()
              for r, v in info["ratio_h_desc_over_rule"].items()
              if not v["rule_descends_everywhere"]]
    worst = min(v["min"] for info in probs.values()
                for v in info["ratio_h_desc_over_rule"].values())
    return _record(
        "rules_are_safe",
        "Every step rule (1/(L0+L1|g|), eta*, eta_si, eta_cl, clipped GD with Theorem 3's "
        "parameters, Theorem 6's fixed step) is at most the largest descending step.",
        "Zhang et al. 2020 Thm 3 and 6; Vankov et al. 2024", "[checked]",
        f"smallest ratio largest-descending-step / rule = {worst:.3g}; unsafe: "
        f"{', '.join(unsafe) or 'none'}", "ratio >= 1 everywhere", not unsafe, gating=True)


@claim("rules_with_fitted_constants", needs=("max_step",))
def _fitted(rec):
    probs = {k: v for k, v in rec["max_step"]["metrics"]["problems"].items()
             if v.get("constants", "stated") != "stated"}
    if not probs:
        return _record("rules_with_fitted_constants", "No network trajectory was measured.",
                       "this project's measurement", "[observation]", "not run", "-", None,
                       gating=False)
    parts = []
    for p, info in probs.items():
        worst = min(v["min"] for v in info["ratio_h_desc_over_rule"].values())
        c = info.get("correlation", {})
        parts.append(f"{p}: fitted (L0, L1) = ({info['L0']:.4g}, {info['L1']:.3g}); smallest "
                     f"largest-descending-step / rule {worst:.3g}; Spearman(log ||H||, "
                     f"log ||g||) = {c.get('spearman', float('nan')):.2f}")
    return _record(
        "rules_with_fitted_constants",
        "Along a clipped GD run on a network, the step rules with (L0, L1) fitted to the "
        "measured (gradient norm, Hessian norm) points are still descending steps.",
        "this project's measurement (constants estimated, not proved)", "[observation]",
        "; ".join(parts), "no guarantee: the constants are local estimates", None,
        gating=False)


@claim("rules_grow_conservative", needs=("max_step",))
def _conservative(rec):
    probs = rec["max_step"]["metrics"]["problems"]
    parts = [f"{p}: x{info['ratio_h_desc_over_rule']['si']['at_largest_g']:.3g} "
             f"(eta_si at |g| = {info['M']:.2g})" for p, info in probs.items()
             if info.get("constants", "stated") == "stated"]
    return _record(
        "rules_grow_conservative",
        "At large gradients the (L0,L1) step rules are far below the largest descending step.",
        "this project's measurement", "[observation]", "; ".join(parts),
        "no prediction (worst-case rules)", None, gating=False)


# --------------------------------------------------------------------------- iterations vs M


def _complexity(rec):
    return rec["iteration_complexity"]["metrics"]


def _worst_ratio(rec, method: str, bound: str) -> float:
    """Largest measured / bound over x^4 and cosh; a run that never reached eps counts as inf
    (a count of -1 must not pass as a small ratio)."""
    ratios = []
    for info in _complexity(rec)["problems"].values():
        its = np.asarray(info["methods"][method]["iterations"], dtype=float)
        ratios.append(np.where(its >= 0, its / np.asarray(info["bounds"][bound], dtype=float),
                               np.inf))
    return float(np.max(np.concatenate(ratios)))


@claim("fixed_step_grows_with_M", needs=("iteration_complexity",))
def _fixed_grows(rec):
    probs = _complexity(rec)["problems"]
    parts, ok = [], True
    for p, info in probs.items():
        s = info["slope_vs_M"]
        parts.append(f"{p}: GD Thm 6 {s['gd_thm6']:.2f}, best fixed {s['gd_best_fixed']:.2f}, "
                     f"clipped {s['clipped_thm3']:.2f}, normalized {s['normalized']:.2f}")
        ok &= min(s["gd_thm6"], s["gd_best_fixed"]) > max(s["clipped_thm3"], s["normalized"])
    return _record(
        "fixed_step_grows_with_M",
        "The iterations of fixed-step GD grow faster with M than those of clipped and "
        "normalized GD (log-log slopes against M).",
        "Zhang et al. 2020, Theorems 3, 4, 6 and Remark 5", "[paper]", "; ".join(parts),
        "fixed step: O(M) growth; clipped: no M dependence beyond the L1^2 F0/L0 term",
        ok, gating=True)


@claim("vankov_si_within_bound", needs=("iteration_complexity",))
def _si_bound(rec):
    worst = _worst_ratio(rec, "vankov_si", "vankov_si")
    return _record(
        "vankov_si_within_bound",
        "GD with eta_si reaches |f'| <= eps within ceil(F0 (2 L0 + 3 L1 eps)/eps^2) - 1 "
        "iterations on x^4 and cosh.",
        "Vankov et al. 2024 (sum of the per-step progress)", "[secondary; checked]",
        f"largest measured / bound = {worst:.3g}", "<= 1", worst <= 1.0, gating=True)


@claim("clipped_within_thm3", needs=("iteration_complexity",))
def _thm3(rec):
    worst = _worst_ratio(rec, "clipped_thm3", "thm3_recalled")
    return _record(
        "clipped_within_thm3",
        "Clipped GD with Theorem 3's parameters needs at most 20 L0 F0/eps^2 + "
        "20 max(1, L1^2) F0/L0 iterations (x^4, cosh).",
        "Zhang et al. 2020, Theorem 3", "[recalled constants]",
        f"largest measured / bound = {worst:.3g}", "<= 1 (if the recalled constants are right)",
        None, gating=False)


@claim("gd_within_thm6", needs=("iteration_complexity",))
def _thm6(rec):
    worst = _worst_ratio(rec, "gd_thm6", "thm6_recalled")
    return _record(
        "gd_within_thm6",
        "GD with h = 1/(2(M L1 + L0)) needs at most 4 (M L1 + L0) F0/eps^2 iterations.",
        "Zhang et al. 2020, Theorem 6", "[recalled constant]",
        f"largest measured / bound = {worst:.3g}", "<= 1 (if the recalled constant is right)",
        None, gating=False)


# --------------------------------------------------------------------------- hard instance


@claim("clipping_arbitrarily_faster", needs=("hard_instance",))
def _hard(rec):
    m = rec["hard_instance"]["metrics"]
    ratio = [r for r in m["ratio_best_fixed_over_clipped"] if np.isfinite(r)]
    Ms = [row["M"] for row in m["rows"]]
    ok = len(ratio) >= 3 and m["ratio_slope_vs_M"] >= 0.5 and ratio[-1] > ratio[0]
    return _record(
        "clipping_arbitrarily_faster",
        "On an (L0,L1)-smooth instance with a steep wall, the ratio of best fixed-step GD "
        "iterations to clipped GD iterations grows without bound in M.",
        "Zhang et al. 2020, Remark 5 (our own hard instance)", "[paper]",
        f"ratio {', '.join(f'{r:.3g}' for r in ratio)} at M = "
        f"{', '.join(f'{x:g}' for x in Ms)}; log-log slope {m['ratio_slope_vs_M']:.2f}",
        "grows like L1 M / log M", ok, gating=True)


@claim("thm4_lower_bound_vs_instance", needs=("hard_instance",))
def _thm4(rec):
    rows = rec["hard_instance"]["metrics"]["rows"]
    ratios = [r["gd_best_fixed"] / r["thm4_lower_recalled"] for r in rows
              if r["gd_best_fixed"] > 0 and r["thm4_lower_recalled"] > 0]
    return _record(
        "thm4_lower_bound_vs_instance",
        "Theorem 4's lower bound L1 M (F0 - 5 eps/8)/(8 eps^2 (log M + 1)), evaluated with "
        "our instance's F0, against the best fixed step measured on it.",
        "Zhang et al. 2020, Theorem 4", "[recalled expression]",
        "measured / bound = " + ", ".join(f"{r:.3g}" for r in ratios),
        "a lower bound over the class; it need not bind on one member", None, gating=False)


# --------------------------------------------------------------------------- stochastic


@claim("stochastic_rules_reach_eps", needs=("stochastic",))
def _stochastic(rec):
    m = rec["stochastic"]["metrics"]
    parts = []
    for name, info in m["problems"].items():
        counts = {k: v["iterations_to_eps"] for k, v in info["methods"].items()}
        parts.append(f"{name}: " + ", ".join(f"{k} {v if v >= 0 else '>T'}"
                                             for k, v in counts.items()))
    return _record(
        "stochastic_rules_reach_eps",
        f"Under bounded noise (tau = {m['tau']:g}), clipped SGD with Theorem 7's step and SGD "
        f"with Theorem 8's step bring E||grad f|| below eps = {m['eps']:g} within "
        f"T = {m['T']} steps ({m['seeds']} seeds).",
        "Zhang et al. 2020, Theorems 7 and 8", "[paper step rules; recalled bounds]",
        "iterations to E||grad f|| <= eps: " + "; ".join(parts),
        "O(eps^-4)-type bounds [recalled]; no count asserted", None, gating=False)


@claim("clipping_bias_skewed_noise", needs=("stochastic",))
def _bias(rec):
    b = rec["stochastic"]["metrics"]["bias"]
    skew, uni = b["plateau"]["skewed"], b["plateau"]["uniform"]
    ratio = skew[0] / uni[0]
    return _record(
        "clipping_bias_skewed_noise",
        "With skewed mean-zero noise, clipped SGD stalls at a gradient-norm plateau that grows "
        "as the threshold shrinks; with symmetric noise it does not.",
        "Koloskova, Hendrikx, Stich, ICML 2023", "[secondary]",
        f"plateau at c = {b['thresholds'][0]:g}: skewed {skew[0]:.3g} vs uniform {uni[0]:.3g} "
        f"({ratio:.3g}x); at c = {b['thresholds'][-1]:g}: {skew[-1]:.3g} vs {uni[-1]:.3g}",
        "biased fixed point for c below the noise scale", None, gating=False)


# --------------------------------------------------------------------------- in practice


@claim("seed000_mlp_clipping", needs=("clipping_mlp",))
def _seed000(rec):
    v = rec["clipping_mlp"]["metrics"]["variants"]
    parts = [f"{k}: {100 * m['divergence_rate']:.0f}% diverged"
             + (f", median final train/test MSE {m['median_final_train_mse']:.3g} / "
                f"{m['median_final_test_mse']:.3g}" if m["median_final_train_mse"] is not None
                else "") for k, m in v.items()]
    clipped = [k for k in v if k != "none"]
    ok = (v["none"]["divergence_rate"] == 1.0
          and all(v[k]["divergence_rate"] == 0.0 for k in clipped))
    return _record(
        "seed000_mlp_clipping",
        "Seed 000: the MLP (SGD lr 0.01, momentum 0.9, batch 32) gives NaN without clipping "
        "and trains with clipnorm 1.0, global_clipnorm 1.0 and clipvalue 5.0.",
        "seed 000 (Keras tutorial)", "[seed]", "; ".join(parts),
        "NaN without clipping; converges with clipping", ok, gating=False)


@claim("seed001_x4_explosion", needs=("clipping_seeds",))
def _seed001(rec):
    x4 = rec["clipping_seeds"]["metrics"]["x4"]
    first = x4["gd"]["first_iterates"]
    ok = (first[:2] == [10.0, -390.0] and x4["gd"]["diverged"]
          and not x4["clipped_gd"]["diverged"] and not x4["normalized_gd"]["diverged"])
    return _record(
        "seed001_x4_explosion",
        "Seed 001: GD with lr 0.1 on x^4 from 10 goes to -390 and overflows; clipped and "
        "normalized GD with the same step converge.",
        "seed 001", "[seed; exact arithmetic]",
        f"GD: {', '.join(f'{x:.4g}' for x in first)} ... overflow after t = "
        f"{x4['gd']['diverged_at']}; clipped GD reaches |f'| <= 1e-3 at t = "
        f"{x4['clipped_gd']['iterations_to_eps']}, normalized at "
        f"{x4['normalized_gd']['iterations_to_eps']}",
        "10 - 0.1 * 4000 = -390, then overflow", ok, gating=True)


@claim("seed002_sigmoid_chain", needs=("clipping_seeds",))
def _seed002(rec):
    ch = rec["clipping_seeds"]["metrics"]["chain"]
    seed_grads = [-3.9593e-05, -1.6243e-03, -1.4529e-02, -1.1988e-01]
    seed_weights = [0.5000039, 0.5001625, 0.5014533, 0.5119911]
    ok = (np.allclose(ch["gradients"], seed_grads, rtol=1e-4)
          and abs(ch["total_norm"] - 0.1208) < 5e-5 and abs(ch["clip_coef"] - 0.1) < 2e-4
          and np.allclose(ch["weights_after_step"], seed_weights, atol=1e-7))
    return _record(
        "seed002_sigmoid_chain",
        "Seed 002: the sigmoid chain's gradients, total norm 0.1208, clipping to 0.01208 "
        "scales every gradient by 0.1, and the weights after one SGD step (lr 1).",
        "seed 002", "[seed; exact arithmetic]",
        f"gradients {', '.join(f'{g:.5g}' for g in ch['gradients'])}; total norm "
        f"{ch['total_norm']:.5g}; coefficient {ch['clip_coef']:.5g}; weights "
        f"{', '.join(f'{w:.7f}' for w in ch['weights_after_step'])}",
        "the seed's printed values (float32 torch, to its printed digits)", ok, gating=True)


@claim("seed002_norm_type_order", needs=("clipping_mlp",))
def _norm_type(rec):
    nt = rec["clipping_mlp"]["metrics"]["norm_type"]
    parts, ok = [], True
    for key, rows in nt.items():
        totals = [r["total_norm"] for r in rows]
        ok &= all(a >= b for a, b in zip(totals, totals[1:], strict=False))
        parts.append(f"{key}: " + ", ".join(f"p={float(r['norm_type']):g} {r['total_norm']:.4g}"
                                             for r in rows))
    return _record(
        "seed002_norm_type_order",
        "total_norm decreases as norm_type grows (1, 2, 3, 4, inf), on the seed vector and on "
        "real network gradients.",
        "seed 002; monotonicity of p-norms", "[checked]", "; ".join(parts),
        "||g||_p is non-increasing in p", ok, gating=True)


@claim("value_clipping_turns_the_update", needs=("clipping_rnn",))
def _cosine(rec):
    v = rec["clipping_rnn"]["metrics"]["variants"]
    ok = v["norm"]["min_cosine"] > 1 - 1e-9 and v["value"]["min_cosine"] < 1 - 1e-3
    return _record(
        "value_clipping_turns_the_update",
        "Norm clipping keeps the update along -grad (cosine 1); value clipping turns it.",
        "seed 003; theory.md section 2", "[checked]",
        f"RNN: cosine(update, -grad) min {v['norm']['min_cosine']:.6f} with norm clipping, "
        f"min {v['value']['min_cosine']:.3f} (median {v['value']['median_cosine']:.3f}) with "
        f"value clipping; without clipping {100 * v['none']['divergence_rate']:.0f}% of seeds "
        f"diverged (max pre-clip norm {v['none']['max_grad_norm']:.3g})",
        "cosine = 1 for norm clipping", ok, gating=True)


@claim("pascanu_threshold_heuristic", needs=("clipping_mlp", "clipping_rnn"))
def _pascanu(rec):
    parts = []
    for name, key in (("clipping_mlp", "median_final_train_mse"),
                      ("clipping_rnn", "median_final_test_mse")):
        t = rec[name]["metrics"]["thresholds"]
        parts.append(f"{name}: " + ", ".join(
            f"{m:g}x: {100 * d:.0f}% div, {key.split('_')[2]} "
            + ("-" if f is None else f"{f:.3g}")
            for m, d, f in zip(t["multiples"], t["divergence_rate"], t[key], strict=True)))
    return _record(
        "pascanu_threshold_heuristic",
        "A threshold between 0.5x and 10x the average gradient norm trains well (Pascanu's "
        "heuristic).", "Pascanu, Mikolov, Bengio 2013", "[paper heuristic]", "; ".join(parts),
        "no guarantee; a rule of thumb", None, gating=False)


# --------------------------------------------------------------------------- running


def load_records(results_dir: str | Path, names) -> dict:
    """Records by experiment name from ``results_dir/<name>``, skipping missing ones."""
    out = {}
    for name in names:
        path = Path(results_dir) / name
        if (path / results.RECORD_FILE).exists():
            out[name] = results.read_record(path)[0]
    return out


# --------------------------------------------------------------------------- smoothness


GROWS_P = 0.01
"""Significance level of the Spearman test in 'smoothness grows with the gradient norm'."""


def _grows(stats: dict) -> bool:
    """'Smoothness grows with the gradient norm' on one run: a positive Spearman correlation
    of log L against log |g|, significant at ``GROWS_P``, and a positive OLS slope."""
    return bool(stats["spearman"] > 0 and stats["slope"] > 0
                and stats.get("spearman_p", 0.0) < GROWS_P)


@claim("smoothness_grows_with_gradient_norm", needs=("smoothness",))
def _smoothness(rec):
    runs = rec["smoothness"]["metrics"]["runs"]
    big = [r for r in runs.values() if r["regime"] == "large_lr_clip"]
    n_big = sum(_grows(r["traj"]) for r in big)
    n_all = sum(_grows(r["traj"]) for r in runs.values())
    not_big = ", ".join(r["model"] for r in big if not _grows(r["traj"])) or "none"
    return _record(
        "smoothness_grows_with_gradient_norm",
        "Along training with clipping and a large learning rate, local smoothness grows with "
        "the gradient norm (Spearman correlation of the trajectory estimate positive at "
        f"p < {GROWS_P:g}, and a positive log-log slope).",
        "Zhang et al. 2020, Figures 1-3 (on ResNet20/CIFAR-10 and AWD-LSTM/PTB; here small "
        "stand-ins)", "[paper; observation]",
        f"large lr + clipping: {n_big} of {len(big)} models (not: {not_big}); all regimes: "
        f"{n_all} of {len(runs)} runs; table: paper_figures/SMOOTHNESS.md",
        "an empirical observation, no bound", n_big > len(big) / 2, gating=False)


def smoothness_table(record: dict) -> str:
    """The correlation table of the smoothness experiment, as Markdown: model x regime with
    Pearson, Spearman, slope, the fitted envelope (L0, L1) for the trajectory estimate, the
    Spearman correlation of the Hessian-norm estimate, and whether smoothness grows."""
    m = record["metrics"]
    lines = [
        "# Smoothness against gradient norm",
        "",
        "Written by `make verify` from `results/smoothness` (`python -m experiments.smoothness`)."
        f" {m['steps']} steps per run, logged every {m['log_every']}; L-hat is the trajectory "
        "estimator (full-batch gradients at x_k and at the midpoint of the step), ‖H‖ the "
        f"Hessian norm by {m['hvp_iters']} warm-started power iterations. Correlations are of "
        "log L-hat against log ‖∇f‖; (L0, L1) is the tightest envelope L0 + L1 ‖g‖ above every "
        f"point. 'grows' means Spearman > 0 with p < {GROWS_P:g}, and slope > 0.",
        "",
        "| model | regime | points | Pearson | Spearman (p) | slope | L0 | L1 | Spearman of ‖H‖ "
        "| diverged at | grows |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]

    def num(x, fmt):
        return "-" if x is None or x != x else format(x, fmt)

    def rank(k):
        r = m["runs"][k]
        return (m["models"].index(r["model"]), REGIMES.index(r["regime"])
                if r["regime"] in REGIMES else len(REGIMES))

    for key in sorted(m["runs"], key=rank):
        r = m["runs"][key]
        t, h = r["traj"], r["hess"]
        cells = [r["model"], r["regime"], str(t["n"]), num(t["pearson"], "+.2f"),
                 f"{num(t['spearman'], '+.2f')} ({num(t.get('spearman_p'), '.1g')})",
                 num(t["slope"], "+.2f"), num(t["L0"], ".3g"),
                 num(t["L1"], ".3g"), num(h["spearman"], "+.2f"),
                 "-" if r["diverged_at"] < 0 else str(r["diverged_at"]),
                 "yes" if _grows(t) else "no"]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the tables that accompany CLAIMS.md (today: SMOOTHNESS.md, when its record
    exists) into ``out_dir``; return the paths written."""
    written = []
    record_dir = Path(results_dir) / "smoothness"
    if (record_dir / results.RECORD_FILE).exists():
        record, _ = results.read_record(record_dir)
        path = Path(out_dir) / "SMOOTHNESS.md"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(smoothness_table(record))
        tmp.replace(path)
        written.append(path)
    return written


def evaluate(results_dir: str | Path = "results") -> tuple[list[ClaimRecord], list[str]]:
    """Run every registered claim whose records exist; return (records, missing claim ids)."""
    needed = sorted({n for c in REGISTRY for n in c.needs})
    records = load_records(results_dir, needed)
    done, missing = [], []
    for c in REGISTRY:
        if all(n in records for n in c.needs):
            done.append(c.fn(records))
        else:
            missing.append(c.id)
    return done, missing


def to_markdown(claims: list[ClaimRecord], missing: list[str]) -> str:
    """The CLAIMS.md table."""
    verdict = {True: "holds", False: "**FAILS**", None: "reported"}
    lines = [
        "# Claims",
        "",
        "Written by `make verify` (`python -m experiments.verify`) from the run records in "
        "`results/`. A claim is *gating* when it rests on [paper] or [checked] facts: "
        "`make verify` fails if a gating claim fails. Claims on [recalled] constants report "
        "their ratio only.",
        "",
        "| id | claim | source | status | measured | theory | verdict | gating |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in claims:
        cells = (c.id, c.statement, c.source, c.status, c.measured, c.theoretical,
                 verdict[c.holds], "yes" if c.gating else "no")
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    if missing:
        lines += ["", "Not evaluated (their records are missing): " + ", ".join(missing) + "."]
    return "\n".join(lines) + "\n"
