"""`indicators`: every registered feature that TA-Lib also computes, on 1,000,000 bars of one symbol,
against TA-Lib (target: median ratio over the set <= 1.5; the worst are listed), and a set of common
indicators against pandas-ta-classic (pandas-ta's maintained fork; run with `talib=False` so it
uses its own code; target: at least 10x faster, i.e. ratio <= 0.1)."""
import importlib, pkgutil, statistics
import numpy as np
import pandas as pd
import alphatrade.features
from alphatrade.features.registry import FEATURES, columnwise

for m in pkgutil.iter_modules(alphatrade.features.__path__):
    importlib.import_module(f'alphatrade.features.{m.name}')

N = 1_000_000


def _walk(n=N, seed=0):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    o = np.r_[c[0], c[:-1]] * np.exp(rng.normal(0, 2e-4, n))
    return {'open': o, 'high': np.maximum(o, c) * (1 + rng.uniform(0, 1e-3, n)), 'low': np.minimum(o, c) * (1 - rng.uniform(0, 1e-3, n)),
            'close': c, 'volume': rng.uniform(1e3, 1e5, n).round()}


def _same(a, b):
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    # relative 1e-8, with an absolute floor scaled to the series (oscillators cross zero, where relative error is meaningless)
    return all(np.allclose(np.ravel(x), np.ravel(y), rtol=1e-8, atol=1e-10 * max(1.0, np.nanmax(np.abs(y))), equal_nan=True) for x, y in zip(a, b))


# pandas-ta-classic calls for a common subset: name -> (function, inputs)
PTA = {'sma': ('sma', ('close',), {'length': 'n'}), 'ema': ('ema', ('close',), {'length': 'n'}),
       'rsi': ('rsi', ('close',), {'length': 'n'}), 'atr': ('atr', ('high', 'low', 'close'), {'length': 'n'}),
       'wma': ('wma', ('close',), {'length': 'n'}), 'bbands': ('bbands', ('close',), {'length': 'n'}),
       'macd': ('macd', ('close',), {'fast': 'fast', 'slow': 'slow', 'signal': 'signal'}),
       'cci': ('cci', ('high', 'low', 'close'), {'length': 'n'}), 'willr': ('willr', ('high', 'low', 'close'), {'length': 'n'}),
       'adx': ('adx', ('high', 'low', 'close'), {'length': 'n'}), 'obv': ('obv', ('close', 'volume'), {}),
       'mfi': ('mfi', ('high', 'low', 'close', 'volume'), {'length': 'n'}), 'mom': ('mom', ('close',), {'length': 'n'}),
       'roc': ('roc', ('close',), {'length': 'n'}), 'stoch': ('stoch', ('high', 'low', 'close'), {'k': 'fastk', 'smooth_k': 'slowk', 'd': 'slowd'})}


def cases():
    import talib as ta
    w = _walk()
    arrays = {k: v[:, None] for k, v in w.items()}
    for name in sorted(n for n, f in FEATURES.items() if f.talib is not None):
        f = FEATURES[name]
        yield dict(task=f'indicator {name}', size=f'{N:,} bars', ours=lambda f=f: columnwise(f, arrays),
                   peer='talib', peer_fn=lambda f=f: f.talib(ta, *(w[i] for i in f.inputs), **f.params),
                   equal=lambda a, b: _same(tuple(x[:, 0] for x in a), b))
    try:
        import pandas_ta_classic as pta
    except ImportError:
        return
    s = {k: pd.Series(v) for k, v in w.items()}
    for name, (fn, ins, pmap) in PTA.items():
        if name not in FEATURES: continue
        f = FEATURES[name]
        kw = {theirs: f.params[ours] for theirs, ours in pmap.items() if ours in f.params}
        yield dict(task=f'indicator {name}', size=f'{N:,} bars', ours=lambda f=f: columnwise(f, arrays),
                   peer='pandas-ta-classic', peer_fn=lambda fn=fn, ins=ins, kw=kw: getattr(pta, fn)(*(s[i] for i in ins), talib=False, **kw),
                   equal=_same_tail, target='<= 0.1')


def _same_tail(ours, theirs, k=10_000):
    "Where pandas-ta defines the indicator as TA-Lib does, the last k values agree (its first output vs ours)."
    t = theirs.iloc[:, 0] if isinstance(theirs, pd.DataFrame) else theirs
    return bool(np.allclose(ours[0][-k:, 0], t.to_numpy(np.float64)[-k:], rtol=1e-6, equal_nan=True))


def summarize(rows):
    out = []
    for peer, target in (('talib', '<= 1.5'), ('pandas-ta-classic', '<= 0.1')):
        r = [x for x in rows if x['peer'] == peer]
        if not r: continue
        worst = sorted(r, key=lambda x: -x['ratio'])[:5]
        out.append({'summary': f'indicators vs {peer}', 'count': len(r), 'median_ratio': round(statistics.median(x['ratio'] for x in r), 3),
                    'target': target, 'worst': {x['task'].split()[-1]: x['ratio'] for x in worst},
                    'all_equal': all(x['equal'] for x in r) if peer == 'talib' else None})
    return out
