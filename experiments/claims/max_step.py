"""The claims on the largest descending step (``experiments.max_step``): every step rule is
safe with the stated constants, what fitted constants give on a network, and how conservative
the rules grow at large gradients."""

from __future__ import annotations

import numpy as np

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.values import fmt, number


def _stated(rec):
    probs = records.read(rec, "max_step", records.MaxStep)["metrics"]["problems"]
    return {k: v for k, v in probs.items() if v["constants"] == "stated"}


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
    unsafe: list[str] = []
    worst: dict[str, float] = {}
    checked: list[Number] = []
    for p, info in probs.items():
        for r, v in info["ratio_h_desc_over_rule"].items():
            lo = number(v["min"])
            worst[r] = min(worst.get(r, np.inf), lo)
            pair = [Number(f"ratio/{p}/{r}", lo, ">=", 1.0),
                    Number(f"descends/{p}/{r}", v["rule_descends_everywhere"] is True, "==", True)]
            if not all(n.passes() for n in pair):
                unsafe.append(f"{p}:{r}")
            checked += pair
    return Outcome(
        "smallest largest-descending-step / rule: "
        + ", ".join(f"{r} {fmt(v)}" for r, v in worst.items())
        + f"; unsafe: {', '.join(unsafe) or 'none'}", "ratio >= 1 everywhere",
        [Number("rules_checked", len(worst), ">", 0)] + checked
        + [Number(f"smallest_ratio/{r}", v) for r, v in worst.items()])


@claim("rules_with_fitted_constants", needs=("max_step",),
       statement="Along a clipped GD run on a network, the step rules with (L0, L1) fitted to "
       "the measured (gradient norm, Hessian norm) points are still descending steps.",
       source="this project's measurement (constants estimated, not proved)",
       status="[observation]",
       tolerance="supported when on every network the smallest ratio (largest descending "
       "step / rule) over the run's points and rules is at least 1, refuted when below 1 on "
       "one")
def _fitted(rec):
    probs = {k: v for k, v in
             records.read(rec, "max_step", records.MaxStep)["metrics"]["problems"].items()
             if v["constants"] != "stated"}
    if not probs:
        return Outcome("not run", "-", decides=False)
    parts, reported = [], []
    for p, info in probs.items():
        worst = min(number(v["min"]) for v in info["ratio_h_desc_over_rule"].values())
        c = info.get("correlation", {})
        L0, L1, rho = number(info["L0"]), number(info["L1"]), number(c.get("spearman"))
        parts.append(f"{p}: fitted (L0, L1) = ({fmt(L0, '.4g')}, {fmt(L1)}); smallest "
                     f"largest-descending-step / rule {fmt(worst)}; Spearman(log ||H||, "
                     f"log ||g||) = {fmt(rho, '.2f')}")
        reported += [Number(f"l0/{p}", L0), Number(f"l1/{p}", L1),
                     Number(f"smallest_ratio/{p}", worst, ">=", 1.0),
                     Number(f"spearman/{p}", rho)]
    return Outcome("; ".join(parts), "no guarantee: the constants are local estimates",
                   reported)


FAR = 10.0
"""'Far below': an order of magnitude."""


@claim("rules_grow_conservative", needs=("max_step",),
       statement="At large gradients the (L0,L1) step rules are far below the largest "
       "descending step.", source="this project's measurement", status="[observation]",
       tolerance=f"'far below' = the largest descending step at least {FAR:g}x eta_si at the "
       "largest gradient of every problem with stated constants: supported when it is on "
       "every one, refuted when not on one")
def _conservative(rec):
    parts, reported = [], []
    for p, info in _stated(rec).items():
        ratio, g = number(info["ratio_h_desc_over_rule"]["si"]["at_largest_g"]), number(info["M"])
        parts.append(f"{p}: x{fmt(ratio)} (eta_si at |g| = {fmt(g, '.2g')})")
        reported += [Number(f"si_ratio_at_largest_g/{p}", ratio, ">=", FAR),
                     Number(f"largest_g/{p}", g)]
    return Outcome("; ".join(parts), "no prediction (worst-case rules)", reported)
