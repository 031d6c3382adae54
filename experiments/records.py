"""Typed schemas of the records that experiments write and claims read.

The ``TypedDict`` of an experiment's ``metrics`` is named by its declaration
(``Experiment(result=...)``); the types of the experiments here live here, beside the checker.
It is the one place where the keys shared by the writer (``experiments/<name>.py``) and the
reader (``experiments/claims/``) are declared. ``check(name, metrics)`` lists every mismatch
(a missing key, a wrong type); ``experiments.common.write`` refuses to write a record that
does not match its schema, and ``claims.load_records`` reports a record that does not as
unreadable, so its claims FAIL naming the field instead of crashing on a missing key.

Numbers are ``Num``: an int or float, or one of the strings "nan", "inf", "-inf" (how JSON
keeps non-finite floats). Extra keys are allowed: a schema lists what is read, not all that is
written.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import (
    Any,
    Generic,
    NotRequired,
    TypedDict,
    TypeVar,
    Union,
    get_args,
    get_origin,
    get_type_hints,
)


class _NumMeta(type):
    def __instancecheck__(cls, value) -> bool:
        if isinstance(value, bool):
            return False
        return isinstance(value, int | float) or value in ("nan", "inf", "-inf")


class Num(metaclass=_NumMeta):
    """A JSON number, non-finite ones included."""


# --------------------------------------------------------------------------- per experiment


class Trajectories(TypedDict):
    iterations_to_eps: list[int]
    diverged: list[bool]
    diverged_at: list[int]


class QuarticTrajectories(TypedDict):
    clipped_gd: Trajectories
    normalized_gd: Trajectories
    gd_theorem6: Trajectories
    gd_common: Trajectories


class Summary(TypedDict):
    steps: int
    violations: int
    underflow_skipped: int
    slack_quantiles: list[Num]


class AuditedMethod(TypedDict):
    phi: Summary
    vankov: NotRequired[Summary]


class AuditedProblem(TypedDict):
    L0: Num
    L1: Num
    methods: dict[str, AuditedMethod]


class DescentAudit(TypedDict):
    problems: dict[str, AuditedProblem]


class RuleRatio(TypedDict):
    min: Num
    max: Num
    at_largest_g: Num
    rule_descends_everywhere: bool


class StepProblem(TypedDict):
    L0: Num
    L1: Num
    M: Num
    ratio_h_desc_over_rule: dict[str, RuleRatio]
    constants: str
    correlation: NotRequired[dict[str, Any]]


class MaxStep(TypedDict):
    problems: dict[str, StepProblem]


class Counts(TypedDict):
    iterations: list[int]


class SiCounts(TypedDict):
    iterations: list[int]
    summed_progress_ratio: list[Num]


class ComplexityMethods(TypedDict):
    gd_thm6: Counts
    gd_best_fixed: Counts
    clipped_thm3: Counts
    normalized: Counts
    vankov_si: SiCounts


class ComplexityProblem(TypedDict):
    M: list[Num]
    methods: ComplexityMethods
    bounds: dict[str, list[Num]]


class IterationComplexity(TypedDict):
    problems: dict[str, ComplexityProblem]


class HardRow(TypedDict):
    M: Num
    L0: Num
    gd_best_fixed: int
    clipped_thm3: int
    thm4_lower_recalled: Num


class HardInstance(TypedDict):
    by_M: list[HardRow]


class X4Run(TypedDict):
    first_iterates: list[Num]
    diverged: bool
    diverged_at: int
    iterations_to_eps: int


class Chain(TypedDict):
    gradients: list[Num]
    total_norm: Num
    clip_coef: Num
    weights_after_step: list[Num]


class ClippingSeeds(TypedDict):
    x4: dict[str, X4Run]
    chain: Chain


class NormRow(TypedDict):
    norm_type: Num
    total_norm: Num


class MedianInterval(TypedDict):
    """``training.median_over_seeds``: the 95% order-statistic interval of a median."""

    lo: Num
    hi: Num
    coverage: Num
    n: int


class Thresholds(TypedDict):
    multiples: list[Num]
    divergence_rate: list[Num]
    median_final_train_mse: list[Num | None]
    median_final_test_mse: list[Num | None]
    final_train_mse_interval: list[MedianInterval | None]
    final_test_mse_interval: list[MedianInterval | None]


class Variant(TypedDict):
    divergence_rate: Num
    diverged_epoch: list[int]
    median_final_train_mse: Num | None
    median_final_test_mse: Num | None
    final_train_mse_interval: MedianInterval | None
    final_test_mse_interval: MedianInterval | None


class ClippingMLP(TypedDict):
    variants: dict[str, Variant]
    norm_type: dict[str, list[NormRow]]
    thresholds: Thresholds


class Cosines(TypedDict):
    min_cosine: Num
    median_cosine: Num


class RNNVariants(TypedDict):
    norm: Cosines
    value: Cosines
    none: dict[str, Any]


class ClippingRNN(TypedDict):
    variants: RNNVariants
    thresholds: Thresholds


class BestCell(TypedDict):
    lr: Num
    threshold: Num
    median_steps: Num | None
    seeds_reaching: int
    seeds_diverged: int


class Speedup(TypedDict):
    per_seed: list[Num]
    per_seed_lo: list[Num]
    per_seed_hi: list[Num]
    median: Num
    lo: Num
    hi: Num
    coverage: Num
    level: Num


class EvaluatedCell(TypedDict):
    lr: Num
    threshold: Num
    steps_to_target: list[int] | None  # None: not counted (only whether it trains)
    final_train: list[Num]
    diverged: list[bool]
    trains: list[bool]


class Evaluation(TypedDict):
    seeds: list[int]
    record_every: int  # of its traces; steps to the target are counted at every step
    cells: dict[str, EvaluatedCell]
    speedup: Speedup
    unclipped_fails_at_clipped_lr: int
    clipped_trains: int


class NetworkGrid(TypedDict):
    target: Num
    baseline: Num
    steps: int
    lrs: list[Num]
    thresholds: list[Num]
    seeds: list[int]
    steps_to_target: list[list[list[int]]]
    final_train: list[list[list[Num]]]
    diverged: list[list[list[bool]]]
    best_unclipped: BestCell | None
    best_clipped: BestCell | None
    largest_stable_unclipped_lr: Num | None
    clipped_lr_exceeds_stable: bool | None
    grid_unstable_unclipped: bool
    grid_unstable_clipped: bool
    evaluation: Evaluation | None


class ClippingNetworks(TypedDict):
    selection_seeds: list[int]
    evaluation_seeds: list[int]
    level: Num
    models: dict[str, NetworkGrid]




class StochasticMethod(TypedDict):
    iterations_to_eps: int
    diverged: int
    clip_fraction: Num  # steps clipped / (T seeds), counted at every step
    average_grad_norm: Num  # the seed mean of each trajectory's mean ||grad f|| over t = 0..T
    average_grad_norm_se: Num
    min_recorded_grad_norm: Num
    final_mean_grad_norm: Num


class ClipAbove(TypedDict):
    printed: Num
    without_eta: Num


class StochasticRegime(TypedDict):
    problem: str
    noise: str
    tau: Num
    L0: Num
    L1: Num
    M: Num
    x0: Num
    eta_thm7: Num
    h_thm8: Num
    clip_above: ClipAbove
    methods: dict[str, StochasticMethod]
    alpha: NotRequired[Num]  # heavy-tailed noise only


class Plateau(TypedDict):
    skewed: list[Num]
    uniform: list[Num]


class ClippingBias(TypedDict):
    base: str
    eta: Num
    tau: Num
    p: Num
    thresholds: list[Num]
    plateau: Plateau


class Stochastic(TypedDict):
    T: int
    eps: Num
    seeds: int
    clip_share: Num
    regimes: dict[str, StochasticRegime]
    bias: ClippingBias


class PooledEvidence(TypedDict):
    n_points: int
    spearman: dict[str, Any]
    partial_spearman: dict[str, Any]
    detrended: dict[str, Any]
    slope: dict[str, Any]


class SeedLevel(TypedDict):
    level: Num
    partial_spearman: dict[str, Any]
    detrended: dict[str, Any]
    slope: dict[str, Any]
    verdict: str


class Estimator(TypedDict):
    verdict: str
    pooled: NotRequired[PooledEvidence]  # absent when skipped ({"computed": false, ...})
    seed_level: NotRequired[SeedLevel]


class HessianEstimator(TypedDict):
    verdict: str


class SmoothnessPerSeed(TypedDict):
    diverged_at: list[int]


class SmoothnessRun(TypedDict):
    model: str
    regime: str
    seeds: list[int]
    steps: int
    training: bool
    baseline: Num
    diverged_at: int
    traj: Estimator
    sub: Estimator  # the subsample estimator: skipped where a model has no subsample
    hess: HessianEstimator
    per_seed: SmoothnessPerSeed


class Bootstrap(TypedDict):
    level: Num
    n_boot: int
    method: str


class SeedLevelCorrection(TypedDict):
    level: Num
    rows: int
    tests: int
    correction: str


class Smoothness(TypedDict):
    models: list[str]
    seeds: list[int]
    steps: int
    hvp_iters: int
    hess_every: int
    hessian_models: list[str]
    bootstrap: Bootstrap
    seed_level: SeedLevelCorrection
    runs: dict[str, SmoothnessRun]


# --------------------------------------------------------------------------- checking


def check(name: str, metrics: Any) -> list[str]:
    """Every mismatch between ``metrics`` and the schema of experiment ``name`` ("" if it
    has none), as "path: problem" lines; [] when it matches."""
    from experiments import registry

    schema = registry.schema(name)
    return [] if schema is None else _check(schema, metrics, "metrics")


def _check(tp, value, path: str) -> list[str]:
    if tp is Any:
        return []
    if isinstance(tp, type) and typing.is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        hints = get_type_hints(tp, include_extras=True)
        out = []
        for key, sub in hints.items():
            optional = get_origin(sub) is NotRequired
            if optional:
                sub = get_args(sub)[0]
            if key not in value:
                if not optional:
                    out.append(f"{path}.{key}: missing")
                continue
            out += _check(sub, value[key], f"{path}.{key}")
        return out
    origin = get_origin(tp)
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: expected a list, got {type(value).__name__}"]
        (item,) = get_args(tp)
        return [e for i, v in enumerate(value) for e in _check(item, v, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: expected an object, got {type(value).__name__}"]
        _, item = get_args(tp)
        return [e for k, v in value.items() for e in _check(item, v, f"{path}.{k}")]
    if origin in (Union, types.UnionType):
        return [] if any(not _check(a, value, path) for a in get_args(tp)) else [
            f"{path}: expected {tp}, got {value!r}"]
    if tp is int:  # counts: JSON ints (bool is not a count)
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is bool:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{path}: expected {getattr(tp, '__name__', tp)}, got {value!r}"]


# --------------------------------------------------------------------------- reading

M = TypeVar("M")


class Record(TypedDict, Generic[M]):
    """A record as a claim reads it: the resolved config (plain data) and typed metrics."""

    config: dict[str, Any]
    metrics: M


def read(records: Mapping[str, Any], name: str, kind: type[M]) -> Record[M]:
    """Experiment ``name``'s record from the loaded ``records``, typed by its metrics' schema
    ``kind``, so that the type checker holds every key a claim reads against the schema the
    writer is checked with. ``kind`` must be the schema ``name`` declares."""
    from experiments import registry

    declared = registry.schema(name)
    if declared is not kind:
        raise TypeError(f"{name}'s records are {getattr(declared, '__name__', declared)}, "
                        f"not {kind.__name__}.")
    return typing.cast(Record[M], records[name])
