"""The claims on clipping in practice, from the seeds (``experiments.clipping_mlp``,
``experiments.clipping_seeds``, ``experiments.clipping_rnn``): what happens without and with
clipping, the seeds' printed values, norm against value clipping, and Pascanu's threshold."""

from __future__ import annotations

import numpy as np

from experiments.claims.registry import Outcome, claim
from experiments.claims.rerun import MEASURED, Rerun
from experiments.claims.values import fmt, median_text, number, numbers, reached

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
                f"{median_text(m['median_final_train_mse'], m['final_train_mse_interval'])}"
                f" / {median_text(m['median_final_test_mse'], m['final_test_mse_interval'])}"
                if m["median_final_train_mse"] is not None else "") for k, m in v.items()]
    if any(m["final_train_mse_interval"] is not None for m in v.values()):
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
        ivs = t[f"final_{which}_mse_interval"]
        parts.append(f"{name}: " + ", ".join(
            f"{number(m):g}x: {100 * number(d):.0f}% div, {which} {median_text(f, iv)}"
            for m, d, f, iv in zip(t["multiples"], t["divergence_rate"], t[key], ivs,
                                   strict=True)))
    return Outcome(f"{_MEDIANS}; " + "; ".join(parts),
                   "no guarantee; a rule of thumb", None)
