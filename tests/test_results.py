"""Run records: round trip, plain numbers, provenance, and atomic replacement."""

import json

import numpy as np
import pytest

from research import results


def test_round_trip(tmp_path):
    out = results.write_record(
        tmp_path / "rec", config={"a": 1, "nested": {"b": [1.5, 2]}},
        metrics={"n": np.int64(3), "x": np.float32(0.5), "bad": float("nan"),
                 "flags": np.array([True, False])},
        traces={"f": np.arange(6.0).reshape(2, 3)}, seed=7)
    record, traces = results.read_record(out)
    assert record["config"] == {"a": 1, "nested": {"b": [1.5, 2]}}
    assert record["metrics"] == {"n": 3, "x": 0.5, "bad": "nan", "flags": [True, False]}
    assert record["seed"] == 7 and record["precision"] == "float64"
    assert record["versions"]["jax"] != "not installed"
    assert "git_commit" in record
    assert np.array_equal(traces["f"], np.arange(6.0).reshape(2, 3))
    json.loads((out / "record.json").read_text())  # standard JSON (no NaN literals)


def test_failed_write_leaves_old_record_and_no_debris(tmp_path):
    results.write_record(tmp_path / "rec", config={"v": 1}, metrics={})

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        results.write_record(tmp_path / "rec", config={"v": 2}, metrics={},
                             traces={"f": Boom()})
    record, _ = results.read_record(tmp_path / "rec")
    assert record["config"] == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec"]


def test_missing_record_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the experiment"):
        results.read_record(tmp_path / "nothing")
