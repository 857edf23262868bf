"""`train`: fit time of each model family of `alphatrade.models.gbm` (XGBoost, LightGBM, CatBoost, random
forest, each at its small default: 200 trees, depth 4-6) on the 46-symbol, two-year synthetic market
(`generate_market(seed=42, signal_strength=0.1)`, about 600,000 bars) with a modest feature set: the
momentum, volatility and statistics families of `default_spec` at their default windows (59 columns; rows
with any missing feature, i.e. warm-up, are dropped). The label is the sign of the next bar's return
(+1/-1; zero returns dropped): the triple-barrier labels would need a per-symbol event scan and volatility
targets, and only the label's shape (binary, one per bar) matters for fit time. The fit uses the first 80%
of the time stamps; the extra field `test_auc` is the AUC on the last 20% (a sanity check, not a target:
the planted signal is weak, so values only slightly above 0.5 are expected). There is no peer
library: the figures are reported as they are (peer_s=None, no ratio). Threads: `n_jobs` = all cores
(override with ALPHATRADE_BENCH_JOBS); results are reproducible for a fixed thread count. The random
forest is the slow one; run with `--repeat 1` for a quick look."""
import os
import numpy as np
from sklearn.metrics import roc_auc_score
from alphatrade.data.synthetic import generate_market
from alphatrade.features.builder import build_features, default_spec
from alphatrade.models.gbm import KINDS, make_model


def dataset():
    "Features, next-bar sign labels, and a time split (80% / 20% of the time stamps)."
    bars = generate_market(years=2, end='2024-12-31', seed=42, signal_strength=0.1)
    X = build_features(bars, default_spec(windows=(), families=('momentum', 'volatility', 'statistics')))
    logc = np.log(bars['close'])
    fwd = logc.groupby(level='symbol').shift(-1) - logc            # next bar's log return, per symbol
    keep = X.notna().all(axis=1).to_numpy() & fwd.notna().to_numpy() & (fwd != 0).to_numpy()
    X, y = X[keep], np.sign(fwd[keep]).astype(np.int64).to_numpy()
    t = X.index.get_level_values(0)
    train = np.asarray(t <= t.unique().sort_values()[int(0.8 * t.nunique())])
    return X, y, train


def cases():
    X, y, train = dataset()
    jobs = int(os.environ.get('ALPHATRADE_BENCH_JOBS', os.cpu_count() or 1))
    Xtr, ytr, Xte, yte = X[train], y[train], X[~train], y[~train]
    for kind in KINDS:
        model = make_model(kind, n_jobs=jobs, device='cpu')
        yield dict(task=f'fit {kind} (200 trees)', size=f'{len(Xtr):,} rows x {X.shape[1]} features, {jobs} threads',
                   ours=lambda m=model: m.fit(Xtr, ytr), peer='(none)', peer_fn=None, peer_s=None,
                   equal=lambda m, _: m.n_trees_ == 200 and list(m.classes_) == [-1, 1],
                   extra=lambda m: {'test_auc': round(float(roc_auc_score(yte, m.predict_proba(Xte)[:, 1])), 4)})
