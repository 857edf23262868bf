"""Every registered feature: causal (the harness of `alphatrade.features.registry`), and equal to
TA-Lib where TA-Lib computes the same thing (TA-Lib is a dev extra).

The registry fills as feature modules are imported; importing every module of `alphatrade.features`
here means a new feature is covered as soon as it is registered.
"""
import importlib, pkgutil
import numpy as np
import pytest
import alphatrade.features
from alphatrade.features.registry import FEATURES, check_causal, columnwise, demo_arrays

for m in pkgutil.iter_modules(alphatrade.features.__path__):
    importlib.import_module(f'alphatrade.features.{m.name}')

NAMES = sorted(FEATURES)
TALIB = sorted(n for n, f in FEATURES.items() if f.talib is not None)


@pytest.fixture(scope='module')
def arrays():
    return demo_arrays(T=2000, N=3, seed=11)[1]  # long enough for the longest windows (FFD d=0.4: 1458 bars)


def test_registry_is_populated():
    assert len(NAMES) >= 4, NAMES


@pytest.mark.parametrize('name', NAMES)
def test_causal(name, arrays):
    "The value at t uses only bars <= t: truncating at t, or scrambling the bars after t, changes nothing up to t."
    assert check_causal(FEATURES[name], arrays, cuts=[15, 160, 700, 1500, 1998]) == []


def _walk(n, seed):
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = np.r_[c[0], c[:-1]] * np.exp(rng.normal(0, 0.002, n))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n)); l = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    return {'open': o, 'high': h, 'low': l, 'close': c, 'volume': rng.uniform(1e3, 1e5, n).round()}


@pytest.mark.parametrize('name', TALIB)
def test_equals_talib(name):
    "Equal to TA-Lib to 1e-8 relative after the warm-up, with the same warm-up (NaN) rows, on each column."
    ta = pytest.importorskip('talib', reason='TA-Lib is a dev extra')
    f = FEATURES[name]
    n = 3000
    cols = [_walk(n, s) for s in (1, 2)]
    cols[1] = {k: np.r_[np.full(300, np.nan), v[300:]] for k, v in cols[1].items()}  # listed later
    arrays = {k: np.stack([c[k] for c in cols], axis=1) for k in cols[0]}
    ours = columnwise(f, arrays)
    for j, c in enumerate(cols):
        ok = ~np.isnan(c['close'])
        ref = f.talib(ta, *(c[i][ok] for i in f.inputs), **f.params)
        ref = ref if isinstance(ref, tuple) else (ref,)
        for name_o, o, r in zip(f.out_names(), ours, ref):
            mine = o[ok, j]
            np.testing.assert_array_equal(np.isnan(mine), np.isnan(r), err_msg=f'{name}.{name_o} warm-up differs (column {j})')
            m = ~np.isnan(r)
            np.testing.assert_allclose(mine[m], r[m], rtol=1e-8, atol=1e-10, err_msg=f'{name}.{name_o} (column {j})')
