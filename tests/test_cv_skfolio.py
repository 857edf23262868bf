"""`CombinatorialPurgedCV` against skfolio's `CombinatorialPurgedCV` (split by split) and its path ids.

Mapping: skfolio counts in observations. Its `purged_size=p` drops the p rows before each test block and the
p rows after it; `embargo_size=e` drops e more rows after it. Ours purges by label intervals: with t0 = row
number and t1 = t0 + p, a training label overlaps a test block [s, e] exactly when it starts in s-p..e+p, and
`embargo = e / n` (h = e rows) embargoes the next e rows after that. skfolio puts the remainder of n / n_folds
in the last fold, ours (like KFold) in the first ones, so n is a multiple of n_folds here. skfolio yields the
test set as a list of per-fold arrays; ours concatenates them (scikit-learn's splitter API).
"""
import itertools
import numpy as np
import pandas as pd
import pytest

skcv = pytest.importorskip('skfolio.model_selection', reason='skfolio (dev extra) is not installed')
from alphatrade.models.cv import CombinatorialPurgedCV


def _ours(n, N, k, p, e):
    t0 = np.arange(n)
    return CombinatorialPurgedCV(N, k, pd.Series(t0 + p, index=t0), embargo=e / n)


@pytest.mark.parametrize('n,N,k,p,e', [(12, 3, 2, 0, 0), (12, 3, 2, 1, 0), (12, 3, 2, 0, 1), (100, 5, 2, 3, 2),
                                       (120, 6, 3, 2, 4), (200, 10, 2, 5, 5), (90, 9, 4, 1, 7), (60, 4, 3, 0, 3)])
def test_splits_equal_skfolio(n, N, k, p, e):
    ref = list(skcv.CombinatorialPurgedCV(n_folds=N, n_test_folds=k, purged_size=p, embargo_size=e).split(np.zeros((n, 1))))
    ours = list(_ours(n, N, k, p, e).split(np.zeros(n)))
    assert len(ours) == len(ref) == _ours(n, N, k, p, e).get_n_splits()
    for (tr, te), (rtr, rte) in zip(ours, ref):
        np.testing.assert_array_equal(te, np.concatenate(rte))
        np.testing.assert_array_equal(tr, rtr)


@pytest.mark.parametrize('N,k', [(3, 2), (6, 2), (6, 3), (10, 2), (8, 5)])
def test_paths_equal_skfolio(N, k):
    "skfolio's get_path_ids()[s, j] is the path of split s's j-th test fold; ours lists (split, fold) per path."
    ref = skcv.CombinatorialPurgedCV(n_folds=N, n_test_folds=k)
    ours = CombinatorialPurgedCV(N, k)
    assert ours.n_paths == ref.n_test_paths
    ids = ref.get_path_ids()
    theirs = {(s, f): ids[s, j] for s, c in enumerate(itertools.combinations(range(N), k)) for j, f in enumerate(c)}
    for path_id, path in enumerate(ours.paths()):
        assert [f for _, f in path] == list(range(N))
        assert all(theirs[key] == path_id for key in path)
