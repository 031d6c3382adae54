"""The mutation suite: wrong variants of the code that the claims must catch.

A check that passes whatever the code does verifies nothing. Each ``Mutant`` is a named wrong
variant of an algorithm (clipping removed, a step off by a factor), of a theorem's step or
guarantee (a constant off by 2 or 100), of a problem's declared constants (L0 or L1 too
small), of a clipping function, or of an instrument that measures (an iteration counter, a
smoothness estimator, a statistic). It is injected through ``research.toolkit``: the
experiments that use what it replaces are re-run with the mutant's toolkit, at small sizes,
and every claim is evaluated on the resulting records (the other records are the real
ones, run at the same sizes).

A mutant is *caught* when at least one gating claim reports FAIL. The suite asserts that
every mutant is caught, that no claim crashes on any mutant, and that every gating claim is
tripped by at least one mutant.

``python -m experiments.mutants [--out paper_figures/MUTANTS.md]`` (``make mutants``) runs
the suite and writes the table mutant -> claims that caught it.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from experiments import claims, quick, registry
from research import audit, clipping, engine, optimizers, problems, smoothness, stats, theory
from research import results as results_mod
from research.toolkit import REAL, Toolkit

EXPERIMENTS_DIR = Path(__file__).resolve().parent

SIZES = {e.name: dict(e.mutation) for e in map(registry.get, registry.names())
         if e.mutation is not None}
"""Sizes of the mutation runs (on top of the quick sizes), from each experiment's declaration
(``Experiment(mutation=...)``): enough for every gating claim to hold on the real code, small
enough for the whole suite to run inside ``make test``."""


@dataclasses.dataclass(frozen=True)
class Mutant:
    """A named wrong variant: ``overrides`` maps a toolkit module to {name: replacement}."""

    name: str
    description: str
    overrides: dict[str, dict[str, Callable]]

    @property
    def toolkit(self) -> Toolkit:
        return REAL.replace(**self.overrides)

    def experiments(self) -> list[str]:
        """The gating experiments that call something this mutant replaces (read from their
        source: ``tk.<module>.<name>``), so none is forgotten."""
        out = []
        for name in SIZES:
            text = (EXPERIMENTS_DIR / f"{name}.py").read_text()
            if any(re.search(rf"\btk\.{m}\.{a}\b", text)
                   for m, attrs in self.overrides.items() for a in attrs):
                out.append(name)
        return out


def _with_constants(factory, **scale):
    """A problem factory whose problems declare their constants scaled by ``scale`` (one
    mutated problem per real one, so the engine's compile cache keeps working)."""

    @functools.cache
    def mutate(p):
        if not p.has_constants:
            return p
        return dataclasses.replace(p, **{k: getattr(p, k) * v for k, v in scale.items()})

    def build(*args, **kwargs):
        return mutate(factory(*args, **kwargs))

    return build


def _constants_mutant(name, description, **scale) -> Mutant:
    # the registry (problems.get) declares the wrong constants: every experiment that looks a
    # problem up by name and trusts its (L0, L1) is re-run
    return Mutant(name, description, {"problems": {"get": _with_constants(problems.get,
                                                                          **scale)}})


def _clip_grad_norm_ignoring_norm_type(grads, max_norm, norm_type=2.0, **kw):
    return clipping.clip_grad_norm(grads, max_norm, 2.0, **kw)


def _clip_grad_norm_doubled(grads, max_norm, norm_type=2.0, **kw):
    clipped, total = clipping.clip_grad_norm(grads, max_norm, norm_type, **kw)
    return jax.tree_util.tree_map(lambda c: 2 * c, clipped), total


def _value_clip_as_norm(lr, momentum=0.9, *, clipvalue=None, **kw):
    if clipvalue is not None:
        kw["global_clipnorm"] = clipvalue
    return optimizers.sgd_momentum(lr, momentum, **kw)


def _l0l1_gd_si_doubled(L0, L1, rule="si"):
    # eta_si = 1 / (L0 + 1.5 L1 g): halving both constants doubles the step
    return optimizers.l0l1_gd(L0 / 2, L1 / 2, rule) if rule == "si" else optimizers.l0l1_gd(
        L0, L1, rule)


def _quarter_high(c):
    return np.where(c >= 0, np.round(1.25 * c), c).astype(c.dtype)


def _iterations_a_quarter_high(*args, **kwargs):
    # the counters report 1.25 x the first t with ||grad f|| <= eps (and with f <= target)
    res = engine.run(*args, **kwargs)
    return dataclasses.replace(res, iterations_to_eps=_quarter_high(res.iterations_to_eps),
                               iterations_to_target=_quarter_high(res.iterations_to_target))


def _target_count_one_late(*args, **kwargs):
    # the target counter reports the step after the first one at or below the target
    res = engine.run(*args, **kwargs)
    c = res.iterations_to_target
    return dataclasses.replace(res, iterations_to_target=np.where(c >= 0, c + 1, c))


def _sgd_without_momentum(lr, momentum=0.9, **kw):
    return optimizers.sgd_momentum(lr, 0.0, **kw)


def _along_training_x1_5(*args, **kwargs):
    # the estimator runs inside along_training's compiled scan, out of the overlay's reach
    out = smoothness.along_training(*args, **kwargs)
    return {**out, "smoothness_traj": 1.5 * out["smoothness_traj"],
            "smoothness_sub": 1.5 * out["smoothness_sub"]}


def _pearson_for_spearman(x, y):
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def _seed_level_evidence_at_half_level(per_seed, level):
    del level  # asked for intervals at the corrected level, it returns 50% ones
    return stats.seed_level_evidence(per_seed, 0.5)


def _log_log_evidence_at_half_level(*args, **kwargs):
    kwargs["level"] = 0.5  # asked for 95% intervals, it returns 50% ones
    return stats.log_log_evidence(*args, **kwargs)


MUTANTS = [
    Mutant("clipping_removed", "clipped GD without its clipping: h = eta",
           {"theory": {"clipped_step": lambda g, eta, gamma: eta * jnp.ones_like(g)},
            "optimizers": {"clipped_gd": lambda eta, gamma: optimizers.gd(eta)}}),
    Mutant("normalization_removed", "normalized GD without the division by |g|: h = eta/beta",
           {"theory": {"normalized_step": lambda g, eta, beta: eta / beta * jnp.ones_like(g)},
            "optimizers": {"normalized_gd": lambda eta, beta: optimizers.gd(eta / beta)}}),
    Mutant("thm6_step_x100", "Theorem 6's fixed step 100x too long",
           {"theory": {"theorem6_step": lambda L0, L1, M: 100 * theory.theorem6_step(L0, L1, M)}}),
    Mutant("vankov_si_step_x2", "Vankov's eta_si twice too long",
           {"theory": {"vankov_si_step": lambda g, L0, L1: 2 * theory.vankov_si_step(g, L0, L1)},
            "optimizers": {"l0l1_gd": _l0l1_gd_si_doubled}}),
    Mutant("vankov_guarantee_too_weak", "Vankov's per-step guarantee stated 2x too small",
           {"audit": {"progress_audit": lambda f, g, L0, L1, rule: audit.progress_audit(
               f, g, 2 * L0, 2 * L1, rule)}}),
    Mutant("vankov_guarantee_too_strong", "Vankov's per-step guarantee stated 2x too large",
           {"audit": {"progress_audit": lambda f, g, L0, L1, rule: audit.progress_audit(
               f, g, L0 / 2, L1 / 2, rule)}}),
    Mutant("vankov_bound_derived_with_half", "eta_si's iteration bound derived with a = 1/2 "
           "instead of 1 (per-step guarantee halved, bound doubled)",
           {"theory": {"vankov_progress": lambda g, L0, L1, rule: 0.5 * theory.vankov_progress(
               g, L0, L1, rule),
               "vankov_iteration_bound": lambda F0, eps, L0, L1, rule: 2 * (
                   theory.vankov_iteration_bound(F0, eps, L0, L1, rule) + 1) - 1}}),
    _constants_mutant("L0_halved", "the problem registry declares L0 half its true value",
                      L0=0.5),
    _constants_mutant("L1_halved", "the problem registry declares L1 half its true value",
                      L1=0.5),
    Mutant("clip_coef_doubled", "clip_grad_norm scales by twice the clip coefficient",
           {"clipping": {"clip_grad_norm": _clip_grad_norm_doubled}}),
    Mutant("norm_type_ignored", "clip_grad_norm always uses the L2 norm",
           {"clipping": {"clip_grad_norm": _clip_grad_norm_ignoring_norm_type}}),
    Mutant("value_clip_is_norm_clip", "clipvalue implemented as global-norm clipping",
           {"optimizers": {"sgd_momentum": _value_clip_as_norm}}),
    Mutant("iterations_a_quarter_high", "the engine's iteration counters read 25% high",
           {"engine": {"run": _iterations_a_quarter_high}}),
    Mutant("target_count_one_late", "the engine counts steps to a target loss one step late",
           {"engine": {"run": _target_count_one_late}}),
    Mutant("momentum_dropped", "SGD with momentum silently runs with momentum 0",
           {"optimizers": {"sgd_momentum": _sgd_without_momentum}}),
    Mutant("trajectory_estimator_x1_5", "the trajectory smoothness estimator (full batch and "
           "subsample) 1.5x too large", {"smoothness": {"along_training": _along_training_x1_5}}),
    Mutant("spearman_is_pearson", "Spearman's correlation computed as Pearson's",
           {"stats": {"spearman": _pearson_for_spearman}}),
    Mutant("bootstrap_intervals_at_half_level", "the smoothness evidence's bootstrap "
           "intervals are 50% intervals where 95% ones are asked for",
           {"stats": {"log_log_evidence": _log_log_evidence_at_half_level}}),
    Mutant("seed_intervals_at_half_level", "the smoothness verdicts' intervals over seeds are "
           "50% intervals where 95% ones are asked for",
           {"stats": {"seed_level_evidence": _seed_level_evidence_at_half_level}}),
]
"""The named mutants. Others will be tried against the project: the claims are designed to
catch wrongness in general, not this list."""


@dataclasses.dataclass(frozen=True)
class MutantResult:
    name: str
    description: str
    rerun: tuple[str, ...]
    caught_by: tuple[str, ...]
    crashed: tuple[str, ...]
    seconds: float

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)


def baseline(results_dir: Path) -> None:
    """The real code's records at mutation sizes (every gating experiment)."""
    for name, size in SIZES.items():
        quick.run_experiment(name, results_dir, **size)


def run_mutant(mutant: Mutant, baseline_dir: Path, work: Path) -> MutantResult:
    """Re-run the experiments ``mutant`` touches with its toolkit, on a copy of the baseline
    records, and evaluate every claim."""
    t0 = time.perf_counter()
    res = work / mutant.name
    shutil.copytree(baseline_dir, res)
    rerun = mutant.experiments()
    for name in rerun:
        shutil.rmtree(res / name)
        quick.run_experiment(name, res, mutant.toolkit, **SIZES[name])
    done, _ = claims.evaluate(res)
    caught = tuple(c.id for c in done if c.gating and c.holds is False)
    crashed = tuple(c.id for c in done if c.measured.startswith("could not be evaluated"))
    return MutantResult(mutant.name, mutant.description, tuple(rerun), caught, crashed,
                        time.perf_counter() - t0)


def run_suite(work: Path, mutants=MUTANTS, say=print) -> tuple[list, list]:
    """Baseline plus every mutant under ``work``: (baseline claim records, mutant results)."""
    base = work / "baseline"
    t0 = time.perf_counter()
    baseline(base)
    done, _ = claims.evaluate(base)
    say(f"[mutants] baseline: {time.perf_counter() - t0:.1f}s")
    out = []
    for m in mutants:
        r = run_mutant(m, base, work)
        say(f"[mutants] {m.name}: caught by {', '.join(r.caught_by) or 'NOTHING'} "
            f"({r.seconds:.1f}s)")
        out.append(r)
    return done, out


def to_markdown(base: list, results: list[MutantResult]) -> str:
    gating = [c.id for c in claims.REGISTRY if c.gating]
    trips = {g: [r.name for r in results if g in r.caught_by] for g in gating}
    lines = [
        "# Mutants",
        "",
        "Written by `make mutants` (`python -m experiments.mutants`). Each mutant is a wrong "
        "variant of the code, injected through `research.toolkit`; the experiments that use what "
        "it replaces are re-run at small sizes (each experiment's `mutation` sizes) and every "
        "claim is evaluated. A mutant is caught when a gating claim fails.",
        "",
        "Real code at these sizes: "
        + ("every gating claim holds." if all(c.holds for c in base if c.gating) else
           "**gating claims fail: " + ", ".join(c.id for c in base if c.gating and not c.holds)
           + "**"),
        "",
        "| mutant | what is wrong | experiments re-run | caught by (gating claims that fail) |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.name} | {r.description} | {', '.join(r.rerun)} | "
                     f"{', '.join(r.caught_by) or '**not caught**'} |")
    lines += ["", "| gating claim | tripped by |", "|---|---|"]
    lines += [f"| {g} | {', '.join(t) or '**no mutant**'} |" for g, t in trips.items()]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("paper_figures/MUTANTS.md"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base, results = run_suite(Path(tmp))
    text = to_markdown(base, results)
    results_mod.write_text(args.out, text)
    print(f"[mutants] wrote {args.out}")
    uncaught = [r.name for r in results if not r.caught]
    untripped = [g for g in (c.id for c in claims.REGISTRY if c.gating)
                 if not any(g in r.caught_by for r in results)]
    if uncaught or untripped or not all(c.holds for c in base if c.gating):
        print(f"[mutants] not caught: {uncaught}; gating claims no mutant trips: {untripped}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
