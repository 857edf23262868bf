"""`event`: the event-driven engine's speed on 10 symbols × 13,104 15-minute bars of the synthetic market
(`generate_market(years=2, seed=42)`, the first 10 symbols of the universe): an SMA 10/50 crossover on the close,
long 100 shares while SMA10 > SMA50 and flat otherwise, market orders filled at the next bar's open, 1 bp commission
on the executed notional and no other cost (no spread, no fees, no risk layer) — against backtrader running the same
strategy on the same bars (cheat-on-open off, so its market orders also fill at the next bar's open;
`setcommission(commission=0.0001)`). Both timings include computing the moving averages. Prices are in whole
cents, so SMA10 and SMA50 are often exactly equal, and the two libraries' sums then differ in the last bit and
would break the tie differently: both sides test SMA10 > SMA50 + 1e-9 (far above rounding noise, far below a
one-cent difference of the means, 0.0002).
Equal: the final portfolio values agree to 1e-9 relative. Target: ratio <= 0.02 (at least 50× faster);
the summary line gives bars per second (symbols × bars / seconds) for both."""
import numpy as np
import pandas as pd
from alphatrade.backtest.costs import CostModel
from alphatrade.backtest.engine import backtest
from alphatrade.core.config import load_config
from alphatrade.data.bars import to_panel
from alphatrade.data.synthetic import generate_market

FAST, SLOW, SHARES, CASH, COMM, EPS = 10, 50, 100, 1_000_000.0, 1e-4, 1e-9


def cases():
    import backtrader as bt
    syms = load_config().universe.tickers[:10]
    panel = to_panel(generate_market(years=2, seed=42, symbols=syms))
    T, N = panel.shape
    cost = CostModel(commission_bps=COMM * 1e4, half_spread_bps=0.0, sec_fee_rate=0.0, taf_per_share=0.0)

    def ours():
        close = panel.frame('close')
        long = close.rolling(FAST).mean() > close.rolling(SLOW).mean() + EPS
        return backtest(panel, long.astype(np.float64) * SHARES, cost, CASH, limits=None, size_type='shares')

    frames = {s: pd.DataFrame({f: getattr(panel, f)[:, j] for f in ('open', 'high', 'low', 'close', 'volume')},
                              index=panel.index.tz_localize(None)) for j, s in enumerate(panel.symbols)}

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.sig = [(bt.ind.SMA(d.close, period=FAST), bt.ind.SMA(d.close, period=SLOW)) for d in self.datas]
        def next(self):
            for d, (f, s) in zip(self.datas, self.sig):
                held = self.getposition(d).size
                if f[0] > s[0] + EPS:
                    if held == 0: self.buy(data=d, size=SHARES)
                elif held != 0: self.close(data=d)

    def peer():
        cerebro = bt.Cerebro(stdstats=False)
        for s, f in frames.items(): cerebro.adddata(bt.feeds.PandasData(dataname=f, openinterest=None), name=s)
        cerebro.broker.setcash(CASH)
        cerebro.broker.setcommission(commission=COMM)
        cerebro.addstrategy(SmaCross)
        cerebro.run()
        return cerebro.broker.getvalue()

    def equal(a, b): return bool(np.isclose(a.equity.iloc[-1], b, rtol=1e-9, atol=0))
    yield dict(task='SMA 10/50 crossover, event-driven', size=f'{N} symbols x {T:,} bars', ours=ours, peer='backtrader', peer_fn=peer,
               equal=equal, target='ratio <= 0.02 (>= 50x)',
               extra=lambda r: {'final_value': round(float(r.equity.iloc[-1]), 6), 'fills': len(r.fills), 'bar_count': T * N})


def summarize(rows):
    for r in rows:
        n = r['bar_count']
        yield {'task': r['task'], 'ours_bars_per_s': round(n / r['ours_s']), 'backtrader_bars_per_s': round(n / r['peer_s']),
               'speedup': round(r['peer_s'] / r['ours_s'], 1)}
