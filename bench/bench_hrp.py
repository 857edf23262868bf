"""`hrp`: hierarchical risk parity on 46 assets x 2,520 days of synthetic daily returns (seeded multivariate normal
with a 3-factor structure, covariance B B' + D) against PyPortfolioOpt's `HRPOpt` called directly.
1. One optimisation: `HierarchicalRiskParity(linkage='single').optimize(R)` vs `HRPOpt(R).optimize('single')`.
2. Walk-forward: `rolling_optimize(R, window=252, every=63)` (36 quarterly rebalances) vs a plain loop of `HRPOpt` on the
   same windows (rows i-252..i-1 for i = 252, 315, ...).
Equal: the same weights to 1e-12 (asset by asset; rebalance by rebalance). Ours wraps HRPOpt and adds input checks
(finite, non-constant returns), so the target is ratio <= 1.1."""
import numpy as np
import pandas as pd
from pypfopt import HRPOpt
from alphatrade.risk.portfolio import HierarchicalRiskParity

N_ASSETS, N_DAYS, N_FACTORS, SEED, WINDOW, EVERY = 46, 2_520, 3, 42, 252, 63


def returns() -> pd.DataFrame:
    "Seeded daily returns: multivariate normal with covariance B B' + D (3 factors), drift 3 bp a day."
    rng = np.random.default_rng(SEED)
    B = rng.normal(0, 0.008, (N_ASSETS, N_FACTORS))
    cov = B @ B.T + np.diag(rng.uniform(0.008, 0.02, N_ASSETS) ** 2)
    r = rng.multivariate_normal(np.full(N_ASSETS, 3e-4), cov, N_DAYS, method='cholesky')
    return pd.DataFrame(r, index=pd.bdate_range('2014-01-02', periods=N_DAYS, name='date'),
                        columns=pd.Index([f'S{i:02d}' for i in range(N_ASSETS)], name='asset'))


def cases():
    R = returns()
    hrp = HierarchicalRiskParity(linkage='single')
    def peer_one(): return pd.Series(HRPOpt(R).optimize('single'))
    def equal_one(a, b): return bool(np.abs(a.to_numpy() - b.reindex(a.index).to_numpy()).max() <= 1e-12 and abs(a.sum() - 1) <= 1e-12)
    yield dict(task='HRP weights', size=f'{N_ASSETS} assets x {N_DAYS:,} days', ours=lambda: hrp.optimize(R),
               peer='PyPortfolioOpt HRPOpt', peer_fn=peer_one, equal=equal_one, target='ratio <= 1.1')
    rows = range(WINDOW, N_DAYS, EVERY)
    def peer_roll(): return pd.DataFrame([pd.Series(HRPOpt(R.iloc[i - WINDOW:i]).optimize('single')) for i in rows], index=R.index[list(rows)])
    def equal_roll(a, b): return bool(a.shape == (len(rows), N_ASSETS) and a.index.equals(b.index)
                                      and np.abs(a.to_numpy() - b[a.columns].to_numpy()).max() <= 1e-12)
    yield dict(task='HRP walk-forward', size=f'{N_ASSETS} assets x {N_DAYS:,} days, window {WINDOW}, every {EVERY} ({len(rows)} rebalances)',
               ours=lambda: hrp.rolling_optimize(R, window=WINDOW, every=EVERY), peer='HRPOpt loop',
               peer_fn=peer_roll, equal=equal_roll, target='ratio <= 1.1')
