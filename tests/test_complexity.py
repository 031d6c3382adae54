"""Iteration counting and the best-fixed-step sweep, against direct runs."""

import jax.numpy as jnp
import numpy as np
import pytest

from research import complexity, engine, optimizers, problems


def test_iterations_match_a_plain_run():
    p = problems.quartic()
    x0 = jnp.array([[0.5], [2.0], [8.0]])
    opt = optimizers.clipped_gd(0.025, 2.0)
    its, div = complexity.iterations_to_eps(p, opt, x0, eps=1e-2, cap=5000, blocks=7)
    plain = engine.run(p, opt, x0, steps=5000, eps=1e-2)
    assert np.array_equal(its, plain.iterations_to_eps) and not div.any()


def test_best_fixed_step_is_the_minimum_over_the_grid():
    p = problems.quartic()
    x0 = jnp.array([[1.0], [4.0]])
    hs = np.geomspace(1e-4, 1.0, 9)
    out = complexity.best_fixed_step(p, x0, hs, eps=1e-2, cap=50_000)
    for i in range(2):
        runs = [engine.run(p, optimizers.gd(h), x0[i:i + 1], 50_000, eps=1e-2) for h in hs]
        counts = np.array([r.iterations_to_eps[0] for r in runs])
        ok = counts >= 0
        assert out["iterations"][i] == counts[ok].min()
        assert out["step"][i] == pytest.approx(hs[ok][counts[ok].argmin()])
        assert out["diverged_fraction"][i] == np.mean([r.diverged[0] for r in runs])
    assert out["diverged_fraction"][1] > 0  # large steps blow up from x0 = 4


def test_loglog_slope():
    x = np.geomspace(1, 1e4, 9)
    assert complexity.loglog_slope(x, 3 * x**0.75) == pytest.approx(0.75)
    assert np.isnan(complexity.loglog_slope([1.0], [2.0]))
    assert complexity.loglog_slope([1, 10, 100, 1000], [2, 20, -1, 2000]) == pytest.approx(1.0)


def test_best_fixed_step_worst_of_a_group():
    p = problems.quartic()
    x0 = jnp.array([[1.0], [2.0], [3.0], [4.0]])
    hs = np.geomspace(1e-4, 1.0, 9)
    single = complexity.best_fixed_step(p, x0, hs, eps=1e-2, cap=50_000)
    grouped = complexity.best_fixed_step(p, x0, hs, eps=1e-2, cap=50_000, worst_of=2)
    g = single["grid"].reshape(2, 2, -1)
    expect = np.where((g < 0).any(axis=1), -1, g.max(axis=1))
    assert np.array_equal(grouped["grid"], expect)
    ok = expect >= 0
    assert list(grouped["iterations"]) == [expect[i][ok[i]].min() for i in range(2)]
    with pytest.raises(ValueError, match="worst_of must divide"):
        complexity.best_fixed_step(p, x0, hs, eps=1e-2, cap=100, worst_of=3)
