"""Every published number from a record.

The documents that carry measured numbers are functions of the run records:

- ``paper_figures/CLAIMS.md`` and ``paper_figures/SMOOTHNESS.md`` (``experiments.verify``);
- ``paper_figures/claims.json``, the ledger: every named number those documents rest on, with
  its rule and its rerun allowance (``claims.ledger``);
- ``paper_figures/README.md``, the figure index (``experiments.figure_index``);
- the blocks of README.md between ``<!-- BEGIN generated:NAME -->`` and
  ``<!-- END generated:NAME -->`` (``BLOCKS`` below).

``python -m experiments.publish`` rewrites all of them from ``results/``;
``python -m experiments.publish --check [--results DIR]`` rewrites nothing and exits 1 when
a number the records give moved from the committed ledger beyond that number's own rerun
allowance (naming it), when a committed document differs from its re-rendering from the
records, byte for byte (naming the first line that differs), or when a committed figure names
records other than the committed ones. The test suite runs it on the committed records, where
every number must read the same. Rendering only formats the records' numbers, so the same
records give the same text on every machine: no document is compared with a tolerance, and no
number is read back out of a document.

What a rerun on another machine may move is a question about numbers: each number's
``Rerun`` allowance says how far, ``--check --results <rerun's records>`` judges a rerun by
it, and ``make rerun-spread`` (``experiments.rerun_spread``) measures it.

The records are committed as ``results/<experiment>/record.json`` with the traces the
figures draw (``traces.npz``).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

from experiments import claims, figure_index
from research import results

ROOT = Path(__file__).resolve().parents[1]


def _headline(done: list, records_dir: Path) -> str:
    lines = ["| claim | status | verdict | measured | a rerun on another machine may move "
             "each number by |", "|---|---|---|---|---|"]
    for c in done:
        lines.append(f"| `{c.id}` | {c.status} | {claims.verdict_word(c)} | "
                     f"{claims.markdown_cell(c.measured)} | "
                     f"{claims.markdown_cell(c.rerun.describe())} |")
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[list, Path], str]] = {"claims": _headline}
"""README.md's generated blocks: name -> text from (evaluated claims, records directory)."""


def _block_re(name: str) -> re.Pattern:
    return re.compile(rf"(<!-- BEGIN generated:{name} [^>]*-->\n)(.*?)(<!-- END generated:"
                      rf"{name} -->)", re.S)


def fill_blocks(text: str, blocks: dict[str, str]) -> str:
    """``text`` with each generated block's body replaced; a block named in ``blocks`` but
    absent from ``text`` is an error."""
    for name, body in blocks.items():
        pattern = _block_re(name)
        if not pattern.search(text):
            raise ValueError(f"README.md has no generated block {name!r}.")
        text = pattern.sub(_replacer(body), text)
    return text


def _replacer(body: str):
    """The ``re.sub`` replacement that puts ``body`` between a block's markers."""

    def replace(m: re.Match) -> str:
        return m.group(1) + body + "\n" + m.group(3)

    return replace


def documents(results_dir: Path, root: Path = ROOT) -> dict[Path, str]:
    """Every generated document's text, from the records under ``results_dir``."""
    done, missing = claims.evaluate(results_dir)
    docs = {root / "paper_figures" / "CLAIMS.md": claims.to_markdown(done, missing),
            root / LEDGER: claims.to_json(ledger(results_dir, done)),
            root / "paper_figures" / "README.md": figure_index.index_text(done)}
    smooth = results_dir / "smoothness"
    if (smooth / results.RECORD_FILE).exists():
        docs[root / "paper_figures" / "SMOOTHNESS.md"] = claims.smoothness_table(
            results.read_record(smooth, traces=False)[0])
    readme = root / "README.md"
    docs[readme] = fill_blocks(readme.read_text(), {name: fn(done, results_dir)
                                                    for name, fn in BLOCKS.items()})
    return docs


LEDGER = Path("paper_figures") / "claims.json"
"""The published numbers, one per key (``claims.ledger``), relative to the root."""


def ledger(results_dir: Path, done: list | None = None) -> dict[str, claims.Entry]:
    """Every published number the records under ``results_dir`` give, with its allowance."""
    if done is None:
        done = claims.evaluate(results_dir)[0]
    entries = claims.claim_entries(done)
    smooth = results_dir / "smoothness"
    if (smooth / results.RECORD_FILE).exists():
        entries.update(claims.smoothness_entries(results.read_record(smooth, traces=False)[0]))
    return entries


def number_moves(results_dir: Path, root: Path = ROOT) -> list[claims.Move]:
    """Every committed number (``paper_figures/claims.json``) that the records under
    ``results_dir`` give differently, each judged by its own allowance; a missing ledger is
    one move that is never allowed."""
    path = root / LEDGER
    if not path.exists():
        return [claims.Move(str(LEDGER), None, None, claims.EXACT, False)]
    return claims.compare(claims.read_json(path.read_text()), ledger(results_dir))


def differences(results_dir: Path, root: Path = ROOT) -> dict[Path, str]:
    """Per generated document that differs from its re-rendering from the records in
    ``results_dir``, byte for byte: the first differing line, as one phrase."""
    out = {}
    for p, text in documents(results_dir, root).items():
        if not p.exists():
            out[p] = "the file is missing"
            continue
        committed = p.read_text()
        if committed == text:
            continue
        old, new = committed.splitlines(), text.splitlines()
        n = min(len(old), len(new))
        i = next((k for k in range(n) if old[k] != new[k]), n)
        out[p] = (f"line {i + 1} differs" if i < n
                  else f"{len(new)} lines re-rendered against {len(old)} committed")
    return out


def stale(results_dir: Path, root: Path = ROOT) -> list[Path]:
    """The generated documents that differ from their re-rendering from the records."""
    return list(differences(results_dir, root))


def stale_figures(results_dir: Path, figures_dir: Path = ROOT / "paper_figures") -> list[str]:
    """Every way a figure (PNG or PDF) disagrees with the records it names."""
    from experiments import registry
    from research import plotting

    return [line for fig in registry.figures() for ext in ("png", "pdf")
            for line in plotting.source_mismatches(figures_dir / f"{fig}.{ext}", results_dir,
                                                   registry.figure_records(fig))]


def main(argv=None) -> int:
    from research import runtime

    runtime.configure()
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a document differs from its re-rendering "
                         "from the records, or a figure names other records")
    args = ap.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: --results {args.results} is not a directory; nothing written.",
              file=sys.stderr)
        return 2
    if args.check:
        beyond = [m for m in number_moves(args.results) if not m.allowed]
        for m in beyond:
            print(f"[publish] moved beyond its allowance ({m.allowance.describe()}): "
                  f"{m.describe()}", file=sys.stderr)
        bad = differences(args.results)
        for p, why in bad.items():
            print(f"[publish] stale: {p.relative_to(ROOT)} differs from its re-rendering from "
                  f"the records in {args.results} ({why}); run `python -m experiments.publish`",
                  file=sys.stderr)
        figs = stale_figures(args.results)
        for line in figs:
            print(f"[publish] stale figure: {line}; run `make figures`", file=sys.stderr)
        return 1 if beyond or bad or figs else 0
    for path, text in documents(args.results).items():
        results.write_text(path, text)
        print(f"[publish] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
