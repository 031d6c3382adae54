"""The layout of the claims package: every module of experiments/claims/ stays small, no module
of experiments/ or paper_figures/ uses a private (underscore) name of experiments.claims.*, and
each subject's claims sit together in the registry. (The checks are tried on made-up modules
too, to show they can fail.)"""

import ast
import itertools
from pathlib import Path

from experiments import claims

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "experiments" / "claims"
MAX_LINES = 300
SCANNED = ("experiments", "paper_figures")


def long_modules(package: Path, limit: int = MAX_LINES) -> list[str]:
    """The modules of ``package`` longer than ``limit`` lines (as ``wc -l`` counts)."""
    return [f"{p.name}: {n} lines" for p in sorted(package.glob("*.py"))
            if (n := p.read_text().count("\n")) > limit]


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_from(node: ast.ImportFrom, path: Path, root: Path) -> str:
    """The absolute module of ``from ... import``, relative imports resolved."""
    if not node.level:
        return node.module or ""
    here = _module_name(path, root).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _is_claims(module: str) -> bool:
    return module == "experiments.claims" or module.startswith("experiments.claims.")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(path: Path, root: Path = ROOT, package: Path = PACKAGE) -> list[str]:
    """Where ``path`` imports, or reads as an attribute of a module it imported, a private
    name of experiments.claims or one of its modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(root)
    found, bound = [], set()  # bound: local names of experiments.claims modules
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _imported_from(node, path, root)
            for alias in node.names:
                full = f"{module}.{alias.name}"
                if _is_claims(module) and _private(alias.name):
                    found.append(f"{where}:{node.lineno}: from {module} import {alias.name}")
                elif full == "experiments.claims" or (
                        _is_claims(module) and (package / f"{alias.name}.py").exists()):
                    bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_claims(alias.name) and any(map(_private, alias.name.split("."))):
                    found.append(f"{where}:{node.lineno}: import {alias.name}")
                elif _is_claims(alias.name) and alias.asname:
                    bound.add(alias.asname)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = ast.unparse(node.value)
            if owner in bound or _is_claims(owner):
                found.append(f"{where}:{node.lineno}: {owner}.{node.attr}")
    return found


def test_every_module_of_the_claims_package_is_at_most_300_lines():
    assert sorted(PACKAGE.glob("*.py")), PACKAGE
    assert not long_modules(PACKAGE)


def test_no_module_uses_a_private_name_of_the_claims_package():
    paths = sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))
    assert any(p.parent == PACKAGE for p in paths)
    assert [u for p in paths for u in private_uses(p)] == []


def test_each_subjects_claims_sit_together_in_the_registry():
    modules = [c.fn.__module__ for c in claims.REGISTRY]
    runs = [m for m, _ in itertools.groupby(modules)]
    assert len(runs) == len(set(runs)), runs
    core = {"registry", "rerun", "values", "run", "render"}
    assert not {m.rsplit(".", 1)[1] for m in runs} & core


def test_the_layout_checks_catch_a_long_module_and_private_uses(tmp_path):
    pkg = tmp_path / "experiments" / "claims"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "short.py").write_text("x = 1\n" * MAX_LINES)
    (pkg / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_modules(pkg) == [f"long.py: {MAX_LINES + 1} lines"]
    (pkg / "inside.py").write_text("from .short import _hidden, public\n")
    user = tmp_path / "experiments" / "user.py"
    user.write_text("from experiments import claims\nfrom experiments.claims import short\n"
                    "import experiments.claims.short as s\n"
                    "claims._cell('x'); short._y; s._z; claims.__doc__; claims.cell('x')\n"
                    "experiments.claims._w\n")
    assert [u.split(": ", 1)[1] for u in private_uses(pkg / "inside.py", tmp_path, pkg)] == [
        "from experiments.claims.short import _hidden"]
    assert sorted(u.split(": ", 1)[1] for u in private_uses(user, tmp_path, pkg)) == [
        "claims._cell", "experiments.claims._w", "s._z", "short._y"]
