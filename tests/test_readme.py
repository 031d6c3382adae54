"""The examples of README.md and of the pages under docs/ work as written: every ```python
block runs, and every command of every ```bash block names a Makefile target, a module or a
Hydra config key that exists. The README's sweep command is run for real at a tiny size.
README.md itself stays a front page: at most 200 lines, with the install before
`make figures`. Each check is shown to fail on a broken copy."""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from experiments import run as run_mod  # registers the config schemas
from experiments.common import CONF_DIR
from research import results

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
README_MAX_LINES = 200
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
PYTHONS = {"python", "python3", ".venv/bin/python"}
HYDRA_FLAGS = {"-m", "--multirun", "--info", "--help", "-h", "--hydra-help", "--resolve"}
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn",
                          "--config-dir", "-cd", "--config-path", "-cp"}
SNIPPET_TIMEOUT = 120


def documents() -> list[Path]:
    """README.md and every page under docs/: the documents whose examples must work."""
    return [README, *sorted(DOCS.glob("*.md"))]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(text: str, lang: str) -> list[str]:
    """The bodies of the fenced ```lang blocks of ``text``."""
    return re.findall(rf"^```{lang}[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M)


def commands(text: str) -> list[list[str]]:
    """Every command of every ```bash block, as shell words (continuations joined, comments
    dropped)."""
    out = []
    for body in blocks(text, "bash"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                out.append(words)
    return out


def make_targets(makefile: Path = ROOT / "Makefile") -> set[str]:
    """The explicit targets of the Makefile's rules (not pattern or variable targets)."""
    targets = set()
    for line in makefile.read_text().splitlines():
        m = re.match(r"^([^\s#:=.$%][^:=]*?)\s*&?::?(?!=)", line)
        if m:
            targets.update(m.group(1).split())
    return targets


def hydra_overrides(words: list[str]) -> tuple[list[str], list[str]]:
    """(the override words, the problems) of the arguments after ``python -m <module>``."""
    overrides, problems, skip = [], [], False
    for w in words:
        if skip:
            skip = False
        elif w in HYDRA_FLAGS_WITH_VALUE:
            skip = True
        elif w.startswith("-"):
            if w not in HYDRA_FLAGS:
                problems.append(f"unknown Hydra flag {w!r}")
        elif "=" in w or w.startswith("~"):
            # a placeholder such as <queue> stands for a value the reader fills in
            overrides.append(re.sub(r"<[^<>=]+>", "placeholder", w))
        else:
            problems.append(f"argument {w!r} is neither a flag nor a key=value override")
    return overrides, problems


def _single_valued(overrides: list[str]):
    """The parsed overrides, and the same overrides with each sweep replaced by its first
    value (``compose`` takes one job's overrides)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    single = []
    for o in parsed:
        if o.is_sweep_override():
            single.append(f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}")
        else:
            single.append(o.input_line)
    return parsed, single


def check_run_overrides(overrides: list[str]) -> list[str]:
    """Problems with the overrides of one ``python -m experiments.run`` command: they must
    compose (groups and options exist, keys exist, types match), every key must resolve in
    the composed config, and the job they describe must pass the experiment's validation."""
    try:
        parsed, single = _single_valued(overrides)
        with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
            cfg = compose("config", overrides=single, return_hydra_config=True)
    except Exception as err:  # noqa: BLE001 - any failure to compose is the finding
        return [f"overrides {overrides} do not compose: {type(err).__name__}: {err}"]
    problems = []
    for o in parsed:
        key = o.key_or_group
        group = "/" in key or (CONF_DIR / key).is_dir()
        if o.is_delete() or group:
            continue  # a group's option was found by compose; a deleted key is gone
        if OmegaConf.select(cfg, key, default=KeyError) is KeyError:
            problems.append(f"override key {key!r} does not resolve in the composed config")
    try:
        run_mod.build(cfg)
    except ValueError as err:
        problems.append(f"overrides {overrides}: {err}")
    return problems


@functools.cache
def _run_problems(overrides: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(check_run_overrides(list(overrides)))


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def check_commands(text: str) -> list[str]:
    """Problems with the commands of the bash blocks of ``text``."""
    problems, targets = [], make_targets()
    venv = re.search(r"^VENV\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    for words in commands(text):
        line = " ".join(words)
        if words[0] == "make":
            for t in words[1:]:
                if not t.startswith("-") and "=" not in t and t not in targets:
                    problems.append(f"`{line}`: the Makefile has no target {t!r}")
        elif words[0] in PYTHONS:
            if len(words) < 3 or words[1] != "-m":
                problems.append(f"`{line}`: expected `python -m <module> ...`")
                continue
            module = words[2]
            if not module_exists(module):
                problems.append(f"`{line}`: no module {module!r}")
                continue
            if module == "experiments.run":
                overrides, found = hydra_overrides(words[3:])
                problems += [f"`{line}`: {p}" for p in found]
                problems += [f"`{line}`: {p}" for p in _run_problems(tuple(overrides))]
        elif words[0] in ("source", "."):
            if words[1:] != [f"{venv}/bin/activate"]:
                problems.append(f"`{line}`: the environment is {venv}/bin/activate")
        else:
            problems.append(f"`{line}`: unknown command {words[0]!r} (make, python -m, source)")
    return problems


def check_prose_references(text: str) -> list[str]:
    """Problems with the `make X` and `python -m X` quoted in the prose."""
    targets = make_targets()
    problems = [f"`make {t}`: no such target" for t in re.findall(r"`make ([\w-]+)", text)
                if t not in targets]
    problems += [f"`python -m {m}`: no such module"
                 for m in re.findall(r"`(?:\.venv/bin/)?python3? -m ([A-Za-z_][\w.]*)", text)
                 if not module_exists(m)]
    return problems


RUNNER = """
import runpy, sys, traceback
for i, path in enumerate(sys.argv[1:], 1):
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException:
        print(f"@@failed {i}", file=sys.stderr, flush=True)
        traceback.print_exc()
        print("@@end", file=sys.stderr, flush=True)
"""
"""Runs each script named on its command line in a fresh namespace (one interpreter, so that
jax is imported once) and reports each failure between markers on stderr."""


def run_codes(codes: list[tuple[str, str]], scratch: Path, cwd: Path = ROOT) -> list[str]:
    """Run each (label, code) as written, each as its own script in a fresh namespace (the
    venv's python, in ``cwd``); the failures, each named by its label and with the end of
    its traceback."""
    paths = []
    for i, (_, code) in enumerate(codes, 1):
        paths.append(scratch / f"doc_block_{i}.py")
        paths[-1].write_text(code)
    r = subprocess.run([PYTHON, "-c", RUNNER, *map(str, paths)], cwd=cwd, capture_output=True,
                       text=True, timeout=SNIPPET_TIMEOUT, env={**os.environ, "CI": "1"})
    failures = []
    for i, tb in re.findall(r"^@@failed (\d+)\n(.*?)^@@end$", r.stderr, re.S | re.M):
        label, code = codes[int(i) - 1]
        failures.append(f"{label} ({code.splitlines()[0]!r}...): {tb.strip()[-600:]}")
    if r.returncode and not failures:
        failures.append(f"the snippet runner exited {r.returncode}: {r.stderr[-600:]}")
    return failures


def run_snippets(text: str, scratch: Path, cwd: Path = ROOT, doc: str = "README.md") -> list[str]:
    """Run every ```python block of ``text`` as written (``run_codes``)."""
    return run_codes([(f"{doc} python block {i}", code)
                      for i, code in enumerate(blocks(text, "python"), 1)], scratch, cwd)


def readme_problems(text: str) -> list[str]:
    """What keeps ``text`` from being a front page: more than ``README_MAX_LINES`` lines, or
    `make figures` named before the reader has been shown `make setup`."""
    problems = []
    n = len(text.splitlines())
    if n > README_MAX_LINES:
        problems.append(f"README.md has {n} lines; at most {README_MAX_LINES}")
    setup, figures = text.find("make setup"), text.find("make figures")
    if setup < 0:
        problems.append("README.md never shows `make setup`")
    elif 0 <= figures < setup:
        problems.append("README.md names `make figures` before the install (`make setup`)")
    return problems


# --------------------------------------------------------------------------- the documents


def test_readme_has_snippets_and_commands():
    text = README.read_text()
    assert len(blocks(text, "python")) >= 1
    assert any(w[:4] == ["python", "-m", "experiments.run", "-m"] for w in commands(text))
    assert any(w[0] == "make" for w in commands(text))
    everywhere = "\n".join(p.read_text() for p in documents())
    assert len(blocks(everywhere, "python")) >= 2


def test_readme_is_a_front_page():
    assert readme_problems(README.read_text()) == []


def _first_sweep(text: str) -> list[str]:
    sweeps = [w for w in commands(text) if w[:4] == ["python", "-m", "experiments.run", "-m"]]
    assert sweeps, "README.md has no multirun sweep command"
    return sweeps[0]


def _run_tiny(words: list[str], cwd: Path):
    """A README command as written, plus a few steps so it runs in seconds, in ``cwd``."""
    return subprocess.run([PYTHON, *words[1:], "engine.steps=20", "engine.record_every=10",
                           "progress=off"], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "CI": "1"})


def test_every_python_block_runs_as_written(tmp_path):
    """After the README's first sweep (at a tiny size, in a scratch directory, since the
    snippets of docs/sweeps.md read what it wrote), every python block of every document
    runs as written."""
    work = tmp_path / "work"
    work.mkdir()
    r = _run_tiny(_first_sweep(README.read_text()), work)
    assert r.returncode == 0, r.stderr[-2000:]
    codes = [(f"{_name(p)} python block {i}", code) for p in documents()
             for i, code in enumerate(blocks(p.read_text(), "python"), 1)]
    assert run_codes(codes, tmp_path, cwd=work) == []


@pytest.mark.parametrize("path", documents(), ids=_name)
def test_every_bash_command_resolves(path):
    assert check_commands(path.read_text()) == []


@pytest.mark.parametrize("path", documents(), ids=_name)
def test_every_make_target_and_module_in_the_prose_exists(path):
    assert check_prose_references(path.read_text()) == []


def test_the_first_sweep_command_is_one_batched_job(tmp_path):
    """The README's first multirun, as written plus a few steps: the batching sweeper runs
    its 1,000 step sizes as one job, and the table has a row per step size with the
    iteration counts its snippet groups."""
    r = _run_tiny(_first_sweep(README.read_text()), tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    table = results.load(tmp_path / "multirun" / "eta")
    assert len(list((tmp_path / "multirun" / "eta").glob("*/record.json"))) == 1
    assert len(table) == 1000 and table["optimizer.eta"].is_unique
    assert (table["engine.steps"] == 20).all()
    assert table["iterations_to_eps"].dtype == "Int64"  # the column the snippet uses


# --------------------------------------------------------------------------- the checks fail


BREAKAGES = [
    # (the document, what it said, what a broken copy says, what the report must name)
    ("README.md", "make figures   #", "make figurez   #", "no target 'figurez'"),
    ("docs/sweeps.md", "python -m experiments.run -m experiment=cosh_methods",
     "python -m experiments.no_such_module -m experiment=cosh_methods",
     "no module 'experiments.no_such_module'"),
    ("README.md", "engine.steps=10000 engine.eps=1e-3", "engine.stepz=10000 engine.eps=1e-3",
     "engine.stepz"),
    ("docs/sweeps.md", "experiment=cosh_methods", "experiment=no_such_preset",
     "no_such_preset"),
    ("docs/sweeps.md", "hydra.launcher.mem_gb=8", "hydra.launcher.mem_gib=8",
     "hydra.launcher.mem_gib"),
    ("README.md", "optimizer.gamma=1.0 \\\n    'optimizer.eta", "optimizer.gamma=-1.0 \\\n    "
     "'optimizer.eta", "optimizer.gamma"),
    ("README.md", "make setup ", "pip install -e . ", "unknown command 'pip'"),
]


@pytest.mark.parametrize(("doc", "good", "bad", "named"), BREAKAGES,
                         ids=[b[3] for b in BREAKAGES])
def test_a_broken_command_is_reported(doc, good, bad, named):
    text = (ROOT / doc).read_text()
    assert good in text, f"{doc} changed: update this test's breakage {good!r}"
    found = check_commands(text.replace(good, bad, 1))
    assert any(named in p for p in found), found


def test_a_broken_prose_reference_is_reported():
    text = README.read_text() + "\nRun `make nothing` or `python -m experiments.nothing`.\n"
    found = check_prose_references(text)
    assert any("make nothing" in p for p in found)
    assert any("experiments.nothing" in p for p in found)


def test_a_readme_that_is_no_front_page_is_reported():
    text = README.read_text()
    assert any("lines; at most" in p for p in readme_problems(text + "more\n" * 200))
    early = text.replace("\n", "\n\nStart with `make figures`.\n", 1)
    assert any("before the install" in p for p in readme_problems(early))
    assert any("never shows" in p for p in readme_problems(text.replace("make setup", "")))


def test_a_broken_snippet_in_docs_is_named_by_its_page(tmp_path):
    failures = run_codes([("docs/x.md python block 1", "import no_such_module_here\n")],
                         tmp_path)
    assert len(failures) == 1 and failures[0].startswith("docs/x.md python block 1"), failures


def test_a_snippet_without_its_import_is_reported(tmp_path):
    """The README's first snippet with its jnp import removed (alone, to keep it quick)."""
    snippet = blocks(README.read_text(), "python")[0]
    assert "import jax.numpy as jnp\n" in snippet
    broken = f"```python\n{snippet.replace('import jax.numpy as jnp', '', 1)}```\n"
    failures = run_snippets(broken, tmp_path)
    assert len(failures) == 1 and "NameError" in failures[0] and "jnp" in failures[0], failures
