"""`cpcv`: combinatorial purged CV split generation for 100,000 samples (10 folds, 2 test folds: 45 splits,
9 backtest paths; purge 10 rows, embargo 10 rows) against skfolio's `CombinatorialPurgedCV`
(`purged_size=10, embargo_size=10`; ours with t0 = row number, t1 = t0 + 10 and embargo = 10 / n).
Equal: the same test and purged training positions split by split, 45 splits, and the same 9 paths
(skfolio's `get_path_ids`). Target ratio <= 1."""
import itertools
import numpy as np
import pandas as pd
from alphatrade.models.cv import CombinatorialPurgedCV

N_OBS, N_FOLDS, N_TEST, PURGE, EMBARGO = 100_000, 10, 2, 10, 10


def cases():
    from skfolio.model_selection import CombinatorialPurgedCV as SkCPCV
    X = np.zeros((N_OBS, 1))
    t0 = np.arange(N_OBS)
    ours_cv = CombinatorialPurgedCV(N_FOLDS, N_TEST, pd.Series(t0 + PURGE, index=t0), embargo=EMBARGO / N_OBS)
    peer_cv = SkCPCV(n_folds=N_FOLDS, n_test_folds=N_TEST, purged_size=PURGE, embargo_size=EMBARGO)
    def ours(): return list(ours_cv.split(X))
    def peer(): return [(tr, np.concatenate(te)) for tr, te in peer_cv.split(X)]
    def same_paths():
        ids = peer_cv.get_path_ids()
        theirs = {(s, f): ids[s, j] for s, c in enumerate(itertools.combinations(range(N_FOLDS), N_TEST)) for j, f in enumerate(c)}
        paths = ours_cv.paths()
        return len(paths) == peer_cv.n_test_paths == 9 and all(theirs[key] == p for p, path in enumerate(paths) for key in path)
    def equal(a, b):
        return (len(a) == len(b) == 45 and same_paths()
                and all(np.array_equal(x, y) and np.array_equal(u, v) for (x, u), (y, v) in zip(a, b)))
    yield dict(task='CPCV split generation', size='100,000 samples, 45 splits, 9 paths', ours=ours,
               peer='skfolio CombinatorialPurgedCV', peer_fn=peer, equal=equal, target='ratio <= 1')
