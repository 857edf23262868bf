"""`labels`: the triple-barrier scan (`triple_barrier_1d_nb` with its vertical barriers) for 100,000
events on a 1,000,000-bar random path (26-bar sessions, barriers at +2/-1 sigma, 20 bars' holding),
and the whole pandas API (`triple_barrier_labels`, sessions from the calendar) for 100,000 events on
about 30 years of 15-minute bars. No peer library computes this; the target is 1 s, so ratio <= 1
meets it."""
import numpy as np
import pandas as pd
from alphatrade.core.calendar import bar_grid
from alphatrade.features.labels import triple_barrier_1d_nb, triple_barrier_labels, vertical_barriers


def cases():
    rng = np.random.default_rng(0)
    n, m = 1_000_000, 100_000
    lc = np.log(100) + np.cumsum(rng.normal(0, 3e-3, n))
    session = (np.arange(n) // 26).astype(np.float64)
    ev = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
    trgt, side = np.full(m, 3e-3 * np.sqrt(20)), np.ones(m)
    def ours(): return triple_barrier_1d_nb(lc, ev, vertical_barriers(session, ev, 20), trgt, side, 2.0, 1.0)
    yield dict(task='triple-barrier kernel', size='100,000 events, 1M bars', ours=ours, peer='target 1 s', peer_fn=None,
               peer_s=1.0, equal=lambda res, _: len(res[0]) == m, target='ratio <= 1')
    idx = bar_grid('1995-01-03', '2024-12-31')
    c = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 3e-3, len(idx)))), index=idx)
    events = idx[np.sort(rng.choice(len(idx), m, replace=False))]
    def api(): return triple_barrier_labels(c, 3e-3 * np.sqrt(20), events, pt=2.0, sl=1.0, max_holding=20)
    yield dict(task='triple_barrier_labels (pandas)', size=f'100,000 events, {len(idx):,} bars', ours=api, peer='target 1 s',
               peer_fn=None, peer_s=1.0, equal=lambda res, _: len(res) + sum(res.attrs['dropped'].values()) == m, target='ratio <= 1')
