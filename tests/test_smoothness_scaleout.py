"""The smoothness study as shards of a Hydra multirun: the run models dealt to shards (the
basic launcher here), combined into the same record as the single process; a missing shard is
named in one line and nothing is written; the same commands then run only what is missing."""

from pathlib import Path

import numpy as np
import pytest

from research import results
from tests.conftest import record_numbers

MODULE = "experiments.smoothness"
TINY = ["steps=20", "log_every=10", "seeds=[0,1]", "n_boot=50", "hvp_iters=3", "hess_every=1",
        "run_models=[digits,rnn]", "momentum_models=[]", "hessian_models=[rnn]",
        "regimes=[large_lr_clip]", "models.digits.problem.hidden=8",
        "models.digits.log_every=10", "models.rnn.problem.hidden=8",
        "models.rnn.problem.length=10", "models.rnn.problem.n=32", "models.rnn.log_every=10"]


def _same(a, b) -> None:
    assert record_numbers(a / "record.json") == record_numbers(b / "record.json")
    _, ta = results.read_record(a)
    _, tb = results.read_record(b)
    assert sorted(ta) == sorted(tb)
    for key in ta:
        np.testing.assert_array_equal(ta[key], tb[key], err_msg=key)


def test_shards_combine_into_the_single_record_and_a_missing_one_is_named(tmp_path,
                                                                           cli_in_process):
    single, sh = tmp_path / "single", tmp_path / "sh"
    code, _, err = cli_in_process(MODULE, *TINY, f"out={single}")
    assert code == 0, err
    shard_run = ["-m", *TINY, "phase=models", "shards=2", "shard=0,1", f"shards_dir={sh}"]
    combine = [*TINY, "phase=combine", "shards=2", f"shards_dir={sh}"]
    code, _, err = cli_in_process(MODULE, *shard_run)
    assert code == 0, err
    code, out, err = cli_in_process(MODULE, *combine, f"out={tmp_path / 'combined'}")
    assert code == 0, err
    _same(single, tmp_path / "combined")

    # a lost shard: named in one line, nothing written; the same command runs only it
    for f in (sh / "models" / "1").iterdir():
        f.unlink()
    code, _, err = cli_in_process(MODULE, *combine, f"out={tmp_path / 'none'}")
    assert code == 1 and err.strip().count("\n") == 0, err
    assert "models shard 1 of 2" in err and "shard 0" not in err
    assert not (tmp_path / "none").exists()
    code, out, err = cli_in_process(MODULE, *shard_run)
    assert code == 0, err
    assert "models shard 0 of 2: finished already" in out  # the same command: only shard 1
    assert "models shard 1 of 2: wrote" in out

    # a shard made by other code is run again, with a line saying so
    import json
    stale = sh / "models" / "1" / "record.json"
    rec = json.loads(stale.read_text())
    rec["metrics"]["code"] = "0" * 16
    stale.write_text(json.dumps(rec))
    code, out, err = cli_in_process(MODULE, *shard_run)
    assert code == 0, err
    assert "models shard 1 of 2: its record at" in out and "other code" in out
    assert "running it again." in out and "models shard 1 of 2: wrote" in out


def test_shard_keys_are_checked_before_anything_runs(tmp_path, cli_in_process):
    for bad, key in (("phase=everything", "phase"), ("shards=2", "shards"),
                     ("shard=5", "shard")):
        extra = ["phase=models", "shards=2"] if bad == "shard=5" else []
        code, _, err = cli_in_process(MODULE, *TINY, *extra, bad,
                                      f"shards_dir={tmp_path / 'sh'}", f"out={tmp_path / 'o'}")
        assert code == 2 and key in err and err.strip().count("\n") == 0, err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_shards_through_joblib_give_the_single_record(tmp_path, cli_in_process):
    import os
    import subprocess
    import sys

    single, sh = tmp_path / "single", tmp_path / "sh"
    code, _, err = cli_in_process(MODULE, *TINY, f"out={single}")
    assert code == 0, err
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-m", MODULE, "-m", *TINY, "phase=models", "shards=2",
                          "shard=0,1", f"shards_dir={sh}", "hydra/launcher=joblib",
                          "hydra.launcher.n_jobs=2"], cwd=root, capture_output=True, text=True,
                         env={**os.environ, "CI": "1"}, timeout=600)
    assert run.returncode == 0, run.stderr
    code, _, err = cli_in_process(MODULE, *TINY, "phase=combine", "shards=2",
                                  f"shards_dir={sh}", f"out={tmp_path / 'combined'}")
    assert code == 0, err
    _same(single, tmp_path / "combined")
