"""The figure style shared by every figure, and small plot helpers.

Figures are sized for a two-column paper (one column 3.4 in, full width 7.0 in), use the
Okabe-Ito colourblind-safe palette, and are saved both as PDF (vector, for papers) and PNG
(for the README).
"""

from __future__ import annotations

import logging
import os
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


def save(fig, out_dir: str | os.PathLike, name: str) -> list[Path]:
    """Save ``fig`` as ``name``.pdf and ``name``.png in ``out_dir``; return the two paths.

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
        fig.savefig(tmp, format=ext,
                    metadata={"CreationDate": None} if ext == "pdf" else None)
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
        paths = save(fig, Path(args.out), name)
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
