"""experiments.registry: each experiment declared once, and everything that lists experiments
(the Makefile, the quick pipeline, the figure index, the schemas, the dependency graph) read
from those declarations."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from experiments import deps, quick, registry
from paper_figures import FIGURES

ROOT = Path(__file__).resolve().parents[1]


def test_the_static_reading_equals_the_imported_declarations():
    for name, decl in registry.declared().items():
        exp = registry.get(name)
        assert (exp.name, exp.order, tuple(exp.figures), tuple(exp.seconds)) == (
            decl["name"], decl["order"], decl["figures"], decl["seconds"]), name
        assert callable(exp.run)


def test_every_figure_script_is_owned_by_one_experiment_and_reads_declared_records():
    scripts = {p.stem for p in (ROOT / "paper_figures").glob("*.py")
               if not p.name.startswith("_")}
    assert set(FIGURES) == scripts
    assert len(FIGURES) == len(set(FIGURES))
    for fig in FIGURES:
        assert set(registry.figure_records(fig)) <= set(registry.names()), fig


def test_every_experiment_module_with_a_hydra_main_is_declared():
    mains = {p.stem for p in (ROOT / "experiments").glob("*.py")
             if "= hydra_entry(" in p.read_text() and p.stem != "run"}
    assert mains == set(registry.names())


def test_the_makefile_lists_come_from_the_declarations():
    text = deps.rules()
    lines = dict(line.split(" := ", 1) for line in text.splitlines() if " := " in line)
    assert lines["EXPERIMENTS"].split() == registry.slowest_first()
    assert lines["FIGURES"].split() == [f"paper_figures/{f}.png" for f in FIGURES]
    assert "EXPERIMENTS :=" not in (ROOT / "Makefile").read_text()
    # the figures of the longest experiment are drawn last, the others while it runs
    first, last = lines["FIRST_FIGURES"].split(), lines["LAST_FIGURES"].split()
    assert sorted(first + last) == sorted(lines["FIGURES"].split()) and last
    longest = registry.slowest_first()[0]
    for group, figs in (("FIRST", first), ("LAST", last)):
        reads = {r for f in figs for r in registry.figure_records(Path(f).stem)}
        assert (longest in reads) == (group == "LAST")
        assert set(lines[f"{group}_TRACES"].split()) == {f"results/{r}/traces.npz"
                                                          for r in reads}


def test_quick_sizes_live_in_the_declarations():
    for name in registry.names():
        assert isinstance(registry.get(name).quick, dict)
    assert not hasattr(quick, "QUICK")


def _write(tmp_path, body: str) -> Path:
    path = tmp_path / "toy.py"
    path.write_text(textwrap.dedent(body))
    return path


@pytest.mark.parametrize("body, words", [
    ("EXPERIMENT = Experiment(name='other', run=run, order=1)\n", "must be 'toy'"),
    ("EXPERIMENT = Experiment(name='toy', run=run, order=N)\n", "order must be written as a"),
    ("EXPERIMENT = Experiment(name='toy', run=run)\n", "needs order"),
    ("EXPERIMENT = make()\n", r"must be an Experiment\(\.\.\.\) call"),
    ("EXPERIMENT = Experiment(name='toy', run=run, order='9')\n", "order must be an integer"),
    ("EXPERIMENT = Experiment(name='toy', run=run, order=9, figures='toy')\n",
     "figures must be a tuple"),
    ("EXPERIMENT = Experiment(name='toy', run=run, order=9, seconds=(2.0,))\n",
     r"seconds must be \(full, quick\)"),
    ("EXPERIMENT: Experiment = Experiment(name='toy', run=run, order=9)\n",
     "conf/toy.yaml is missing"),
])
def test_a_bad_declaration_is_one_sentence(tmp_path, body, words):
    with pytest.raises(ValueError, match=words) as err:
        registry._literal_declaration(_write(tmp_path, body))
    assert "\n" not in str(err.value)


def _problem_files(name: str) -> set[str]:
    closure = deps.closure(f"experiments.{name}", (ROOT / "conf" / f"{name}.yaml",))
    return {p.stem for p in closure if p.parent.name == "problems"}


def test_a_problem_family_is_a_dependency_only_where_it_is_named():
    text = {n for n in registry.names() if "text" in _problem_files(n)}
    assert text == {"smoothness", "clipping_networks"}
    for closed_form_only in ("quartic_trajectories", "descent_audit", "hard_instance",
                             "iteration_complexity"):
        assert "networks" not in _problem_files(closed_form_only), closed_form_only


RUN_AND_LIST = textwrap.dedent("""
    import sys, tempfile
    from research import runtime
    runtime.configure()
    from experiments import quick
    quick.run_experiment(sys.argv[1], __import__("pathlib").Path(tempfile.mkdtemp()))
    print(" ".join(sorted(m.rsplit(".", 1)[1] for m in sys.modules
                          if m.startswith("research.problems."))))
""")


def _loaded_families(name: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", RUN_AND_LIST, name], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return set(out.stdout.strip().splitlines()[-1].split())


def test_the_graph_covers_what_an_experiment_really_loads():
    """Under-approximation is the danger: a family loaded but not a dependency would leave a
    stale record after an edit."""
    assert _loaded_families("quartic_trajectories") <= _problem_files("quartic_trajectories")


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.names())
def test_the_graph_covers_what_every_experiment_really_loads(name):
    assert _loaded_families(name) <= _problem_files(name)


GUARD = textwrap.dedent("""
    import importlib, sys
    from experiments import common
    say = common.Progress("quartic_trajectories")
    importlib.import_module(sys.argv[1])
    try:
        common._check_dependencies(say)
        print("OK")
    except RuntimeError as e:
        print("REFUSED", e)
""")


@pytest.mark.parametrize("family, refused", [("research.problems.closed_form", False),
                                             ("research.problems.text", True)])
def test_a_run_that_loads_a_family_its_graph_misses_is_refused(family, refused):
    out = subprocess.run([sys.executable, "-c", GUARD, family], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout.strip()
    assert out.startswith("REFUSED" if refused else "OK"), out
    if refused:
        assert "research.problems.text" in out and "\n" not in out


def test_the_lazy_tables_of_research_problems_match_the_families():
    """LAZY (public name -> family) and FAMILY_OF (registered name -> family) are literals the
    Makefile reads; each entry must be where it says, and every registered name listed."""
    import importlib
    import inspect

    from research import problems
    from research.problems import base

    families = sorted(set(problems.LAZY.values()) | set(base.FAMILY_OF.values()))
    for family in families:
        importlib.import_module(f"research.problems.{family}")
    registered = {n: inspect.unwrap(base.factory(n)).__module__ for n in base.names()}
    assert registered == {n: f"research.problems.{f}" for n, f in base.FAMILY_OF.items()}
    for name, family in problems.LAZY.items():
        assert inspect.unwrap(getattr(problems, name)).__module__ == \
            f"research.problems.{family}", name
