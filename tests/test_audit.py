"""Audit: zero violations where the theory holds, violations detected where it cannot, and
the largest descending step against closed forms."""

import jax.numpy as jnp
import numpy as np
import pytest

from research import audit, engine, optimizers, problems, theory


def _run(p, opt, x0, steps=300):
    return engine.run(p, opt, x0, steps=steps)


@pytest.mark.parametrize("p", [
    # seven engine programs per problem: x^4 runs in make test (and the descent_audit
    # experiment's claims in the mutation suite); cosh, x^6 and the L-smooth controls in
    # make test-all
    problems.quartic(),
    pytest.param(problems.cosh(dim=3), marks=pytest.mark.slow),
    pytest.param(problems.sextic(), marks=pytest.mark.slow),
    pytest.param(problems.logistic(), marks=pytest.mark.slow),
    pytest.param(problems.quadratic(dim=4, condition=30.0), marks=pytest.mark.slow)])
def test_no_violations_on_problems_with_constants(p):
    p = p.deterministic  # the audit holds steps along -grad f: full-batch gradients
    x0 = jnp.stack([p.x0 * s for s in (0.1, 0.5, 1.0, 2.0)])
    eta, gamma = theory.clipped_gd_parameters(p.L0, max(p.L1, 1e-3))
    for opt in (optimizers.clipped_gd(eta, gamma), optimizers.l0l1_gd(p.L0, p.L1, "si"),
                optimizers.gd(1e-3), optimizers.gd(0.5)):  # the last one may diverge
        res = _run(p, opt, x0)
        a = audit.descent_audit(res.trace["f"], res.trace["grad_norm"],
                                res.trace["step_size"], p.L0, p.L1)
        assert a.n_steps > 0 and a.violations == 0, a.worst_excess
    for rule in ("star", "si", "cl"):
        res = _run(p, optimizers.l0l1_gd(p.L0, p.L1, rule), x0)
        a = audit.progress_audit(res.trace["f"], res.trace["grad_norm"], p.L0, p.L1, rule)
        assert a.n_steps > 0 and a.violations == 0
        # where the promised decrease is well above rounding, it is met
        big = a.guaranteed > 1e-8 * np.abs(a.measured).max()
        assert np.all(a.measured[big] >= a.guaranteed[big] * (1 - 1e-6))


def test_audit_detects_wrong_constants():
    p = problems.quartic()
    res = _run(p, optimizers.gd(0.01), jnp.array([[2.0], [3.0]]))
    wrong = audit.descent_audit(res.trace["f"], res.trace["grad_norm"],
                                res.trace["step_size"], L0=0.1, L1=0.0)
    assert wrong.violations > 0
    res = _run(p, optimizers.l0l1_gd(p.L0, p.L1, "si"), jnp.array([[3.0]]))
    claimed_too_much = audit.progress_audit(res.trace["f"] * 1.0, res.trace["grad_norm"] * 10,
                                            p.L0, p.L1, "si")
    assert claimed_too_much.violations > 0


def test_max_step_quartic_closed_form():
    """x^4: f(x - h 4x^3) <= f(x) iff |1 - 4 h x^2| <= 1 iff h <= 1/(2 x^2)."""
    x = jnp.geomspace(1e-2, 1e3, 40)[:, None]
    h, g = audit.max_step(problems.quartic().fn, x)
    assert np.allclose(h, 1 / (2 * x[:, 0] ** 2), rtol=1e-9)
    assert np.allclose(g, 4 * x[:, 0] ** 3, rtol=1e-14)


def test_max_step_cosh_closed_form():
    """cosh: |x - h sinh x| <= |x| iff h <= 2x / sinh x."""
    x = jnp.linspace(0.05, 30.0, 40)[:, None]
    h, _ = audit.max_step(problems.cosh().fn, x)
    assert np.allclose(h, 2 * x[:, 0] / np.sinh(x[:, 0]), rtol=1e-9)


def test_max_step_half_decrease_is_a_boundary():
    p = problems.cosh(dim=2)
    x = jnp.array([[1.0, -2.0], [5.0, 0.3], [0.1, 0.1]])
    h, g = audit.max_step(p.fn, x, c=0.5)
    for xi, hi, gi in zip(x, h, g, strict=True):
        grad = np.asarray(jnp.sinh(xi))
        f0 = float(p.fn(xi))
        assert float(p.fn(xi - hi * grad)) <= f0 - 0.5 * hi * gi**2 + 1e-12
        longer = hi * (1 + 1e-6)
        assert float(p.fn(xi - longer * grad)) > f0 - 0.5 * longer * gi**2
    h_descent, _ = audit.max_step(p.fn, x, c=0.0)
    assert np.all(h < h_descent)


def test_max_step_quadratic_is_two_over_L():
    q = problems.quadratic(dim=1, condition=7.0)
    h, _ = audit.max_step(q.fn, jnp.array([[1.0], [-3.0]]))
    assert np.allclose(h, 2 / 7.0, rtol=1e-9)


def test_underflow_steps_are_skipped_not_counted():
    f = np.array([[1e-300, 1e-301, 1e-303, 1e-305]])  # all below UNDERFLOW after the first
    g = np.array([[1e-150, 1e-151, 1e-152, 1e-153]])
    h = np.array([[1.0, 1.0, 1.0, np.nan]])
    a = audit.descent_audit(f, g, h, 1.0, 1.0)
    assert a.n_steps + a.underflow_skipped == 3 and a.underflow_skipped >= 1


def test_max_step_on_pytrees_matches_flat():
    def fn(p):
        return jnp.sum(p["a"] ** 4) + jnp.sum(jnp.cosh(p["b"]))

    pts = {"a": jnp.array([[1.0, 2.0], [0.5, -1.0]]), "b": jnp.array([[3.0], [-2.0]])}
    h_tree, g_tree = audit.max_step(fn, pts)
    flat = jnp.concatenate([pts["a"], pts["b"]], axis=1)
    h_flat, g_flat = audit.max_step(
        lambda v: jnp.sum(v[:2] ** 4) + jnp.sum(jnp.cosh(v[2:])), flat)
    assert np.allclose(h_tree, h_flat, rtol=1e-12) and np.allclose(g_tree, g_flat, rtol=1e-14)


def _clipped_quartic(record_every):
    from research import engine, optimizers, problems

    p = problems.quartic()
    return p, engine.run(p, optimizers.clipped_gd(0.1, 1.0), jnp.asarray([[1.0], [3.0]]),
                         steps=50, record_every=record_every)


def test_thinned_traces_are_refused_not_audited_as_single_steps():
    p, thin = _clipped_quartic(10)
    with pytest.raises(ValueError, match=r"record_every=1\); got iterates \[10\] steps apart"):
        audit.audit_run(thin, p.L0, p.L1)
    with pytest.raises(ValueError, match="progress_audit needs a trace of every step"):
        audit.progress_audit(thin.trace["f"], thin.trace["grad_norm"], p.L0, p.L1, "si",
                             iterations=thin.iterations)
    p, full = _clipped_quartic(1)
    a = audit.audit_run(full, p.L0, p.L1)
    assert a.n_steps + a.underflow_skipped == 2 * 50 and a.violations == 0


def test_a_sweeps_records_are_audited_row_by_row_and_thinned_ones_refused(tmp_path):
    from research import results, sweep

    p = problems.quartic()
    for name, every in (("fine", 1), ("thin", 10)):
        rows, traces = sweep.run_grid(p, "clipped_gd", {"eta": 0.1, "gamma": 1.0},
                                      spec={"x0": [1.0, 3.0]}, steps=50, record_every=every)
        results.write_record(tmp_path / name, config={"engine": {"record_every": every}},
                             metrics={results.ROWS: rows}, traces=traces)
    table = audit.audit_records(tmp_path / "fine", p.L0, p.L1)
    assert list(table["violations"]) == [0, 0]
    assert list(table["steps_audited"] + table["underflow_skipped"]) == [50, 50]
    with pytest.raises(ValueError, match=r"thin recorded every \[10\] steps"):
        audit.audit_records(tmp_path, p.L0, p.L1)
