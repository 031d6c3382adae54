"""Figure 4 as shards of Hydra multiruns (experiments.clipping_networks, experiments.shards):
the record combined from the shards equals the single process's bit for bit, through every
launcher; a missing or mismatched shard is named in one line and nothing is written; the same
command re-runs only what is missing."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import quick, registry, shards
from research import results

ROOT = Path(__file__).resolve().parents[1]
CN = "experiments.clipping_networks"
SMALL = {"run_models": ["rnn"], "chunk": 4}
"""The cheapest model, its 12 selection and 12 evaluation trajectories in calls of 4: three
calls per phase, dealt to two shards as two and one."""


def _flat(d: dict, prefix: str = ""):
    for key, value in d.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}={json.dumps(value).replace(' ', '')}"


def _args(shards_dir: Path, *more: str) -> list[str]:
    """The command line of the quick size with ``SMALL`` into ``shards_dir``."""
    return [*_flat(dict(registry.get("clipping_networks").quick)), *_flat(SMALL),
            "shards=2", f"shards_dir={shards_dir}", *more]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.clipping_networks", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CI": "1"})


def _same_record(a: Path, b: Path) -> None:
    """Equal metrics and traces (bit for bit, NaN where NaN), and equal configs but for
    ``out``."""
    ra, ta = results.read_record(a)
    rb, tb = results.read_record(b)
    assert ra["metrics"] == rb["metrics"]
    assert ta.keys() == tb.keys()
    for key in ta:
        assert np.array_equal(ta[key], tb[key], equal_nan=True), key
    ca, cb = ({k: v for k, v in r["config"].items() if k != "out"} for r in (ra, rb))
    assert ca == cb and "shards" not in ca and ca["chunk"] == SMALL["chunk"]


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The single-process record at the same sizes."""
    where = tmp_path_factory.mktemp("single")
    quick.run_experiment("clipping_networks", where, **SMALL)
    return where / "clipping_networks"


def test_split_deal_and_pad():
    assert shards.split(12, 4) == (4, [(0, 4), (4, 8), (8, 12)])
    assert shards.split(10, 4) == (4, [(0, 4), (4, 8), (8, 10)])
    assert shards.split(10, None) == (10, [(0, 10)]) == shards.split(10, 50)
    dealt = [shards.deal(5, 3, i) for i in range(3)]
    assert dealt == [[0, 1], [2, 3], [4]]
    assert [shards.deal(2, 3, i) for i in range(3)] == [[0], [1], []]
    assert shards.pad([1, 2], 4) == [1, 2, 2, 2] and shards.pad([1, 2], 2) == [1, 2]
    assert shards.mixed_devices({"a": 2, "b": 2}) is None
    assert "(a: 2, b: 1)" in shards.mixed_devices({"a": 2, "b": 1})


def test_shards_through_the_basic_launcher_give_the_single_record(tmp_path, single, cli_in_process):
    where = tmp_path / "shards"
    code, out, err = cli_in_process(CN, "-m", *_args(where, "phase=selection", "shard=range(0,2)"))
    assert code == 0, err
    assert "trajectories 1-8 of 12, 2 calls of 4 trajectories" in out
    code, out, err = cli_in_process(CN, "-m", *_args(where, "phase=evaluation", "shard=range(0,2)"))
    assert code == 0, err
    code, out, err = cli_in_process(CN, *_args(where, "phase=combine", f"out={tmp_path / 'rec'}"))
    assert code == 0, err
    _same_record(tmp_path / "rec", single)

    # a missing shard and one made by other code: both named in one line, nothing written
    lost = where / "selection" / "1"
    lost_record = (lost / "record.json").read_text()
    results._discard(lost)
    stale = where / "evaluation" / "0" / "record.json"
    text = stale.read_text()
    rec = json.loads(text)
    rec["metrics"]["code"] = "0" * 16
    stale.write_text(json.dumps(rec))
    code, out, err = cli_in_process(CN, *_args(where, "phase=combine", f"out={tmp_path / 'none'}"))
    assert code == shards.EXIT and err.count("\n") == 1, err
    assert f"selection shard 1 of 2 ({lost}) is missing" in err
    assert "evaluation shard 0 of 2" in err and "other code" in err
    assert not (tmp_path / "none").exists()
    # the evaluation refuses before Hydra writes anything while the selection lacks a shard
    code, out, err = cli_in_process(CN, "-m", *_args(tmp_path / "other", "phase=evaluation",
                                              "shard=range(0,2)"))
    assert code == shards.EXIT and "selection shard 0 of 2" in err
    assert not (tmp_path / "other").exists()

    # the same commands re-run only the missing shard and the stale one
    kept = (where / "selection" / "0" / "record.json").read_text()
    code, out, err = cli_in_process(CN, "-m", *_args(where, "phase=selection", "shard=range(0,2)"))
    assert code == 0, err
    assert "selection shard 0 of 2: finished already" in out
    # one engine call: shard 1's block; shard 0's two are not run again
    assert "selection shard 1 of 2: wrote" in out and out.count(" of 4 trajectories") == 1
    assert "trajectories 9-12 of 12, 1 call of 4 trajectories" in out
    assert (where / "selection" / "0" / "record.json").read_text() == kept
    assert json.loads((lost / "record.json").read_text())["metrics"] == json.loads(
        lost_record)["metrics"]
    code, out, err = cli_in_process(CN, "-m", *_args(where, "phase=evaluation", "shard=range(0,2)"))
    assert code == 0, err
    assert "evaluation shard 0 of 2: its record" in out and "other code" in out
    assert "evaluation shard 1 of 2: finished already" in out
    code, out, err = cli_in_process(CN, *_args(where, "phase=combine", f"out={tmp_path / 'again'}"))
    assert code == 0, err
    _same_record(tmp_path / "again", single)
    assert "different CPU device counts" not in out

    # a shard made on another core count: combined, with one line saying the bits may differ
    other = where / "selection" / "0" / "record.json"
    rec = json.loads(other.read_text())
    n = rec["metrics"]["devices"]
    rec["metrics"]["devices"] = n + 1
    other.write_text(json.dumps(rec))
    code, out, err = cli_in_process(CN, *_args(where, "phase=combine", f"out={tmp_path / 'mix'}"))
    assert code == 0, err
    assert (f"different CPU device counts (selection 0: {n + 1}, selection 1: {n}, "
            f"evaluation 0: {n}" in out and "not bit for bit" in out)


def test_a_shard_of_another_configuration_is_not_replaced(tmp_path, cli_in_process):
    where = tmp_path / "shards"
    (where / "selection" / "0").mkdir(parents=True)
    config = {"selection_seeds": [0], "models": {}, "shards": 2}
    shards.write(where / "selection" / "0", config,
                 {"phase": "selection", "shard": 0, "shards": 2, "blocks": []}, {}, "x")
    before = (where / "selection" / "0" / "record.json").read_text()
    code, out, err = cli_in_process(CN, "-m", *_args(where, "phase=selection", "shard=range(0,2)"))
    assert code == 2 and err.count("\n") == 1, err
    assert "has another configuration" in err and "resume=false" in err
    assert (where / "selection" / "0" / "record.json").read_text() == before
    assert not (where / "selection" / "1").exists()


@pytest.mark.parametrize("override, words", [
    ("shard=range(0,3)", "shard must be one of 0 to 1 (shards=2); got 2"),
    ("phase=selektion", "phase must be one of 'all', 'selection', 'evaluation', 'combine'"),
    ("chunk=0", "chunk (trajectories per engine call, or null) must be an integer >= 1"),
])
def test_bad_values_stop_a_multirun_before_it_writes(tmp_path, override, words, cli_in_process):
    args = _args(tmp_path / "s", "phase=selection", "shard=range(0,2)")
    code, out, err = cli_in_process(CN, "-m", *args, override)
    assert code == 2 and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "s").exists()


def test_phase_all_takes_no_shard(tmp_path, cli_in_process):
    code, out, err = cli_in_process(CN, *_args(tmp_path, "shard=1", f"out={tmp_path / 'r'}"))
    assert code == 2 and ("phase=all runs everything itself: give phase=selection or "
                          "phase=evaluation") in err
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_joblib_and_submitit_local_give_the_single_record(tmp_path, single):
    where = tmp_path / "shards"
    ran = _cli("-m", *_args(where, "phase=selection", "shard=range(0,2)",
                            "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"))
    assert ran.returncode == 0, ran.stderr
    ran = _cli("-m", *_args(where, "phase=evaluation", "shard=range(0,2)",
                            "hydra/launcher=submitit_local"))
    assert ran.returncode == 0, ran.stderr
    ran = _cli(*_args(where, "phase=combine", f"out={tmp_path / 'rec'}"))
    assert ran.returncode == 0, ran.stderr
    _same_record(tmp_path / "rec", single)
