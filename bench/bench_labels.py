"""`labels`: the triple-barrier scan (`triple_barrier_1d_nb` with its vertical barriers) for 100,000
events on a 1,000,000-bar random path (26-bar sessions, barriers at +2/-1 sigma, 20 bars' holding)
against the slow, obvious pure-Python reference on the same inputs (target: at least 100x faster,
ratio <= 0.01; mlfinpy, the library peer, pins numpy < 1.27 and pandas < 3 and cannot be installed
beside the project's stack), and the whole pandas API (`triple_barrier_labels`, sessions from the
calendar) for 100,000 events on about 30 years of 15-minute bars against a 1 s target."""
import numpy as np
import pandas as pd
from alphatrade.core.calendar import bar_grid
from alphatrade.features.labels import triple_barrier_1d_nb, triple_barrier_labels, vertical_barriers, PT, SL, VERTICAL, INCOMPLETE, NO_BARS


def reference(logc, t0, vert, trgt, side, pt, sl):
    "AFML's definition, one event at a time: the first bar after t0 whose side-adjusted return crosses a barrier."
    n = len(logc)
    t1, ret, code = [], [], []
    for i, v, tg, sd in zip(t0.tolist(), vert.tolist(), trgt.tolist(), side.tolist()):
        if v <= i: t1.append(i); ret.append(0.0); code.append(NO_BARS); continue
        end = min(v, n - 1)
        hit, c = end, (INCOMPLETE if v > n - 1 else VERTICAL)
        for k in range(i + 1, end + 1):
            r = sd * (logc[k] - logc[i])
            if pt > 0 and r > pt * tg: hit, c = k, PT; break
            if sl > 0 and r < -sl * tg: hit, c = k, SL; break
        t1.append(hit); code.append(c); ret.append(sd * (logc[hit] - logc[i]))
    return np.array(t1), np.array(ret), np.array(code)


def cases():
    rng = np.random.default_rng(0)
    n, m = 1_000_000, 100_000
    lc = np.log(100) + np.cumsum(rng.normal(0, 3e-3, n))
    session = (np.arange(n) // 26).astype(np.float64)
    ev = np.sort(rng.choice(n, m, replace=False)).astype(np.int64)
    trgt, side = np.full(m, 3e-3 * np.sqrt(20)), np.ones(m)
    def ours(): return triple_barrier_1d_nb(lc, ev, vertical_barriers(session, ev, 20), trgt, side, 2.0, 1.0)
    vert = vertical_barriers(session, ev, 20)
    def ref(): return reference(lc, ev, vert, trgt, side, 2.0, 1.0)
    yield dict(task='triple-barrier kernel', size='100,000 events, 1M bars', ours=ours, peer='pure-Python reference', peer_fn=ref,
               equal=lambda a, b: all(np.array_equal(x, y) for x, y in zip(a, b)), target='ratio <= 0.01')
    idx = bar_grid('1995-01-03', '2024-12-31')
    c = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 3e-3, len(idx)))), index=idx)
    events = idx[np.sort(rng.choice(len(idx), m, replace=False))]
    def api(): return triple_barrier_labels(c, 3e-3 * np.sqrt(20), events, pt=2.0, sl=1.0, max_holding=20)
    yield dict(task='triple_barrier_labels (pandas)', size=f'100,000 events, {len(idx):,} bars', ours=api, peer='target 1 s',
               peer_fn=None, peer_s=1.0, equal=lambda res, _: len(res) + sum(res.attrs['dropped'].values()) == m, target='ratio <= 1')
