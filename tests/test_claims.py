"""The quick pipeline (every experiment at small size, every figure, CLAIMS.md) and every
claim on its records: gating claims hold; a tampered record makes a claim (and verify) fail."""

import json

import matplotlib.image as mpimg
import numpy as np
import pytest

from experiments import quick, verify
from paper_figures import FIGURES
from research import claims


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert quick.main(["--out", str(out)]) == 0
    return out


def test_every_expected_file_is_there_and_non_trivial(quick_run):
    figs = quick_run / "figures"
    for name in FIGURES:
        png = mpimg.imread(figs / f"{name}.png")
        colours = np.unique(png.reshape(-1, png.shape[-1]), axis=0)
        assert png.shape[0] > 200 and len(colours) > 10, name
        pdf = (figs / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF") and b"/Type /Page" in pdf, name
    for name in quick.QUICK:
        assert (quick_run / "results" / name / "record.json").exists(), name
    text = (figs / "CLAIMS.md").read_text()
    assert all(f"| {c.id} |" in text for c in claims.REGISTRY)
    index = (figs / "README.md").read_text()
    assert all(f"![{name}]({name}.png)" in index for name in FIGURES)
    assert all(f"`{c.id}`" in index for c in claims.REGISTRY)  # every claim shown by a figure


def test_every_claim_runs_and_gating_claims_hold(quick_run):
    done, missing = claims.evaluate(quick_run / "results")
    assert not missing
    assert {c.id for c in done} == {c.id for c in claims.REGISTRY}
    failed = [(c.id, c.measured) for c in done if c.gating and c.holds is not True]
    assert not failed
    for c in done:  # recalled constants never gate
        if "recalled" in c.status:
            assert not c.gating and c.holds is None


def test_quick_pipeline_is_deterministic(quick_run, tmp_path):
    """Two runs of an experiment give the same record numbers (seeds fixed, no wall clock)."""
    for name in ("stochastic", "iteration_complexity"):
        quick.run_experiment(name, tmp_path)
        again = json.loads((tmp_path / name / "record.json").read_text())["metrics"]
        first = json.loads((quick_run / "results" / name / "record.json").read_text())
        assert again == first["metrics"], name


def test_verify_writes_claims_md_and_fails_on_a_broken_claim(quick_run, tmp_path):
    res = quick_run / "results"
    md = tmp_path / "CLAIMS.md"
    assert verify.main(["--results", str(res), "--out", str(md)]) == 0
    text = md.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    gating = [line for line in rows if line.endswith("| yes |")]
    # gating claims hold; a non-gating observation may fail at quick size and is only shown
    assert "| phi_inequality |" in text and gating and not any("FAILS" in r for r in gating)
    assert all(line.replace("\\|", "").count("|") == 9 for line in rows)  # 8 cells each
    # tamper with a copy of the audit record: one violation must fail the gating claim
    broken = tmp_path / "broken"
    for name in quick.QUICK:
        (broken / name).mkdir(parents=True)
        for f in (res / name).iterdir():
            (broken / name / f.name).write_bytes(f.read_bytes())
    path = broken / "descent_audit" / "record.json"
    rec = json.loads(path.read_text())
    first = next(iter(rec["metrics"]["problems"].values()))
    next(iter(first["methods"].values()))["phi"]["violations"] = 1
    path.write_text(json.dumps(rec))
    assert verify.main(["--results", str(broken), "--out", str(md)]) == 1
    assert "**FAILS**" in md.read_text()
    assert verify.main(["--results", str(broken), "--out", str(md), "--report-only"]) == 0


def test_missing_records_are_reported(tmp_path):
    done, missing = claims.evaluate(tmp_path)
    assert not done and set(missing) == {c.id for c in claims.REGISTRY}
    assert verify.main(["--results", str(tmp_path), "--out", str(tmp_path / "C.md")]) == 3


def test_a_run_that_never_reached_eps_fails_the_bound_claim():
    info = {"methods": {m: {"iterations": [10, -1]} for m in ("vankov_si", "gd_thm6")},
            "bounds": {b: [100.0, 100.0] for b in ("vankov_si", "thm6_recalled")}}
    rec = {"iteration_complexity": {"metrics": {"problems": {"quartic": info}}}}
    by_id = {c.id: c for c in claims.REGISTRY}
    assert by_id["vankov_si_within_bound"].fn(rec).holds is False
    # -1 (not reached) must not read as a ratio of -0.01
    assert "= inf" in by_id["gd_within_thm6"].fn(rec).measured


def test_makefile_draws_every_figure():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    experiments = re.search(r"EXPERIMENTS := (.*?)\nRECORDS", text, re.S).group(1).split()
    extra = re.findall(r"paper_figures/(\w+)\.png", re.search(r"EXTRA_FIGURES := (.*)",
                                                             text).group(1))
    names = {e for e in experiments if e != "\\"} | set(extra)
    assert names == set(FIGURES)


def test_smoothness_claim_and_table_need_significant_growth():
    def run(model, regime, rho, p, slope):
        stats = {"n": 50, "pearson": rho, "spearman": rho, "spearman_p": p, "slope": slope,
                 "L0": 1.0, "L1": 2.0}
        return {"model": model, "regime": regime, "diverged_at": -1, "traj": stats,
                "hess": stats}

    runs = {"a/large_lr_clip": run("a", "large_lr_clip", 0.6, 1e-5, 0.4),
            "b/large_lr_clip": run("b", "large_lr_clip", 0.2, 0.2, 0.1),   # not significant
            "c/large_lr_clip": run("c", "large_lr_clip", 0.5, 1e-4, -0.1),  # slope down
            "a/small_lr": run("a", "small_lr", 0.7, 1e-6, 0.5)}
    rec = {"metrics": {"steps": 100, "log_every": 2, "hvp_iters": 20,
                       "models": ["a", "b", "c"], "runs": runs}}
    c = claims._smoothness({"smoothness": rec})
    assert c.holds is False and not c.gating
    assert "1 of 3 models (not: b, c)" in c.measured and "2 of 4 runs" in c.measured
    table = claims.smoothness_table(rec)
    rows = [line for line in table.splitlines() if line.startswith("| a ") or
            line.startswith("| b ") or line.startswith("| c ")]
    assert [r.rsplit("|", 2)[-2].strip() for r in rows] == ["yes", "yes", "no", "no"]
    assert rows[0].split("|")[2].strip() == "large_lr_clip"
