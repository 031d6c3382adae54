"""Test configuration: float64 everywhere (importing research switches it on), hypothesis
profiles (``HYPOTHESIS_PROFILE=ci`` uses fewer examples), and the cross-product catalogue of
problems with stated constants."""

import os

import pytest
from hypothesis import HealthCheck, settings

import research  # noqa: F401  (enables float64)
from research import problems

settings.register_profile(
    "default", max_examples=60, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", max_examples=30, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def problems_with_constants():
    """Every registered problem with stated (L0, L1), plus variants with other L1 and dims."""
    out = [problems.get(name) for name in problems.names()]
    out += [
        problems.quartic(dim=3, L1=0.5),
        problems.quartic(L1=8.0),
        problems.sextic(L1=3.0),
        problems.power(n=1, dim=3),
        problems.power(n=3, dim=2),
        problems.power(n=2, dim=4, L1=1.0),
        problems.cosh(dim=4),
        problems.quadratic(dim=5, condition=100.0),
    ]
    return [p for p in out if p.has_constants]


CONSTANT_PROBLEMS = problems_with_constants()
ALL_PROBLEMS = [problems.get(name) for name in problems.names()]


def ids(ps):
    return [f"{p.name}-L1={p.L1}-dim={getattr(p.x0, 'size', '?')}" for p in ps]


@pytest.fixture(params=CONSTANT_PROBLEMS, ids=ids(CONSTANT_PROBLEMS))
def constant_problem(request):
    return request.param
