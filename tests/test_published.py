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


def test_a_rounded_number_may_move_one_unit_of_its_last_digit_and_no_more():
    old = "| x4_clipped_vs_fixed | ratio 0.172, count 403, 2.04e+04 |"
    ok = "| x4_clipped_vs_fixed | ratio 0.173, count 403, 2.05e+04 |"
    assert [m.allowed for m in publish.moves(old, ok)] == [True]
    for bad in ("| x4_clipped_vs_fixed | ratio 0.174, count 403, 2.04e+04 |",
                "| x4_clipped_vs_fixed | ratio 0.172, count 404, 2.04e+04 |",   # a count
                "| x4_clipped_vs_fixed | ratio 0.172, count 403, 2.06e+04 |",
                "| x4_clipped_vs_fixed | ratio -0.172, count 403, 2.04e+04 |"):
        assert [m.allowed for m in publish.moves(old, bad)] == [False], bad


def test_words_and_line_counts_must_match_unless_the_line_allows_it(monkeypatch):
    old = "| toy | large_lr_clip | +0.50 [+0.30, +0.60] | positive |"
    new = "| toy | large_lr_clip | +0.35 [+0.05, +0.62] | no evidence |"
    assert [m.words_changed for m in publish.moves(old, new)] == [True]
    assert not publish.moves(old, new)[0].allowed
    assert not publish.moves(old, old + "\nmore")[0].allowed
    near = "| toy | large_lr_clip | +0.42 [+0.21, +0.68] | positive |"
    assert not publish.moves(old, near)[0].allowed
    monkeypatch.setitem(claims.SMOOTHNESS_RERUN, "toy", claims.Rerun(atol=0.1))
    assert publish.moves(old, near)[0].allowed
    assert not publish.moves(old, new)[0].allowed          # 0.25 > 0.1, and the words
    monkeypatch.setitem(claims.SMOOTHNESS_RERUN, "toy", claims.Rerun(atol=0.3, words=True))
    assert publish.moves(old, new)[0].allowed


def test_words_may_change_only_in_the_parts_a_line_names(monkeypatch):
    """words_in: one model's verdicts may flip in a line listing every model's; another
    model's, a changed count or a moved part may not."""
    monkeypatch.setitem(claims.SMOOTHNESS_RERUN, "toy", claims.Rerun(words_in=("rnn/",)))
    old = "| toy | positive: a, b; other regimes: a/small no evidence, rnn/small no evidence |"
    ok = "| toy | positive: a, b; other regimes: a/small no evidence, rnn/small positive |"
    other = "| toy | positive: a, b; other regimes: a/small positive, rnn/small no evidence |"
    count = "| toy | positive: a, b, rnn; other regimes: a/small no evidence, rnn/small positive |"
    assert publish.moves(old, ok)[0].allowed
    assert not publish.moves(old, other)[0].allowed
    assert not publish.moves(old, count)[0].allowed
    assert "the words of its parts on rnn/ may change" in claims.Rerun(
        words_in=("rnn/",)).describe()


def test_a_factor_allowance_covers_one_sign_only():
    rule = claims.Rerun(factor=2.0)
    assert rule.allows(135.0, 270.0, 1.0) and rule.allows(274.0, 137.0, 1.0)
    assert not rule.allows(135.0, 300.0, 1.0)
    assert not rule.allows(0.5, -0.5, 0.01)


def test_digits_inside_names_are_words():
    assert publish._NUM.findall("seed001_x4_explosion L0 = 0.02, M^(1/3), -390") == [
        "0.02", "1", "3", "-390"]



def test_rerun_spread_lists_each_moved_line_and_judges_it(tmp_path):
    from experiments import rerun_spread
    res = tmp_path / "results"
    shutil.copytree(RESULTS, res, ignore=shutil.ignore_patterns("traces.npz"))
    assert rerun_spread.spread_rows("same", res) == []
    path = res / "quartic_trajectories" / "record.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["clipped_gd"]["iterations_to_eps"][0] += 1
    path.write_text(json.dumps(rec))
    rows = rerun_spread.spread_rows("moved", res)
    readers = {c.id for c in claims.REGISTRY if "quartic_trajectories" in c.needs}
    assert rows and {r["key"] for r in rows} <= readers
    assert all({"paper_figures/CLAIMS.md", "README.md"} <= set(r["documents"]) for r in rows)
    assert not any(r["within"] or r["words"] for r in rows)
    assert all(r["absolute"] == 1.0 for r in rows)
    text = rerun_spread.to_markdown(rows, {"moved": "a test"})
    assert text.count("| **no** |") == len(rows)


def test_rerun_spread_refuses_bad_arguments(tmp_path, capsys):
    from experiments import rerun_spread
    assert rerun_spread.main(["--jobs", "0", "--isa"]) == 2
    assert rerun_spread.main(["--isa", "--dirs", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "--jobs must be a positive integer" in err and "is not a directory" in err


def test_a_factor_above_a_size_leaves_small_numbers_to_atol():
    rule = claims.Rerun(atol=0.1, factor=1e10, factor_above=10.0)
    assert rule.allows(2.21e103, 1.03e112, 1e100) and rule.allows(0.45, 0.54, 0.01)
    assert not rule.allows(0.45, 0.9, 0.01) and not rule.allows(0.45, 0.045, 0.001)
    assert "a factor 1e+10 above 10" in rule.describe()
