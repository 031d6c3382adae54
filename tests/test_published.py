"""Every published number comes from a record: the committed CLAIMS.md, SMOOTHNESS.md, figure
index and README.md's generated blocks equal what the committed records give, and a changed
record makes them stale."""

import json
import shutil

import pytest

from experiments import claims, publish

RESULTS = publish.ROOT / "results"


def test_committed_documents_agree_with_committed_records():
    if not (RESULTS / "quartic_trajectories" / "record.json").exists():
        pytest.fail("results/*/record.json are not committed: run `make figures` and commit "
                    "them with the documents")
    assert publish.stale(RESULTS) == []


def test_a_changed_record_makes_its_documents_stale(tmp_path):
    root = tmp_path / "repo"
    (root / "paper_figures").mkdir(parents=True)
    res = tmp_path / "results"
    shutil.copytree(RESULTS, res, ignore=shutil.ignore_patterns("traces.npz"))
    shutil.copy(publish.ROOT / "README.md", root / "README.md")
    for path, text in publish.documents(res, root).items():
        path.write_text(text)
    assert publish.stale(res, root) == []
    path = res / "quartic_trajectories" / "record.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["clipped_gd"]["iterations_to_eps"][0] += 1
    path.write_text(json.dumps(rec))
    stale = {p.name for p in publish.stale(res, root)}
    assert {"CLAIMS.md", "README.md"} <= stale


def test_a_document_must_match_its_rerendering_exactly(tmp_path):
    """One last digit moved in a committed document is stale: re-rendering the same records
    gives the same text on every machine, so nothing is tolerated."""
    import re

    root = tmp_path / "repo"
    (root / "paper_figures").mkdir(parents=True)
    shutil.copy(publish.ROOT / "README.md", root / "README.md")
    for path, text in publish.documents(RESULTS, root).items():
        path.write_text(text)
    claims_md = root / "paper_figures" / "CLAIMS.md"
    text = claims_md.read_text()
    m = re.search(r"\d\.\d+", text)
    last = m.group(0)
    moved = last[:-1] + str((int(last[-1]) + 1) % 10)
    claims_md.write_text(text[:m.start()] + moved + text[m.end():])
    assert publish.stale(RESULTS, root) == [claims_md]
    assert "differs" in publish.differences(RESULTS, root)[claims_md]


def test_fill_blocks_needs_the_block():
    text = "a\n<!-- BEGIN generated:claims (x) -->\nold\n<!-- END generated:claims -->\nb\n"
    assert publish.fill_blocks(text, {"claims": "new"}) == text.replace("old", "new")
    with pytest.raises(ValueError, match="no generated block 'other'"):
        publish.fill_blocks(text, {"other": "x"})


def test_a_number_moves_only_within_its_own_allowance():
    exact = claims.EXACT
    assert exact.allows(403, 403) and exact.allows(0.1720000000, 0.1720000000001)
    assert not exact.allows(403, 404) and not exact.allows(0.172, 0.173)
    assert not exact.allows("positive", "no evidence") and not exact.allows(True, False)
    assert exact.allows(float("nan"), float("nan")) and not exact.allows(1.0, float("inf"))
    loose = claims.Rerun(atol=0.1, words=True)
    assert loose.allows(0.50, 0.42) and not loose.allows(0.50, 0.35)
    assert loose.allows("positive", "no evidence")


def test_a_factor_allowance_covers_one_sign_only():
    rule = claims.Rerun(factor=2.0)
    assert rule.allows(135.0, 270.0) and rule.allows(274.0, 137.0)
    assert not rule.allows(135.0, 300.0)
    assert not rule.allows(0.5, -0.5)


def test_a_factor_above_a_size_leaves_small_numbers_to_atol():
    rule = claims.Rerun(atol=0.1, factor=1e10, factor_above=10.0)
    assert rule.allows(2.21e103, 1.03e112) and rule.allows(0.45, 0.54)
    assert not rule.allows(0.45, 0.9) and not rule.allows(0.45, 0.045)
    assert "a factor 1e+10 above 10" in rule.describe()


def test_compare_judges_each_number_by_its_own_allowance():
    fresh = {"a:x": claims.Entry(0.45, claims.Rerun(atol=0.1)), "a:y": claims.Entry(0.45),
             "a:best": claims.Entry("lr 1", claims.Rerun(words=True)), "a:new": claims.Entry(1)}
    committed = {"a:x": 0.5, "a:y": 0.5, "a:best": "lr 3", "a:gone": 2}
    moves = {m.key: m.allowed for m in claims.compare(committed, fresh)}
    assert moves == {"a:x": True, "a:y": False, "a:best": True, "a:new": False,
                     "a:gone": False}


def test_the_ledger_round_trips_every_value():
    entries = {"a:n": claims.Entry(3), "a:f": claims.Entry(0.1 + 0.2),
               "a:inf": claims.Entry(float("inf")), "a:nan": claims.Entry(float("nan")),
               "a:w": claims.Entry("no evidence"), "a:b": claims.Entry(False)}
    back = claims.read_json(claims.to_json(entries))
    assert claims.compare(back, entries) == []
    assert back["a:f"] == 0.1 + 0.2 and isinstance(back["a:n"], int)


def test_publish_check_names_the_number_that_moved_beyond_its_allowance(tmp_path, capsys):
    """A record whose number moves is caught by that number, not by a line of text."""
    res = tmp_path / "results"
    shutil.copytree(RESULTS, res, ignore=shutil.ignore_patterns("traces.npz"))
    assert publish.number_moves(res) == []
    path = res / "quartic_trajectories" / "record.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["clipped_gd"]["iterations_to_eps"][-1] += 1
    path.write_text(json.dumps(rec))
    moved = {m.key: m for m in publish.number_moves(res)}
    key = "x4_clipped_vs_fixed:clipped_iterations_at_largest_start"
    assert key in moved and not moved[key].allowed
    assert moved[key].new == moved[key].old + 1
    assert publish.main(["--check", "--results", str(res)]) == 1
    assert key in capsys.readouterr().err


def test_rerun_spread_lists_each_moved_number_and_judges_it(tmp_path):
    from experiments import rerun_spread
    res = tmp_path / "results"
    shutil.copytree(RESULTS, res, ignore=shutil.ignore_patterns("traces.npz"))
    assert rerun_spread.spread_rows("same", res) == []
    path = res / "quartic_trajectories" / "record.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["clipped_gd"]["iterations_to_eps"][-1] += 1
    path.write_text(json.dumps(rec))
    rows = rerun_spread.spread_rows("moved", res)
    readers = {c.id for c in claims.REGISTRY if "quartic_trajectories" in c.needs}
    assert rows and {r["key"].split(":")[0] for r in rows} <= readers
    assert not any(r["within"] for r in rows)
    text = rerun_spread.to_markdown(rows, {"moved": "a test"})
    assert text.count("| **no** |") == len(rows)


def test_rerun_spread_refuses_bad_arguments(tmp_path, capsys):
    from experiments import rerun_spread
    assert rerun_spread.main(["--jobs", "0", "--isa"]) == 2
    assert rerun_spread.main(["--isa", "--dirs", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "--jobs must be a positive integer" in err and "is not a directory" in err
