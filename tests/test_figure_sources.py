"""Every committed figure names the sha256 of the committed records it was drawn from."""

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from experiments import publish, registry
from research import plotting

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("figure", registry.figures())
@pytest.mark.parametrize("ext", ["png", "pdf"])
def test_each_committed_figure_names_its_committed_records(figure, ext):
    records = registry.figure_records(figure)
    path = ROOT / "paper_figures" / f"{figure}.{ext}"
    assert plotting.source_mismatches(path, ROOT / "results", records) == []
    named = set(plotting.figure_sources(path))
    assert {f"{r}/record.json" for r in records} <= named


def _figure_from(results: Path, out: Path) -> Path:
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    plotting.save(fig, out, "toy", plotting.record_sources(results, ["toy"]))
    return out / "toy.png"


@pytest.mark.parametrize("ext", ["png", "pdf"])
def test_a_changed_missing_or_unnamed_record_is_a_mismatch(tmp_path, ext):
    results = tmp_path / "results"
    (results / "toy").mkdir(parents=True)
    (results / "toy" / "record.json").write_text('{"a": 1}')
    png = _figure_from(results, tmp_path / "figs")
    path = png.with_suffix(f".{ext}")
    assert plotting.source_mismatches(path, results, ["toy"]) == []
    (results / "toy" / "record.json").write_text('{"a": 2}')
    assert "drawn from another toy/record.json" in plotting.source_mismatches(
        path, results, ["toy"])[0]
    (results / "toy" / "traces.npz").write_bytes(b"x")
    assert any("does not name toy/traces.npz" in m
               for m in plotting.source_mismatches(path, results, ["toy"]))
    shutil.rmtree(results / "toy")
    assert all("not in" in m for m in plotting.source_mismatches(path, results, ["toy"]))


def test_a_figure_without_sources_is_a_mismatch(tmp_path):
    fig, ax = plt.subplots()
    plotting.save(fig, tmp_path, "bare")
    assert "names no records" in plotting.source_mismatches(tmp_path / "bare.png",
                                                            tmp_path, ["x"])[0]


def test_publish_check_names_a_stale_figure(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    assert publish.stale_figures(results) == []
    rec = results / registry.figure_records("max_step")[0] / "record.json"
    rec.write_text(rec.read_text() + " ")
    stale = publish.stale_figures(results)
    assert stale and all("max_step" in s for s in stale)
