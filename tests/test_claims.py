"""The claims layer on hand-made records: gating follows the status tag, every gating claim
states its tolerance, failures count as the budget, and bad or non-finite data gives FAIL
with a reason, never an exception. (The claims on real records, and the mutants that must
trip them, are tests/test_mutants.py; the whole quick pipeline is a slow test below.)"""

import copy
import json
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments import claims, quick, verify
from paper_figures import FIGURES
from research import complexity

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def test_gating_follows_the_status_tag():
    assert claims.is_gating("[paper]") and claims.is_gating("[secondary; checked]")
    assert claims.is_gating("[seed; checked]")
    for status in ("[recalled constants]", "[paper; observation]", "[paper heuristic]",
                   "[seed]", "[secondary]", "[paper step rules; recalled bounds]"):
        assert not claims.is_gating(status), status
    for c in claims.REGISTRY:
        assert c.gating == claims.is_gating(c.status)
        if c.gating:
            assert len(c.tolerance) > 20, c.id  # a stated tolerance, not a placeholder
    with pytest.raises(ValueError, match="tolerance"):
        claims.claim("x_untolerant", needs=("a",), statement="s", source="s",
                     status="[paper]")(lambda rec: None)


def test_a_verdict_is_computed_from_the_checked_numbers():
    n = claims.Number
    holds = claims.Outcome("m", "t", [n("violations", 0, "==", 0), n("ratio", 1.7, "<=", 1.75),
                                      n("steps", 400)])
    assert holds.holds is True
    assert claims.Outcome("m", "t", [n("ratio", 1.8, "<=", 1.75)]).holds is False
    assert claims.Outcome("m", "t", [n("ratio", 1.8, "<=", 1.75, tolerance=0.1)]).holds is True
    assert claims.Outcome("m", "t", [n("ratio", float("nan"), "<=", 1.75)]).holds is False
    assert claims.Outcome("m", "t", [n("count", float("inf"), "<", 10)]).holds is False
    assert claims.Outcome("m", "t", [n("share", 3, ">", 3)]).holds is False
    assert claims.Outcome("m", "t", [n("best", "lr 1", "==", "lr 1")]).holds is True
    assert claims.Outcome("m", "t", [n("steps", 400)], decides=False).holds is None
    assert claims.Outcome("m", "t", [n("steps", 400)]).holds is None  # nothing checked
    for bad, why in ((lambda: n("x", 1, "~", 1), "relation"), (lambda: n("x", 1, "<="), "theory"),
                     (lambda: n("x", True, "<=", True), "only"),
                     (lambda: claims.Outcome("m", "t", [n("x", 1), n("x", 2)]), "distinct"),
                     (lambda: claims.Outcome("m", "t", [n("x", 1, "==", 1)], decides=False),
                      "reports")):
        with pytest.raises(ValueError, match=why):
            bad()


def test_an_interval_decides_only_where_it_lies_wholly_on_one_side():
    n = claims.Number
    assert n("s", 2.0, ">", 1.0, interval=(1.5, 3.0)).passes() is True
    assert n("s", 0.8, ">", 1.0, interval=(0.5, 0.9)).passes() is False
    assert n("s", 1.2, ">", 1.0, interval=(0.5, 3.0)).passes() is None
    assert n("s", 1.0, ">", 1.0, interval=(1.0, 1.0)).passes() is None  # on the line
    assert n("s", 1.0, "<=", 1.0, interval=(0.5, 1.0)).passes() is True
    assert n("s", 1.0, "<", 2.0, interval=(float("nan"), 1.0)).passes() is None
    undecided = claims.Outcome("m", "t", [n("a", 1, "==", 1),
                                          n("s", 1.2, ">", 1.0, interval=(0.5, 3.0))])
    assert undecided.holds is None
    refuted = claims.Outcome("m", "t", [n("a", 0, "==", 1),
                                        n("s", 1.2, ">", 1.0, interval=(0.5, 3.0))])
    assert refuted.holds is False


def test_verdict_words_say_whether_a_claim_gates():
    def word(status, numbers, decides=True):
        c = claims.Claim("x", "s", "s", status, "a stated tolerance of some length", ("a",),
                         lambda rec: claims.Outcome("m", "t", numbers, decides))
        return claims.verdict_word(c.evaluate({}), emphasis=False)

    n = claims.Number
    yes, no = [n("a", 1, "==", 1)], [n("a", 0, "==", 1)]
    maybe = [n("s", 1.0, ">", 0.0, interval=(-1.0, 2.0))]
    assert [word("[paper]", x) for x in (yes, no, maybe)] == ["holds", "FAILS", "FAILS"]
    assert [word("[observation]", x) for x in (yes, no, maybe)] == [
        "supported", "refuted", "inconclusive"]
    assert word("[observation]", [n("a", 1)], decides=False) == "reported"


def test_every_claim_on_the_committed_records_returns_its_numbers():
    """A deciding claim checks at least one number, so its verdict rests on named numbers; a
    claim that only reports publishes some."""
    done, missing = claims.evaluate(RESULTS_DIR)
    assert not missing and done
    for c in done:
        assert c.numbers, c.id
        checked = [x for x in c.numbers if x.relation]
        if c.holds is not None:
            assert checked and c.holds == all(x.passes() for x in checked), c.id
        if c.gating:
            assert checked, c.id


def test_censor_counts_failures_as_the_budget():
    np.testing.assert_array_equal(complexity.censor([10, -1, "nan", None, 5], 100),
                                  [10, 100, 100, 100, 5])
    # a method failing everywhere is flat in M only if failures are dropped
    M = [1.0, 10.0, 100.0]
    # (10, 1000, 1000) against M = (1, 10, 100): the least-squares slope is exactly 1
    assert abs(complexity.loglog_slope(M, complexity.censor([10, -1, -1], 1000)) - 1) < 1e-12
    assert np.isnan(complexity.loglog_slope(M, [10, -1, -1]))  # dropping leaves one point


def _quartic(clipped, thm6, common_div, steps=1000):
    def method(its, div):
        return {"iterations_to_eps": its, "diverged": div, "diverged_at": [-1] * len(its)}
    return {"quartic_trajectories": {
        "config": {"steps": steps, "x0": [0.5, 50.0]},
        "metrics": {"clipped_gd": method(clipped, [False, False]),
                    "normalized_gd": method(clipped, [False, False]),
                    "gd_theorem6": method(thm6, [False, False]),
                    "gd_common": method([5, -1], [False, common_div])}}}


def test_x4_claim_checks_both_halves():
    ok = claims.by_id()["x4_clipped_vs_fixed"]
    assert ok.evaluate(_quartic([100, 300], [50, -1], True)).holds is True
    # clipped GD failing from one start
    assert ok.evaluate(_quartic([100, -1], [50, -1], True)).holds is False
    # second half: Theorem 6's step is not slower than clipped GD at the largest start
    assert ok.evaluate(_quartic([100, 300], [50, 400], True)).holds is False
    # second half: the common step does not diverge
    assert ok.evaluate(_quartic([100, 300], [50, -1], False)).holds is False


def _complexity(its, bound=1e9):
    methods = {m: {"iterations": list(its.get(m, [10, 20, 40]))} for m in
               ("gd_thm6", "gd_best_fixed", "clipped_thm3", "normalized", "vankov_si")}
    methods["vankov_si"]["summed_progress_ratio"] = list(its.get("si_ratio", [1.2, 1.5, 2.0]))
    info = {"M": [1.0, 10.0, 100.0], "methods": methods,
            "bounds": {b: [bound] * 3 for b in ("vankov_si", "thm6_recalled",
                                                 "thm3_recalled")}}
    return {"iteration_complexity": {"config": {"cap": 1000, "sweep_cap": 500},
                                     "metrics": {"problems": {"quartic": info}}}}


def test_fixed_step_claim_counts_failures_and_needs_convergence():
    c = claims.by_id()["fixed_step_grows_with_M"]
    fast = {"clipped_thm3": [10, 11, 12], "normalized": [10, 11, 12]}
    assert c.evaluate(_complexity({**fast, "gd_thm6": [10, 100, 900],
                                   "gd_best_fixed": [5, 60, 400]})).holds is True
    # clipping removed: the clipped method fails from the large starts
    assert c.evaluate(_complexity({**fast, "clipped_thm3": [10, -1, -1], "gd_thm6": [10, 100, 900],
                                   "gd_best_fixed": [5, 60, 400]})).holds is False
    # Theorem 6's step never converges (diverges everywhere): flat, but a failure
    assert c.evaluate(_complexity({**fast, "gd_thm6": [-1, -1, -1],
                                   "gd_best_fixed": [5, 60, 400]})).holds is False


def test_vankov_bound_claim_checks_the_tight_summed_guarantee():
    c = claims.by_id()["vankov_si_within_bound"]
    assert c.evaluate(_complexity({})).holds is True
    assert c.evaluate(_complexity({"si_ratio": [1.2, 3.0, 2.0]})).holds is False  # too weak
    assert c.evaluate(_complexity({"si_ratio": [1.2, 0.9, 2.0]})).holds is False  # violated
    assert c.evaluate(_complexity({"si_ratio": [1.2, "nan", 2.0]})).holds is False


def test_a_run_that_never_reached_eps_fails_the_bound_claim():
    rec = _complexity({"vankov_si": [10, -1, 30], "gd_thm6": [10, -1, 30]}, bound=100.0)
    by_id = claims.by_id()
    assert by_id["vankov_si_within_bound"].evaluate(rec).holds is False
    # -1 (not reached) must not read as a ratio of -0.01
    assert "= inf" in by_id["gd_within_thm6"].evaluate(rec).measured


@pytest.mark.parametrize("bad", [float("nan"), "nan", "inf", None, "garbage", {"x": 1}, []])
def test_every_claim_fails_or_reports_on_bad_values_and_never_raises(bad):
    """Replace each number in turn in a valid record set by a bad value: every claim still
    returns a record, and no gating claim holds on the damaged data unless the damaged value
    was one it does not read."""
    base = _records()
    for path in _leaf_paths(base):
        rec = copy.deepcopy(base)
        _set(rec, path, bad)
        done, missing = claims.evaluate_records(rec)
        assert len(done) + len(missing) == len(claims.REGISTRY)


def _records():
    rec = {}
    rec.update(_quartic([100, 300], [50, -1], True))
    rec.update(_complexity({"clipped_thm3": [10, 11, 12], "normalized": [10, 11, 12],
                            "gd_thm6": [10, 100, 900], "gd_best_fixed": [5, 60, 400]}))
    return rec


def _leaf_paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaf_paths(v, (*prefix, i))
    else:
        yield prefix


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def test_a_nan_count_fails_the_gating_claims_that_read_it():
    rec = _records()
    rec["quartic_trajectories"]["metrics"]["clipped_gd"]["iterations_to_eps"][1] = "nan"
    rec["iteration_complexity"]["metrics"]["problems"]["quartic"]["methods"]["clipped_thm3"][
        "iterations"][2] = float("inf")
    done = {c.id: c for c in claims.evaluate_records(rec)[0]}
    assert done["x4_clipped_vs_fixed"].holds is False
    assert done["fixed_step_grows_with_M"].holds is False


def test_a_claim_that_raises_reports_fail_with_the_reason():
    rec = _records()
    del rec["iteration_complexity"]["metrics"]["problems"]["quartic"]["methods"]["normalized"]
    done = {c.id: c for c in claims.evaluate_records(rec)[0]}
    c = done["fixed_step_grows_with_M"]
    assert c.holds is False and "could not be evaluated" in c.measured and "normalized" in \
        c.measured


def test_unreadable_record_fails_its_claims(tmp_path):
    (tmp_path / "iteration_complexity").mkdir()
    (tmp_path / "iteration_complexity" / "record.json").write_text('{"config": {')
    done, missing = claims.evaluate(tmp_path)
    by = {c.id: c for c in done}
    assert by["fixed_step_grows_with_M"].holds is False
    assert "unreadable" in by["fixed_step_grows_with_M"].measured
    assert "x4_clipped_vs_fixed" in missing


def test_missing_records_are_reported(tmp_path):
    done, missing = claims.evaluate(tmp_path)
    assert not done and set(missing) == {c.id for c in claims.REGISTRY}
    assert verify.main(["--results", str(tmp_path), "--out", str(tmp_path / "C.md")]) == 3


def test_verify_refuses_a_missing_results_directory_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "C.md"
    assert verify.main(["--results", str(tmp_path / "typo"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "typo is not a directory" in err and "\n" not in err
    assert not out.exists()


def test_verify_refuses_records_of_other_sizes_for_gating(tmp_path, capsys):
    import shutil

    res = tmp_path / "results"
    shutil.copytree(RESULTS_DIR / "hard_instance", res / "hard_instance")
    path = res / "hard_instance" / "record.json"
    rec = json.loads(path.read_text())
    rec["config"]["cap"] = 7
    path.write_text(json.dumps(rec))
    out = tmp_path / "C.md"
    assert verify.main(["--results", str(res), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "hard_instance (cap: committed" in err and "record 7" in err and "\n" not in err
    assert not out.exists()
    diff = verify.size_differences(res)
    assert list(diff) == ["hard_instance"] and len(diff["hard_instance"]) == 1
    assert verify.main(["--results", str(res), "--out", str(out), "--any-size"]) == 3
    assert out.exists()


def test_the_committed_records_have_the_committed_sizes():
    assert verify.size_differences(RESULTS_DIR) == {}


def test_claims_table_has_a_tolerance_column():
    done, missing = claims.evaluate_records(_records())
    text = claims.to_markdown(done, missing)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0].split("|")[5].strip() == "tolerance"
    assert all(line.replace("\\|", "").count("|") == 11 for line in rows)  # 10 cells each
    assert rows[0].split("|")[10].strip().startswith("a rerun on another machine may move")


def test_quick_pipeline_refuses_a_bad_jobs_count(tmp_path, capsys):
    assert quick.main(["--out", str(tmp_path), "--jobs", "0"]) == 2
    assert "--jobs must be a positive integer" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_quick_persists_compiled_programs_under_out_unless_told_not_to(tmp_path, monkeypatch):
    """The cache goes to OUT/jax-cache; --no-cache, or a cache directory already set in the
    environment (as the tests set one), leaves it alone. No experiment runs here."""
    seen = []
    monkeypatch.setattr(quick, "_use_compilation_cache", seen.append)
    monkeypatch.setattr(quick.registry, "slowest_first", lambda quick=False: [])
    monkeypatch.setattr(quick.registry, "figures", lambda: [])
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    quick.main(["--out", str(tmp_path), "--jobs", "1"])
    assert seen == [tmp_path / "jax-cache"]
    quick.main(["--out", str(tmp_path), "--jobs", "1", "--no-cache"])
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "elsewhere"))
    quick.main(["--out", str(tmp_path), "--jobs", "1"])
    assert seen == [tmp_path / "jax-cache"]


@pytest.mark.slow
def test_quick_pipeline_writes_every_file_and_verify_passes(tmp_path):
    """The whole quick pipeline (every experiment, figure, CLAIMS.md, index) and verify."""
    assert quick.main(["--out", str(tmp_path)]) == 0
    figs = tmp_path / "figures"
    for name in FIGURES:
        png = mpimg.imread(figs / f"{name}.png")
        colours = np.unique(png.reshape(-1, png.shape[-1]), axis=0)
        assert png.shape[0] > 200 and len(colours) > 10, name
        pdf = (figs / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf, name
    text = (figs / "CLAIMS.md").read_text()
    assert all(f"| {c.id} |" in text for c in claims.REGISTRY)
    index = (figs / "README.md").read_text()
    assert all(f"![{name}]({name}.png)" in index for name in FIGURES)
    assert all(f"`{c.id}`" in index for c in claims.REGISTRY)
    res = tmp_path / "results"
    assert verify.main(["--results", str(res), "--out", str(tmp_path / "C.md"),
                        "--any-size"]) == 0
    # tamper with the audit record: one violation must fail the gating claim and verify
    path = res / "descent_audit" / "record.json"
    rec = json.loads(path.read_text())
    first = next(iter(rec["metrics"]["problems"].values()))
    next(iter(first["methods"].values()))["phi"]["violations"] = 1
    path.write_text(json.dumps(rec))
    assert verify.main(["--results", str(res), "--out", str(tmp_path / "C.md"),
                        "--any-size"]) == 1


BOOTSTRAP = {"level": 0.95, "method": "block bootstrap", "n_boot": 100}
SEED_LEVEL = {"level": 0.99, "rows": 4, "tests": 8, "correction": "Bonferroni"}


def test_smoothness_claim_and_table_use_the_interval_verdicts():
    def run(model, regime, verdict, training=True):
        ci = {"estimate": 0.5, "lo": 0.2, "hi": 0.8}
        est = {"verdict": verdict, "pooled": {"n_points": 400, "spearman": ci,
                                              "partial_spearman": ci, "detrended": ci,
                                              "slope": ci}}
        return {"model": model, "regime": regime, "seeds": [0, 1, 2], "training": training,
                "diverged_at": -1, "traj": est, "hess": est,
                "sub": {"computed": False, "verdict": "not computed"}}

    runs = {"a/large_lr_clip": run("a", "large_lr_clip", "positive"),
            "b/large_lr_clip": run("b", "large_lr_clip", "no evidence"),
            "c/large_lr_clip": run("c", "large_lr_clip", "not training", training=False),
            "a/small_lr": run("a", "small_lr", "negative")}
    rec = {"metrics": {"steps": 100, "log_every": 2, "hvp_iters": 20, "hess_every": 1,
                       "hessian_models": ["a", "b", "c"], "seeds": [0, 1, 2],
                       "models": ["a", "b", "c"], "runs": runs, "bootstrap": BOOTSTRAP,
                       "seed_level": SEED_LEVEL}}
    claim = claims.by_id()["smoothness_grows_with_gradient_norm"]
    c = claim.evaluate({"smoothness": rec})
    # 1 of 3 positive, 1 against: neither side holds more than half
    assert c.holds is None and not c.gating
    assert claims.verdict_word(c, emphasis=False) == "inconclusive"
    assert "positive: a" in c.measured and "not training: c" in c.measured
    runs["b/large_lr_clip"] = run("b", "large_lr_clip", "statistics disagree")
    assert claim.evaluate({"smoothness": rec}).holds is False  # 2 of 3 against
    runs["b/large_lr_clip"] = run("b", "large_lr_clip", "positive")
    c = claim.evaluate({"smoothness": rec})
    assert c.holds is True
    table = claims.smoothness_table(rec)
    rows = [line for line in table.splitlines() if line.startswith(("| a ", "| b ", "| c "))]
    assert [r.split("|")[12].strip() for r in rows] == ["positive", "negative", "positive",
                                                         "not training"]
    assert "+0.50 [+0.20, +0.80]" in rows[0] and "| **no** |" in rows[-1]
    assert all(r.endswith("| rounding only |") for r in rows)  # no declared allowance
    # a run whose subsample estimator was skipped: its column says so
    assert all(r.split("|")[13].strip() == "not computed" for r in rows)
    assert all(r.split("|")[9].strip() == "-" for r in rows)  # no seed-level evidence given


def test_smoothness_table_shows_the_subsample_estimator_next_to_the_full_batch_one():
    def ci(e):
        return {"estimate": e, "lo": e - 0.1, "hi": e + 0.1}

    def est(verdict, e):
        return {"verdict": verdict, "pooled": {"n_points": 40, "spearman": ci(e),
                                               "partial_spearman": ci(e), "detrended": ci(e),
                                               "slope": ci(e)},
                "seed_level": {"partial_spearman": ci(0.3), "detrended": ci(0.3),
                               "slope": ci(-e), "verdict": verdict}}

    runs = {"a/large_lr_clip": {"model": "a", "regime": "large_lr_clip", "seeds": [0, 1],
                                "training": True, "diverged_at": -1,
                                "traj": est("positive", 0.61), "sub": est("no evidence", -0.23),
                                "hess": {"computed": False, "verdict": "not computed"}}}
    rec = {"metrics": {"steps": 100, "log_every": 5, "hvp_iters": 0, "hess_every": 1,
                       "hessian_models": [], "seeds": [0, 1],
                       "models": ["a"], "runs": runs, "bootstrap": BOOTSTRAP,
                       "seed_level": SEED_LEVEL,
                       "subsample": {"a": {"fraction": 0.1, "rows": 7, "train_rows": 70}}}}
    table = claims.smoothness_table(rec)
    header = next(line for line in table.splitlines() if line.startswith("| model "))
    cols = [c.strip() for c in header.split("|")[1:-1]]
    row = next(line for line in table.splitlines() if line.startswith("| a "))
    cells = dict(zip(cols, (c.strip() for c in row.split("|")[1:-1]), strict=True))
    assert cells["pooled: partial given step"] == "+0.61 [+0.51, +0.71]"
    assert cells["per seed: partial given step"] == "+0.30 [+0.20, +0.40]"  # noqa: RUF001
    assert cells["per seed: slope"] == "-0.61 [-0.71, -0.51]" and cells["verdict"] == "positive"
    assert cells["subsample verdict"] == "no evidence"
    assert cells["‖H‖ verdict"] == "not computed"
    assert cols.index("subsample verdict") == cols.index("verdict") + 1
    assert "a 7 of 70 rows" in table and "hvp_iters = 0" in table


def test_a_median_prints_its_interval_when_the_record_has_one():
    assert claims.median_text(0.8153, {"lo": 0.7191, "hi": 0.96, "coverage": 0.96, "n": 20}
                              ) == "0.815 [0.719, 0.96]"
    assert claims.median_text(0.8153, None) == "0.815"
    assert claims.median_text(None, None) == "-"


def test_the_constant_predictor_baselines_are_those_of_the_data():
    from experiments.claims import practice
    from research.problems import networks

    y = np.asarray(networks.regression_data()[1])
    assert practice.BASELINES["clipping_mlp"] == pytest.approx(np.var(y), rel=1e-5)
    sums = np.asarray(networks.adding_data(20000, 10, seed=1)[1])
    assert practice.BASELINES["clipping_rnn"] == pytest.approx(np.var(sums), abs=0.005)
