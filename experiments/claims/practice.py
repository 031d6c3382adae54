"""The claims on clipping in practice, from the seeds (``experiments.clipping_mlp``,
``experiments.clipping_seeds``, ``experiments.clipping_rnn``): what happens without and with
clipping, the seeds' printed values, norm against value clipping, and Pascanu's threshold."""

from __future__ import annotations

import numpy as np

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.rerun import MEASURED, Rerun
from experiments.claims.values import fmt, median_text, number, numbers

_MEDIANS = "[95% intervals of the medians over seeds, from order statistics]"


def _median_numbers(stem: str, at: str, value, interval) -> list[Number]:
    """The numbers ``median_text`` prints: the median and, when recorded, its interval's
    ends (``<stem>/<at>``, ``<stem>_lo/<at>``, ``<stem>_hi/<at>``)."""
    if value is None:
        return []
    out = [Number(f"{stem}/{at}", number(value))]
    if isinstance(interval, dict):
        out += [Number(f"{stem}_lo/{at}", number(interval["lo"])),
                Number(f"{stem}_hi/{at}", number(interval["hi"]))]
    return out


@claim("seed000_mlp_clipping", needs=("clipping_mlp",),
       statement="Seed 000: the MLP (SGD lr 0.01, momentum 0.9, batch 32) gives NaN without "
       "clipping and trains with clipnorm 1.0, global_clipnorm 1.0 and clipvalue 5.0.",
       source="seed 000 (Keras tutorial)", status="[seed; observation]",
       rerun=Rerun(factor=4.0, factor_above=0.5,
                   why="an interval's ends are single seeds; " + MEASURED))
def _seed000(rec):
    v = records.read(rec, "clipping_mlp", records.ClippingMLP)["metrics"]["variants"]
    parts = [f"{k}: {100 * number(m['divergence_rate']):.0f}% diverged"
             + (f", median final train/test MSE "
                f"{median_text(m['median_final_train_mse'], m['final_train_mse_interval'])}"
                f" / {median_text(m['median_final_test_mse'], m['final_test_mse_interval'])}"
                if m["median_final_train_mse"] is not None else "") for k, m in v.items()]
    if any(m["final_train_mse_interval"] is not None for m in v.values()):
        parts[0] = f"{_MEDIANS}: {parts[0]}"
    found = [Number("divergence_rate/none", number(v["none"]["divergence_rate"]), "==", 1.0)]
    found += [Number(f"divergence_rate/{k}", number(m["divergence_rate"]), "==", 0.0)
              for k, m in v.items() if k != "none"]
    for k, m in v.items():
        if m["median_final_train_mse"] is not None:
            found += _median_numbers("median_train_mse", k, m["median_final_train_mse"],
                                     m["final_train_mse_interval"])
            found += _median_numbers("median_test_mse", k, m["median_final_test_mse"],
                                     m["final_test_mse_interval"])
    return Outcome("; ".join(parts), "NaN without clipping; converges with clipping", found)


SEED001_FIRST = (10.0, -390.0)
"""GD's first iterates on x^4 from 10 with lr 0.1, in exact arithmetic: 10, 10 - 0.1 * 4000."""


@claim("seed001_x4_explosion", needs=("clipping_seeds",),
       statement="Seed 001: GD with lr 0.1 on x^4 from 10 goes to -390 and overflows; clipped "
       "and normalized GD with the same step reach |f'| <= 1e-3.",
       source="seed 001", status="[seed; checked]",
       tolerance="exact arithmetic: the first iterates are 10 and -390 exactly; GD is flagged "
       "diverged; clipped and normalized GD reach |f'| <= 1e-3 without diverging")
def _seed001(rec):
    x4 = records.read(rec, "clipping_seeds", records.ClippingSeeds)["metrics"]["x4"]
    first = numbers(x4["gd"]["first_iterates"])
    want = dict(enumerate(SEED001_FIRST))
    found = [Number("gd_iterates_recorded", int(first.size), ">=", len(SEED001_FIRST))]
    found += [Number(f"gd_iterate/{i}", float(x), "==" if i in want else "", want.get(i))
              for i, x in enumerate(first)]
    found += [Number("diverged/gd", bool(x4["gd"]["diverged"]), "==", True),
              Number("diverged_at/gd", number(x4["gd"]["diverged_at"]))]
    for k in ("clipped_gd", "normalized_gd"):
        # a count of at least 0 reached |f'| <= 1e-3 (one that never did is recorded as -1)
        found += [Number(f"diverged/{k}", bool(x4[k]["diverged"]), "==", False),
                  Number(f"iterations_to_eps/{k}", number(x4[k]["iterations_to_eps"]), ">=", 0)]
    return Outcome(
        f"GD: {', '.join(f'{x:.4g}' for x in first)} ... overflow after t = "
        f"{x4['gd']['diverged_at']}; clipped GD reaches |f'| <= 1e-3 at t = "
        f"{x4['clipped_gd']['iterations_to_eps']}, normalized at "
        f"{x4['normalized_gd']['iterations_to_eps']}",
        "10 - 0.1 * 4000 = -390, then overflow", found)


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
    ch = records.read(rec, "clipping_seeds", records.ClippingSeeds)["metrics"]["chain"]
    grads, weights = numbers(ch["gradients"]), numbers(ch["weights_after_step"])
    total, coef = number(ch["total_norm"]), number(ch["clip_coef"])
    # a record of another length fails on its count; zip pairs what there is
    found = [Number("gradients_recorded", int(grads.size), "==", len(SEED002_GRADS)),
             Number("weights_recorded", int(weights.size), "==", len(SEED002_WEIGHTS))]
    found += [Number(f"gradient/{i}", float(g), "==", want, tolerance=1e-4 * abs(want))
              for i, (g, want) in enumerate(zip(grads, SEED002_GRADS, strict=False))]
    found += [_strictly_within("total_norm", total, 0.1208, 5e-5),
              _strictly_within("clip_coef", coef, 0.1, 2e-4)]
    found += [Number(f"weight/{i}", float(w), "==", want, tolerance=1e-7)
              for i, (w, want) in enumerate(zip(weights, SEED002_WEIGHTS, strict=False))]
    return Outcome(
        f"gradients {', '.join(f'{g:.5g}' for g in grads)}; total norm {fmt(total, '.5g')}; "
        f"coefficient {fmt(coef, '.5g')}; weights {', '.join(f'{w:.7f}' for w in weights)}",
        "the seed's printed values", found)


def _strictly_within(name: str, value: float, want: float, tol: float) -> Number:
    """``|value - want| < tol``: the float just below ``tol`` bounds the distance."""
    return Number(name, value, "==", want, tolerance=float(np.nextafter(tol, 0.0)))


@claim("seed002_norm_type_order", needs=("clipping_mlp",),
       statement="total_norm is the seed's printed value for each norm_type (1, 2, 3, 4, inf) "
       "on the seed vector, and strictly decreases as norm_type grows on the seed vector and on "
       "real network gradients.",
       source="seed 002; monotonicity of p-norms", status="[seed; checked]",
       tolerance="seed vector: relative 1e-6 of the printed values (printed to 4 decimals); "
       "strict decrease (the vectors have no repeated magnitudes and several nonzero entries)")
def _norm_type(rec):
    nt = records.read(rec, "clipping_mlp", records.ClippingMLP)["metrics"]["norm_type"]
    parts, found = [], [Number("vectors_measured", len(nt), ">=", 1)]
    for key, rows in nt.items():
        totals = numbers([r["total_norm"] for r in rows])
        types = numbers([r["norm_type"] for r in rows])
        found += [Number(f"non_finite/{key}", int((~np.isfinite(totals)).sum()), "==", 0),
                  Number(f"not_decreasing/{key}", int((~(np.diff(totals) < 0)).sum()), "==", 0)]
        found += [_total_norm(key, t, v) for t, v in zip(types, totals, strict=True)]
        parts.append(f"{key}: " + ", ".join(f"p={t:g} {fmt(v, '.7g')}"
                                             for t, v in zip(types, totals, strict=True)))
    return Outcome("; ".join(parts), "||g||_p strictly decreasing in p; the seed's values",
                   found)


def _total_norm(key: str, p: float, total: float) -> Number:
    """``total_norm/<key>/p<p>``: on the seed vector, the seed's printed value (relative 1e-6
    of it, plus half its last printed digit); on other vectors, reported."""
    name = f"total_norm/{key}/p{p:g}"
    if key != "seed_vector":
        return Number(name, float(total))
    want = SEED002_TOTALS.get(p, np.nan)
    return Number(name, float(total), "==", want, tolerance=1e-6 * want + 5e-5)


@claim("value_clipping_turns_the_update", needs=("clipping_rnn",),
       statement="Norm clipping keeps the update along -grad (cosine 1); value clipping turns "
       "it.", source="seed 003; docs/theory.md §2", status="[checked]",
       rerun=Rerun(atol=0.3, factor=1e12, factor_above=1e10, why=MEASURED),
       tolerance="norm clipping: cosine > 1 - 1e-9 at every step (float rounding); value "
       "clipping: smallest cosine < 1 - 1e-3")
def _cosine(rec):
    v = records.read(rec, "clipping_rnn", records.ClippingRNN)["metrics"]["variants"]
    norm_c, value_c = number(v["norm"]["min_cosine"]), number(v["value"]["min_cosine"])
    median = number(v["value"]["median_cosine"])
    rate, blowup = number(v["none"]["divergence_rate"]), number(v["none"]["max_grad_norm"])
    return Outcome(
        f"RNN: cosine(update, -grad) min {fmt(norm_c, '.6f')} with norm clipping, "
        f"min {fmt(value_c, '.3f')} (median {fmt(median, '.3f')})"
        f" with value clipping; without clipping "
        f"{100 * rate:.0f}% of seeds diverged (max pre-clip norm {fmt(blowup)})",
        "cosine = 1 for norm clipping",
        [Number("min_cosine/norm", norm_c, ">", 1.0, tolerance=1e-9),  # float rounding
         Number("min_cosine/value", value_c, "<", 1 - 1e-3),
         Number("median_cosine/value", median),
         Number("divergence_rate/none", rate),
         Number("max_grad_norm/none", blowup)])


PASCANU_RANGE = (0.5, 10.0)
"""The heuristic's multiples of the average gradient norm."""

BASELINES = {"clipping_mlp": 20381.4, "clipping_rnn": 1 / 6}
"""The constant predictor's training MSE: the variance of the targets of seed 000's
regression data (tests/test_claims.py computes it), and for the adding problem the variance
of a sum of two U(0, 1) values, 1/6."""


@claim("pascanu_threshold_heuristic", needs=("clipping_mlp", "clipping_rnn"),
       statement="A threshold between 0.5x and 10x the average gradient norm trains well "
       "(Pascanu's heuristic).", source="Pascanu, Mikolov, Bengio 2013",
       status="[paper heuristic]",
       tolerance="'trains well' at a multiple = no seed diverges and the median final "
       "training loss ends below the constant predictor's loss (BASELINES); supported when "
       "every multiple from 0.5x to 10x trains well on both experiments, refuted when one "
       "does not (a run that blows up and ends finite is not training)",
       rerun=Rerun(atol=1.0, factor=1e4, factor_above=1.0,
                   why="at 10x and 20x some RNN seeds blow up and some do not, so the ends of "
                       "those intervals jump by orders of magnitude; " + MEASURED))
def _pascanu(rec):
    parts, found = [], []
    for name, key in (("clipping_mlp", "median_final_train_mse"),
                      ("clipping_rnn", "median_final_test_mse")):
        t = rec[name]["metrics"]["thresholds"]
        which = key.split("_")[2]
        rows = list(zip(t["multiples"], t["divergence_rate"], t[key],
                        t[f"final_{which}_mse_interval"], strict=True))
        parts.append(f"{name}: " + ", ".join(
            f"{number(m):g}x: {100 * number(d):.0f}% div, {which} {median_text(f, iv)}"
            for m, d, f, iv in rows))
        for m, d, f, iv in rows:
            at = f"{name}/{number(m):g}x"
            found += [Number(f"divergence_rate/{at}", number(d)),
                      *_median_numbers(f"median_{which}_mse", at, f, iv)]
        for m, d, f in zip(t["multiples"], t["divergence_rate"], t["median_final_train_mse"],
                           strict=True):
            if PASCANU_RANGE[0] <= number(m) <= PASCANU_RANGE[1]:
                well = number(d) == 0 and number(f) < BASELINES[name]
                found.append(Number(f"trains_well/{name}/{number(m):g}x", well, "==", True))
    return Outcome(f"{_MEDIANS}; " + "; ".join(parts) + "; constant predictor's training "
                   "MSE: " + ", ".join(f"{k} {v:.4g}" for k, v in BASELINES.items()),
                   "no guarantee; a rule of thumb", found)
