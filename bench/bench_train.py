"""`train`: fit time of each model family on the 46-symbol, two-year synthetic market
(`generate_market(seed=42, signal_strength=0.1)`, about 600,000 bars) with the training workflow's
default dataset: `make_dataset` with `training_spec()` (67 features: momentum, volatility, statistics and
cross-asset families plus the one-bar cross-sectional z-score and rank) and `LabelSpec()` triple-barrier
labels (barriers at 1 sigma*sqrt(4), vertical after 4 bars, every bar an event, flat labels dropped), with
uniqueness weights. The fit uses the rows before a purged 80/20 hold-out (`holdout_split`); the extra
field `test_auc` is the hold-out AUC (a sanity check, not a target: the planted signal lives at one bar
and a 4-bar label dilutes it, so values slightly above 0.5 are expected).

- tree models: XGBoost, LightGBM, CatBoost, random forest at their small defaults (200 trees, depth 4-6);
- sequence models: bidirectional LSTM and Transformer (`models.deep`, hidden 32) over windows of 16 bars of
  16 features (listed in `DEEP_COLUMNS`), ONE epoch over all training rows without early stopping
  (`epochs=1, val_frac=0`): the figure is the time per epoch; a real fit runs 10-30 epochs.

There is no peer library: the figures are reported as they are (peer_s=None, no ratio). Threads:
`n_jobs` = all cores (override with ALPHATRADE_BENCH_JOBS); results are reproducible for a fixed thread
count. The random forest and the sequence models are the slow ones: run with `--repeat 0` (one timed fit each)."""
import os
from functools import lru_cache
import numpy as np
from sklearn.metrics import roc_auc_score
from alphatrade.data.synthetic import generate_market
from alphatrade.features.builder import build_features
from alphatrade.models.deep import window_features
from alphatrade.models.gbm import KINDS
from alphatrade.models.training import holdout_split, make_dataset, make_estimator, training_spec

DEEP_COLUMNS = ['logret', 'market_ret', 'xs_zscore_1', 'xs_rank_1', 'rsi', 'roc', 'mom', 'atr', 'natr', 'stddev',
                'garman_klass', 'parkinson', 'beta', 'correl', 'xs_zscore', 'sector_mom']


@lru_cache(1)
def dataset():
    "Features, the default dataset, and its purged 80/20 split."
    bars = generate_market(years=2, end='2024-12-31', seed=42, signal_strength=0.1)
    F = build_features(bars, training_spec())
    ds = make_dataset(bars, features=F)
    return F, ds, *holdout_split(ds, 0.2)


def cases():
    F, ds, train, test = dataset()
    jobs = int(os.environ.get('ALPHATRADE_BENCH_JOBS', os.cpu_count() or 1))
    w = train.weight.to_numpy()
    auc = lambda m, X, y: {'test_auc': round(float(roc_auc_score(y, m.predict_proba(X)[:, 1])), 4)}
    for kind in KINDS:
        model = make_estimator(kind, n_jobs=jobs, device='cpu')
        yield dict(task=f'fit {kind} (200 trees)', size=f'{len(train):,} rows x {ds.X.shape[1]} features, {jobs} threads',
                   ours=lambda m=model: m.fit(train.X, train.y, sample_weight=w), peer='(none)', peer_fn=None, peer_s=None,
                   equal=lambda m, _: m.n_trees_ == 200 and list(m.classes_) == [-1, 1],
                   extra=lambda m: auc(m, test.X, test.y))
    cols = [c for c in DEEP_COLUMNS if c in F.columns]
    Xtr, Xte = window_features(F, train.X.index, 16, cols), window_features(F, test.X.index, 16, cols)
    for arch in ('lstm', 'transformer'):
        model = make_estimator(arch, n_jobs=jobs, device='cpu', window=16, hidden=32, epochs=1, val_frac=0.0, batch_size=512)
        yield dict(task=f'fit {arch} (1 epoch)', size=f'{len(train):,} windows of 16 bars x {len(cols)} features, {jobs} threads',
                   ours=lambda m=model: m.fit(Xtr, train.y, sample_weight=w), peer='(none)', peer_fn=None, peer_s=None,
                   equal=lambda m, _: list(m.classes_) == [-1, 1] and len(m.history_) == 1,
                   extra=lambda m: auc(m, Xte, test.y))
