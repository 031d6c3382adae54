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


def _grid(steps, final, diverged=None, initial=4.0):
    steps = np.asarray(steps, dtype=int)
    final = np.asarray(final, dtype=float)
    diverged = np.zeros(steps.shape, bool) if diverged is None else np.asarray(diverged)
    return steps, final, diverged, np.full(steps.shape, initial)


def test_summary_picks_the_fastest_cells_and_pairs_seeds():
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
    s = clipping_networks.summarise(lrs, thr, *_grid(steps, final, div), budget=400)
    assert s["best_unclipped"]["lr"] == 0.1 and s["best_unclipped"]["median_steps"] == 110
    assert s["best_clipped"] == {"lr": 10.0, "threshold": 0.5, "median_steps": 30.0,
                                 "seeds_reaching": 2, "seeds_diverged": 0,
                                 "median_final_train": 0.2}
    assert s["speedup"]["per_seed"] == [5.0, 3.0]  # paired: 100/20 and 120/40
    assert s["speedup"]["median"] == 4.0 and not s["speedup"]["censored"]
    assert s["largest_stable_unclipped_lr"] == 0.1  # lr 1 and 10 diverge on some seed
    assert s["clipped_lr_exceeds_stable"] is True


def test_summary_when_clipping_does_not_help_and_when_nothing_arrives():
    lrs, thr = [0.1, 1.0], [0.5, INF]
    steps = [[[-1, -1], [-1, -1]],
             [[-1, 300], [50, 60]]]
    final = [[[3.0, 3.0], [2.0, 2.0]],
             [[1.5, 0.9], [0.3, 0.3]]]
    s = clipping_networks.summarise(lrs, thr, *_grid(steps, final), budget=400)
    assert s["best_unclipped"]["lr"] == 1.0 and s["best_clipped"]["median_steps"] is None
    # the clipped best never reaches the target on seed 0: counted as the budget
    assert s["speedup"]["per_seed"] == [50 / 400, 60 / 300] and s["speedup"]["censored"]
    assert s["clipped_lr_exceeds_stable"] is False
    row = claims.network_row({**s, "target": 1.0, "steps": 400, "seeds": [0, 1]})
    assert "does not train faster" in row.measured and row.holds is None
    # a run whose loss went up (final above the initial) does not count as trained
    worse = clipping_networks.summarise(lrs, thr, *_grid(steps, final, initial=0.2),
                                        budget=400)
    assert worse["largest_stable_unclipped_lr"] is None
    assert worse["clipped_lr_exceeds_stable"] is True


def test_rnn_grid_figure_and_claim_at_quick_size(tmp_path):
    """One model (the cheapest to compile) through the experiment, the claim and the
    figure; all three are the slow test below and the quick pipeline."""
    quick.run_experiment("clipping_networks", tmp_path, run_models=["rnn"])
    # deterministic: a second run with the same seeds writes the same numbers
    quick.run_experiment("clipping_networks", tmp_path / "again", run_models=["rnn"])
    assert record_numbers(tmp_path / "clipping_networks" / "record.json") == record_numbers(
        tmp_path / "again" / "clipping_networks" / "record.json")
    record, traces = results.read_record(tmp_path / "clipping_networks")
    assert records.check("clipping_networks", record["metrics"]) == []
    rnn = record["metrics"]["models"]["rnn"]
    steps = np.asarray(rnn["steps_to_target"])
    assert steps.shape == (2, 2, 2) and rnn["thresholds"] == [1.0, INF]
    tr = traces["rnn/train_loss"]
    # the recorded steps to target are those of the recorded losses
    first = np.where((tr <= rnn["target"]).any(-1), np.argmax(tr <= rnn["target"], -1) * 10, -1)
    assert np.array_equal(np.where(np.asarray(rnn["diverged"]), -1, first), steps)
    done = {c.id: c for c in claims.evaluate(tmp_path)[0]}
    row = done["clipping_accelerates_networks/rnn"]
    assert row.holds is None and "target loss 0.15" in row.measured
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
    assert np.asarray(lm["steps_to_target"]).shape == (2, 2, 2)  # lrs x (1 + none) x seeds
    assert lm["thresholds"][-1] == INF
    tr = traces["char_lm/train_loss"]
    assert tr.shape == (2, 2, 2, 5)
    # seeds are paired: every cell of a seed starts at that seed's own initial point
    assert np.allclose(tr[..., 0], tr[:1, :1, :, 0]) and tr[0, 0, 0, 0] != tr[0, 0, 1, 0]
    assert np.isfinite(traces["char_lm/validation_loss"][..., 0]).all()
    done = {c.id: c for c in claims.evaluate(tmp_path)[0]}
    for name in claims.NETWORKS:
        row = done[f"clipping_accelerates_networks/{name}"]
        assert row.holds is None and not row.gating and "target loss" in row.measured
    from paper_figures import clipping_networks as fig

    fig.main(["--results", str(tmp_path), "--out", str(tmp_path / "figs")])
    png = mpimg.imread(tmp_path / "figs" / "clipping_networks.png")
    assert png.shape[0] > 500 and len(np.unique(png.reshape(-1, png.shape[-1]), axis=0)) > 10


def test_claim_on_a_broken_record_fails_without_raising():
    c = claims.by_id()["clipping_accelerates_networks/rnn"]
    bad = {"metrics": {"seeds": [0], "models": {"rnn": {"speedup": "nan"}}}}
    row = c.evaluate({"clipping_networks": bad})
    assert row.holds is False and "could not be evaluated" in row.measured
