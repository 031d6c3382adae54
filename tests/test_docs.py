"""The documents agree with the code and with each other, and speak for themselves.

- Every docstring (module, class, function and attribute string) that mentions the theory
  document cites it by its repository path (under docs/), a section by its sign and number
  (not "section N"), and a cited section exists as a heading there.
- Every such section citation anywhere in the Python sources (also outside docstrings, e.g.
  the claim sources that end up in CLAIMS.md) names an existing section.
- The functions of research/theory.py whose docstring says [recalled] are exactly the ones
  the document lists as recalled, and the document marks each of them recalled where it
  describes it.

- Every section of docs/theory.md that README.md or another page under docs/ cites exists,
  and every relative link of README.md and docs/ leads to a file (and heading) that exists.
- No project text file refers to a tracker issue by its number: a comment or a page
  says what the code does and why, not which ticket asked for it.
- LICENSE and CITATION.cff exist and say what they must; the benchmark table of
  docs/performance.md is the one benchmarks/results.json gives.

Static (ast, regular expressions and YAML; only benchmarks.report imported), so it runs in
well under a second.
"""

import ast
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "theory.md"
SCANNED = ("research", "experiments", "paper_figures", "benchmarks", "tests")
THIS = Path(__file__).resolve()

DOC_NAME = "theory.md"
PREFIX = "docs/"
SECTION = re.compile(r"\s*§(\d+(?:\.\d+)*)")
OLD_SECTION = re.compile(r"\W{0,3}sections?\s+\d", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+§(\d+(?:\.\d+)*)\b", re.MULTILINE)
CITATION = re.compile(r"(?<![\w./-])docs/theory\.md(?:``)?\s*§(\d+(?:\.\d+)*)")
RECALLED = re.compile(r"\[recalled", re.IGNORECASE)
RECALLED_LIST = re.compile(r"^Recalled in code:(.*)$", re.MULTILINE)

ISSUE_REF = re.compile(r"\bissue ?#?\d+", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".cff", ".cfg", ".txt"}
TEXT_NAMES = {"Makefile", "LICENSE"}
SKIP_DIRS = {".git", ".venv", "build", "results", "multirun", "outputs", "node_modules"}
LINK = re.compile(r"(?<!\!)\[[^\]]*\]\(([^)\s]+)\)|!\[[^\]]*\]\(([^)\s]+)\)")


def _sections(text: str) -> set[str]:
    return set(HEADING.findall(text))


def _sources() -> list[Path]:
    files = []
    for d in SCANNED:
        files += sorted((ROOT / d).rglob("*.py")) if (ROOT / d).is_dir() else []
    return [f for f in files if f.resolve() != THIS]


def _docstrings(source: str):
    """(line, text) of every bare string statement: module, class and function docstrings and
    attribute docstrings."""
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            yield node.lineno, node.value.value


def bad_citations(text: str, sections: set[str]) -> list[tuple[int, str]]:
    """Problems with the mentions of the theory document in one docstring, as (line offset in
    the docstring, message): a mention that is not the path under docs/, a section given in
    words ("section 3") instead of by its sign, or a section with no heading. A mention with
    no section at all cites the whole document and is fine."""
    problems = []
    for m in re.finditer(re.escape(DOC_NAME), text):
        start = m.start()
        line = text.count("\n", 0, start)
        at = start - len(PREFIX)  # where the prefix must begin, after no other path character
        if text[max(0, at):start] != PREFIX or (at > 0 and re.match(r"[\w./-]", text[at - 1])):
            problems.append((line, f"cites {text[max(0, start - 20):m.end() + 12]!r} without "
                                   f"the {PREFIX} prefix"))
            continue
        rest = text[m.end():]
        rest = rest[2:] if rest.startswith("``") else rest
        sec = SECTION.match(rest)
        if not sec:
            if OLD_SECTION.match(rest):
                problems.append((line, f"names a section in words, not as §N "
                                       f"({text[start:m.end() + 15]!r})"))
        elif sec.group(1) not in sections:
            problems.append((line, f"cites section §{sec.group(1)}, which {PREFIX}{DOC_NAME} "
                                   "has not"))
    return problems


def missing_sections(text: str, sections: set[str]) -> list[str]:
    """Section numbers cited anywhere in ``text`` that are not headings of the document."""
    return [n for n in CITATION.findall(text) if n not in sections]


def recalled_functions(source: str) -> set[str]:
    """Module-level functions whose docstring says [recalled]."""
    return {node.name for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef)
            and RECALLED.search(ast.get_docstring(node) or "")}


def listed_recalled(doc: str) -> set[str]:
    """The names on the document's 'Recalled in code:' line."""
    m = RECALLED_LIST.search(doc)
    return set(re.findall(r"`(\w+)`", m.group(1))) if m else set()


def _units(doc: str):
    """Paragraphs, with each table row a unit of its own."""
    for block in re.split(r"\n\s*\n", doc):
        lines = block.splitlines()
        if lines and all(ln.lstrip().startswith("|") for ln in lines):
            yield from lines
        else:
            yield block


def unmarked(names: set[str], doc: str) -> set[str]:
    """Names that no paragraph or table row of the document marks as recalled."""
    return {n for n in names
            if not any(re.search(rf"\b{n}\b", u) and RECALLED.search(u) for u in _units(doc))}


# --------------------------------------------------------------------------- the real files


@pytest.fixture(scope="module")
def doc() -> str:
    assert DOC.exists(), f"{DOC} is missing"
    return DOC.read_text(encoding="utf-8")


def test_document_has_numbered_sections(doc):
    assert {str(n) for n in range(8)} <= _sections(doc)


def test_docstring_citations(doc):
    sections = _sections(doc)
    bad = []
    for path in _sources():
        src = path.read_text(encoding="utf-8")
        if DOC_NAME not in src:
            continue
        for line, text in _docstrings(src):
            bad += [f"{path.relative_to(ROOT)}:{line + off}: {msg}"
                    for off, msg in bad_citations(text, sections)]
    assert not bad, "\n".join(bad)


def test_section_numbers_exist_everywhere(doc):
    sections = _sections(doc)
    bad = [f"{path.relative_to(ROOT)}: §{n}" for path in _sources()
           for n in missing_sections(path.read_text(encoding="utf-8"), sections)]
    assert not bad, "cited sections with no heading in docs/theory.md: " + ", ".join(bad)


def test_recalled_constants_agree(doc):
    in_code = recalled_functions((ROOT / "research" / "theory.py").read_text(encoding="utf-8"))
    assert in_code, "research/theory.py has no [recalled] docstring: did the tags go?"
    listed = listed_recalled(doc)
    assert in_code == listed, (
        f"[recalled] in research/theory.py docstrings: {sorted(in_code)}; listed as recalled "
        f"in docs/theory.md: {sorted(listed)}")
    assert not unmarked(in_code, doc), f"not marked recalled in the text: {unmarked(in_code, doc)}"


def text_files(root: Path = ROOT) -> list[Path]:
    """The project's text files (sources, pages, configs), tracked or new: git's list where
    git knows the tree, else a walk that skips environments and outputs."""
    try:
        out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                             cwd=root, capture_output=True, text=True, check=True).stdout
        paths = [root / line for line in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        paths = [p for p in root.rglob("*")
                 if not SKIP_DIRS.intersection(p.relative_to(root).parts)]
    return sorted(p for p in paths if p.is_file()
                  and (p.suffix in TEXT_SUFFIXES or p.name in TEXT_NAMES))


def issue_references(text: str) -> list[str]:
    """Each mention of a tracker issue by number, with its line number."""
    return [f"line {text.count(chr(10), 0, m.start()) + 1}: {m.group(0)!r}"
            for m in ISSUE_REF.finditer(text)]


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and the hand-written pages under docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)}


def broken_links(page: Path, text: str) -> list[str]:
    """Relative links of ``text`` (a page at ``page``) to a file that does not exist, or to a
    heading that the target page has not. Web addresses are not followed."""
    problems = []
    for m in LINK.finditer(text):
        target = m.group(1) or m.group(2)
        if re.match(r"[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve()
        if path and not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and (not path or dest.suffix == ".md") and anchor not in anchors(
                dest.read_text(encoding="utf-8") if path else text):
            problems.append(f"{target}: no heading #{anchor}")
    return problems


# --------------------------------------------------------------------------- the other pages


def test_pages_cite_existing_theory_sections(doc):
    sections = _sections(doc)
    bad = [f"{p.relative_to(ROOT)}: §{n}" for p in pages()
           for n in missing_sections(p.read_text(encoding="utf-8"), sections)]
    assert not bad, "cited sections with no heading in docs/theory.md: " + ", ".join(bad)


def test_every_relative_link_resolves():
    bad = [f"{p.relative_to(ROOT)}: {problem}" for p in pages()
           for problem in broken_links(p, p.read_text(encoding="utf-8"))]
    assert not bad, "\n".join(bad)


def test_no_text_file_names_an_issue_number():
    files = text_files()
    assert any(p.name == "README.md" for p in files), "the file list is empty or wrong"
    bad = [f"{p.relative_to(ROOT)}: {ref}" for p in files
           for ref in issue_references(p.read_text(encoding="utf-8", errors="replace"))]
    assert not bad, ("say what the code does and why, not which issue asked for it:\n"
                     + "\n".join(bad))


def test_license_and_citation():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "the research authors" in (ROOT / "LICENSE").read_text()
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == "Why gradient clipping accelerates training: a reference codebase"
    paper = cff["preferred-citation"]
    assert paper["year"] == 2020 and "ICLR" in paper["collection-title"]
    assert paper["title"].startswith("Why gradient clipping accelerates training")
    assert [a["family-names"] for a in paper["authors"]] == ["Zhang", "He", "Sra", "Jadbabaie"]
    assert "1905.11881" in json.dumps(paper)


def test_performance_page_shows_the_latest_benchmarks():
    """docs/performance.md's table is what benchmarks/report.py writes from
    benchmarks/results.json, and it names the machine every section ran on."""
    from benchmarks import report

    numbers = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    body = page.split(report.START, 1)[1].split(report.END, 1)[0]
    assert body.strip() == report.table(numbers).strip(), (
        "docs/performance.md is stale: run `python -m benchmarks.report`")
    for section in numbers.values():
        assert section["machine"] in body


# --------------------------------------------------------------------------- the checks can fail


@pytest.mark.parametrize("text, n_bad", [
    ("References: docs/theory.md §1.", 0),
    ("References: ``docs/theory.md`` §1.2 and docs/theory.md §4's pair.", 0),
    ("References: theory.md section 1.", 1),
    ("Status tags follow ``shared/reference/theory.md``.", 1),
    ("See mydocs/theory.md §1.", 1),
    ("References: docs/theory.md section 1.", 1),
    ("References: docs/theory.md, section 1.", 1),
    ("References: docs/theory.md.", 0),
    ("References: docs/theory.md §9.", 1),
    ("No citation here.", 0),
])
def test_bad_citations_detects(text, n_bad):
    assert len(bad_citations(text, {"1", "1.2", "4"})) == n_bad


def test_missing_sections_detects():
    text = 'source = "docs/theory.md §1; docs/theory.md §7"'
    assert missing_sections(text, {"1"}) == ["7"]
    assert missing_sections(text, {"1", "7"}) == []


def test_issue_references_detect():
    word = "issue"  # spelled apart so that this file passes its own check
    assert len(issue_references(f"see {word} 13 and ({word.title()} #4); {word}s are fine")) == 2
    assert issue_references(f"an {word}: none; tissue 3") == []


def test_broken_links_detect(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Process settings\n")
    page = tmp_path / "README.md"
    text = ("[ok](docs/a.md) [ok](docs/a.md#process-settings) [web](https://example.org/x) "
            "[gone](docs/b.md) [bad](docs/a.md#nothing) [here](#a-title) ![img](x.png)\n"
            "# A title\n")
    assert [p.split(":")[0] for p in broken_links(page, text)] == [
        "docs/b.md", "docs/a.md#nothing", "x.png"]


def test_text_files_lists_new_files_and_skips_outputs(tmp_path):
    (tmp_path / "a.py").write_text("")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "b.py").write_text("")
    (tmp_path / "c.png").write_text("")
    assert [p.name for p in text_files(tmp_path)] == ["a.py"]


def test_recalled_checks_detect():
    code = ('def a():\n    """Bound. [recalled]"""\n'
            'def b():\n    """Step. [paper]"""\n'
            'def c():\n    """Constant [recalled: unverified]."""\n')
    assert recalled_functions(code) == {"a", "c"}
    doc = "Recalled in code: `a`, `c`\n\n| `a` | [recalled] |\n| `c` | [paper] |\n"
    assert listed_recalled(doc) == {"a", "c"}
    assert unmarked({"a", "c"}, doc) == {"c"}
