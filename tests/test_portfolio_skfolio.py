"""`HierarchicalRiskParity` (PyPortfolioOpt's `HRPOpt` underneath) against skfolio's `HierarchicalRiskParity`.

Mapping: both cluster on the Pearson distance sqrt((1 - rho) / 2), order the assets by the dendrogram's leaves and
bisect the ordered list in halves, splitting by inverse-variance cluster variance from the sample covariance.
skfolio matches once its settings are the paper's: `HierarchicalClustering(linkage_method=SINGLE)` (its default
is Ward) and `HierarchicalSeriation(optimal_ordering=False)` (its default reorders the leaves optimally, which
changes the halves of the bisection and so the weights). With the defaults the weights differ, but the
clustering does not: the linkage matrices agree and only the leaf order differs.
"""
import numpy as np
import pandas as pd
import pytest
import scipy.cluster.hierarchy as sch

pytest.importorskip('skfolio', reason='skfolio (dev extra) is not installed')
from skfolio.cluster import HierarchicalClustering, LinkageMethod
from skfolio.distance import PearsonDistance
from skfolio.optimization import HierarchicalRiskParity as SkHRP
from skfolio.seriation import HierarchicalSeriation
from pypfopt import HRPOpt
from alphatrade.risk.portfolio import HierarchicalRiskParity


def _returns(n_assets, n_obs, seed):
    rng = np.random.default_rng(seed)
    B = rng.normal(0, 1, (n_assets, 3))
    cov = (B @ B.T + np.diag(rng.uniform(0.5, 2.0, n_assets))) * 1e-4
    r = rng.multivariate_normal(np.full(n_assets, 3e-4), cov, n_obs, method='cholesky')
    return pd.DataFrame(r, columns=[f'S{i:02d}' for i in range(n_assets)])


def _sk(linkage, optimal_ordering):
    seriation = HierarchicalSeriation(hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=linkage),
                                      optimal_ordering=optimal_ordering)
    return SkHRP(distance_estimator=PearsonDistance(), seriation_estimator=seriation)


@pytest.mark.parametrize('n_assets,n_obs,seed', [(5, 100, 0), (12, 500, 1), (30, 400, 2), (46, 1000, 3)])
def test_hrp_weights_equal_skfolio(n_assets, n_obs, seed):
    R = _returns(n_assets, n_obs, seed)
    ours = HierarchicalRiskParity(linkage='single').optimize(R)
    ref = _sk(LinkageMethod.SINGLE, False).fit(R)
    np.testing.assert_allclose(ours.to_numpy(), ref.weights_, rtol=0, atol=1e-12)
    h = HRPOpt(R); h.optimize('single')
    np.testing.assert_array_equal(sch.to_tree(h.clusters).pre_order(), ref.seriation_estimator_.ordering_)


def test_skfolio_default_ordering_differs_but_clustering_matches():
    R = _returns(12, 500, 1)
    h = HRPOpt(R); h.optimize('single')
    ref = _sk(LinkageMethod.SINGLE, True).fit(R)
    hc = ref.seriation_estimator_.hierarchical_clustering_estimator_
    np.testing.assert_allclose(hc.linkage_matrix_, h.clusters, rtol=0, atol=1e-12)      # the same dendrogram
    assert list(ref.seriation_estimator_.ordering_) != sch.to_tree(h.clusters).pre_order()  # leaves reordered
    ours = HierarchicalRiskParity(linkage='single').optimize(R)
    assert np.abs(ours.to_numpy() - ref.weights_).max() > 1e-3                            # so the halves, and weights, differ
