"""requirements.lock: every dependency of pyproject.toml is pinned there, and the environment
the tests run in holds exactly the pinned versions (what `make setup` installs)."""

import re
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [_norm(re.match(r"[A-Za-z0-9_.\-]+", s).group(0)) for s in specs]


def test_every_declared_dependency_is_pinned():
    pins = _pins()
    missing = [d for d in _declared() if d not in pins]
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"


def test_the_environment_holds_the_locked_versions():
    wrong = {}
    for name, version in _pins().items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong[name] = (version, None)
            continue
        if have != version:
            wrong[name] = (version, have)
    assert not wrong, f"installed versions differ from requirements.lock: {wrong}"
