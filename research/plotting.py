"""The figure style shared by every figure, and small plot helpers.

Figures are sized for a two-column paper (one column 3.4 in, full width 7.0 in), use the
Okabe-Ito colourblind-safe palette, and are saved both as PDF (vector, for papers) and PNG
(for the README).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
# fontTools warns about the timestamps inside the bundled fonts while subsetting: noise.
logging.getLogger("fontTools").setLevel(logging.ERROR)
import matplotlib.pyplot as plt  # noqa: E402

COLUMN_WIDTH = 3.4
FULL_WIDTH = 7.0

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
             "#000000")

STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.1,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,
    "figure.constrained_layout.use": True,
}


def apply_style() -> None:
    """Switch matplotlib to the project style."""
    plt.rcParams.update(STYLE)


SOURCES_KEY = {"png": "Source", "pdf": "Subject"}
"""The metadata field of each format that names the records a figure was drawn from."""


def sources_text(sources: Mapping[str, str]) -> str:
    """``sha256 <file>=<hex>; ...``: the records (paths relative to the results root) a figure
    was drawn from, with the sha256 of each file's bytes."""
    return "sha256 " + "; ".join(f"{path}={digest}" for path, digest in sorted(sources.items()))


def parse_sources(text: str) -> dict[str, str]:
    """The inverse of ``sources_text`` ({} when ``text`` names no records)."""
    if not text.startswith("sha256 "):
        return {}
    return dict(item.split("=", 1) for item in text[len("sha256 "):].split("; ") if item)


def record_sources(results_dir: str | os.PathLike, records) -> dict[str, str]:
    """sha256 of every file of ``records`` under ``results_dir`` (record.json, traces.npz)."""
    out = {}
    for r in records:
        for file in ("record.json", "traces.npz"):
            path = Path(results_dir) / r / file
            if path.is_file():
                out[f"{r}/{file}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def figure_sources(path: str | os.PathLike) -> dict[str, str]:
    """The records a saved figure (PNG or PDF) names in its metadata, with their sha256."""
    path = Path(path)
    if path.suffix == ".png":
        from PIL import Image

        with Image.open(path) as im:
            return parse_sources(im.text.get(SOURCES_KEY["png"], ""))
    m = re.search(rb"/Subject \((sha256 [^)]*)\)", path.read_bytes())
    return parse_sources(m.group(1).decode("latin-1")) if m else {}


def source_mismatches(figure: str | os.PathLike, results_dir: str | os.PathLike,
                      records) -> list[str]:
    """One line per way the saved ``figure`` disagrees with the files of ``records`` under
    ``results_dir``: a file it does not name, names but which is missing, or whose sha256
    differs ([] when it was drawn from exactly these files)."""
    figure = Path(figure)
    want, have = record_sources(results_dir, records), figure_sources(figure)
    if not have:
        return [f"{figure.name} names no records (drawn before figures carried their records)"]
    out = []
    for f in sorted(set(want) | set(have)):
        if f not in have:
            out.append(f"{figure.name} does not name {f}")
        elif f not in want:
            out.append(f"{figure.name} names {f}, which is not in {results_dir}")
        elif have[f] != want[f]:
            out.append(f"{figure.name} was drawn from another {f} (sha256 {have[f][:12]}..., "
                       f"now {want[f][:12]}...)")
    return out


def save(fig, out_dir: str | os.PathLike, name: str,
         sources: Mapping[str, str] | None = None) -> list[Path]:
    """Save ``fig`` as ``name``.pdf and ``name``.png in ``out_dir``; return the two paths.

    ``sources``: record file -> sha256 (``record_sources``), written into both files'
    metadata, so that a figure can be checked against the records it claims to show.
    Each file is written under a temporary name and renamed, so a reader never sees half a
    figure.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("pdf", "png"):
        final = out_dir / f"{name}.{ext}"
        tmp = out_dir / f".{name}.tmp.{ext}"
        # no creation date in the PDF: the same figure gives the same bytes
        meta: dict = {"CreationDate": None} if ext == "pdf" else {}
        if sources:
            meta[SOURCES_KEY[ext]] = sources_text(sources)
        fig.savefig(tmp, format=ext, metadata=meta or None)
        tmp.replace(final)
        paths.append(final)
    plt.close(fig)
    return paths


def figure_cli(name: str, draw, doc: str, records: tuple[str, ...] | None = None):
    """The command line of a figure script, as a function ``main(argv=None)``.

    It reads the records ``<--results>/<record>`` (default root ``results``; by default the
    one record named like the figure), calls ``draw(record, traces)`` (or, for several
    records, ``draw({name: record})``), and saves ``<--out>/<name>.{pdf,png}``.
    """
    import argparse

    from research import results

    records = records or (name,)

    def main(argv=None) -> list[Path]:
        from research import runtime

        runtime.configure()
        ap = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
        ap.add_argument("--results", default="results", help="root folder of the records")
        ap.add_argument("--out", default="paper_figures")
        args = ap.parse_args(argv)
        loaded = {r: results.read_record(Path(args.results) / r) for r in records}
        if len(records) == 1:
            fig = draw(*loaded[records[0]])
        else:
            fig = draw({r: rec for r, (rec, _) in loaded.items()})
        paths = save(fig, Path(args.out), name, record_sources(args.results, records))
        print("[figure] wrote " + ", ".join(str(p) for p in paths), flush=True)
        return paths

    main.records = records
    return main


def quiet_log_ticks(ax, axis: str = "x", subs=(1.0, 2.0, 5.0)) -> None:
    """Plain-number labels at 1, 2, 5 x 10^k on a log axis, and no minor labels (matplotlib's
    minor labels overlap on ranges shorter than a decade)."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    target.set_major_formatter(FormatStrFormatter("%g"))
    target.set_minor_formatter(NullFormatter())


def ecdf(ax, values, **kwargs):
    """Empirical CDF of ``values`` as a step line."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size:
        ax.step(v, np.arange(1, v.size + 1) / v.size, where="post", **kwargs)
