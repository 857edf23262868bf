"""`fracdiff`: the fixed-width-window fractional difference (d=0.4, threshold 1e-5, window 1458) of
100,000 log prices against `np.convolve` with the same weights (the direct O(n*window) sum).
Target ratio <= 1."""
import numpy as np
from alphatrade.features.fracdiff import ffd_1d, ffd_weights


def cases():
    rng = np.random.default_rng(0)
    for n in (100_000, 1_000_000):
        x = np.log(100) + np.cumsum(rng.normal(0, 1e-3, n))
        w = ffd_weights(0.4, 1e-5)
        def peer(x=x, w=w): return np.convolve(x, w, 'valid')
        yield dict(task='ffd d=0.4 thr=1e-5', size=f'{n:,} bars, window {len(w)}', ours=lambda x=x: ffd_1d(x, 0.4, 1e-5),
                   peer='np.convolve', peer_fn=peer, equal=lambda a, b, k=len(w): np.allclose(a[k - 1:], b, rtol=0, atol=1e-10),
                   target='ratio <= 1')
