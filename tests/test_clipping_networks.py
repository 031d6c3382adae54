"""The Figure 4 grid (experiments.clipping_networks): its measurements on hand-made losses,
its summary on grids whose answer is known by construction, the experiment (deterministic) and
figure end to end at quick size, the claim rows, and bad config values."""

import math

import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments import claims, clipping_networks, quick, records
from research import results
from tests.conftest import record_numbers

INF = math.inf


def test_steps_to_target_is_the_first_recorded_step_and_censors_divergence():
    it = np.array([0, 10, 20, 30])
    loss = np.array([[5.0, 3.0, 1.0, 0.5],     # reaches 1.0 at step 20
                     [5.0, 4.0, 3.0, 2.0],     # never
                     [5.0, 0.9, np.nan, np.nan],  # reached at 10, then diverged
                     [0.5, 0.4, 0.3, 0.2]])    # already there at step 0
    div = np.array([False, False, True, False])
    got = clipping_networks.steps_to_target(loss, it, 1.0, div)
    assert got.tolist() == [20, -1, -1, 0]


def _grid(steps, final, diverged=None):
    steps = np.asarray(steps, dtype=int)
    final = np.asarray(final, dtype=float)
    diverged = np.zeros(steps.shape, bool) if diverged is None else np.asarray(diverged)
    return steps, final, diverged


def test_summary_picks_the_fastest_cells():
    lrs, thr = [0.1, 1.0, 10.0], [0.5, INF]
    # (lrs, thresholds, seeds): without clipping the best is lr 0.1 (100, 120 steps); lr 1
    # diverges on one seed; lr 10 diverges on both. With clipping lr 10 is fastest (20, 40).
    steps = [[[300, 280], [100, 120]],
             [[200, 150], [-1, 50]],
             [[20, 40], [-1, -1]]]
    final = [[[1.0, 1.0], [0.5, 0.5]],
             [[0.8, 0.8], [np.nan, 0.4]],
             [[0.2, 0.2], [np.nan, np.nan]]]
    div = [[[False, False], [False, False]],
           [[False, False], [True, False]],
           [[False, False], [True, True]]]
    s = clipping_networks.summarise(lrs, thr, *_grid(steps, final, div), baseline=4.0)
    assert s["best_unclipped"]["lr"] == 0.1 and s["best_unclipped"]["median_steps"] == 110
    assert s["best_clipped"] == {"lr": 10.0, "threshold": 0.5, "median_steps": 30.0,
                                 "seeds_reaching": 2, "seeds_diverged": 0,
                                 "median_final_train": 0.2}
    assert s["largest_stable_unclipped_lr"] == 0.1  # lr 1 and 10 diverge on some seed
    assert s["clipped_lr_exceeds_stable"] is True
    assert s["grid_unstable_unclipped"] and not s["grid_unstable_clipped"]


def test_training_is_anchored_to_the_constant_predictor():
    """A run that ends finite but above the constant predictor's loss does not train."""
    final = np.array([0.1, 0.2, 0.3, np.nan])
    div = np.array([False, False, False, True])
    assert clipping_networks.trains(final, div, baseline=0.25).tolist() == [True, True, False,
                                                                           False]
    lrs, thr = [0.1, 1.0], [0.5, INF]
    steps = [[[-1, -1], [-1, -1]], [[-1, 300], [50, 60]]]
    final = [[[3.0, 3.0], [2.0, 2.0]], [[1.5, 0.9], [0.3, 0.3]]]
    s = clipping_networks.summarise(lrs, thr, *_grid(steps, final), baseline=2.5)
    assert s["largest_stable_unclipped_lr"] == 1.0 and s["clipped_lr_exceeds_stable"] is False
    worse = clipping_networks.summarise(lrs, thr, *_grid(steps, final), baseline=0.2)
    assert worse["largest_stable_unclipped_lr"] is None
    assert worse["clipped_lr_exceeds_stable"] is True


def test_ratio_bounds_censor_in_the_right_direction():
    budget = 100
    # (unclipped, clipped) counts, exact: the ratio; unclipped never: a lower bound;
    # clipped never: an upper bound; both never: nothing known.
    lo, hi = clipping_networks.ratio_bounds([60, -1, 40, -1], [30, 50, -1, -1], budget)
    assert lo.tolist() == [2.0, 101 / 50, 0.0, 0.0]
    assert hi.tolist() == [2.0, INF, 40 / 101, INF]


def test_median_bounds_have_the_binomial_coverage():
    from scipy.stats import binom

    from research import stats

    rng = np.random.default_rng(0)
    for n in (3, 5, 7, 10, 20):
        _, lo, hi, cover, _ = stats.median_bounds(np.arange(n), np.arange(n) + 0.5, 0.95)
        j = int(lo)  # the interval is [lo_(j+1), hi_(n-j)]
        assert hi == n - 1 - j + 0.5
        assert cover == pytest.approx(1 - 2 * binom.cdf(j, n, 0.5))
        assert cover >= 0.95 or j == 0
        if j + 1 < n // 2:  # the next order statistic in would cover less than 95%
            assert 1 - 2 * binom.cdf(j + 1, n, 0.5) < 0.95
    # the coverage is what it says: draws from a continuous law around its median
    n, hits = 10, 0
    for _ in range(4000):
        x = rng.standard_normal(n)
        _, lo, hi, cover, _ = stats.median_bounds(x, x, 0.95)
        hits += lo <= 0.0 <= hi
    assert abs(hits / 4000 - cover) < 0.02
    assert stats.median_bounds([0.0, 1.0, 2.0], [np.inf, 3.0, 4.0], 0.5)[2] == np.inf


def _evaluated(speed_lo, speed_hi, fails, n=7, coverage=0.984):
    cell = {"lr": 1.0, "threshold": 1.0, "steps_to_target": [10] * n, "final_train": [0.1] * n,
            "diverged": [False] * n, "trains": [True] * n}
    return {
        "target": 0.1, "baseline": 0.2, "steps": 100, "seeds": [0, 1, 2],
        "best_unclipped": {"lr": 0.1, "threshold": INF, "median_steps": 50.0,
                           "seeds_reaching": 3, "seeds_diverged": 0},
        "best_clipped": {"lr": 1.0, "threshold": 1.0, "median_steps": 20.0,
                         "seeds_reaching": 3, "seeds_diverged": 0},
        "largest_stable_unclipped_lr": 0.1, "clipped_lr_exceeds_stable": True,
        "grid_unstable_unclipped": True, "grid_unstable_clipped": True,
        "evaluation": {"seeds": list(range(10, 10 + n)), "record_every": 1,
                       "cells": {r: cell for r in clipping_networks.ROLES},
                       "speedup": {"per_seed": [2.0] * n, "per_seed_lo": [speed_lo] * n,
                                   "per_seed_hi": [speed_hi] * n, "median": 2.0,
                                   "lo": speed_lo, "hi": speed_hi, "coverage": coverage,
                                   "level": 0.95},
                       "unclipped_fails_at_clipped_lr": fails, "clipped_trains": n}}


@pytest.mark.parametrize("lo, hi, fails, coverage, holds", [
    (1.5, 3.0, 5, 0.984, True),     # both halves supported
    (1.5, 3.0, 2, 0.984, False),    # the lr trains without clipping on most seeds
    (0.5, 0.9, 7, 0.984, False),    # clipping is slower
    (0.5, 3.0, 7, 0.984, None),     # the interval straddles 1
    (1.5, 3.0, 5, 0.75, None),      # too few seeds for the stated coverage
    (1.5, 3.0, 3, 0.984, None, ),   # fails on exactly half (n = 6 below)
])
def test_each_half_of_figure_4_gets_its_verdict(lo, hi, fails, coverage, holds):
    n = 6 if fails == 3 else 7
    row = claims.network_row(_evaluated(lo, hi, fails, n=n, coverage=coverage))
    assert row.holds is holds
    assert {"speedup_median_interval", "unclipped_fails_at_clipped_lr"} <= {
        x.name for x in row.numbers if x.relation}


def test_rnn_grid_figure_and_claim_at_quick_size(tmp_path):
    """One model (the cheapest to compile) through the experiment, the claim and the
    figure; all three are the slow test below and the quick pipeline."""
    every_step = {"rnn": {"evaluation_record_every": 1}}  # traces of every step, to check
    quick.run_experiment("clipping_networks", tmp_path, run_models=["rnn"], models=every_step)
    # deterministic, and the counts do not depend on how often the traces record: a second
    # run, its evaluation recorded every 10th step, writes the same numbers
    quick.run_experiment("clipping_networks", tmp_path / "again", run_models=["rnn"])
    thinned, _ = results.read_record(tmp_path / "again" / "clipping_networks")
    assert thinned["metrics"]["models"]["rnn"]["evaluation"]["record_every"] == 10
    numbers = [record_numbers(d / "clipping_networks" / "record.json")
               for d in (tmp_path, tmp_path / "again")]
    for n in numbers:  # all but the recording interval itself
        del n["config"]["models"]["rnn"]["evaluation_record_every"]
        del n["metrics"]["models"]["rnn"]["evaluation"]["record_every"]
    assert numbers[0] == numbers[1]
    record, traces = results.read_record(tmp_path / "clipping_networks")
    assert records.check("clipping_networks", record["metrics"]) == []
    rnn = record["metrics"]["models"]["rnn"]
    steps = np.asarray(rnn["steps_to_target"])
    assert steps.shape == (2, 2, 3) and rnn["thresholds"] == [1.0, INF]
    tr = traces["rnn/train_loss"]
    # the recorded steps to target are those of the recorded losses
    first = np.where((tr <= rnn["target"]).any(-1), np.argmax(tr <= rnn["target"], -1) * 10, -1)
    assert np.array_equal(np.where(np.asarray(rnn["diverged"]), -1, first), steps)
    # evaluation: fresh seeds; a count is the first step at the target, recorded or not
    ev = rnn["evaluation"]
    assert ev["record_every"] == 1 and not set(ev["seeds"]) & set(rnn["seeds"])
    etr = traces["rnn/evaluation/train_loss"]  # (cells, seeds, steps + 1)
    assert etr.shape == (3, len(ev["seeds"]), rnn["steps"] + 1)
    assert ev["cells"]["unclipped_at_clipped_lr"]["steps_to_target"] is None  # not counted
    for k, role in enumerate(clipping_networks.ROLES[:clipping_networks.COUNTED]):
        hit = etr[k] <= rnn["target"]
        want = np.where(hit.any(-1), np.argmax(hit, -1), -1)
        got = ev["cells"][role]["steps_to_target"]
        assert np.array_equal(np.where(ev["cells"][role]["diverged"], -1, want), got), role
    counts = np.asarray([ev["cells"][r]["steps_to_target"]
                         for r in clipping_networks.ROLES[:clipping_networks.COUNTED]])
    assert (counts[counts > 0] % 10).any()  # some between the thinned run's records
    done = {c.id: c for c in claims.evaluate(tmp_path)[0]}
    row = done["clipping_accelerates_networks/rnn"]
    assert "target loss 0.15" in row.measured and not row.gating
    from paper_figures import clipping_networks as fig

    fig.main(["--results", str(tmp_path), "--out", str(tmp_path / "figs")])
    png = mpimg.imread(tmp_path / "figs" / "clipping_networks.png")
    assert png.shape[0] > 500 and len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 10


@pytest.mark.slow
def test_experiment_figure_and_claims_at_quick_size(tmp_path):
    quick.run_experiment("clipping_networks", tmp_path)
    record, traces = results.read_record(tmp_path / "clipping_networks")
    m = record["metrics"]
    assert records.check("clipping_networks", m) == []
    assert list(m["models"]) == ["char_lm", "resnet_digits", "rnn"]
    lm = m["models"]["char_lm"]
    assert len(lm["corpus_sha256"]) == 64 and lm["python_version"]
    assert np.asarray(lm["steps_to_target"]).shape == (2, 2, 3)  # lrs x (1 + none) x seeds
    assert lm["thresholds"][-1] == INF
    tr = traces["char_lm/train_loss"]
    assert tr.shape == (2, 2, 3, 5)
    # seeds are paired: every cell of a seed starts at that seed's own initial point
    assert np.allclose(tr[..., 0], tr[:1, :1, :, 0]) and tr[0, 0, 0, 0] != tr[0, 0, 1, 0]
    assert np.isfinite(traces["char_lm/validation_loss"][..., 0]).all()
    done = {c.id: c for c in claims.evaluate(tmp_path)[0]}
    for name in claims.NETWORKS:
        row = done[f"clipping_accelerates_networks/{name}"]
        assert not row.gating and "target loss" in row.measured
    from paper_figures import clipping_networks as fig

    fig.main(["--results", str(tmp_path), "--out", str(tmp_path / "figs")])
    png = mpimg.imread(tmp_path / "figs" / "clipping_networks.png")
    assert png.shape[0] > 500 and len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 10


def test_claim_on_a_broken_record_fails_without_raising():
    c = claims.by_id()["clipping_accelerates_networks/rnn"]
    bad = {"metrics": {"selection_seeds": [0], "models": {"rnn": {"speedup": "nan"}}}}
    row = c.evaluate({"clipping_networks": bad})
    assert row.holds is False and "could not be evaluated" in row.measured


def test_the_seeds_that_choose_do_not_measure(tmp_path):
    with pytest.raises(ValueError, match="evaluation_seeds must differ from selection_seeds"):
        quick.run_experiment("clipping_networks", tmp_path, run_models=["rnn"],
                             selection_seeds=[0, 1], evaluation_seeds=[1, 2])
