"""The Makefile's view of the experiments: their records, figures and real dependencies.

``python -m experiments.deps > build/deps.mk`` writes, from the declarations
(``experiments.registry``, read without importing them):
- ``EXPERIMENTS`` (the longest first, so that make's parallel jobs finish together) and
  ``FIGURES``, split into ``LAST_FIGURES`` (those that read the longest experiment's record)
  and ``FIRST_FIGURES`` (the others, drawn while it still runs), with the traces each group
  reads (``FIRST_TRACES``, ``LAST_TRACES``);
- one rule per experiment: its record and traces depend on its conf, its module and every
  project module it imports, transitively;
- one rule per figure: it depends on its script and the records it reads.

Only the standard library is used, so make reads it before any environment exists. A problem
family is a dependency only of the experiments that name it (``research.problems`` loads a
family when one of its names is first used, and ``problem_modules`` follows the names).
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from experiments import registry

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("research", "experiments")
PROBLEMS = "research.problems"


def _module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _literal(path: Path, var: str) -> dict:
    """The literal dict assigned to ``var`` at the top of ``path`` ({} if none)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == var for t in targets):
            return ast.literal_eval(value)
    return {}


def lazy_names() -> dict[str, str]:
    """Problem name -> the family module that defines it: the public names of
    ``research.problems`` (its ``LAZY``) and the registered ones (``base.FAMILY_OF``)."""
    root = ROOT / "research" / "problems"
    names = {**_literal(root / "base.py", "FAMILY_OF"), **_literal(root / "__init__.py", "LAZY")}
    return {k: f"{PROBLEMS}.{v}" for k, v in names.items()}


def _imports(path: Path, lazy: dict[str, str]) -> set[str]:
    """Project modules ``path`` imports (absolute imports of PACKAGES), with a lazily loaded
    name resolved to the module that defines it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PACKAGES:
                out.add(node.module)
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    out.add(lazy.get(a.name, full) if node.module == PROBLEMS else full)
    return out


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of a module and its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def named_problems(path: Path, strings: bool) -> set[str]:
    """The problem names ``path`` uses: ``problems.<name>`` in code, and with ``strings``
    every string constant of its code (a name passed to ``problems.get`` or kept in a table);
    for a config, every bare word outside comments. Docstrings and comments name nothing."""
    text = path.read_text()
    if path.suffix == ".yaml":
        return set(re.findall(r"\w+", re.sub(r"#.*", "", text)))
    tree = ast.parse(text)
    skip = _docstrings(tree)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (
                isinstance(node.value, ast.Name) and node.value.id == "problems"
                or isinstance(node.value, ast.Attribute) and node.value.attr == "problems"):
            out.add(node.attr)
        elif strings and isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in skip:
            out.add(node.value)
    return out


def problem_modules(paths, lazy: dict[str, str]) -> set[str]:
    """The problem families that ``paths`` name (``named_problems``). String constants count
    in the experiments, the problem families and the configs, where problem names are data;
    elsewhere in the library only ``problems.<name>`` does."""
    out = set()
    for path in paths:
        rel = path.relative_to(ROOT).parts if path.is_relative_to(ROOT) else ()
        # research/problems/__init__.py and base.py hold the tables of every name: not uses
        lazy_tables = rel in (("research", "problems", "__init__.py"),
                              ("research", "problems", "base.py"))
        strings = not lazy_tables and (not rel or rel[0] != "research"
                                       or rel[:2] == ("research", "problems"))
        names = named_problems(path, strings)
        out |= {module for name, module in lazy.items() if name in names}
    return out


def closure(module: str, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Every project file that running ``module`` reads: its imports, transitively (packages'
    __init__ included), and the problem families it or ``extra`` (its config) names."""
    lazy = lazy_names()
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # a package's __init__ runs first
            sub = ".".join(parts[:i])
            if sub in seen:
                continue
            path = _module_file(sub)
            if path is None:
                continue
            seen[sub] = path
            todo.extend(_imports(path, lazy))
            todo.extend(problem_modules([path, *extra], lazy) - set(seen))
    return sorted({p.relative_to(ROOT) for p in seen.values()})


def config_defaults(conf: Path) -> list[Path]:
    """The configs that ``conf``'s defaults list names: in the top folder (``- figure_base``)
    and in the problem and optimizer groups (``- /problem@problems.quartic: quartic``), with
    the catalogue their schemas are read from."""
    text = (ROOT / conf).read_text()
    names = re.findall(r"^  - ([A-Za-z_]\w*)\s*(?:#.*)?$", text, re.M)
    out = [Path(f"conf/{n}.yaml") for n in names if (ROOT / "conf" / f"{n}.yaml").is_file()]
    entries = re.findall(r"^  - /(problem|optimizer)@[\w.]+: (\w+)\s*(?:#.*)?$", text, re.M)
    out += sorted({Path(f"conf/{g}/{n}.yaml") for g, n in entries})
    return out + [Path("experiments/catalogue.json")] if entries else out


def loaded_families() -> set[str]:
    """The problem family modules imported in this process so far."""
    return {m for m in sys.modules if m.startswith(f"{PROBLEMS}.")}


def unlisted_families(name: str, loaded: set[str]) -> set[str]:
    """Of the family modules ``loaded`` while experiment ``name`` ran, those its rule in
    build/deps.mk does not list: an edit there would leave its record stale."""
    conf = Path(f"conf/{name}.yaml")
    listed = {".".join(p.with_suffix("").parts)
              for p in closure(f"experiments.{name}", (ROOT / conf,))}
    return loaded - listed


def rules() -> str:
    """build/deps.mk: the lists and the dependency rules."""
    figures = registry.figures()
    order = registry.slowest_first()
    last = [f for f in figures if order[0] in registry.figure_records(f)]
    groups = {"FIRST": [f for f in figures if f not in last], "LAST": last}
    lines = [f"EXPERIMENTS := {' '.join(order)}",
             f"FIGURES := {' '.join(f'paper_figures/{f}.png' for f in figures)}"]
    for group, figs in groups.items():
        reads = dict.fromkeys(r for f in figs for r in registry.figure_records(f))
        lines += [f"{group}_FIGURES := {' '.join(f'paper_figures/{f}.png' for f in figs)}",
                  f"{group}_TRACES := {' '.join(f'results/{r}/traces.npz' for r in reads)}"]
    for name in registry.names():
        conf = Path(f"conf/{name}.yaml")
        files = [conf, *config_defaults(conf), *closure(f"experiments.{name}", (ROOT / conf,))]
        lines.append(f"results/{name}/record.json results/{name}/traces.npz: "
                     + " ".join(str(f) for f in files))
    for fig in figures:
        recs = " ".join(f"results/{r}/record.json" for r in registry.figure_records(fig))
        lines.append(f"paper_figures/{fig}.png: paper_figures/{fig}.py {recs}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    try:
        text = rules()
    except (ValueError, SyntaxError) as err:  # a declaration make cannot read: one sentence
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    sys.stdout.write(text)
