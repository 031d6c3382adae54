"""Problems: (L0,L1) bounds hold on many points, gradients are right, bad input is refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from research import problems
from research.problems import Problem, gradient_check
from tests.conftest import ALL_PROBLEMS, ids


def _points(p: Problem, n: int, seed: int):
    """Points near the minimum, at moderate range and far away (several decades)."""
    rng = np.random.default_rng(seed)
    d = p.x0.size
    scales = np.geomspace(1e-3, 30.0, n)
    if p.name.startswith(("power", "sextic")):
        scales = np.geomspace(1e-3, 12.0, n)  # keep ||x||^(2n) far below overflow
    dirs = rng.standard_normal((n, d))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return jnp.asarray(dirs * scales[:, None] * rng.uniform(0.5, 1.5, (n, 1)))


def test_hessian_bounded_by_L0_plus_L1_grad(constant_problem):
    p = constant_problem
    x = _points(p, 400, seed=1)
    if p.name == "logistic":
        x = x + p.x0  # around the default start
    hess = jax.jit(jax.vmap(jax.hessian(p.fn)))(x)
    spec = np.linalg.norm(np.asarray(hess), ord=2, axis=(1, 2))  # spectral norm, float64
    gnorm = np.linalg.norm(np.asarray(jax.jit(jax.vmap(jax.grad(p.fn)))(x)), axis=1)
    bound = p.L0 + p.L1 * gnorm
    assert hess.dtype == jnp.float64
    # float tolerance only: relative 1e-12 of the bound
    assert np.all(spec <= bound * (1 + 1e-12) + 1e-12), (spec - bound).max()


@pytest.mark.parametrize("p", [problems.quartic(L1=L1) for L1 in (0.5, 2.0, 8.0)]
                         + [problems.sextic(L1=L1) for L1 in (1.0, 3.0)]
                         + [problems.power(n=n, L1=2.0) for n in (2, 3, 4)])
def test_stated_L0_is_tight(p):
    """The bound is attained: on a fine radial grid, max(||H|| - L1||g||) equals L0."""
    r = jnp.linspace(0.0, 40.0 / p.L1, 400_001)
    d = p.x0.size
    x = (r[:, None] * jnp.ones(d) / np.sqrt(d)) if p.name.startswith("power") else r[:, None]
    if p.name.startswith("power"):
        # along a ray the top Hessian eigenvalue is 2(2n-1) r^(2n-2), ||g|| = 2 r^(2n-1)
        n = int(p.name[5:])
        gap = 2 * (2 * n - 1) * r ** (2 * n - 2) - p.L1 * 2 * r ** (2 * n - 1)
    else:
        hess = jax.jit(jax.vmap(jax.hessian(p.fn)))(x)[:, 0, 0]
        gap = hess - p.L1 * jnp.abs(jax.jit(jax.vmap(jax.grad(p.fn)))(x)[:, 0])
    del x
    assert float(jnp.max(gap)) == pytest.approx(p.L0, rel=1e-6)


def test_cosh_and_quadratic_constants_exact():
    # cosh: ||H|| - ||g|| = e^{-|x|} -> sup 1 at 0; quadratic: ||H|| = condition
    c = problems.cosh()
    assert float(jax.hessian(c.fn)(jnp.zeros(1))[0, 0]) == 1.0 == c.L0
    q = problems.quadratic(dim=4, condition=50.0)
    eig = np.linalg.eigvalsh(np.asarray(jax.hessian(q.fn)(jnp.ones(4))))
    assert eig.max() == pytest.approx(q.L0, rel=1e-12) and q.L1 == 0.0


def _gradient_checks(p, directions, scales=(0.05, 0.5, 1.0)):
    rng = np.random.default_rng(0)
    flat, unravel = ravel_pytree(p.x0)
    # central differences lose about eps_mach |f| / h to rounding: the MLP's loss is ~2e4,
    # so it takes a longer difference step (same 1e-7 threshold)
    h = 1e-5 if p.name == "mlp_regression" else 1e-6
    for scale in scales:
        x = unravel(flat * scale + jnp.asarray(rng.normal(0, 0.1, flat.shape)))
        assert gradient_check(p.fn, x, h=h, directions=directions) < 1e-7


SMALL_PROBLEMS = [p for p in ALL_PROBLEMS if ravel_pytree(p.x0)[0].size <= 64]
LARGE_PROBLEMS = [p for p in ALL_PROBLEMS if ravel_pytree(p.x0)[0].size > 64]


@pytest.mark.parametrize("p", [
    # the two larger networks have their own gradient checks in tests/test_networks.py
    pytest.param(p, marks=pytest.mark.slow) if p.name in ("char_lm", "resnet_digits") else p
    for p in ALL_PROBLEMS], ids=ids(ALL_PROBLEMS))
def test_gradient_check_every_problem(p):
    """Every coordinate at three points for small problems; 12 random directions at one
    point for the networks (every coordinate at three points is the slow
    test_gradient_check_networks_fully)."""
    if p in SMALL_PROBLEMS:
        _gradient_checks(p, None)
    else:
        _gradient_checks(p, 12, scales=(1.0,))


FULLY_CHECKED = [p for p in LARGE_PROBLEMS if p.name not in ("char_lm", "resnet_digits")]
"""Every coordinate of these networks is checked; char_lm and resnet_digits, whose
coordinate-by-coordinate check would vmap thousands of full-batch evaluations (28 GB for the
ResNet), are checked along random directions in tests/test_networks.py."""


@pytest.mark.slow
@pytest.mark.parametrize("p", FULLY_CHECKED, ids=ids(FULLY_CHECKED))
def test_gradient_check_networks_fully(p):
    _gradient_checks(p, None)


def test_directional_gradient_check_can_fail():
    def f(x):
        return jnp.sum(jnp.sin(x) * x)

    @jax.custom_jvp
    def wrong(x):
        return f(x)

    @wrong.defjvp
    def _(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), jnp.sum((jnp.cos(x) * x) * t)  # drops the sin(x) term

    x = jnp.linspace(0.3, 2.0, 300)
    assert gradient_check(f, x, directions=4) < 1e-8
    assert gradient_check(wrong, x, directions=4) > 1e-3


def test_gradient_check_can_fail():
    """A wrong derivative (custom_jvp with an error) is caught."""

    @jax.custom_jvp
    def f(x):
        return jnp.sum(x**4)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), jnp.sum(4.1 * x**3 * t)  # 2.5% too large

    assert gradient_check(f, jnp.array([1.5, -0.7])) > 1e-3


def test_f_star_is_min_or_lower_bound():
    for p in ALL_PROBLEMS:
        if not isinstance(p.x0, jax.Array):
            continue  # networks: a mean of squares, >= f* = 0 by construction
        x = _points(p, 200, seed=3) + (p.x0 if p.name in ("logistic", "cliff") else 0.0)
        vals = jax.vmap(p.fn)(x)
        assert np.all(np.asarray(vals) >= p.f_star - 1e-12), p.name
    lg = problems.logistic()
    # the Newton minimiser: gradient zero there, so f* is exact and is the minimum
    assert float(lg.fn(jnp.zeros(5))) > lg.f_star


def test_logistic_stochastic_fn_is_unbiased():
    p = problems.logistic()
    keys = jax.random.split(jax.random.PRNGKey(0), 20_000)
    est = jax.vmap(p.stochastic_fn, in_axes=(None, 0))(p.x0 * 0.1, keys)
    exact = float(p.fn(p.x0 * 0.1))
    sem = float(jnp.std(est)) / np.sqrt(est.size)
    assert abs(float(jnp.mean(est)) - exact) < 4 * sem


def test_cliff_has_a_wall():
    """Gradients on the (w, b) plane span orders of magnitude (the exploding-gradient cliff)."""
    c = problems.cliff()
    w, b = np.meshgrid(np.linspace(0, 10, 101), np.linspace(-8, 2, 101))
    th = jnp.stack([w.ravel(), b.ravel()], 1)
    gn = np.linalg.norm(np.asarray(jax.jit(jax.vmap(jax.grad(c.fn)))(th)), axis=1)
    assert np.percentile(gn, 99.9) > 100 * np.median(gn)


def test_registry_and_bad_input():
    assert {"quartic", "cosh", "quadratic", "logistic", "cliff", "power"} <= set(problems.names())
    assert problems.quartic() is problems.quartic()  # cached: one compile per problem
    with pytest.raises(ValueError, match="problem must be one of"):
        problems.get("quintic")
    with pytest.raises(ValueError, match="L1"):
        Problem(name="bad", fn=lambda x: x, L0=1.0, L1=-1.0)
    with pytest.raises(ValueError, match="L0"):
        Problem(name="bad", fn=lambda x: x, L0=float("nan"), L1=1.0)
    with pytest.raises(ValueError, match="x0"):
        Problem(name="bad", fn=lambda x: x, x0=jnp.array([1.0, jnp.inf]))
    with pytest.raises(ValueError, match="dim"):
        problems.quartic(dim=0)
    for L1 in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="L1 must be a finite positive number"):
            problems.quartic(L1=L1)
        with pytest.raises(ValueError, match="L1 must be a finite positive number"):
            problems.sextic(L1=L1)


def test_deterministic_view_is_cached_and_full_batch():
    lg = problems.logistic()
    assert lg.deterministic is lg.deterministic and lg.deterministic.stochastic_fn is None
    assert lg.deterministic.fn is lg.fn and lg.stochastic
    q = problems.quartic()
    assert q.deterministic is q


@pytest.mark.parametrize("M", [10.0, 1e3, 1e6])
def test_hard_instance_constants_on_dense_grid(M):
    p = problems.hard_instance(M=M)
    x = jnp.linspace(-1.3 * float(p.x0[0]), 1.3 * float(p.x0[0]), 200_001)
    f2 = jax.jit(jax.vmap(jax.grad(jax.grad(lambda t: p.fn(jnp.atleast_1d(t))))))(x)
    f1 = jax.jit(jax.vmap(jax.grad(lambda t: p.fn(jnp.atleast_1d(t)))))(x)
    assert np.all(np.asarray(f2) <= (p.L0 + p.L1 * np.abs(np.asarray(f1))) * (1 + 1e-12))
    # the start sits where |f'| = M, the largest gradient on its sublevel set
    g0 = float(jax.grad(p.fn)(p.x0)[0])
    assert g0 == pytest.approx(M, rel=1e-12)
    inside = np.asarray(jax.jit(jax.vmap(p.fn))(x[:, None])) <= float(p.fn(p.x0))
    assert np.abs(np.asarray(f1))[inside].max() <= M * (1 + 1e-12)
    # curvature at the start is about L1 M: the steep region
    assert float(jax.hessian(p.fn)(p.x0)[0, 0]) == pytest.approx(p.L1 * M, rel=0.05)


def test_hard_instance_bad_input():
    with pytest.raises(ValueError, match="M must exceed delta"):
        problems.hard_instance(M=0.01)
    with pytest.raises(ValueError, match="flat"):
        problems.hard_instance(flat=-1.0)


@pytest.mark.parametrize("noise", ["uniform", "skewed"])
def test_noisy_problem_unbiased_and_bounded(noise):
    p = problems.noisy("quartic", tau=2.0, noise=noise, dim=3)
    x = jnp.array([0.5, -1.0, 2.0])
    keys = jax.random.split(jax.random.PRNGKey(1), 40_000)
    g = jax.jit(jax.vmap(jax.grad(p.stochastic_fn), in_axes=(None, 0)))(x, keys)
    xi = np.asarray(g - jax.grad(p.fn)(x))
    assert np.linalg.norm(xi, axis=1).max() <= 2.0 * (1 + 1e-12)
    sem = xi.std(axis=0) / np.sqrt(xi.shape[0])
    assert np.all(np.abs(xi.mean(axis=0)) < 4 * sem)
    assert p.L0 == problems.quartic(dim=3).L0 and p.extra["tau"] == 2.0
    if noise == "skewed":  # asymmetric: the median is below the mean
        assert np.all(np.median(xi, axis=0) < 0)
    with pytest.raises(ValueError, match="noise must be one of"):
        problems.noisy("quartic", noise="gaussian")
