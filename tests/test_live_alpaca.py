"""`alphatrade live --broker alpaca` wiring, end to end against FakeAlpaca (127.0.0.1, ephemeral ports): `AlpacaBroker`
with its trading stream, bars from the fake's msgpack data stream through `BarAggregator` (`AlpacaSource`), order
polls each bar, day orders cancelled before the close (BF-8), startup and final reconciliation.
"""
import asyncio, collections, logging, time
import numpy as np
import pandas as pd
import pytest

from alphatrade.core.calendar import TZ
from alphatrade.data.loader import load_bars
from alphatrade.execution.fake_alpaca import FakeAlpaca
from alphatrade.execution.journal import Journal
from alphatrade.execution.runner import EXIT_OK, LiveOptions, arun_live

pytestmark = pytest.mark.timeout(180)
KEY, SECRET = 'PKCANARYLIVE0KEY77XYZ', 'canary-live-secret-9a1d0c9b-do-not-leak'
SYMS = ['AAPL', 'MSFT', 'XOM', 'JPM']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    from alphatrade.data.synthetic import write_synthetic
    d = tmp_path_factory.mktemp('live_data')
    write_synthetic(d, symbols=SYMS, years=0.1, end='2024-03-27', seed=7)
    return d


async def until(pred, timeout=20.0, what='condition'):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return
        await asyncio.sleep(0.02)
    raise AssertionError(f'timed out waiting for {what}')


def test_live_alpaca_end_to_end(data, tmp_path, monkeypatch, caplog):
    """A session on the fake: the 09:30 bar is built from 15 pushed minute bars per symbol, final at 09:45 + grace; the
    momentum strategy rebalances on it; orders fill at the fake; before the close the runner stops sending and cancels;
    after the close it stops, reconciles (ok) and exits 0. Each client id was POSTed once, the journal equals the fake."""
    monkeypatch.setenv('ALPACA_API_KEY', KEY); monkeypatch.setenv('ALPACA_API_SECRET', SECRET); monkeypatch.setenv('ALPACA_PAPER', 'true')
    last = load_bars(data, symbols=SYMS, workers=1).bars.groupby(level='symbol')['close'].last()
    t0 = pd.Timestamp('2024-03-28 09:30', tz=TZ)
    fake = FakeAlpaca(KEY, SECRET).start()
    try:
        c = fake.control
        c.set_fill_mode('fill'); c.set_clock(t0 + pd.Timedelta('1s'))   # open (the broker's hours guard caches the clock)
        for s in SYMS: c.set_price(s, float(last[s]))
        opts = LiveOptions(mode='paper', broker='alpaca', data_dir=data, journal=tmp_path/'live.sqlite', heartbeat_s=0, signals=False,
                           alpaca_url=fake.urls['trading'], alpaca_stream_url=fake.urls['trading_stream'],
                           alpaca_data_url=fake.urls['data_stream'], clock=c.now, tick_s=0.02)

        n_sub = []
        caplog.set_level(logging.INFO, logger='alphatrade')

        async def drive():
            task = asyncio.ensure_future(arun_live(opts))
            await until(lambda: any(e.get('op') == 'subscribe' for e in c.requests()) or task.done(), what='the data subscription')
            assert not task.done(), task.result().message
            for k in range(15):
                for s in SYMS:
                    p = float(last[s])
                    fake.push_bar(s, t0 + pd.Timedelta(minutes=k), p, p * 1.001, p * 0.999, p, 1000, n=10, vw=p)
            await asyncio.sleep(0.3)
            c.set_clock(t0 + pd.Timedelta('15min 11s'))
            await until(lambda: c.requests('submit') or task.done(), what='the first orders')
            await asyncio.sleep(0.5)
            n_sub.append(len(c.requests('submit')))
            c.set_clock(pd.Timestamp('2024-03-28 15:58:30', tz=TZ))
            await asyncio.sleep(0.5)
            c.set_clock(pd.Timestamp('2024-03-28 16:00:11', tz=TZ))
            return await asyncio.wait_for(task, 60)
        r = asyncio.run(drive())
        assert r.exit_code == EXIT_OK, r.message
        assert r.startup.ok and r.final.ok
        p = r.pipeline
        assert p.decided_bars == [t0]
        j = Journal(tmp_path/'live.sqlite')
        orders = j.orders()
        assert orders and all(o.created_at == t0 for o in orders)
        posts = collections.Counter(e['body']['client_order_id'] for e in c.requests('submit'))
        assert posts == collections.Counter(o.client_order_id for o in orders)          # one POST per order (I1)
        assert j.positions() == {s: q for s, q in c.positions().items() if q}           # I3
        assert all(o.status.value == c.order(o.client_order_id)['status'] for o in orders)
        assert p.closing and 'orders_canceled reason=' in caplog.text                     # BF-8: canceled before the close
        assert len(c.requests('submit')) == n_sub[0]                                       # nothing sent after it
        assert KEY not in caplog.text and SECRET not in caplog.text
        j.close()
    finally:
        fake.stop()
