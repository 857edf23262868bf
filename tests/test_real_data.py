"""Real, public market files in ../shared/data load through the normal loader (skipped when absent).

Daily: 15 unadjusted Dow stocks, 1999-2023, midnight stamps. The known stock splits in them are
found (and dated) by the split detector, and genuine large moves are not called splits.
Intraday: SPY hourly bars, naive New York stamps, bar-END labels, extended hours 04:00-20:00.
"""
import pandas as pd
import pytest
from alphatrade.data.loader import load_bars

# splits documented in the companies' filings; the dates are the first day of split-adjusted trading
KNOWN_SPLITS = {'AXP': ('2000-05-11', '3:1'), 'CAT': ('2005-07-14', '2:1'), 'CSCO': ('2000-03-23', '2:1'),
                'CVX': ('2004-09-13', '2:1'), 'HD': ('1999-12-31', '3:2'), 'INTC': ('2000-07-31', '2:1'),
                'JNJ': ('2001-06-13', '2:1'), 'JPM': ('2000-06-12', '3:2'), 'KO': ('2012-08-13', '2:1')}


@pytest.fixture(scope='module')
def daily(shared_data):
    return load_bars(shared_data / 'daily')


def test_daily_loads_as_daily_on_session_grid(daily):
    assert daily.freq == '1D' and len(daily.symbols) == 15 and not daily.failures
    q = daily.quality_table()
    assert (q['missing'] == 0).all() and (q['off_grid'] == 0).all(), q
    ts = daily.bars.index.get_level_values(0)
    assert (ts.strftime('%H:%M') == '09:30').all() and str(ts.tz) == 'America/New_York'
    assert daily.assumptions()['label'].str.startswith('daily').all()


def test_known_splits_found_and_nothing_else(daily):
    iss = daily.issues()
    sp = iss[iss['check'] == 'split']
    found = {r.symbol: (pd.Timestamp(r.timestamp).strftime('%Y-%m-%d'), r.detail.split()[0]) for r in sp.itertuples()}
    assert found == KNOWN_SPLITS


def test_crashes_are_not_splits(daily):
    "Large genuine moves (Sept 2001, Oct 2008, March 2020) are outliers at most, never splits."
    iss = daily.issues()
    sp = pd.to_datetime(iss.loc[iss['check'] == 'split', 'timestamp'].astype(str), utc=True)
    for day in ('2001-09-17', '2008-10-15', '2008-09-29', '2020-03-16', '2020-03-12'):
        assert not (sp.dt.strftime('%Y-%m-%d') == day).any()
    assert (iss['check'] == 'outlier').sum() > 0


def test_spy_hourly_end_labelled_extended(shared_data):
    r = load_bars(shared_data / 'intraday' / 'SPY_60min.csv')
    a = r.assumptions().iloc[0]
    assert r.symbols == ['SPY'] and r.freq == '1h'
    assert a['label'].startswith('end (detected') and 'naive' in a['timezone'] and a['extended_dropped'] > 0
    ts = r.bars.index.get_level_values(0)
    # bars now labelled by their start: the first of a session is 09:00 (09:00-10:00, straddling the open), the last 15:00
    per_day = pd.Series(ts.strftime('%H:%M'), index=ts.normalize())
    assert per_day.groupby(level=0).min().eq('09:00').all() and per_day.groupby(level=0).max().isin(['15:00', '12:00']).all()
    assert r.quality_table().loc['SPY', 'missing'] == 0 and r.quality_table().loc['SPY', 'off_grid'] == 0
    # keeping extended hours keeps every source row
    k = load_bars(shared_data / 'intraday' / 'SPY_60min.csv', extended_hours='keep')
    assert len(k.bars) == 7936
