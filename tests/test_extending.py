"""docs/extending.md, followed word for word in a copy of the repository: its four files add
an experiment with a figure and a claim, and nothing else changes."""

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "extending.md"


def files_of_the_walkthrough() -> dict[str, str]:
    """path -> content of every ```<lang> file=<path> block of docs/extending.md."""
    blocks = re.findall(r"^```\w+ file=(\S+)\n(.*?)^```$", PAGE.read_text(), re.S | re.M)
    return dict(blocks)


def _copy_repository(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for rel in listed.splitlines():
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)


CHECK = textwrap.dedent("""
    import json, sys
    from research import runtime
    runtime.configure()
    from experiments import claims, deps, registry
    from research import plotting
    import paper_figures.__main__ as figures
    assert figures.main(["toy"]) == 0
    done, missing = claims.evaluate("results")
    toy = [c for c in done if c.id == "toy_clipped_gd_reaches_eps"]
    rules = deps.rules()
    print(json.dumps({
        "experiments": registry.names(), "figures": registry.figures(),
        "claim": [toy[0].holds, toy[0].measured] if toy else None,
        "sources": plotting.source_mismatches("paper_figures/toy.png", "results", ["toy"]),
        "make": [line.split(" := ")[1].split() for line in rules.splitlines()
                 if line.startswith(("EXPERIMENTS", "FIGURES"))],
        "toy_deps": [line for line in rules.splitlines()
                     if line.startswith("results/toy/record.json")][0],
    }))
""")


def test_the_walkthrough_adds_an_experiment_a_figure_and_a_claim_in_its_own_files(tmp_path):
    files = files_of_the_walkthrough()
    assert set(files) == {"conf/toy.yaml", "experiments/toy.py", "paper_figures/toy.py",
                          "experiments/claims/toy.py"}
    repo = tmp_path / "repo"
    _copy_repository(repo)
    for rel, text in files.items():
        assert not (repo / rel).exists(), rel
        (repo / rel).write_text(text)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    assert sorted(status) == sorted(f"?? {rel}" for rel in files)

    run = subprocess.run([sys.executable, "-m", "experiments.toy"], cwd=repo,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert (repo / "results" / "toy" / "record.json").is_file()
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=repo, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    import json

    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["experiments"][-1] == "toy" and seen["figures"][-1] == "toy"
    assert seen["claim"][0] is True, seen["claim"]
    assert seen["sources"] == []
    experiments, figures = seen["make"]
    assert "toy" in experiments and "paper_figures/toy.png" in figures
    assert "research/problems/closed_form.py" in seen["toy_deps"]
    assert "research/problems/text.py" not in seen["toy_deps"]
