"""Every published number from a record.

The documents that carry measured numbers are functions of the run records:

- ``paper_figures/CLAIMS.md`` and ``paper_figures/SMOOTHNESS.md`` (``experiments.verify``);
- ``paper_figures/README.md``, the figure index (``experiments.figure_index``);
- the blocks of README.md between ``<!-- BEGIN generated:NAME -->`` and
  ``<!-- END generated:NAME -->`` (``BLOCKS`` below).

``python -m experiments.publish`` rewrites all of them from ``results/``;
``python -m experiments.publish --check`` rewrites nothing and exits 1 when a committed
document differs from its re-rendering from the committed records, byte for byte, naming the
first line that differs, or when a committed figure names records other than the committed
ones (the test suite runs it, so a stale number or figure fails CI). Rendering only formats
the records' numbers, so the same records give the same text on every machine: nothing is
tolerated here.

What a rerun on another machine may move is a different question, about two records of the
same experiment: each claim's ``Rerun`` allowance says how far, and ``make rerun-spread``
(``experiments.rerun_spread``, which uses ``moves`` below) measures it.

The records are committed as ``results/<experiment>/record.json`` with the traces the
figures draw (``traces.npz``).
"""

from __future__ import annotations

import argparse
import dataclasses
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
        lines.append(f"| `{c.id}` | {c.status} | {claims.verdict_word(c.holds)} | "
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
            root / "paper_figures" / "README.md": figure_index.index_text(done)}
    smooth = results_dir / "smoothness"
    if (smooth / results.RECORD_FILE).exists():
        docs[root / "paper_figures" / "SMOOTHNESS.md"] = claims.smoothness_table(
            results.read_record(smooth, traces=False)[0])
    readme = root / "README.md"
    docs[readme] = fill_blocks(readme.read_text(), {name: fn(done, results_dir)
                                                    for name, fn in BLOCKS.items()})
    return docs


_NUM = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
"""A number as the documents print it; digits inside a name (seed001, x4, L0) are words."""


def _ulp(token: str) -> float:
    """One unit of the last printed digit of a rounded number ("0.172": 0.001, "2.04e+04":
    100); 0 for an integer, which is a count and exact."""
    mant, _, exp = token.lower().partition("e")
    if "." not in mant and not exp:
        return 0.0
    decimals = len(mant.split(".")[1]) if "." in mant else 0
    return 10.0 ** (int(exp or 0) - decimals)


def line_key(line: str) -> str | None:
    """What a document line is about: the claim id or the model its row or bullet starts
    with (``| id | ...``, ``| `id` | ...``, ``- `id` (...``), else None."""
    m = re.match(r"\s*(?:\|\s*|-\s+)`?([A-Za-z0-9_/]+)`?", line)
    return m.group(1) if m else None


def allowance(key: str | None) -> claims.Rerun:
    """How far a rerun may move the line about ``key`` (a claim id or a smoothness model)."""
    c = claims.by_id().get(key) if key else None
    if c is not None:
        return c.rerun
    return claims.SMOOTHNESS_RERUN.get(key, claims.EXACT) if key else claims.EXACT


@dataclasses.dataclass(frozen=True)
class LineMove:
    """One line that reads differently: its number (from 1), key, whether its words changed,
    the (printed before, printed now, last-digit unit) of each number, and whether its
    allowance covers the change."""

    line: int
    key: str | None
    words_changed: bool
    numbers: tuple[tuple[float, float, float], ...]
    allowed: bool

    def describe(self) -> str:
        what = f"line {self.line} ({self.key or 'text'})"
        if self.words_changed:
            return f"{what}: its words changed"
        worst = [f"{a:g} -> {b:g}" for a, b, _ in self.numbers if a != b]
        return f"{what}: {', '.join(worst[:4])}{' ...' if len(worst) > 4 else ''}"


def moves(committed: str, fresh: str) -> list[LineMove]:
    """Every line of ``committed`` that ``fresh`` prints differently, judged by its
    allowance. Documents of different lengths give one move at line 0 (never allowed)."""
    a, b = committed.splitlines(), fresh.splitlines()
    if len(a) != len(b):
        return [LineMove(0, None, True, (), False)]
    out = []
    for i, (old, new) in enumerate(zip(a, b, strict=True), 1):
        if old == new:
            continue
        key = line_key(old)
        rule = allowance(key)
        if _NUM.sub("#", old) != _NUM.sub("#", new):
            out.append(LineMove(i, key, True, (), rule.allows_words(old, new)))
            continue
        nums = tuple((float(x), float(y), max(_ulp(x), _ulp(y)))
                     for x, y in zip(_NUM.findall(old), _NUM.findall(new), strict=True))
        out.append(LineMove(i, key, False, nums,
                            all(rule.allows(x, y, u) for x, y, u in nums)))
    return out


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
        bad = differences(args.results)
        for p, why in bad.items():
            print(f"[publish] stale: {p.relative_to(ROOT)} differs from its re-rendering from "
                  f"the records in {args.results} ({why}); run `python -m experiments.publish`",
                  file=sys.stderr)
        figs = stale_figures(args.results)
        for line in figs:
            print(f"[publish] stale figure: {line}; run `make figures`", file=sys.stderr)
        return 1 if bad or figs else 0
    for path, text in documents(args.results).items():
        results.write_text(path, text)
        print(f"[publish] wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
