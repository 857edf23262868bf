"""A file in a non-default convention loads to exactly the bars of its clean twin.

The clean files are the synthetic market in the seed's format (bar-start stamps with New York
offsets, ascending). Each twin re-writes the same bars in another convention; the loader must
undo it and produce identical canonical bars, and report what it assumed.
"""
import numpy as np
import pandas as pd
import pytest
from alphatrade.core.calendar import TZ
from alphatrade.data.loader import load_bars
from alphatrade.data.bars import OHLCV


@pytest.fixture(scope='module')
def clean(synth_dir):
    return load_bars(synth_dir)


def _frame(res, sym):
    return res.bars.xs(sym, level='symbol')


def _write_twins(clean, d, make):
    for sym in clean.symbols:
        make(_frame(clean, sym).copy(), sym, d)
    return d


def test_clean_load_is_synthetic_and_on_grid(clean):
    assert clean.synthetic and clean.freq == '15min'
    assert (clean.quality_table()['score'] == 100).all(), clean.quality_table()
    per_day = _frame(clean, 'AAPL').groupby(lambda t: t.date()).size()
    assert set(per_day) <= {26, 14} and 26 in set(per_day)


def test_descending_naive_end_labelled_twin(clean, tmp_path):
    def make(f, sym, d):
        f.index = (f.index + pd.Timedelta('15min')).tz_localize(None)          # end labels, naive local time
        f.iloc[::-1].rename_axis('Date').reset_index().to_csv(d / f'{sym}_15min.csv', index=False)
    twin = load_bars(_write_twins(clean, tmp_path, make))
    pd.testing.assert_frame_equal(twin.bars, clean.bars)
    a = twin.assumptions().iloc[0]
    assert a['order'].startswith('descending') and a['label'].startswith('end (detected')
    assert 'naive' in a['timezone'] and a['timestamp_col'] == 'date'


def test_utc_parquet_twin(clean, tmp_path):
    def make(f, sym, d):
        f.index = f.index.tz_convert('UTC')
        f.rename_axis('time').reset_index().to_parquet(d / f'{sym}.parquet')
    twin = load_bars(_write_twins(clean, tmp_path, make))
    pd.testing.assert_frame_equal(twin.bars, clean.bars)


def test_epoch_long_file_twin(clean, tmp_path):
    long = clean.bars.reset_index()
    long['ts'] = long.pop('timestamp').astype('int64') // 10**9
    long.sample(frac=1, random_state=0).sort_values('ts', ascending=False, kind='stable').to_csv(tmp_path / 'all.csv', index=False)
    twin = load_bars(tmp_path / 'all.csv')
    pd.testing.assert_frame_equal(twin.bars, clean.bars)


def test_extended_hours_and_finer_bars_twin(clean, tmp_path):
    "5-minute bars with pre- and post-market bars around them resample and filter back to the clean bars."
    def make(f, sym, d):
        rows = []
        for t, r in f.iterrows():   # split each 15-minute bar into three 5-minute bars with the same OHLCV
            o, h, l, c, v = r[list(OHLCV)]
            rows += [(t, o, h, l, o, v / 3), (t + pd.Timedelta('5min'), o, max(o, c), min(o, c), c, v / 3),
                     (t + pd.Timedelta('10min'), c, c, c, c, v / 3)]
        fine = pd.DataFrame(rows, columns=['timestamp', *OHLCV]).set_index('timestamp')
        for day in pd.Index(f.index.date).unique():
            pre = pd.Timestamp(f'{day} 08:00', tz=TZ)
            fine.loc[pre] = [1.0, 1.0, 1.0, 1.0, 5.0]                          # an extended-hours bar
        fine.sort_index().to_csv(d / f'{sym}_5min.csv')
    twin = load_bars(_write_twins(clean, tmp_path, make))
    a = twin.assumptions().iloc[0]
    assert a['source_freq'] == '5min' and a['freq'] == '15min' and a['extended_dropped'] > 0
    np.testing.assert_allclose(twin.bars[['open', 'close']].to_numpy(), clean.bars[['open', 'close']].to_numpy())
    np.testing.assert_allclose(twin.bars['volume'].to_numpy(), clean.bars['volume'].to_numpy(), rtol=1e-12)
    assert (twin.bars['high'] <= clean.bars['high'] + 1e-9).all() and (twin.bars['low'] >= clean.bars['low'] - 1e-9).all()
    assert twin.bars.index.equals(clean.bars.index)
