"CLI `alphatrade data fetch` end to end against FakeAlpaca: pages, DST-correct request bounds, rate limit, resume, no secret in output."
import json
import numpy as np
import pandas as pd
import pytest
from alphatrade.cli import main
from alphatrade.core.calendar import TZ, bar_grid
from alphatrade.data.bars import make_bars
from alphatrade.data.store import read_dataset

fake_alpaca = pytest.importorskip('alphatrade.execution.fake_alpaca')
KEY, SECRET = 'CANARY-KEY-7c2e', 'CANARY-SECRET-b41d09'
DAYS = ('2024-03-07', '2024-03-12')   # Thu, Fri | DST switch on Sunday 10th | Mon, Tue


def _bars():
    "Known bars: the regular grid plus a pre- and post-market bar each day (what Alpaca serves); and the regular ones."
    grid = bar_grid(*DAYS)
    days = sorted(set(grid.tz_localize(None).normalize()))
    ext = pd.DatetimeIndex([pd.Timestamp(d).tz_localize(TZ) + pd.Timedelta(h) for d in days for h in ('8h', '16h')])
    frames, regular = {}, {}
    for j, s in enumerate(['AAPL', 'MSFT']):
        ts = grid.append(ext).sort_values()
        o = 100.0 * (j + 1) + 0.25 * np.arange(len(ts))
        f = pd.DataFrame({'open': o, 'high': o + 1, 'low': o - 1, 'close': o + 0.5, 'volume': 1000.0 + np.arange(len(ts))}, index=ts)
        frames[s], regular[s] = f, f[f.index.isin(grid)]
    return make_bars(frames), make_bars(regular)


def test_fetch_cli_against_fake(tmp_path, monkeypatch, capsys):
    served, want = _bars()
    monkeypatch.setenv('ALPACA_API_KEY', KEY); monkeypatch.setenv('ALPACA_API_SECRET', SECRET)
    out = tmp_path / 'alpaca'
    with fake_alpaca.FakeAlpaca(key=KEY, secret=SECRET) as fa:
        fa.control.add_bars(served, timeframe='15Min')
        fa.control.bars_page_max = 30
        fa.control.set_rate_limit(5, window=1.0)   # forces 429s with a reset header; waits are about a second
        argv = ['--log-level', 'DEBUG', 'data', 'fetch', '--symbols', 'AAPL,MSFT', '--start', DAYS[0], '--end', DAYS[1],
                '--out', str(out), '--chunk-sessions', '2', '--data-url', fa.urls['data']]
        assert main(argv) == 0
        reqs = fa.control.requests('bars')
        ok = [r for r in reqs if r.get('status') == 200]
        assert {r['query']['start'] for r in ok} == {'2024-03-07T14:30:00+00:00', '2024-03-11T13:30:00+00:00'}  # EST / EDT opens
        assert sum('page_token' in r['query'] for r in ok) >= 4 and any(r.get('status') == 429 for r in reqs)
        n = len(reqs)
        assert main(argv) == 0                                # rerun: every chunk is done, nothing requested
        assert len(fa.control.requests('bars')) == n
    got, man = read_dataset(out)
    pd.testing.assert_frame_equal(got, want)
    assert man['meta']['feed'] == 'iex' and man['meta']['extended_dropped'] == {'AAPL': 6, 'MSFT': 6}
    text = capsys.readouterr()
    assert 'alpaca iex bars' in text.out
    blobs = [text.out, text.err, json.dumps(fa.control.requests())] + [p.read_text(errors='ignore') for p in out.rglob('*.json')]
    assert not any('CANARY' in b for b in blobs)
