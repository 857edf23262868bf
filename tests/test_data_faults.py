"""Fault injection: a folder of deliberately broken files gets every defect named, with its file,
symbol and row; unusable files make `alphatrade data check` exit non-zero; nothing is dropped
without being counted."""
import json
import numpy as np
import pandas as pd
import pytest
from alphatrade.cli import main
from alphatrade.core.calendar import bar_grid
from alphatrade.data.loader import load_bars


def _clean(days=('2024-03-04', '2024-03-08'), seed=0):
    g = bar_grid(*days)
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(g))))
    o = np.r_[100, c[:-1]]
    return pd.DataFrame({'open': o, 'high': np.maximum(o, c) * 1.001, 'low': np.minimum(o, c) * 0.999, 'close': c,
                         'volume': rng.integers(1000, 5000, len(g)).astype(float)}, index=g.rename('timestamp')).round(2)


@pytest.fixture(scope='module')
def broken(tmp_path_factory):
    d = tmp_path_factory.mktemp('broken')
    f = _clean().reset_index()
    f['timestamp'] = f['timestamp'].map(lambda t: t.isoformat(sep=' '))
    f = f.astype({'close': object})
    # AAA: one defect of each kind, each at a known data row (1-based, header excluded)
    f.loc[9, ['high', 'low']] = [f.loc[9, 'low'] - 1, f.loc[9, 'high'] + 1]  # row 10: high < low
    f.loc[19, 'open'] = -5.0                                                   # row 20: non-positive price
    f.loc[29, 'volume'] = -100.0                                               # row 30: negative volume
    f.loc[39, 'volume'] = 0.0                                                  # row 40: zero volume
    f.loc[49, 'close'] = 'abc'                                                 # row 50: non-numeric price
    f.loc[60, 'timestamp'] = f.loc[60, 'timestamp'].replace(':15:00', ':17:00').replace(':30:00', ':37:00').replace(':45:00', ':52:00').replace(':00:00', ':07:00')
    missing = f.loc[70, 'timestamp']                                            # a bar that will be missing
    dup = f.loc[[80]]                                                           # row 81 duplicated at the end
    out = pd.concat([f.drop(index=70), dup])
    out.iloc[[100, 101]] = out.iloc[[101, 100]].to_numpy()                      # two rows swapped: out of order
    out.to_csv(d / 'AAA_15min.csv', index=False)
    # BBB: a 2:1 split at the start of the third session
    b = _clean(seed=1)
    day3 = b.index.normalize().unique()[2]
    m = b.index >= day3 + pd.Timedelta(hours=9, minutes=30)
    b.loc[m, ['open', 'high', 'low', 'close']] /= 2
    b.to_csv(d / 'BBB_15min.csv')
    # unusable files
    _clean().drop(columns='volume').to_csv(d / 'CCC_15min.csv')                 # no volume column
    _clean().reset_index(drop=True).to_csv(d / 'DDD_15min.csv', index=False)    # no timestamp column
    (d / 'EEE.parquet').write_bytes(b'this is not parquet')                     # corrupt file
    (d / 'FFF_15min.csv').write_text('timestamp,open,high,low,close,volume\n')  # header only
    g = _clean().reset_index(); g['timestamp'] = g['timestamp'].astype(str); g.loc[4, 'timestamp'] = 'not a time'
    g.to_csv(d / 'GGG_15min.csv', index=False)                                  # an unparseable stamp at row 5
    return d, missing


@pytest.fixture(scope='module')
def checked(broken):
    d, _ = broken
    return load_bars(d, errors='collect')


def _issues(res, sym):
    iss = res.issues()
    return iss[iss['symbol'] == sym]


def test_unusable_files_are_named(checked):
    msgs = sorted(str(e) for e in checked.failures)
    assert len(msgs) == 5, msgs
    expect = {'CCC_15min.csv': "missing columns", 'DDD_15min.csv': 'no timestamp column', 'EEE.parquet': 'cannot read file',
              'FFF_15min.csv': 'no data rows', 'GGG_15min.csv': "unparseable timestamp 'not a time'"}
    for name, what in expect.items():
        hit = [m for m in msgs if name in m]
        assert hit and what in hit[0], (name, msgs)
    assert any('row=5' in m for m in msgs if 'GGG' in m)
    assert any("['volume']" in m for m in msgs if 'CCC' in m)


def test_every_defect_in_a_file_is_counted_with_its_row(checked, broken):
    _, missing = broken
    q = checked.quality_table().loc['AAA']
    for check, n in {'ohlc': 1, 'bad_price': 2, 'negative_volume': 1, 'duplicates': 1, 'out_of_order': 1,
                     'off_grid': 1, 'missing': 2}.items():
        assert q[check] >= n, (check, q[check])
    iss = _issues(checked, 'AAA')
    rows = lambda check: set(iss.loc[iss['check'] == check, 'row'].dropna().astype(int))
    assert 10 in rows('ohlc')
    assert {20, 50} <= rows('bad_price')
    assert 30 in rows('negative_volume')
    assert 40 in rows('zero_volume')
    assert 61 in rows('off_grid')
    assert str(pd.Timestamp(missing)) in ' '.join(iss.loc[iss['check'] == 'missing', 'timestamp'].astype(str))
    assert (iss['file'].str.endswith('AAA_15min.csv')).all()
    # nothing lost silently: rows in = rows out + rows dropped (bad prices, duplicates, off-grid if dropped)
    assert q['rows_in'] - q['rows_out'] == q['bad_price'] + q['duplicates'] and q['score'] < 100


def test_split_is_flagged(checked):
    iss = _issues(checked, 'BBB')
    assert (iss['check'] == 'split').sum() == 1, iss
    assert checked.quality_table().loc['BBB', 'split'] == 1


def test_check_cli_exit_status_and_json(broken, capsys):
    d, _ = broken
    assert main(['--log-level', 'ERROR', 'data', 'check', str(d), '--json']) == 1
    out = json.loads(capsys.readouterr().out)
    assert len(out['failures']) == 5 and {r['symbol'] for r in out['quality']} == {'AAA', 'BBB'}
    assert main(['--log-level', 'ERROR', 'data', 'check', str(d)]) == 1
    text = capsys.readouterr().out
    for name in ('CCC_15min.csv', 'DDD_15min.csv', 'EEE.parquet', 'FFF_15min.csv', 'GGG_15min.csv', 'ohlc', 'split'):
        assert name in text, name


def test_strict_policy_raises_naming_row(broken, tmp_path):
    d, _ = broken
    (tmp_path / 'AAA_15min.csv').write_bytes((d / 'AAA_15min.csv').read_bytes())
    from alphatrade.data.quality import QualityPolicy
    from alphatrade.core.errors import DataError
    with pytest.raises(DataError) as e:
        load_bars(tmp_path, policy=QualityPolicy.strict())
    assert 'AAA_15min.csv' in str(e.value) and 'symbol=AAA' in str(e.value) and 'row=' in str(e.value)
