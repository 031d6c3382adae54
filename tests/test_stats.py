"""Trend-robust correlations, the hierarchical block bootstrap, verdicts and the training
check, on simulated series whose truth is known."""

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats as sps

from research import stats


def _walks(rng, n_seeds=4, n=50, trend=-0.08, step=0.1):
    """Pairs of independent random walks in log space that share a downward time trend."""
    t = np.arange(n, dtype=float)
    xs, ys = [], []
    for _ in range(n_seeds):
        xs.append(np.exp(trend * t + step * np.cumsum(rng.standard_normal(n))))
        ys.append(np.exp(trend * t + step * np.cumsum(rng.standard_normal(n))))
    return xs, ys, [t] * n_seeds


def _related(rng, power, n_seeds=3, n=50, phi=0.7):
    """log y = power * log x + noise, where log x = a downward trend + AR(1) wiggles."""
    t = np.arange(n, dtype=float)
    xs, ys = [], []
    for _ in range(n_seeds):
        e = np.zeros(n)
        for k in range(1, n):
            e[k] = phi * e[k - 1] + 0.3 * rng.standard_normal()
        lx = -0.05 * t + e
        xs.append(np.exp(lx))
        ys.append(np.exp(power * lx + 0.1 * rng.standard_normal(n)))
    return xs, ys, [t] * n_seeds


def test_a_shared_trend_alone_fools_the_raw_correlation_but_not_the_detrended_ones():
    xs, ys, ts = _walks(np.random.default_rng(1))
    out = stats.log_log_evidence(xs, ys, ts, n_boot=500, rng=0)
    # the raw Spearman is near 1 and its interval is far from 0: a raw test would say "grows"
    assert out["spearman"]["estimate"] > 0.9
    assert stats.verdict(out["spearman"]["lo"], out["spearman"]["hi"]) == "positive"
    assert min(out["per_seed"]["spearman"]) > 0.9
    # given the step index, or step to step, there is nothing
    for name in ("partial_spearman", "detrended"):
        assert out[name]["lo"] < 0 < out[name]["hi"], name
        assert abs(out[name]["estimate"]) < 0.3, name
    assert out["verdict_partial"] == out["verdict_detrended"] == out["verdict"] == "no evidence"
    assert out["n_points"] == 200 and out["n_seeds"] == 4 and out["n_differences"] == 196


def test_a_nonlinear_shared_trend_is_removed_by_the_partial_rank_correlation():
    # both fall like 1/(1+t) and exp(-t/10): monotone, not linear; ranks straighten them
    rng = np.random.default_rng(2)
    t = np.arange(60, dtype=float)
    x = np.exp(-t / 10 + 0.05 * rng.standard_normal(60))
    y = 1 / (1 + t) * np.exp(0.05 * rng.standard_normal(60))
    assert stats.spearman(x, y) > 0.95
    assert abs(stats.partial_spearman(x, y, t)) < 0.3
    # an exact monotone function of t has nothing left once t is known
    assert math.isnan(stats.partial_spearman(np.exp(-t), y, t))


@pytest.mark.parametrize(("power", "expected"), [(0.5, "positive"), (-0.5, "negative")])
def test_a_real_relation_beyond_the_trend_is_found(power, expected):
    xs, ys, ts = _related(np.random.default_rng(3), power)
    out = stats.log_log_evidence(xs, ys, ts, n_boot=500, rng=0)
    assert out["verdict_partial"] == out["verdict_detrended"] == out["verdict"] == expected
    assert out["slope"]["lo"] < power < out["slope"]["hi"]


def test_partial_spearman_is_the_textbook_formula():
    rng = np.random.default_rng(4)
    x, y, t = rng.standard_normal((3, 40))
    y = y + x + 0.5 * t
    r = {k: sps.spearmanr(a, b)[0] for k, (a, b) in
         {"xy": (x, y), "xt": (x, t), "yt": (y, t)}.items()}
    want = (r["xy"] - r["xt"] * r["yt"]) / math.sqrt((1 - r["xt"] ** 2) * (1 - r["yt"] ** 2))
    assert stats.partial_spearman(x, y, t) == pytest.approx(want, abs=1e-12)
    assert stats.spearman(x, y) == pytest.approx(r["xy"], abs=1e-12)
    # the detrended correlation is the Spearman of the log-differences
    px, py = np.exp(x), np.exp(y)
    assert stats.detrended_correlation(px, py, t[::-1] * 0 + np.arange(40)) == pytest.approx(
        sps.spearmanr(np.diff(x), np.diff(y))[0], abs=1e-12)


def test_the_bootstrap_covers_the_true_correlation_of_autocorrelated_series():
    # (x_t, y_t) a bivariate AR(1) with coefficient phi and innovations of correlation c:
    # corr(x_t, y_t) = c exactly. 50 repetitions; nominal coverage 95 %.
    rng = np.random.default_rng(5)
    phi, c, n, reps = 0.7, 0.5, 120, 50
    pearson = stats.PooledStatistic(lambda r: stats._pearson_b(r[..., 0], r[..., 1]))
    chol = np.linalg.cholesky([[1, c], [c, 1]])
    covered, covered_iid = 0, 0
    for i in range(reps):
        e = rng.standard_normal((n + 50, 2)) @ chol.T
        z = np.zeros_like(e)
        for k in range(1, n + 50):
            z[k] = phi * z[k - 1] + e[k]
        z = z[50:]
        ci = stats.block_bootstrap_ci(pearson, [z], n_boot=300, rng=i)
        covered += ci.lo <= c <= ci.hi
        assert ci.block_len > 1
        iid = stats.block_bootstrap_ci(pearson, [z], block_len=1, n_boot=300, rng=i)
        covered_iid += iid.lo <= c <= iid.hi
    assert covered >= 42, covered  # >= 84 %
    assert covered > covered_iid  # ignoring the autocorrelation under-covers


def test_seed_resampling_widens_the_interval_when_seeds_disagree():
    # three seeds show a clear positive relation, one a clear negative one. Pooled, the
    # estimate is positive, and resampling blocks within the four fixed runs would say so;
    # resampling the seeds too draws two or more of the negative one in about a quarter of
    # the resamples, and the interval reaches below 0.
    rng = np.random.default_rng(6)
    xs, ys, ts = [], [], []
    for power in (0.8, 0.8, -0.8, 0.8):
        x, y, t = _related(rng, power, n_seeds=1)
        xs, ys, ts = xs + x, ys + y, ts + t
    out = stats.log_log_evidence(xs, ys, ts, n_boot=500, rng=0)
    for name in ("partial_spearman", "detrended"):
        assert out[name]["estimate"] > 0.1 and out[name]["lo"] < 0 < out[name]["hi"], name
    assert out["verdict"] == "no evidence"
    assert [p > 0.5 for p in out["per_seed"]["partial_spearman"]] == [True, True, False, True]
    one = stats.log_log_evidence(xs[:1], ys[:1], ts[:1], n_boot=500, rng=0)
    assert one["verdict"] == "positive"


def test_the_bootstrap_is_deterministic_and_takes_any_statistic():
    xs, ys, ts = _related(np.random.default_rng(7), 0.5)
    a = stats.log_log_evidence(xs, ys, ts, n_boot=200, rng=3)
    b = stats.log_log_evidence(xs, ys, ts, n_boot=200, rng=3)
    assert a == b
    runs = [np.stack([np.log(x), np.log(y)], axis=1) for x, y in zip(xs, ys, strict=True)]
    runs[1] = runs[1][:30]  # unequal lengths take the per-resample path

    def mean_of_seed_correlations(rs):  # not pooled: needs the runs kept apart
        return float(np.mean([np.corrcoef(r[:, 0], r[:, 1])[0, 1] for r in rs]))

    ci = stats.block_bootstrap_ci(mean_of_seed_correlations, runs, block_len=5, n_boot=100)
    assert ci.lo <= ci.estimate <= ci.hi and ci.n_valid == 100 and ci.block_len == 5
    pooled = stats.block_bootstrap_ci(stats.pooled_spearman, runs, block_len=5, n_boot=100)
    assert pooled.lo < pooled.estimate < pooled.hi


def test_block_length_rule():
    assert [stats.block_length(50, r) for r in (0.0, 0.3, 0.5, 0.9, 0.999)] == [1, 4, 6, 16, 16]
    assert stats.block_length(50) == 4 and stats.block_length(2, 0.9) == 1
    assert stats.block_length(1000, -0.5) == stats.block_length(1000, 0.5) == 14
    assert stats.lag1_autocorrelation(np.arange(20.0)) > 0.8


@pytest.mark.parametrize("bad", [
    [np.nan] * 10, [np.inf, 1.0, 2.0], [], [1.0, 2.0, 3.0], [0.0, -1.0, 2.0, 3.0, 4.0],
    [1.0] * 20,
])
def test_bad_input_never_raises_and_gives_no_evidence(bad):
    x = np.asarray(bad, dtype=float)
    t = np.arange(x.size, dtype=float)
    if np.isfinite(x).sum() < stats.MIN_POINTS or np.ptp(x) == 0:
        assert math.isnan(stats.spearman(x, x)) and math.isnan(stats.ols_slope(x, x))
        assert math.isnan(stats.partial_spearman(x, x, t))
        ci = stats.block_bootstrap_ci(stats.pooled_spearman, [np.stack([x, x], axis=1)], 3, 50)
        assert math.isnan(ci.lo) and stats.verdict(ci.lo, ci.hi) == "no evidence"
    assert math.isnan(stats.detrended_correlation(x, x, t))
    out = stats.log_log_evidence([x], [x[::-1]], [t], n_boot=50)
    for name in ("spearman", "slope", "partial_spearman", "detrended"):
        assert math.isnan(out[name]["lo"]) and math.isnan(out[name]["hi"])
    assert out["verdict"] == "no evidence"
    check = stats.is_training(x)
    assert not check and check.reason


def test_nan_points_are_dropped_not_propagated():
    xs, ys, ts = _related(np.random.default_rng(8), 0.5, n_seeds=2)
    ys[0] = ys[0].copy()
    ys[0][10] = np.nan
    ys[1] = ys[1].copy()
    ys[1][30:] = np.nan  # a run that diverged at point 30
    out = stats.log_log_evidence(xs, ys, ts, n_boot=200)
    assert out["per_seed"]["n"] == [49, 30] and out["n_differences"] == 47 + 29
    assert out["verdict"] == "positive"


def test_verdict():
    assert stats.verdict(0.1, 0.5) == "positive"
    assert stats.verdict(-0.5, -0.1) == "negative"
    assert stats.verdict(-0.1, 0.5) == stats.verdict(0.0, 0.5) == "no evidence"
    assert stats.verdict(math.nan, 0.5) == stats.verdict(0.5, 0.1) == "no evidence"
    assert stats.verdict(None, "x") == "no evidence"


def test_is_training():
    t = np.arange(50)
    assert stats.is_training(2.3 * np.exp(-t / 20) + 0.1)
    rising = np.linspace(0.75, 4.93, 50)  # the tanh RNN with a large step: not training
    check = stats.is_training(rising)
    assert not check and check.first < check.last and "does not fall" in check.reason
    # most of the learning in the first quarter, then a plateau: it trained
    fast = 0.15 + np.exp(-2.0 * t)
    assert np.median(fast[-12:]) > 0.9 * np.median(fast[:12])
    assert stats.is_training(fast)
    # up and down around the start: not training
    assert not stats.is_training(1.0 + 0.2 * np.sin(t / 3.0))
    assert not stats.is_training(np.full(50, 1.0))
    assert not stats.is_training(1.0 - 0.05 * t / 50)  # 5 % < the 10 % margin
    diverged = np.r_[np.linspace(2, 1, 30), np.full(20, np.nan)]
    check = stats.is_training(diverged)
    assert not check and "diverged" in check.reason and math.isnan(check.last)
    assert not stats.is_training(np.linspace(2, 1, 50), margin=math.nan)


def test_log_correlations_adds_the_trend_robust_ones_given_steps():
    from research import smoothness

    xs, ys, ts = _walks(np.random.default_rng(9), n_seeds=1)
    out = smoothness.log_correlations(xs[0], ys[0], steps=ts[0])
    assert out["spearman"] > 0.9 and out["spearman_p"] < 1e-10  # the p-value is fooled
    assert abs(out["partial_spearman"]) < 0.3 and abs(out["detrended"]) < 0.3
    assert out["partial_spearman"] == stats.partial_spearman(xs[0], ys[0], ts[0])
    assert "partial_spearman" not in smoothness.log_correlations(xs[0], ys[0])
    few = smoothness.log_correlations([1.0, 2.0], [1.0, 2.0], steps=[0, 1])
    assert math.isnan(few["partial_spearman"]) and math.isnan(few["detrended"])


def test_median_interval_is_the_order_statistic_interval_of_the_binomial_table():
    from math import comb
    x = np.random.default_rng(0).permutation(np.arange(1.0, 21.0))
    r = stats.median_interval(x)
    assert (r.median, r.lo, r.hi, r.n) == (10.5, 6.0, 15.0, 20)  # the textbook (6, 15)
    assert r.coverage == pytest.approx(sum(comb(20, b) for b in range(6, 15)) / 2**20)
    for n in range(6, 61):
        r = stats.median_interval(np.arange(float(n)))
        j = int(r.lo)

        def cover(j, n=n):
            return sum(comb(n, b) for b in range(j + 1, n - j)) / 2**n
        assert r.coverage == pytest.approx(cover(j)) and cover(j) >= 0.95, n
        assert j + 1 >= n - j - 1 or cover(j + 1) < 0.95, n  # the narrowest such interval
        assert r.hi == n - 1 - j


def test_median_interval_with_few_or_bad_values():
    r = stats.median_interval([5.0, 1.0, 3.0, 4.0, 2.0])
    assert (r.lo, r.hi) == (1.0, 5.0) and r.coverage == pytest.approx(1 - 2 / 32)
    r = stats.median_interval([np.nan, 2.0, np.inf, 1.0])
    assert r.n == 2 and (r.lo, r.median, r.hi) == (1.0, 1.5, 2.0)
    assert np.isnan(stats.median_interval([np.nan]).median)
    with pytest.raises(ValueError, match="level"):
        stats.median_interval([1.0, 2.0], level=1.5)


@given(st.integers(1, 40), st.integers(1, 25), st.integers(1, 60), st.integers(0, 10**6),
       st.sampled_from([None, 0, 1]))
@example(m=1, b=1, n=1, seed=0, decimals=0)   # one value, one resample of one row
@example(m=5, b=3, n=40, seed=1, decimals=0)  # many ties
def test_ranks_by_counting_equal_scipy_rankdata_exactly(m, b, n, seed, decimals):
    """The bootstrap's ranks by counting (stats._resample_ranks) are scipy's average ranks
    of each resample, to the bit, ties included (``decimals`` rounds the data into ties)."""
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((m, 3)) * 2
    if decimals is not None:
        data = np.round(data, decimals)
    idx = rng.integers(0, m, (b, n))
    R = stats._resample_ranks(data, idx)
    for j in range(3):
        assert np.array_equal(R[..., j], sps.rankdata(data[idx][..., j], axis=1))


def test_the_bootstrap_by_ranks_is_the_bootstrap_by_values():
    """A rank statistic's interval is the same whether the resamples are ranked by counting
    (``from_ranks``) or each sorted by rankdata (the statistic without ``from_ranks``), on
    runs of unequal lengths (grouped resamples) and with ties."""
    rng = np.random.default_rng(3)
    runs = [np.round(rng.standard_normal((n, 3)), 1) for n in (30, 41, 41, 25)]
    for rank_stat in (stats.pooled_spearman, stats.pooled_partial_spearman):
        plain = stats.PooledStatistic(rank_stat.batched)
        assert plain.from_ranks is None and rank_stat.from_ranks is not None
        a = stats.block_bootstrap_ci(rank_stat, runs, n_boot=200, rng=7)
        b = stats.block_bootstrap_ci(plain, runs, n_boot=200, rng=7)
        assert a == b and math.isfinite(a.lo)


def test_seed_interval_is_the_t_interval_over_seeds():
    v = np.array([0.31, 0.42, 0.35, 0.47, 0.38])
    got = stats.seed_interval(v, 0.99)
    lo, hi = sps.t.interval(0.99, v.size - 1, loc=v.mean(), scale=sps.sem(v))
    assert (got["lo"], got["hi"], got["n"]) == pytest.approx((lo, hi, 5), rel=1e-12)
    z = np.arctanh(v)
    zlo, zhi = sps.t.interval(0.99, v.size - 1, loc=z.mean(), scale=sps.sem(z))
    fz = stats.seed_interval(v, 0.99, fisher=True)
    assert (fz["lo"], fz["hi"]) == pytest.approx((np.tanh(zlo), np.tanh(zhi)), rel=1e-12)
    assert np.isnan(stats.seed_interval([0.3, np.nan], 0.95)["lo"])  # one seed: no interval


def test_seed_level_verdicts_say_when_statistics_disagree():
    up, down, flat = [0.3, 0.35, 0.4, 0.32], [-0.3, -0.35, -0.4, -0.32], [-0.2, 0.2, 0.1, -0.1]
    assert stats.seed_level_evidence({"partial_spearman": up, "detrended": up, "slope": flat},
                                     0.95)["verdict"] == "positive"
    assert stats.seed_level_evidence({"partial_spearman": up, "detrended": up, "slope": down},
                                     0.95)["verdict"] == "statistics disagree"
    assert stats.seed_level_evidence({"partial_spearman": up, "detrended": flat,
                                      "slope": up}, 0.95)["verdict"] == "no evidence"
    assert stats.seed_level_evidence({"partial_spearman": down, "detrended": down,
                                      "slope": down}, 0.95)["verdict"] == "negative"
