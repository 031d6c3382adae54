"""Write paper_figures/README.md: every figure with the claim it tests, the commands that make
it, and the numbers measured for it (the claims that read the same records)."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

from experiments import claims, registry
from paper_figures import FIGURES
from research import results


def entry(name: str, by_record: dict) -> str:
    mod = importlib.import_module(f"paper_figures.{name}")
    doc = (mod.__doc__ or "").strip().split("\n\nReads")[0]
    records = mod.main.records
    cmds = [f"python -m experiments.{r}" for r in records] + [f"python -m paper_figures.{name}"]
    lines = [f"## {name}", "", f"![{name}]({name}.png)", "", doc.replace("\n", " "), "",
             "Made by: " + "; ".join(f"`{c}`" for c in cmds) + f" (PDF: `{name}.pdf`).", ""]
    measured = [c for r in records for c in by_record.get(r, [])]
    if measured:
        lines.append("Measured:")
        lines.append("")
        seen = set()
        for c in measured:
            if c.id in seen:
                continue
            seen.add(c.id)
            verdict = claims.verdict_word(c, emphasis=False)
            moves = ("" if c.rerun == claims.EXACT
                     else f" (a rerun on another machine may move each number by "
                          f"{c.rerun.describe()})")
            lines.append(f"- `{c.id}` ({c.status}, {verdict}): {c.measured}{moves}")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", type=Path, default=Path("paper_figures/README.md"))
    args = ap.parse_args(argv)
    done, _ = claims.evaluate(args.results)
    text = index_text(done)
    results.write_text(args.out, text)
    print(f"[index] wrote {args.out}")
    return 0


def bigger_machine_text() -> str:
    """The index's section on the presets of a bigger machine."""
    lines = ["## On a bigger machine", "",
             "`make figures` is sized to finish within 10 minutes on 2 CPU cores. With more "
             "time or a GPU (JAX picks the device; nothing in the models assumes a CPU), run "
             "these instead, then `make figures` draws from the new records:", ""]
    for name in registry.names():
        bigger = registry.get(name).bigger
        if bigger is not None:
            overrides, why = bigger
            lines.append(f"- `python -m experiments.{name} {overrides}`: {why}.")
    return "\n".join(lines + [""])


def index_text(done: list) -> str:
    """The figure index, from the evaluated claims."""
    needs = {c.id: c.needs for c in claims.REGISTRY}
    by_record: dict[str, list] = {}
    for c in done:
        for r in needs[c.id]:
            by_record.setdefault(r, []).append(c)
    return "\n".join([
        "# Figures",
        "",
        "Every figure of `make figures`, with the claim it tests, the commands that make it "
        "and the numbers measured for it. Written by `python -m experiments.figure_index` "
        "from the run records; the verdicts are those of [CLAIMS.md](CLAIMS.md), and the "
        "smoothness figure's correlation table is [SMOOTHNESS.md](SMOOTHNESS.md).",
        "",
    ] + [entry(name, by_record) for name in FIGURES] + [bigger_machine_text()])


if __name__ == "__main__":
    raise SystemExit(main())
