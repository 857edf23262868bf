"""Performance metrics against quantstats and empyrical (dev extras), on the same returns.

Where the libraries define a metric as we do, the numbers agree to 1e-10. Where the definitions differ, the test
checks the documented relationship instead:
- quantstats annualises with periods=252 unless told otherwise; we pass bars_per_year(freq) (its default relates
  to ours by sqrt(252 / bars_per_year)); `adjusted_sortino` is Sortino / sqrt(2).
- profit factor: quantstats sums returns; `metrics_table` sums the P&L in currency (returns × previous equity).
- drawdown periods: quantstats reports the first and last bar below the peak; we report the peak and the recovery.
- exposure: quantstats counts bars with a non-zero return, rounded up to a whole percent; we count bars holding
  a position.
- VaR/CVaR come from `alphatrade.risk.var` as positive losses; the libraries return the (negative) return.
The overfitting statistics have no library equivalent beyond quantstats' PSR against 0; they are also checked by
simulation (the expected maximum of N Sharpe ratios, and the PSR's false-positive rate under the null).
"""
import math
import warnings
import numpy as np
import pandas as pd
import pytest
from alphatrade.backtest import metrics as M
from alphatrade.core.calendar import bar_grid, bars_per_year
from alphatrade.risk.var import value_at_risk, conditional_value_at_risk

qs = pytest.importorskip('quantstats', reason='quantstats is a dev extra')
ep = pytest.importorskip('empyrical', reason='empyrical-reloaded is a dev extra')

TOL = dict(rel=1e-10, abs=1e-12)
CASES = [(0, '15min'), (1, '15min'), (2, '1D'), (3, '1h')]


def _curve(seed, freq, zeros=True):
    "Fat-tailed per-bar returns on the NYSE grid (a seventh of the bars flat), and the equity they compound to."
    ix = bar_grid('2023-01-03', '2024-06-28' if freq == '1D' else '2024-03-28', freq)
    rng = np.random.default_rng(seed)
    r = pd.Series(rng.standard_t(4, len(ix)) * 1e-3 * (10 if freq == '1D' else 1) + 2e-5, index=ix)
    if zeros: r.iloc[::7] = 0.0
    eq = pd.concat([pd.Series([1e6], index=[ix[0] - pd.Timedelta('1min')]), 1e6 * (1 + r).cumprod()])
    return M.returns_from_equity(eq), eq


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        yield


@pytest.mark.parametrize('seed,freq', CASES)
def test_equal_to_quantstats(seed, freq):
    r, eq = _curve(seed, freq)
    B = bars_per_year(freq)
    pairs = {'sharpe': (M.sharpe_ratio(r, freq), qs.stats.sharpe(r, periods=B)),
             'sharpe rf': (M.sharpe_ratio(r, freq, rf=0.04), qs.stats.sharpe(r, rf=0.04, periods=B)),
             'sortino': (M.sortino_ratio(r, freq), qs.stats.sortino(r, periods=B)),
             'calmar': (M.calmar_ratio(eq, freq), qs.stats.calmar(r, periods=B)),
             'max drawdown': (M.max_drawdown(eq), qs.stats.max_drawdown(r)),
             'cagr': (M.annualized_return(eq, freq), qs.stats.cagr(r, periods=B)),
             'volatility': (M.annualized_volatility(r, freq), qs.stats.volatility(r, periods=B)),
             'profit factor': (M.profit_factor(r), qs.stats.profit_factor(r)),
             'tail ratio': (M.tail_ratio(r), qs.stats.tail_ratio(r)),
             'skew': (M.skewness(r), qs.stats.skew(r)),
             'kurtosis': (M.kurtosis(r), qs.stats.kurtosis(r)),
             'win rate': (M.hit_rate(r), qs.stats.win_rate(r)),
             'avg win': (M.avg_win(r), qs.stats.avg_win(r)),
             'avg loss': (M.avg_loss(r), qs.stats.avg_loss(r)),
             'payoff': (M.payoff_ratio(r), qs.stats.payoff_ratio(r)),
             'best bar': (r.max(), qs.stats.best(r)), 'worst bar': (r.min(), qs.stats.worst(r)),
             'psr': (M.probabilistic_sharpe_ratio(r, 0.0, freq), qs.stats.probabilistic_sharpe_ratio(r, periods=B)),
             'VaR gaussian': (-value_at_risk(r, 0.95, 'gaussian'), qs.stats.value_at_risk(r, confidence=0.95)),
             'CVaR gaussian': (-conditional_value_at_risk(r, 0.95, 'gaussian'), qs.stats.conditional_value_at_risk(r, confidence=0.95)),
             'CVaR historical': (-conditional_value_at_risk(r, 0.95), qs.stats.conditional_value_at_risk(r, confidence=0.95, method='historical'))}
    for name, (ours, ref) in pairs.items():
        assert ours == pytest.approx(ref, **TOL), name
    # the metrics table reports the same numbers
    m = M.metrics_table(eq, freq=freq).set_index('metric')['value']
    for key, name in [('calmar_ratio', 'calmar'), ('skew', 'skew'), ('kurtosis', 'kurtosis'), ('hit_rate', 'win rate'), ('psr', 'psr'), ('tail_ratio', 'tail ratio')]:
        assert m[key] == pytest.approx(pairs[name][1], **TOL), key


@pytest.mark.parametrize('seed,freq', CASES)
def test_equal_to_empyrical(seed, freq):
    r, eq = _curve(seed, freq)
    B = bars_per_year(freq)
    assert M.calmar_ratio(eq, freq) == pytest.approx(ep.calmar_ratio(r, annualization=B), **TOL)
    assert M.tail_ratio(r) == pytest.approx(ep.tail_ratio(r), **TOL)
    assert -value_at_risk(r, 0.95) == pytest.approx(ep.value_at_risk(r, 0.05), **TOL)
    assert -conditional_value_at_risk(r, 0.95) == pytest.approx(ep.conditional_value_at_risk(r, 0.05), **TOL)


@pytest.mark.parametrize('seed,freq', CASES[:2])
def test_documented_differences(seed, freq):
    r, eq = _curve(seed, freq)
    B = bars_per_year(freq)
    # periods convention: quantstats' default is 252 periods a year whatever the bar
    assert qs.stats.sharpe(r) == pytest.approx(M.sharpe_ratio(r, freq) * math.sqrt(252 / B), **TOL)
    assert qs.stats.sortino(r) == pytest.approx(M.sortino_ratio(r, freq) * math.sqrt(252 / B), **TOL)
    assert qs.stats.adjusted_sortino(r, periods=B) == pytest.approx(M.sortino_ratio(r, freq) / math.sqrt(2), **TOL)
    # profit factor in the table is on money: quantstats' formula applied to returns × the previous equity
    pnl = r * eq.shift(1).iloc[1:]
    m = M.metrics_table(eq, freq=freq).set_index('metric')['value']
    assert m['profit_factor'] == pytest.approx(qs.stats.profit_factor(pnl), **TOL)
    assert m['profit_factor'] == pytest.approx(M.profit_factor(eq.diff()), **TOL)
    assert m['profit_factor'] != pytest.approx(qs.stats.profit_factor(r), rel=1e-6)   # the two definitions really differ here
    # best and worst day: the bars of each New York session compounded (pandas resample as the reference)
    d = (1 + r).resample('D').prod()[r.resample('D').count() > 0] - 1
    assert m['best_day'] == pytest.approx(d.max(), **TOL) and m['worst_day'] == pytest.approx(d.min(), **TOL)


def test_drawdown_periods_vs_quantstats():
    "quantstats' start/end are the first/last bars below the peak: one bar after our peak, one before our recovery."
    ix = bar_grid('2023-01-03', '2024-06-28', '1D').tz_localize(None)   # quantstats reports dates; keep them naive
    r = pd.Series(np.random.default_rng(4).standard_t(4, len(ix)) * 4e-3 + 2e-4, index=ix)
    eq = pd.concat([pd.Series([1e6], index=[ix[0] - pd.Timedelta('1D')]), 1e6 * (1 + r).cumprod()])
    ours = M.drawdown_periods(eq)
    ref = qs.stats.drawdown_details(qs.stats.to_drawdown_series(r))
    assert len(ours) == len(ref) > 5
    pos = {t: i for i, t in enumerate(eq.index)}
    for (_, o), (_, q) in zip(ours.iterrows(), ref.iterrows()):
        assert q['start'] == f"{eq.index[pos[o['start']] + 1]:%Y-%m-%d}"
        last_under = eq.index[pos[o['end']] - (1 if o['recovered'] else 0)]
        assert q['end'] == f'{last_under:%Y-%m-%d}'
        assert q['max drawdown'] == pytest.approx(o['depth'] * 100, **TOL)
    longest = M.max_drawdown_duration(eq)
    assert longest['bars'] == ours['bars'].max() and longest['start'] == ours.loc[ours['bars'].idxmax(), 'start']


def test_exposure_vs_quantstats():
    "Holding a stock on some bars: our time in market, rounded up to a percent, is quantstats' return-based exposure."
    ix = bar_grid('2024-01-02', '2024-02-29', '15min')
    rng = np.random.default_rng(5)
    held = pd.DataFrame({'A': (rng.random(len(ix)) < 0.37).astype(float)}, index=ix)
    asset = pd.Series(rng.normal(0, 1e-3, len(ix)), index=ix)
    r = (held['A'].shift(1) * asset).iloc[1:]                      # the weight held at t-1 earns bar t
    tim = M.exposure(held.iloc[:-1])['time_in_market']
    assert qs.stats.exposure(r) == pytest.approx(math.ceil(tim * 100) / 100, abs=1e-12)


def test_expected_max_sharpe_by_simulation():
    "The Bailey–López de Prado approximation of E[max of N Sharpe ratios] (meant for N >> 1) is within 1.5% of a simulation."
    rng = np.random.default_rng(11)
    for n, rel in ((10, 0.04), (100, 0.015), (1000, 0.015)):      # N = 10: the approximation is ~2.5% high
        sim = rng.standard_normal((20_000 if n < 1000 else 4_000, n)).max(axis=1).mean() * 0.3
        assert M.expected_max_sharpe(n, 0.3) == pytest.approx(sim, rel=rel), n


def test_psr_false_positive_rate():
    "Under the null (true SR = SR*), PSR > 0.95 happens about 5% of the time."
    rng = np.random.default_rng(12)
    n, paths, mu, sd = 500, 4000, 0.0005, 0.01
    x = rng.normal(mu, sd, (paths, n))
    bench = mu / sd * math.sqrt(252)                                # the true annualised Sharpe ratio, daily bars
    psr = np.array([M.probabilistic_sharpe_ratio(row, bench, '1D') for row in x])
    assert abs((psr > 0.95).mean() - 0.05) < 0.012
    # with no selection the DSR is the PSR against 0; with many trials it is lower
    row = pd.Series(x[0] + 0.002)
    assert M.deflated_sharpe_ratio(row, 1, 1.0, freq='1D') == pytest.approx(M.probabilistic_sharpe_ratio(row, 0.0, '1D'), **TOL)
    assert M.deflated_sharpe_ratio(row, 100, 1.0, freq='1D') < M.probabilistic_sharpe_ratio(row, 0.0, '1D')


def test_min_track_record_inverts_psr():
    "PSR evaluated at MinTRL observations, with the sample's own moments, is the requested confidence."
    r, _ = _curve(6, '1D')
    for sr_star, p in [(0.0, 0.95), (0.5, 0.9)]:
        bars = M.min_track_record_length(r, sr_star, p, '1D')
        sr = r.mean() / r.std(ddof=1)
        assert M.psr_from_moments(sr, bars, r.skew(), r.kurt() + 3, sr_star / math.sqrt(252)) == pytest.approx(p, **TOL)
