"""`vector`: SMA 10/50 crossover on the 46-symbol synthetic market (`generate_market(years=2, end='2024-12-31',
seed=42)`, close panel; the size line gives the bars it has), simulation only, against vectorbt's
`Portfolio.from_signals`.

Signals (computed once, outside the timing): long entry where SMA10 crosses above SMA50, exit where it crosses
below. Both sides: every symbol its own account of 1,000,000, all the cash on each entry, 1 bp commission
(vectorbt `fees=1e-4`) and 2 bps slippage, fills at the NEXT bar's open. Ours: `from_signals(close, entries, exits,
open=open, price='next_open', fees_bps=1, slippage_bps=2)`. vectorbt fills at its signal bar's `price`, so it gets
the signals shifted one bar later (also outside the timing) and `price=open`. Timed: one call each, returning the
final values (vectorbt: `from_signals(...).final_value()`; ours builds equity, cash, positions and the fill frame).
Equal: final values of all 46 accounts to 1e-9 relative. Target: ratio <= 1."""
import numpy as np
from alphatrade.backtest.vector import from_signals
from alphatrade.data.bars import to_panel
from alphatrade.data.synthetic import generate_market

FAST, SLOW, CASH, FEES_BPS, SLIP_BPS = 10, 50, 1e6, 1.0, 2.0


def signals():
    "Close and open frames, and the crossover entries/exits."
    p = to_panel(generate_market(years=2, end='2024-12-31', seed=42))
    close, open_ = p.frame('close'), p.frame('open')
    up = close.rolling(FAST).mean() > close.rolling(SLOW).mean()
    return close, open_, up & ~up.shift(1, fill_value=False), ~up & up.shift(1, fill_value=False)


def cases():
    import vectorbt as vbt
    close, open_, en, ex = signals()
    en1, ex1 = en.shift(1, fill_value=False), ex.shift(1, fill_value=False)
    def ours(): return from_signals(close, en, ex, open=open_, fees_bps=FEES_BPS, slippage_bps=SLIP_BPS, init_cash=CASH).final_value
    def peer(): return vbt.Portfolio.from_signals(close, en1, ex1, price=open_, fees=FEES_BPS * 1e-4, slippage=SLIP_BPS * 1e-4,
                                                  init_cash=CASH, freq='15min').final_value()
    def equal(a, b): return bool(len(a) == close.shape[1] and np.allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9, atol=0))
    T, N = close.shape
    yield dict(task='SMA 10/50 crossover, from_signals', size=f'{N} symbols x {T:,} bars, {int(en.to_numpy().sum()):,} entries',
               ours=ours, peer='vectorbt Portfolio.from_signals', peer_fn=peer, equal=equal, target='ratio <= 1.0')
