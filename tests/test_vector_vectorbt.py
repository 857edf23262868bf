"""The vectorised engine's `from_signals` equals vectorbt's `Portfolio.from_signals` (vectorbt 1.x, a dev extra).

Same signals, fill prices, fees and slippage; final values, equity curves and fills agree to 1e-9 relative.
Fill timing: vectorbt fills a signal at the price of the signal's own bar (`price`, default the close). Ours
fills by default at the NEXT bar's open (`price='next_open'`). To compare like with like:

- `price='close'` (ours)  <->  vectorbt with its default price (the signal bar's close);
- `price='next_open'` (ours, signal at bar t, fill at open t+1)  <->  vectorbt given the signals shifted one
  bar later (`entries.shift(1, fill_value=False)`, the same for every signal input) and `price=open`: its
  signal at t+1 then fills at open t+1.

Costs: ours `fees_bps` / `slippage_bps` are vectorbt's `fees` / `slippage` × 1e4 (a commission on the executed
notional and a proportional price concession); `fractional=False` is `size_granularity=1`; `size_type`
'shares' / 'value' / 'percent' are vectorbt's 'amount' / 'value' / 'percent'.
"""
import numpy as np
import pandas as pd
import pytest
from alphatrade.backtest.vector import from_signals

vbt = pytest.importorskip('vectorbt', reason='vectorbt is a dev extra')

T, N = 400, 4


def _market(seed):
    rng = np.random.default_rng(seed)
    idx = pd.date_range('2024-01-02 09:30', periods=T, freq='15min', tz='America/New_York')
    cols = pd.Index([f'S{j}' for j in range(N)], name='symbol')
    close = pd.DataFrame(40 * np.exp(rng.normal(0, 0.01, (T, N)).cumsum(0)), index=idx, columns=cols)
    open_ = close.shift(1).fillna(close.iloc[0]) * np.exp(rng.normal(0, 0.003, (T, N)))
    sig = lambda p: pd.DataFrame(rng.uniform(size=(T, N)) < p, index=idx, columns=cols)
    return close, open_, sig(0.05), sig(0.05), sig(0.04), sig(0.04)


def _vbt(close, open_, price, entries, exits, short_entries=None, short_exits=None, shift=True, **kw):
    "vectorbt on the same fill rule: next-open = signals one bar later filled at that bar's open."
    sh = (lambda s: None if s is None else s.shift(1, fill_value=False)) if price == 'next_open' else (lambda s: s)
    extra = {} if short_entries is None else dict(short_entries=sh(short_entries), short_exits=sh(short_exits))
    return vbt.Portfolio.from_signals(close, sh(entries), sh(exits), price=open_ if price == 'next_open' else None,
                                      freq='15min', **extra, **kw)


def _same(ours, pf):
    np.testing.assert_allclose(ours.final_value.to_numpy(), pf.final_value().to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(ours.equity.to_numpy(), pf.value().to_numpy(), rtol=1e-9)
    rec = pf.orders.records_readable
    assert len(rec) == len(ours.fills) and len(rec) > 10
    theirs = rec.sort_values(['Column', 'Timestamp'], kind='stable')
    signed = np.where(theirs['Side'] == 'Buy', 1.0, -1.0) * theirs['Size'].to_numpy()
    np.testing.assert_allclose(ours.fills['qty'].to_numpy(), signed, rtol=1e-9)
    np.testing.assert_allclose(ours.fills['price'].to_numpy(), theirs['Price'].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.fills['commission'].to_numpy(), theirs['Fees'].to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('price', ['close', 'next_open'])
@pytest.mark.parametrize('fees_bps,slippage_bps', [(0, 0), (10, 0), (0, 25), (5, 10)])
def test_long_only_all_cash(price, fees_bps, slippage_bps):
    close, open_, le, lx, _, _ = _market(1)
    ours = from_signals(close, le, lx, open=open_, price=price, fees_bps=fees_bps, slippage_bps=slippage_bps, init_cash=1e4)
    pf = _vbt(close, open_, price, le, lx, fees=fees_bps * 1e-4, slippage=slippage_bps * 1e-4, init_cash=1e4)
    _same(ours, pf)


@pytest.mark.parametrize('size_type,size', [('shares', 50.0), ('shares', 1e4), ('value', 1500.0), ('value', 5e4), ('percent', 0.4)])
@pytest.mark.parametrize('whole', [False, True])
def test_size_types(size_type, size, whole):
    "Sizes above what the cash buys are cut to it (vectorbt's partial fill); whole shares floor every size."
    close, open_, le, lx, _, _ = _market(2)
    ours = from_signals(close, le, lx, open=open_, size=size, size_type=size_type, fees_bps=3, slippage_bps=5,
                        init_cash=1e4, fractional=not whole)
    pf = _vbt(close, open_, 'next_open', le, lx, size=size, size_type={'shares': 'amount'}.get(size_type, size_type),
              fees=3e-4, slippage=5e-4, init_cash=1e4, size_granularity=1.0 if whole else np.nan)
    _same(ours, pf)


@pytest.mark.parametrize('size_type,size', [('shares', np.inf), ('shares', 40.0), ('value', 2000.0)])
@pytest.mark.parametrize('price', ['close', 'next_open'])
def test_long_short_with_reversals(size_type, size, price):
    "Short entries and exits: shorts sized by free cash (inf), reversals in one order, covers cut to the cash."
    close, open_, le, lx, se, sx = _market(3)
    ours = from_signals(close, le, lx, open=open_, price=price, short_entries=se, short_exits=sx, size=size,
                        size_type=size_type, fees_bps=4, slippage_bps=6, init_cash=1e4)
    pf = _vbt(close, open_, price, le, lx, se, sx, size=size, size_type={'shares': 'amount'}.get(size_type, size_type),
              fees=4e-4, slippage=6e-4, init_cash=1e4)
    assert (ours.positions.to_numpy() < 0).any() and (ours.positions.to_numpy() > 0).any()
    _same(ours, pf)


def test_parameter_grid_sma_crossover():
    "A (fast, slow) grid of SMA crossovers: signal columns (fast, slow, symbol), close/open broadcast by symbol."
    close, open_, *_ = _market(4)
    ents, exts = {}, {}
    for f, s in [(5, 20), (10, 50), (20, 100)]:
        up = close.rolling(f).mean() > close.rolling(s).mean()
        ents[(f, s)], exts[(f, s)] = up & ~up.shift(1, fill_value=False), ~up & up.shift(1, fill_value=False)
    en = pd.concat(ents, axis=1, names=['fast', 'slow'])
    ex = pd.concat(exts, axis=1, names=['fast', 'slow'])
    ours = from_signals(close, en, ex, open=open_, fees_bps=1, slippage_bps=2, init_cash=1e5)
    assert ours.final_value.shape == (12,) and ours.final_value.index.equals(en.columns)
    # vectorbt broadcasts close/open against the signal columns itself
    pf = vbt.Portfolio.from_signals(close, en.shift(1, fill_value=False), ex.shift(1, fill_value=False), price=open_,
                                    fees=1e-4, slippage=2e-4, init_cash=1e5, freq='15min')
    assert pf.wrapper.columns.equals(en.columns)
    _same(ours, pf)


def test_3d_array_grid_and_per_column_fees():
    "A (P, T, N) signal array and one fee per column: the same as vectorbt on the flattened columns."
    close, open_, le, lx, _, _ = _market(5)
    rng = np.random.default_rng(5)
    E, X = rng.uniform(size=(3, T, N)) < 0.05, rng.uniform(size=(3, T, N)) < 0.05
    fees = np.repeat([1.0, 5.0, 20.0], N)                                   # parameter-major columns
    ours = from_signals(close.to_numpy(), E, X, open=open_.to_numpy(), fees_bps=fees, init_cash=1e4)
    flat = lambda a: pd.DataFrame(np.moveaxis(a, 0, 1).reshape(T, -1))
    c3, o3 = pd.DataFrame(np.tile(close.to_numpy(), 3)), pd.DataFrame(np.tile(open_.to_numpy(), 3))
    pf = vbt.Portfolio.from_signals(c3, flat(E).shift(1, fill_value=False), flat(X).shift(1, fill_value=False), price=o3,
                                    fees=fees * 1e-4, init_cash=1e4, freq='15min')
    _same(ours, pf)


def test_synthetic_market_with_missing_bars():
    "The project's synthetic market, with a few missing bars: no fill where the fill price is NaN, marks carry forward."
    from alphatrade.data.synthetic import generate_market
    from alphatrade.data.bars import to_panel
    p = to_panel(generate_market(symbols=['AAPL', 'MSFT', 'XOM'], sectors={'AAPL': 'IT', 'MSFT': 'IT', 'XOM': 'Energy'},
                                 years=0.1, end='2024-12-31', seed=3))
    close, open_ = p.frame('close'), p.frame('open')
    close.iloc[40:43, 1] = np.nan; open_.iloc[40:43, 1] = np.nan
    fast, slow = close.ffill().rolling(10).mean(), close.ffill().rolling(30).mean()
    up = fast > slow
    le, lx = up & ~up.shift(1, fill_value=False), ~up & up.shift(1, fill_value=False)
    ours = from_signals(close, le, lx, open=open_, fees_bps=2, slippage_bps=3, init_cash=1e5)
    pf = _vbt(close, open_, 'next_open', le, lx, fees=2e-4, slippage=3e-4, init_cash=1e5)
    _same(ours, pf)
