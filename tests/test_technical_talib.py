"""Reference check: alphatrade.features.technical against TA-Lib (SMA, EMA, RSI, ATR).

Equal to 1e-8 relative after the warm-up, with NaN in exactly the same places, on a 2,000-bar random
walk and on panels whose symbols are listed at different times (leading NaNs)."""
import numpy as np
import pandas as pd
import pytest

talib = pytest.importorskip('talib')
from alphatrade.features.technical import sma, ema, rsi, atr

RTOL = 1e-8
PERIODS = [2, 5, 14, 30]


def _walk(seed, T=2000):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, T)))
    h = c * (1 + rng.uniform(0, 0.01, T))
    l = c * (1 - rng.uniform(0, 0.01, T))
    return h, l, c


def _ours_and_talib(name, n, h, l, c):
    if name == 'atr': return atr(h, l, c, n), talib.ATR(h, l, c, timeperiod=n)
    f, g = {'sma': (sma, talib.SMA), 'ema': (ema, talib.EMA), 'rsi': (rsi, talib.RSI)}[name]
    return f(c, n), g(c, timeperiod=n)


def _check(ours, ref):
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))   # same warm-up
    ok = ~np.isnan(ref)
    assert ok.sum() > 0
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=RTOL, atol=0)


@pytest.mark.parametrize('n', PERIODS)
@pytest.mark.parametrize('name', ['sma', 'ema', 'rsi', 'atr'])
def test_random_walk(name, n):
    h, l, c = _walk(0)
    ours, ref = _ours_and_talib(name, n, h, l, c)
    _check(ours, ref)
    assert np.isnan(ref).sum() == (n if name in ('rsi', 'atr') else n - 1)


@pytest.mark.parametrize('n', PERIODS)
@pytest.mark.parametrize('name', ['sma', 'ema', 'rsi', 'atr'])
def test_panel_with_leading_nans(name, n):
    T, starts = 2000, [0, 1, 37, 500, 1990]           # the last symbol lists too late for long periods
    cols = {k: [] for k in 'hlc'}
    for j, s in enumerate(starts):
        h, l, c = _walk(10 + j, T)
        for k, v in zip('hlc', (h, l, c)):
            v = v.copy(); v[:s] = np.nan; cols[k].append(v)
    idx = pd.date_range('2024-01-02 09:30', periods=T, freq='15min', tz='America/New_York')
    H, L, C = (pd.DataFrame(np.column_stack(cols[k]), index=idx, columns=[f'S{j}' for j in range(len(starts))]) for k in 'hlc')
    ours = atr(H, L, C, n) if name == 'atr' else {'sma': sma, 'ema': ema, 'rsi': rsi}[name](C, n)
    assert ours.index.equals(idx) and list(ours.columns) == list(C.columns)
    for j, col in enumerate(C.columns):
        _, ref = _ours_and_talib(name, n, H[col].to_numpy(), L[col].to_numpy(), C[col].to_numpy())
        np.testing.assert_array_equal(np.isnan(ours[col].to_numpy()), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_allclose(ours[col].to_numpy()[ok], ref[ok], rtol=RTOL, atol=0)


@pytest.mark.parametrize('name', ['sma', 'ema', 'rsi', 'atr'])
def test_interior_nan_equals_talib_on_valid_rows(name):
    """An interior NaN is skipped: the result equals TA-Lib on the column's valid rows, put back in place."""
    h, l, c = _walk(3, 500)
    holes = [100, 101, 250]
    h2, l2, c2 = h.copy(), l.copy(), c.copy()
    for a in (h2, l2, c2): a[holes] = np.nan
    ours, _ = _ours_and_talib(name, 14, h2, l2, c2)
    keep = np.setdiff1d(np.arange(500), holes)
    _, ref = _ours_and_talib(name, 14, h[keep], l[keep], c[keep])
    assert np.isnan(ours[holes]).all()
    _check(ours[keep], ref)
