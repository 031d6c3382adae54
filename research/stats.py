"""Correlation statistics that survive autocorrelated, trending series from a few seeds.

The smoothness experiment asks whether local smoothness L grows with the gradient norm g
along training. Its raw material is a handful of runs (seeds), each a time series of ~50
logged points. Three things make a plain Spearman p-value over one run misleading:

- neighbouring points are autocorrelated, so the n points are worth far fewer independent
  observations (a p-value that assumes n independent pairs is far too small);
- g and L both shrink as training proceeds, so a shared time trend alone makes them
  correlate, whatever their relation at a given time;
- single-seed training is chaotic, so one trajectory is one draw among many.

This module answers each in turn: ``partial_spearman`` (the association given the step
index) and ``detrended_correlation`` (the association of the step-to-step changes) remove
the shared trend; ``block_bootstrap_ci`` resamples blocks of consecutive points within each
run, and the runs themselves, to get intervals that respect both kinds of dependence;
``verdict`` reads an interval; ``is_training`` says whether a run's loss went down at all.

Everything is plain NumPy/SciPy. No function raises on NaN, inf or too few points: the
statistics return NaN, the intervals (NaN, NaN), the verdict "no evidence", and
``is_training`` False with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as _sps

MIN_POINTS = 4
"""Fewest (finite) points for which any correlation below is computed; fewer give NaN."""

VERDICTS = ("positive", "negative", "no evidence")
"""The values of ``verdict``."""


# --------------------------------------------------------------------------- helpers


def _as_float(a) -> np.ndarray:
    return np.asarray(a, dtype=float).ravel()


def _pearson_b(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of two (B, n) arrays; NaN for a row with fewer than
    ``MIN_POINTS`` columns, no spread, or a NaN."""
    out = np.full(a.shape[0], np.nan)
    if a.shape[1] < MIN_POINTS:
        return out
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    with np.errstate(all="ignore"):
        den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
        r = np.einsum("ij,ij->i", a, b) / den
    ok = np.isfinite(den) & (den > 0)
    out[ok] = np.clip(r[ok], -1.0, 1.0)
    return out


def _ranks_b(a: np.ndarray) -> np.ndarray:
    """Row-wise ranks 1..n of a (B, n) array, ties getting their average rank."""
    return _sps.rankdata(a, axis=1)


def _resample_ranks(data: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``_ranks_b`` of every column of ``data[idx]`` (shape (B, N, k)), equal to it exactly,
    by counting instead of sorting each resample.

    ``data`` (M, k) is finite; ``idx`` (B, N) are row indices into it. Each column's values
    are replaced once by their dense rank in ``data`` (ties share one); within a resample, a
    value of dense rank r then has c_r copies and s_r resampled values below it, so its
    average rank is s_r + (c_r + 1) / 2: a bincount and a cumulative sum per resample, in
    place of B sorts of N values (the bootstrap's cost: a sort per resample per column).
    """
    B, N = idx.shape
    out = np.empty((B, N, data.shape[1]))
    offset = np.arange(B)[:, None]
    for j in range(data.shape[1]):
        _, dense = np.unique(data[:, j], return_inverse=True)
        k = int(dense.max()) + 1 if dense.size else 1
        flat = dense.ravel()[idx] + offset * k  # (resample, dense rank) as one index
        counts = np.bincount(flat.ravel(), minlength=B * k)
        below = (np.cumsum(counts.reshape(B, k), axis=1).ravel() - counts)
        out[..., j] = below[flat] + (counts[flat] + 1) / 2
    return out


def _residual_b(a: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row-wise residual of ``a`` after an OLS fit a ~ 1 + t (only the mean where t is
    constant)."""
    a = a - a.mean(axis=1, keepdims=True)
    t = t - t.mean(axis=1, keepdims=True)
    tt = np.einsum("ij,ij->i", t, t)
    coef = np.divide(np.einsum("ij,ij->i", a, t), tt, out=np.zeros_like(tt), where=tt > 0)
    return a - coef[:, None] * t


def _spearman_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise Spearman correlation of two finite (B, n) arrays."""
    return _spearman_ranked(_ranks_b(x), _ranks_b(y))


def _spearman_ranked(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """``_spearman_b`` from the row-wise ranks of x and y."""
    if rx.shape[1] < MIN_POINTS:
        return np.full(rx.shape[0], np.nan)
    return _pearson_b(rx, ry)


def _slope_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise OLS slope of y on x (with intercept); NaN where x has no spread."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[1] < MIN_POINTS:
        return out
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    xx = np.einsum("ij,ij->i", xc, xc)
    ok = np.isfinite(xx) & (xx > 0)
    with np.errstate(all="ignore"):
        out[ok] = np.einsum("ij,ij->i", xc, yc)[ok] / xx[ok]
    return out


def _partial_b(x: np.ndarray, y: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Row-wise partial Spearman correlation of x and y given t (finite (B, n) arrays)."""
    if x.shape[1] < MIN_POINTS:
        return np.full(x.shape[0], np.nan)
    return _partial_ranked(_ranks_b(x), _ranks_b(y), _ranks_b(t))


def _partial_ranked(rx: np.ndarray, ry: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """``_partial_b`` from the row-wise ranks of x, y and t."""
    n = rx.shape[1]
    if n < MIN_POINTS:
        return np.full(rx.shape[0], np.nan)
    ex = _residual_b(rx, rt)
    ey = _residual_b(ry, rt)
    out = _pearson_b(ex, ey)
    # ranks are O(n): a residual below n * 1e-9 is round-off, i.e. x or y is an exact
    # monotone function of t and nothing is left to correlate
    gone = (np.abs(ex).max(axis=1) < 1e-9 * n) | (np.abs(ey).max(axis=1) < 1e-9 * n)
    out[gone] = np.nan
    return out


def _finite(*arrays):
    """The arrays restricted to the positions where all of them are finite."""
    arrays = [_as_float(a) for a in arrays]
    n = min(a.size for a in arrays)
    arrays = [a[:n] for a in arrays]
    ok = np.ones(n, bool)
    for a in arrays:
        ok &= np.isfinite(a)
    return [a[ok] for a in arrays]


def _log_positive(a) -> np.ndarray:
    """log(a) where a > 0 and finite, NaN elsewhere (never a warning)."""
    a = _as_float(a)
    out = np.full(a.shape, np.nan)
    ok = np.isfinite(a) & (a > 0)
    out[ok] = np.log(a[ok])
    return out


# --------------------------------------------------------------------------- statistics


def spearman(x, y) -> float:
    """Spearman rank correlation of x and y over the pairs where both are finite.

    Returns:
      A float in [-1, 1], or NaN with fewer than ``MIN_POINTS`` pairs or no spread.
    """
    x, y = _finite(x, y)
    return float(_spearman_b(x[None], y[None])[0])


def ols_slope(x, y) -> float:
    """Least-squares slope of y on x (with intercept) over the finite pairs; NaN with fewer
    than ``MIN_POINTS`` pairs or when x has no spread."""
    x, y = _finite(x, y)
    return float(_slope_b(x[None], y[None])[0])


def partial_spearman(x, y, t) -> float:
    """Spearman correlation of x and y given t.

    Rank-transform x, y and t (over the triples where all three are finite), regress the
    ranks of x and of y on the ranks of t by least squares (with intercept), and return the
    Pearson correlation of the two residuals. This equals the textbook formula
    (r_xy - r_xt r_yt) / sqrt((1 - r_xt^2)(1 - r_yt^2)) on Spearman correlations.

    Because ranks turn any monotone function of t into a straight line in rank(t), a trend
    shared by x and y that is monotone in t (e.g. both shrinking along training, at whatever
    rate) is removed entirely; what remains is whether x is above its trend when y is.

    Args:
      x, y, t: 1-D arrays of the same length (t: e.g. the step index).

    Returns:
      A float in [-1, 1]; NaN with fewer than ``MIN_POINTS`` finite triples, or when x or y
      is an exact monotone function of t (nothing left once t is accounted for).
    """
    x, y, t = _finite(x, y, t)
    return float(_partial_b(x[None], y[None], t[None])[0])


def log_differences(x, y, t) -> tuple[np.ndarray, np.ndarray]:
    """First differences of log x and log y between consecutive points in t order.

    Points with a non-positive or non-finite x or y, or a non-finite t, make the two
    differences that touch them NaN (a gap is never bridged by one difference).

    Returns:
      (d log x, d log y), each of length n - 1 (NaN where undefined).
    """
    x, y, t = _as_float(x), _as_float(y), _as_float(t)
    n = min(x.size, y.size, t.size)
    if n < 2:
        return np.empty(0), np.empty(0)
    x, y, t = x[:n], y[:n], t[:n]
    order = np.argsort(np.where(np.isfinite(t), t, np.inf), kind="stable")
    lx, ly = _log_positive(x[order]), _log_positive(y[order])
    bad = ~np.isfinite(t[order])
    lx[bad] = np.nan
    ly[bad] = np.nan
    return np.diff(lx), np.diff(ly)


def detrended_correlation(x, y, t) -> float:
    """Correlation of x and y with every trend in t removed by first differences.

    Definition: the Spearman correlation between the first differences of log x and of log
    y, taken between consecutive points in t order (``log_differences``). It asks: when log x
    moves up from one logged point to the next, does log y move up too?

    Differencing removes a trend linear in t exactly (it becomes a constant, which a
    correlation ignores), a smooth trend up to its local slope, and random-walk components:
    the residuals of a polynomial fit in t would keep those, and two independent random walks
    correlate spuriously (Granger and Newbold 1974). The differences of a trending series are
    far less autocorrelated than its levels, so ``block_bootstrap_ci`` picks shorter blocks
    for them. Assumes roughly evenly spaced t (as along training, logged every k steps).

    Args:
      x, y: positive 1-D arrays (non-positive and non-finite points are dropped, with the
        differences that touch them).
      t: the order of the points (e.g. the step index).

    Returns:
      A float in [-1, 1]; NaN with fewer than ``MIN_POINTS`` finite differences or no
      spread.
    """
    dx, dy = log_differences(x, y, t)
    return spearman(dx, dy)


def lag1_autocorrelation(a) -> float:
    """The lag-1 sample autocorrelation of the finite entries of ``a`` (in order); NaN with
    fewer than ``MIN_POINTS`` entries or no spread."""
    a = _as_float(a)
    a = a[np.isfinite(a)]
    if a.size < MIN_POINTS:
        return math.nan
    a = a - a.mean()
    den = float(a @ a)
    if not den > 0:
        return math.nan
    return max(-1.0, min(1.0, float(a[1:] @ a[:-1]) / den))


def block_length(n: int, rho1: float = math.nan) -> int:
    """The block length for a circular block bootstrap of ``n`` points with lag-1
    autocorrelation ``rho1``.

    Rule: the MSE-optimal length for the circular block bootstrap of Politis and White
    (2004), b = (2 G^2 / D)^(1/3) n^(1/3), evaluated for an AR(1) series with coefficient
    rho, for which 2 G^2 / D = 6 rho^2 / (1 - rho^2)^2:

        b = ceil( (6 n)^(1/3) * (|rho| / (1 - rho^2))^(2/3) ),

    with |rho| capped at 0.99, then clipped to [1, max(1, n // 3)] (the cap of n / 3 is that
    of their implementation, b.star in the R package np: every resample draws at least
    three blocks). For n = 50: rho 0.3 gives 4, 0.5 gives 6, 0.9 gives 16 (the cap); rho 0
    gives 1, the ordinary bootstrap. When rho1 is NaN (too few points), b = ceil(n^(1/3)).

    Returns:
      An int >= 1.
    """
    n = max(int(n), 1)
    cap = max(1, n // 3)
    if not math.isfinite(rho1):
        return max(1, min(cap, math.ceil(n ** (1 / 3))))
    r = min(abs(rho1), 0.99)
    b = math.ceil((6 * n) ** (1 / 3) * (r / (1 - r * r)) ** (2 / 3)) if r > 0 else 1
    return max(1, min(cap, b))


def auto_block_length(series_per_seed: Sequence[np.ndarray]) -> int:
    """``block_length`` for a set of runs: n is the median run length and rho the median over
    runs of the largest |lag-1 autocorrelation| among a run's columns."""
    runs = [_rows(s) for s in series_per_seed]
    runs = [s for s in runs if s.shape[0] > 0]
    if not runs:
        return 1
    n = int(np.median([s.shape[0] for s in runs]))
    rhos = []
    for s in runs:
        r = [abs(lag1_autocorrelation(s[:, j])) for j in range(s.shape[1])]
        r = [v for v in r if math.isfinite(v)]
        if r:
            rhos.append(max(r))
    return block_length(n, float(np.median(rhos)) if rhos else math.nan)


def _rows(a) -> np.ndarray:
    """A run as a 2-D float array (points x columns)."""
    a = np.asarray(a, dtype=float)
    if a.ndim <= 1:
        return a.reshape(-1, 1)
    return a.reshape(a.shape[0], int(np.prod(a.shape[1:])))


# --------------------------------------------------------------------------- the bootstrap


class BootstrapCI(NamedTuple):
    """A point estimate and its bootstrap percentile interval."""

    estimate: float
    lo: float
    hi: float
    level: float
    block_len: int
    n_boot: int
    n_valid: int  # resamples whose statistic was finite (the interval is over these)

    def as_dict(self) -> dict:
        """{"estimate", "lo", "hi"} as plain floats."""
        return {"estimate": self.estimate, "lo": self.lo, "hi": self.hi}


class PooledStatistic:
    """A statistic of the rows of all runs together, with a batched form for the bootstrap.

    ``PooledStatistic(fn)(runs)`` concatenates the runs' rows (a list of (n_i, k) arrays)
    and returns ``fn`` of them; ``fn`` maps a (B, N, k) array of B row sets to B values, so
    ``block_bootstrap_ci`` evaluates all resamples in one vectorised call.

    ``from_ranks``, for a statistic of the columns' ranks only (a Spearman correlation),
    maps the (B, N, k) array of each column's ranks within each row set to the same B
    values; ``block_bootstrap_ci`` then ranks the resamples by counting
    (``_resample_ranks``) rather than by sorting each one.
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], name: str = "",
                 from_ranks: Callable[[np.ndarray], np.ndarray] | None = None):
        self.batched = fn
        self.name = name
        self.from_ranks = from_ranks

    def __call__(self, runs: Sequence[np.ndarray]) -> float:
        runs = [_rows(r) for r in runs]
        if not runs:
            return math.nan
        rows = np.concatenate(runs)
        with np.errstate(all="ignore"):
            return float(self.batched(rows[None])[0])


def _resample_indices(lengths: list[int], block_len: int, n_boot: int,
                      gen: np.random.Generator):
    """Row indices (into the runs' rows concatenated) of ``n_boot`` hierarchical circular
    block resamples, grouped by their total length.

    Yields:
      (positions of the resamples in 0..n_boot-1, index array of shape (m, N), lengths of
      the resampled runs within each row: shape (m, number of runs)).
    """
    S = len(lengths)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
    chosen = gen.integers(0, S, (n_boot, S)) if S > 1 else np.zeros((n_boot, 1), int)
    if len(set(lengths)) == 1:  # all runs equally long: one vectorised draw
        n = lengths[0]
        b = min(block_len, n)
        k = math.ceil(n / b)
        starts = gen.integers(0, n, (n_boot, S, k))
        idx = ((starts[..., None] + np.arange(b)) % n).reshape(n_boot, S, k * b)[:, :, :n]
        idx = idx + offsets[chosen][..., None]
        yield np.arange(n_boot), idx.reshape(n_boot, S * n), np.full((n_boot, S), n)
        return
    lengths_arr = np.asarray(lengths)
    groups: dict[int, tuple[list[int], list[np.ndarray]]] = {}
    for i in range(n_boot):
        parts = []
        for j in chosen[i]:
            n = lengths[j]
            b = min(block_len, n)
            starts = gen.integers(0, n, math.ceil(n / b))
            parts.append(((starts[:, None] + np.arange(b)) % n).ravel()[:n] + offsets[j])
        idx = np.concatenate(parts)
        pos, rows = groups.setdefault(idx.size, ([], []))
        pos.append(i)
        rows.append(idx)
    for pos, rows in groups.values():
        pos = np.asarray(pos)
        yield pos, np.stack(rows), lengths_arr[chosen[pos]]


def block_bootstrap_ci(statistic: Callable[[list[np.ndarray]], float],
                       series_per_seed: Sequence, block_len: int | None = None,
                       n_boot: int = 1000, level: float = 0.95,
                       rng: int | np.random.Generator = 0) -> BootstrapCI:
    """A hierarchical circular-block bootstrap percentile interval for ``statistic``.

    Each run (seed) is a time series whose rows are points in time order and whose columns
    are the variables (e.g. log g, log L, step). One resample:

    1. when there are two or more runs, draws as many runs with replacement (seed-level
       variation: chaotic training makes each run one draw among many);
    2. within each drawn run of n points, draws ceil(n / b) blocks of b consecutive rows,
       each starting at a uniform position and wrapping around the end (circular blocks,
       Politis and Romano 1992), and keeps the first n rows (time dependence within a run);
    3. evaluates ``statistic`` on the list of resampled runs.

    The interval is the (1 - level)/2 and (1 + level)/2 percentiles of the finite resampled
    statistics (percentile method). Deterministic for an integer ``rng``.

    Args:
      statistic: maps a list of 2-D arrays (one per run, rows = points) to a float, NaN when
        undefined. A ``PooledStatistic`` (a statistic of all rows together) is evaluated on
        all resamples at once; any other callable once per resample.
      series_per_seed: one array per run, shape (n_i,) or (n_i, k); runs with no row are
        ignored.
      block_len: b; None picks it by ``auto_block_length`` (from the lag-1 autocorrelation
        of the columns). Clipped to [1, n_i] per run.
      n_boot: number of resamples.
      level: coverage of the interval, in (0, 1).
      rng: an integer seed or a NumPy Generator.

    Returns:
      ``BootstrapCI``. estimate = statistic on the original runs. The interval is (NaN, NaN)
      when the estimate is NaN, when no run has a point, when ``level`` is not in (0, 1), or
      when fewer than half of the resamples give a finite statistic.
    """
    runs = [_rows(s) for s in series_per_seed]
    runs = [s for s in runs if s.shape[0] > 0]
    if block_len is None:
        block_len = auto_block_length(runs)
    block_len = max(1, int(block_len))
    n_boot = max(0, int(n_boot))
    try:
        level = float(level)
    except (TypeError, ValueError):
        level = math.nan
    with np.errstate(all="ignore"):
        est = float(statistic(runs)) if runs else math.nan
    if not runs or not math.isfinite(est) or n_boot == 0 or not 0 < level < 1:
        return BootstrapCI(est, math.nan, math.nan, level, block_len, n_boot, 0)
    if len({s.shape[1] for s in runs}) != 1:
        raise ValueError("series_per_seed: every run must have the same number of columns.")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    data = np.concatenate(runs)
    lengths = [s.shape[0] for s in runs]
    batched = getattr(statistic, "batched", None)
    from_ranks = getattr(statistic, "from_ranks", None)
    if from_ranks is not None and not np.isfinite(data).all():
        from_ranks = None  # ranks of NaN propagate as NaN: leave those to rankdata
    vals = np.full(n_boot, np.nan)
    with np.errstate(all="ignore"):
        for pos, idx, lens in _resample_indices(lengths, block_len, n_boot, gen):
            if from_ranks is not None:
                vals[pos] = from_ranks(_resample_ranks(data, idx))
                continue
            if batched is not None:
                vals[pos] = batched(data[idx])
                continue
            for p, row, ln in zip(pos, idx, lens, strict=True):
                vals[p] = statistic(np.split(data[row], np.cumsum(ln)[:-1]))
    ok = vals[np.isfinite(vals)]
    if ok.size < max(1, n_boot / 2):
        return BootstrapCI(est, math.nan, math.nan, level, block_len, n_boot, int(ok.size))
    lo, hi = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapCI(est, float(lo), float(hi), level, block_len, n_boot, int(ok.size))


def verdict(lo: float, hi: float) -> str:
    """Read an interval for a correlation (or slope).

    Returns:
      "positive" when the whole interval lies above 0 (lo > 0), "negative" when it lies below
      0 (hi < 0), and "no evidence" otherwise, including NaN or inverted bounds.
    """
    try:
        lo, hi = float(lo), float(hi)
    except (TypeError, ValueError):
        return "no evidence"
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        return "no evidence"
    if lo > 0:
        return "positive"
    if hi < 0:
        return "negative"
    return "no evidence"


# --------------------------------------------------------------------------- a median over seeds


class MedianInterval(NamedTuple):
    """A median with its distribution-free confidence interval (``median_interval``)."""

    median: float
    lo: float
    hi: float
    coverage: float
    """The interval's exact coverage probability (at least the level asked, unless even
    [min, max] falls short with so few values)."""
    n: int


def median_interval(values, level: float = 0.95) -> MedianInterval:
    """The median of independent values (one per seed) and the order-statistic interval
    [x_(j+1), x_(n-j)] with the largest j whose coverage P(j+1 <= B <= n-j-1), B ~
    Binomial(n, 1/2), is at least ``level``: exact for any continuous distribution, no
    bootstrap (for n = 20: [x_(6), x_(15)], coverage 0.959). With too few values for the
    level (n <= 5 at 0.95) it is [min, max] and ``coverage`` says how much less it is.

    Non-finite values are dropped first; none left gives NaN everywhere (n = 0).
    """
    x = np.sort(_as_float(values).ravel())
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return MedianInterval(math.nan, math.nan, math.nan, math.nan, 0)
    j, cover = _order_statistic(n, level)
    return MedianInterval(float(np.median(x)), float(x[j]), float(x[n - j - 1]), cover, n)


def _order_statistic(n: int, level: float) -> tuple[int, float]:
    """The largest j whose interval [x_(j+1), x_(n-j)] covers the median of n independent
    values with probability at least ``level``, and that coverage (j = 0 when none does)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1); got {level!r}.")

    def coverage(j: int) -> float:
        return float(_sps.binom.cdf(n - j - 1, n, 0.5) - _sps.binom.cdf(j, n, 0.5))

    j = 0
    while j + 1 < n - j - 1 and coverage(j + 1) >= level:
        j += 1
    return j, coverage(j) if n > 1 else 0.0


def median_bounds(lo, hi, level: float = 0.95) -> MedianInterval:
    """``median_interval`` for values known only to lie in [lo, hi] each (a censored or
    rounded count: an end may be 0 or inf): the interval [lo_(j+1), hi_(n-j)] covers the
    median with at least the coverage of the exact values' interval. ``median`` is NaN: no
    point value is known."""
    lo, hi = np.sort(_as_float(lo).ravel()), np.sort(_as_float(hi).ravel())
    n = int(lo.size)
    if n == 0 or hi.size != n:
        raise ValueError(f"lo and hi must hold one bound per value; got {lo.size} and "
                         f"{hi.size}.")
    j, cover = _order_statistic(n, level)
    return MedianInterval(math.nan, float(lo[j]), float(hi[n - j - 1]), cover, n)


# --------------------------------------------------------------------------- is it training?


TRAINING_MARGIN = 0.1
"""A run trains when its late loss is below its initial loss by at least this fraction."""


@dataclass(frozen=True)
class TrainingCheck:
    """Whether a run trained, why, and the two losses compared. True in a boolean
    context exactly when ``training`` is."""

    training: bool
    reason: str
    first: float
    """The loss at the first logged point, the initialisation (NaN when not finite)."""
    last: float
    """Median loss of the last quarter of the logged points (NaN when not computed)."""

    def __bool__(self) -> bool:
        return self.training


def is_training(loss, margin: float = TRAINING_MARGIN) -> TrainingCheck:
    """Did the loss go down?

    Rule: with q = max(1, n // 4) of the n logged losses, the run trains when every logged
    loss is finite (it did not diverge) and median(last q) < loss[0] - margin * |loss[0]|:
    the late loss is at least ``margin`` (10 %) below the loss at initialisation. A run whose
    loss rises or stays flat is not training, whatever its smoothness does.

    The reference is the first logged loss, not the median of the first quarter: a run that
    learns most of what it learns within its first quarter (the recurrent nets fall to the
    predict-the-mean plateau of the adding problem within 100 steps) did train, and a
    first-quarter median would call it flat. The losses are meant to be full-batch (exact,
    as along_training logs them), so one point is a fair reference.

    Args:
      loss: the logged losses in time order (NaN after a divergence, as along_training
        writes them).
      margin: the relative decrease required, >= 0.

    Returns:
      ``TrainingCheck``; never raises: non-finite losses give training False with reason
      "non-finite loss (diverged) ...", fewer than ``MIN_POINTS`` points give False with
      "too few points ...".
    """
    a = _as_float(loss)
    n = a.size
    if n < MIN_POINTS:
        return TrainingCheck(False, f"too few points ({n} < {MIN_POINTS})", math.nan, math.nan)
    q = max(1, n // 4)
    first = float(a[0]) if np.isfinite(a[0]) else math.nan
    if not np.all(np.isfinite(a)):
        bad = int(np.argmax(~np.isfinite(a)))
        return TrainingCheck(False, f"non-finite loss (diverged) from logged point {bad}",
                             first, math.nan)
    last = float(np.median(a[-q:]))
    try:
        margin = float(margin)
    except (TypeError, ValueError):
        margin = math.nan
    if not (math.isfinite(margin) and margin >= 0):
        return TrainingCheck(False, f"bad margin {margin!r}", first, last)
    if last < first - margin * abs(first):
        return TrainingCheck(True, f"loss {first:.4g} -> {last:.4g} (median of the last "
                                   "quarter)", first, last)
    return TrainingCheck(False, f"loss does not fall by {margin:.0%}: {first:.4g} at the start, "
                                f"median {last:.4g} over the last quarter", first, last)


# --------------------------------------------------------------------------- a log-log summary


pooled_spearman = PooledStatistic(lambda r: _spearman_b(r[..., 0], r[..., 1]), "spearman",
                                  lambda R: _spearman_ranked(R[..., 0], R[..., 1]))
"""Spearman correlation of column 0 and column 1 over all runs' rows together."""

pooled_slope = PooledStatistic(lambda r: _slope_b(r[..., 0], r[..., 1]), "slope")
"""OLS slope of column 1 on column 0 over all runs' rows together."""

pooled_partial_spearman = PooledStatistic(
    lambda r: _partial_b(r[..., 0], r[..., 1], r[..., 2]), "partial_spearman",
    lambda R: _partial_ranked(R[..., 0], R[..., 1], R[..., 2]))
"""Partial Spearman correlation of column 0 and column 1 given column 2, over all rows."""


def log_log_evidence(x_per_seed: Sequence, y_per_seed: Sequence, t_per_seed: Sequence,
                     n_boot: int = 1000, level: float = 0.95, rng: int = 0) -> dict:
    """Does log y grow with log x, beyond a shared trend in t, over several runs?

    Per run, the points with x > 0, y > 0 and all three finite are kept, as (log x, log y, t)
    in t order. Pooled over the runs (rows of all runs together), with hierarchical
    circular-block bootstrap intervals (``block_bootstrap_ci``; one generator seeded by
    ``rng`` serves the four statistics in turn):

    - "spearman": Spearman of log x and log y (= of x and y);
    - "slope": OLS slope of log y on log x;
    - "partial_spearman": Spearman of x and y given t (``partial_spearman``);
    - "detrended": Spearman of the first differences of log x and log y
      (``detrended_correlation``), differences taken within each run.

    The first three resample blocks of the (log x, log y, t) rows, with the block length
    from the lag-1 autocorrelation of log x and log y (``block_length``); "detrended"
    resamples blocks of the differences, with a block length from theirs.

    Returns:
      A dict: "n_points", "n_differences", "n_seeds" (runs with at least one point), one
      {"estimate", "lo", "hi"} per statistic above, "per_seed" (lists, one entry per run
      given, NaN for an empty run: "n", "spearman", "slope", "partial_spearman",
      "detrended"), "verdict_partial" and "verdict_detrended" (``verdict`` of those two
      intervals), "verdict" ("positive" or "negative" when both agree on it, else "no
      evidence") and "bootstrap" ({"n_boot", "level", "block_len_levels",
      "block_len_differences", "n_valid": {statistic: resamples with a finite value},
      "rng"}).
    """
    levels, diffs, per = [], [], {"n": [], "spearman": [], "slope": [],
                                  "partial_spearman": [], "detrended": []}
    for x, y, t in zip(x_per_seed, y_per_seed, t_per_seed, strict=True):
        x, y, t = _as_float(x), _as_float(y), _as_float(t)
        n = min(x.size, y.size, t.size)
        x, y, t = x[:n], y[:n], t[:n]
        lx, ly = _log_positive(x), _log_positive(y)
        ok = np.isfinite(lx) & np.isfinite(ly) & np.isfinite(t)
        order = np.argsort(np.where(ok, t, np.inf), kind="stable")[: int(ok.sum())]
        rows = np.stack([lx[order], ly[order], t[order]], axis=1)
        dx, dy = log_differences(x, y, t)
        dok = np.isfinite(dx) & np.isfinite(dy)
        d = np.stack([dx[dok], dy[dok]], axis=1) if dok.any() else np.empty((0, 2))
        per["n"].append(int(rows.shape[0]))
        per["spearman"].append(spearman(rows[:, 0], rows[:, 1]))
        per["slope"].append(ols_slope(rows[:, 0], rows[:, 1]))
        per["partial_spearman"].append(partial_spearman(rows[:, 0], rows[:, 1], rows[:, 2]))
        per["detrended"].append(spearman(d[:, 0], d[:, 1]) if d.size else math.nan)
        if rows.shape[0]:
            levels.append(rows)
        if d.shape[0]:
            diffs.append(d)
    gen = np.random.default_rng(rng)
    b_lev = auto_block_length([r[:, :2] for r in levels])
    b_diff = auto_block_length(diffs)
    out = {"n_points": int(sum(r.shape[0] for r in levels)),
           "n_differences": int(sum(d.shape[0] for d in diffs)),
           "n_seeds": len(levels)}
    valid = {}
    for name, fn, data, b in (("spearman", pooled_spearman, levels, b_lev),
                              ("slope", pooled_slope, levels, b_lev),
                              ("partial_spearman", pooled_partial_spearman, levels, b_lev),
                              ("detrended", pooled_spearman, diffs, b_diff)):
        ci = block_bootstrap_ci(fn, data, b, n_boot, level, gen)
        out[name] = ci.as_dict()
        valid[name] = ci.n_valid
    out["per_seed"] = per
    vp = verdict(out["partial_spearman"]["lo"], out["partial_spearman"]["hi"])
    vd = verdict(out["detrended"]["lo"], out["detrended"]["hi"])
    out["verdict_partial"], out["verdict_detrended"] = vp, vd
    out["verdict"] = vp if vp == vd else "no evidence"
    out["bootstrap"] = {"n_boot": int(n_boot), "level": float(level),
                        "block_len_levels": b_lev, "block_len_differences": b_diff,
                        "n_valid": valid, "rng": int(rng)}
    return out


# --------------------------------------------------------------------------- the seed as the unit


def seed_interval(values, level: float, fisher: bool = False) -> dict:
    """The mean of per-seed values with a t-interval that treats the seed as the unit:
    mean ± t_{(1+level)/2, n-1} sd / sqrt(n), on Fisher's z = artanh(r) for correlations
    (``fisher``), mapped back. Non-finite values are dropped; fewer than 2 give NaN ends."""
    v = _as_float(values).ravel()
    v = v[np.isfinite(v)]
    n = int(v.size)
    if n < 2:
        est = float(v.mean()) if n else math.nan
        return {"estimate": est, "lo": math.nan, "hi": math.nan, "n": n}
    z = np.arctanh(np.clip(v, -1 + 1e-12, 1 - 1e-12)) if fisher else v
    half = float(_sps.t.ppf((1 + level) / 2, n - 1) * z.std(ddof=1) / math.sqrt(n))
    back = np.tanh if fisher else (lambda a: a)
    m = float(z.mean())
    return {"estimate": float(back(m)), "lo": float(back(m - half)), "hi": float(back(m + half)),
            "n": n}


def seed_level_evidence(per_seed: dict, level: float) -> dict:
    """Within-seed statistics combined over seeds (``seed_interval``): the two trend-robust
    correlations ("partial_spearman", "detrended", on Fisher's z) and the log-log "slope",
    each with its interval at ``level`` (pass a level corrected for the rows tested), and the
    verdict: "positive" or "negative" when both correlations' intervals exclude 0 on that
    side; "statistics disagree" when any two of the three exclude 0 on opposite sides (it is
    said, not averaged away); else "no evidence"."""
    out: dict[str, Any] = {"level": level}
    for name, fisher in (("partial_spearman", True), ("detrended", True), ("slope", False)):
        out[name] = seed_interval(per_seed.get(name, []), level, fisher)
    words = [verdict(out[k]["lo"], out[k]["hi"]) for k in ("partial_spearman", "detrended",
                                                           "slope")]
    if {"positive", "negative"} <= set(words):
        out["verdict"] = "statistics disagree"
    elif words[0] == words[1] != "no evidence":
        out["verdict"] = words[0]
    else:
        out["verdict"] = "no evidence"
    return out
