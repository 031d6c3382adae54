"""The figure style shared by every figure, and small plot helpers.

Figures are sized for a two-column paper (one column 3.4 in, full width 7.0 in), use the
Okabe-Ito colourblind-safe palette, and are saved both as PDF (vector, for papers) and PNG
(for the README).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
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
        fig.savefig(tmp, format=ext)
        tmp.replace(final)
        paths.append(final)
    plt.close(fig)
    return paths
