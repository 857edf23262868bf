"Performance metrics equal empyrical's (empyrical-reloaded, a dev extra) on the same returns."
import numpy as np
import pandas as pd
import pytest
from alphatrade.backtest import metrics as M
from alphatrade.core.calendar import bars_per_year

ep = pytest.importorskip('empyrical', reason='empyrical-reloaded is a dev extra')


@pytest.mark.parametrize('seed,freq', [(0, '15min'), (1, '15min'), (2, '1D'), (3, '1h')])
def test_metrics_match_empyrical(seed, freq):
    rng = np.random.default_rng(seed)
    r = pd.Series(rng.standard_t(4, 3000) * 1e-3 + 1e-5)
    eq = pd.concat([pd.Series([1e6]), 1e6 * (1 + r).cumprod()], ignore_index=True)
    ann = bars_per_year(freq)
    rr = M.returns_from_equity(eq)
    np.testing.assert_allclose(rr.to_numpy(), r.to_numpy(), rtol=0, atol=1e-12)  # the equity path holds the returns
    r = rr  # both sides get exactly the same returns
    pairs = [(M.sharpe_ratio(rr, freq), ep.sharpe_ratio(r, annualization=ann)),
             (M.sortino_ratio(rr, freq), ep.sortino_ratio(r, annualization=ann)),
             (M.annualized_volatility(rr, freq), ep.annual_volatility(r, annualization=ann)),
             (M.annualized_return(eq, freq), ep.annual_return(r, annualization=ann)),
             (M.max_drawdown(eq), ep.max_drawdown(r)),
             (M.total_return(eq), ep.cum_returns_final(r))]
    for ours, ref in pairs:
        assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
