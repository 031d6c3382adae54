"""The claims on the stochastic experiments (``experiments.stochastic``): Theorems 7 and 8's
step rules under bounded noise, and clipped SGD's bias under skewed noise."""

from __future__ import annotations

from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.values import censor, counts_text, fmt, number, numbers, reached


@claim("stochastic_rules_reach_eps", needs=("stochastic",),
       statement="Under bounded noise, clipped SGD with Theorem 7's step and SGD with Theorem "
       "8's step bring E||grad f|| below eps within T steps.",
       source="Zhang et al. 2020, Theorems 7 and 8", status="[paper step rules; recalled bounds]",
       tolerance="supported when every method reaches eps within T on every problem, refuted "
       "when one does not (a count that never reached it is T)")
def _stochastic(rec):
    m = rec["stochastic"]["metrics"]
    parts, found = [], []
    for name, info in m["problems"].items():
        counts = {k: v["iterations_to_eps"] for k, v in info["methods"].items()}
        clip = {k: v["clip_fraction"] for k, v in info["methods"].items() if "clip_fraction" in v}
        parts.append(f"{name}: " + ", ".join(f"{k} {counts_text([v], m['T'])}"
                                             for k, v in counts.items())
                     + (" (share of steps clipped: " + ", ".join(
                         f"{k} {100 * number(v):.0f}%" for k, v in clip.items()) + ")"
                        if clip else ""))
        # a count that never reached eps is published as the budget T, as it prints ">=T"
        found += [Number(f"iterations_to_eps/{name}/{k}", float(censor([v], number(m["T"]))[0]))
                  for k, v in counts.items()]
        found += [Number(f"reached/{name}/{k}", bool(reached([v])[0]), "==", True)
                  for k, v in counts.items()]
        found += [Number(f"clip_fraction/{name}/{k}", number(v)) for k, v in clip.items()]
    return Outcome(
        f"tau = {number(m['tau']):g}, eps = {number(m['eps']):g}, T = {m['T']}, {m['seeds']} "
        "seeds; iterations to E||grad f|| <= eps: " + "; ".join(parts),
        "O(eps^-4)-type bounds [recalled]; no count asserted",
        [Number("tau", number(m["tau"])), Number("eps", number(m["eps"])),
         Number("budget", number(m["T"])), Number("seeds", number(m["seeds"]))] + found)


STALL = 2.0
"""'Stalls' where symmetric noise does not: a plateau at least twice the uniform noise's."""


@claim("clipping_bias_skewed_noise", needs=("stochastic",),
       statement="With skewed mean-zero noise, clipped SGD stalls at a gradient-norm plateau "
       "that grows as the threshold shrinks; with symmetric noise it does not.",
       source="Koloskova, Hendrikx, Stich, ICML 2023", status="[secondary]",
       tolerance=f"supported when the skewed plateau at the smallest threshold exceeds both "
       f"its value at the largest threshold and {STALL:g}x the uniform plateau at the smallest "
       "threshold; refuted when either fails")
def _bias(rec):
    b = rec["stochastic"]["metrics"]["bias"]
    skew, uni = numbers(b["plateau"]["skewed"]), numbers(b["plateau"]["uniform"])
    th = numbers(b["thresholds"])
    ratio = float(skew[0] / uni[0])
    return Outcome(
        f"plateau at c = {th[0]:g}: skewed {fmt(skew[0])} vs uniform {fmt(uni[0])} "
        f"({fmt(ratio)}x); at c = {th[-1]:g}: {fmt(skew[-1])} vs {fmt(uni[-1])}",
        "biased fixed point for c below the noise scale",
        [Number("threshold/smallest", float(th[0])),
         Number("plateau_skewed/smallest", float(skew[0])),
         Number("plateau_uniform/smallest", float(uni[0])),
         Number("skewed_over_uniform/smallest", ratio, ">", STALL),
         Number("skewed_smallest_over_largest_threshold", float(skew[0] / skew[-1]), ">", 1.0),
         Number("threshold/largest", float(th[-1])),
         Number("plateau_skewed/largest", float(skew[-1])),
         Number("plateau_uniform/largest", float(uni[-1]))])
