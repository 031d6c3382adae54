"""The shape of the code: short functions in the library, and no module reaching into another
module's private names."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("research", "experiments", "paper_figures", "hydra_plugins", "benchmarks")
MAX_CODE_LINES = 60


def _code_lines(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring."""
    lines = fn.end_lineno - fn.lineno + 1
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
            and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def long_functions(paths) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = _code_lines(node)
                if n > MAX_CODE_LINES:
                    out.append(f"{path.relative_to(ROOT)}:{node.name} has {n} lines of code")
    return out


def private_imports(paths) -> list[str]:
    """``from <project module> import _name`` and ``import <project>._module`` anywhere."""
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in PROJECT:
                parts = node.module.split(".") + [a.name for a in node.names]
                bad = [p for p in parts if p.startswith("_") and not p.startswith("__")]
                if bad:
                    out.append(f"{path.relative_to(ROOT)}: from {node.module} import {bad}")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    parts = a.name.split(".")
                    if parts[0] in PROJECT and any(p.startswith("_") and not p.startswith("__")
                                                   for p in parts):
                        out.append(f"{path.relative_to(ROOT)}: import {a.name}")
    return out


def private_attributes(paths) -> list[str]:
    """``module._name`` where ``module`` is a project module imported by the file."""
    out = []
    for path in paths:
        tree = ast.parse(path.read_text())
        modules = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in PROJECT:
                modules |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                modules |= {a.asname or a.name.split(".")[0] for a in node.names
                            if a.name.split(".")[0] in PROJECT}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in modules and node.attr.startswith("_") \
                    and not node.attr.startswith("__"):
                out.append(f"{path.relative_to(ROOT)}:{node.lineno}: "
                           f"{node.value.id}.{node.attr}")
    return out


def _py(*dirs):
    return [p for d in dirs for p in sorted((ROOT / d).rglob("*.py"))]


def test_no_library_function_has_more_than_60_lines_of_code():
    assert long_functions(_py("research")) == []


def test_no_module_imports_a_private_name_of_another():
    assert private_imports(_py(*PROJECT, "tests")) == []


def test_no_module_reaches_into_another_modules_private_names():
    assert private_attributes(_py(*PROJECT)) == []


def test_the_checks_see_what_they_look_for(tmp_path):
    (tmp_path / "m.py").write_text(
        "from research.engine import _secret\nimport research._hidden\n"
        "from research import engine\nengine._run_batch.clear_cache()\n"
        "def f():\n    '''doc'''\n" + "    x = 1\n" * 61)
    paths = [tmp_path / "m.py"]
    global ROOT
    root, ROOT = ROOT, tmp_path
    try:
        assert len(private_imports(paths)) == 2
        assert private_attributes(paths) == ["m.py:4: engine._run_batch"]
        assert long_functions(paths) == ["m.py:f has 62 lines of code"]
    finally:
        ROOT = root
