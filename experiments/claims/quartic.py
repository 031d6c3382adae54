"""The claim on the x^4 trajectories (``experiments.quartic_trajectories``): clipped GD reaches
eps from every start, where a fixed step crawls or diverges (Zhang et al. 2020, Theorem 3 and
Remark 5)."""

from __future__ import annotations

import numpy as np

from experiments import records
from experiments.claims.registry import Number, Outcome, claim
from experiments.claims.values import censor, counts_text, fmt, numbers, reached

CRAWL = 2.0
"""Theorem 6's step 'crawls' on x^4 when it needs at least this many times clipped GD's
iterations at the largest start (a count that never reached eps counts as T)."""


@claim("x4_clipped_vs_fixed", needs=("quartic_trajectories",),
       statement="On x^4, clipped GD with Theorem 3's parameters reaches |f'| <= eps from every "
       "start; a fixed step either crawls (Theorem 6's, at least 2x clipped GD's count at the "
       "largest start) or diverges from large starts (a common step).",
       source="Zhang et al. 2020, Theorem 3 and Remark 5", status="[paper]",
       tolerance="no slack: every start's clipped count is below T and no clipped run "
       "diverges; 'crawls' = Theorem 6's count at the largest start at least 2x clipped GD's, "
       "counting a run that never reached eps within T as T; 'diverges' = the common step is "
       "flagged non-finite from the largest start")
def _x4(rec):
    r = records.read(rec, "quartic_trajectories", records.QuarticTrajectories)
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
    ratio = thm6[big] / clipped_big
    return Outcome(
        f"x0 = {', '.join(f'{x:g}' for x in x0)}, T = {T}; " + "; ".join(parts)
        + f". Clipped converges: {converges}; Theorem 6 crawls ({fmt(ratio)}x"
        f" clipped at x0 = {x0[big]:g}): {crawls}; common step diverges: {common_diverges}",
        "clipped GD converges from every start; fixed steps crawl or diverge",
        [Number("clipped_starts_reaching_eps", int(reached(clipped["iterations_to_eps"]).sum()),
                "==", len(x0)),
         Number("clipped_starts_diverged", int(sum(map(bool, clipped["diverged"]))), "==", 0),
         Number("clipped_iterations_at_largest_start", float(clipped_big)),
         Number("theorem6_iterations_at_largest_start", float(thm6[big])),
         Number("theorem6_over_clipped_at_largest_start", float(ratio), ">=", CRAWL),
         Number("theorem6_diverged_at_largest_start",
                bool(m["gd_theorem6"]["diverged"][big]), "==", False),
         Number("common_step_diverged_at_largest_start", common_diverges, "==", True)])
