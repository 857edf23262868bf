"""`alphatrade live --broker alpaca` wiring, end to end against FakeAlpaca (127.0.0.1, ephemeral ports): `AlpacaBroker`
with its trading stream, bars from the fake's msgpack data stream through `BarAggregator` (`AlpacaSource`), order
polls each bar, day orders cancelled before the close (BF-8), startup and final reconciliation.
"""
import asyncio, collections, logging, os, time
import numpy as np
import pandas as pd
import pytest
from conftest import until

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
        assert 'duplicate_skipped' not in caplog.text                                      # an ack after the stream's events is no duplicate
        assert KEY not in caplog.text and SECRET not in caplog.text
        j.close()
    finally:
        fake.stop()


def _session(data, tmp_path, monkeypatch, **kw):
    "A fake open at 09:30:01 with the last close as price, and the runner's options against it."
    monkeypatch.setenv('ALPACA_API_KEY', KEY); monkeypatch.setenv('ALPACA_API_SECRET', SECRET); monkeypatch.setenv('ALPACA_PAPER', 'true')
    last = load_bars(data, symbols=SYMS, workers=1).bars.groupby(level='symbol')['close'].last()
    fake = FakeAlpaca(KEY, SECRET).start()
    c = fake.control
    c.set_fill_mode('fill'); c.set_clock(T0 + pd.Timedelta('1s'))
    for s in SYMS: c.set_price(s, float(last[s]))
    opts = LiveOptions(mode='paper', broker='alpaca', data_dir=data, journal=tmp_path/'live.sqlite', heartbeat_s=0, signals=False,
                       alpaca_url=fake.urls['trading'], alpaca_stream_url=fake.urls['trading_stream'],
                       alpaca_data_url=fake.urls['data_stream'], clock=c.now, tick_s=0.02, **kw)
    return fake, c, last, opts


T0 = pd.Timestamp('2024-03-28 09:30', tz=TZ)


def _push_bucket(fake, last, start, scale=1.0):
    "15 minute bars per symbol for the 15-minute bar starting at `start` (on the data stream)."
    for k in range(15):
        for s in SYMS:
            p = float(last[s]) * scale
            fake.push_bar(s, start + pd.Timedelta(minutes=k), p, p * 1.001, p * 0.999, p, 1000, n=10, vw=p)


async def _first_bar(task, fake, c, last):
    "Wait for the data subscription, deliver the 09:30 bar and wait until it has been decided (orders sent)."
    await until(lambda: any(e.get('op') == 'subscribe' for e in c.requests()) or task.done(), what='the data subscription')
    assert not task.done(), task.result().message
    _push_bucket(fake, last, T0)
    await asyncio.sleep(0.3)
    c.set_clock(T0 + pd.Timedelta('15min 11s'))
    await until(lambda: c.requests('submit') or task.done(), what='the first orders')
    await asyncio.sleep(0.3)


def test_data_stream_killed_reconnect_and_backfill(data, tmp_path, monkeypatch, caplog):
    """Issue 6 / DF-3: the data stream dies after the 09:30 bar; while it is down the 09:45 and 10:00 bars exist only in
    the fake's REST store. When the watchdog reports the silence (simulated 10:15:11, > `watchdog_s` after the last
    message) the source reconnects, backfills both bars from REST (the request is in the fake's ledger, from 09:45) and
    feeds them in order before the 10:15 bar, which comes from the stream again; the stream's late minutes of the 10:00
    bar change nothing. Each bar is processed exactly once and the REST values are the ones traded on."""
    fake, c, last, opts = _session(data, tmp_path, monkeypatch, watchdog_s=1000, reconnect_attempts=3, reconnect_backoff=0.1, max_bars=4)
    caplog.set_level(logging.INFO, logger='alphatrade')
    miss = [T0 + pd.Timedelta(minutes=15), T0 + pd.Timedelta(minutes=30)]
    rest = pd.DataFrame([{'timestamp': t, 'symbol': s, 'open': float(last[s]) * 1.01, 'high': float(last[s]) * 1.03,
                          'low': float(last[s]) * 1.0, 'close': float(last[s]) * (1.02 + 0.01 * i), 'volume': 5000.0}
                         for i, t in enumerate(miss) for s in SYMS]).set_index(['timestamp', 'symbol'])
    try:
        async def drive():
            task = asyncio.ensure_future(arun_live(opts))
            await _first_bar(task, fake, c, last)
            assert fake.kill_streams('data') == 1
            c.add_bars(rest)
            c.set_clock(T0 + pd.Timedelta('45min 11s'))                      # 09:45 and 10:00 final, never streamed
            await until(lambda: c.requests('bars') or task.done(), what='the REST backfill')
            await until(lambda: fake.stream_clients('data') == 1 or task.done(), what='the reconnected data stream')
            await asyncio.sleep(0.5)
            _push_bucket(fake, last, miss[1], scale=2.0)                     # late minutes of the backfilled 10:00 bar
            _push_bucket(fake, last, T0 + pd.Timedelta(minutes=45))          # the 10:15 bar, from the stream
            await asyncio.sleep(0.3)
            c.set_clock(T0 + pd.Timedelta('60min 11s'))
            return await asyncio.wait_for(task, 60)
        r = asyncio.run(drive())
        assert r.exit_code == EXIT_OK, r.message
        p, src = r.pipeline, r.pipeline.source
        live = [T0 + pd.Timedelta(minutes=15 * k) for k in range(4)]
        assert p.history.index[-4:] == live                                   # in order, none skipped
        assert p.metrics.value('alphatrade_bars_processed_total') == 4          # each exactly once
        assert src.backfilled == miss and src.missing == []
        assert src.reconnects >= 1 and any(a['kind'] == 'silent' for a in src.alerts)
        q = c.requests('bars')[0]['query']
        assert pd.Timestamp(q['start']) == miss[0] and set(q['symbols'].split(',')) == set(SYMS)
        P = p.history.panel()
        for i, t in enumerate(miss):
            k = list(P.index).index(t)
            np.testing.assert_allclose(P.close[k], [float(last[s]) * (1.02 + 0.01 * i) for s in P.symbols])   # REST values, not 2x
        from alphatrade.execution.pipeline import kill_switch_state
        j = Journal(tmp_path/'live.sqlite'); assert r.final.ok and kill_switch_state(j) is None; j.close()
        assert KEY not in caplog.text and SECRET not in caplog.text
    finally:
        fake.stop()


def test_data_stream_never_back_halts(data, tmp_path, monkeypatch, caplog):
    """Issue 6 / DF-7: after the 09:30 bar the data API refuses the stream for good (409 insufficient subscription: the
    SDK's `run()` thread ends). The watchdog reports the dead thread, the source tries `reconnect_attempts` times, then
    raises an `unrecovered` alert and trips the kill switch with the reason: the run ends with exit 3 (kill switch),
    positions flattened, and the kill switch persists in the journal."""
    from alphatrade.execution.pipeline import kill_switch_state
    from alphatrade.execution.runner import EXIT_KILL
    fake, c, last, opts = _session(data, tmp_path, monkeypatch, watchdog_s=1000, reconnect_attempts=2, reconnect_backoff=0.1)
    caplog.set_level(logging.INFO, logger='alphatrade')
    try:
        async def drive():
            task = asyncio.ensure_future(arun_live(opts))
            await _first_bar(task, fake, c, last)
            fake.data_auth_error = 409
            assert fake.kill_streams('data') == 1
            return await asyncio.wait_for(task, 90)
        r = asyncio.run(drive())
        assert r.exit_code == EXIT_KILL, (r.exit_code, r.message)
        src = r.pipeline.source
        kinds = [a['kind'] for a in src.alerts]
        assert 'dead' in kinds and kinds[-1] == 'unrecovered', kinds
        assert src.reconnects == 2
        j = Journal(tmp_path/'live.sqlite'); ks = kill_switch_state(j); j.close()
        assert ks is not None and 'market data stream not recovered after 2 attempt(s)' in ks['reason']
        assert 'market_data_unrecovered' in caplog.text
        assert {s: q for s, q in c.positions().items() if q} == {}                  # flattened by the kill switch
        assert KEY not in caplog.text and SECRET not in caplog.text
    finally:
        fake.stop()


def test_stale_symbols_halt(data, tmp_path, monkeypatch, caplog):
    """Issue 6 / DF-3: after the 09:30 bar the stream delivers the 09:45 bar for AAPL only: MSFT, XOM and JPM are stale
    (NaN in the fed bar). With `max_stale_symbols=2` that is too many: the pipeline raises a `stale_symbols` alert and
    trips the kill switch with the reason; the run ends with exit 3 and the positions are flattened."""
    from alphatrade.execution.pipeline import kill_switch_state
    from alphatrade.execution.runner import EXIT_KILL
    fake, c, last, opts = _session(data, tmp_path, monkeypatch, watchdog_s=1000, max_stale_symbols=2, max_bars=2)
    caplog.set_level(logging.INFO, logger='alphatrade')
    try:
        async def drive():
            task = asyncio.ensure_future(arun_live(opts))
            await _first_bar(task, fake, c, last)
            t1, p = T0 + pd.Timedelta(minutes=15), float(last['AAPL'])
            for k in range(15): fake.push_bar('AAPL', t1 + pd.Timedelta(minutes=k), p, p * 1.001, p * 0.999, p, 1000, n=10, vw=p)
            await asyncio.sleep(0.3)
            c.set_clock(T0 + pd.Timedelta('30min 11s'))
            return await asyncio.wait_for(task, 60)
        r = asyncio.run(drive())
        assert r.exit_code == EXIT_KILL, (r.exit_code, r.message)
        assert r.pipeline.stale == {'MSFT', 'XOM', 'JPM'}
        assert [a['kind'] for a in r.pipeline.alerts] == ['stale_symbols']
        j = Journal(tmp_path/'live.sqlite'); ks = kill_switch_state(j); j.close()
        assert ks is not None and ks['reason'].startswith('3 stale symbols'), ks
        assert 'stale_symbols_halt' in caplog.text
        assert {s: q for s, q in c.positions().items() if q} == {}                  # flattened by the kill switch
        assert KEY not in caplog.text and SECRET not in caplog.text
    finally:
        fake.stop()


def _wait(pred, timeout, what, proc=None):
    "Poll `pred` (blocking) until true; fail early with the process's output if it exited."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f'the runner exited {proc.returncode} while waiting for {what}\n{out}\n{err[-3000:]}')
        time.sleep(0.05)
    raise AssertionError(f'timed out waiting for {what}')


def fake_for_a_process(last):
    """A started fake, open at 09:30:01 of T0, filling at the last closes, without a rate limit that a runner syncing its
    clock from it (`--clock broker`) would hit; and the environment for a runner process: the canary keys, no crash arming."""
    fake = FakeAlpaca(KEY, SECRET).start()
    c = fake.control
    c.set_fill_mode('fill'); c.set_clock(T0 + pd.Timedelta('1s')); c.set_rate_limit(100_000, 60)
    for s in SYMS: c.set_price(s, float(last[s]))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(('ALPACA_', 'ALPHATRADE_CRASH', 'RUNNER_CRASH'))},
           'ALPACA_API_KEY': KEY, 'ALPACA_API_SECRET': SECRET, 'ALPACA_PAPER': 'true'}
    return fake, env


def drive_fake_session(fake, last, proc=None, start_timeout=120.0, t0=T0):
    """Play the fake's side of a session for a runner in another process (which reads the market's time from the fake's
    clock, `--clock broker`): wait for its data subscription, stream the 09:30 bar (15 minute bars per symbol), move the
    clock to 09:45:11 (the bar is final), wait for its orders, then 15:58:30 (close to new orders, cancel) and 16:00:11
    (after the close: the runner stops)."""
    c = fake.control
    _wait(lambda: any(e.get('op') == 'subscribe' for e in c.requests()), start_timeout, 'the data subscription', proc)
    _push_bucket(fake, last, t0)
    time.sleep(0.5)
    c.set_clock(t0 + pd.Timedelta('15min 11s'))
    _wait(lambda: c.requests('submit'), 60, 'the first orders', proc)
    time.sleep(1.0)
    n = len(c.requests('submit'))
    c.set_clock(t0.normalize() + pd.Timedelta('15h 58min 30s'))
    time.sleep(1.0)
    c.set_clock(t0.normalize() + pd.Timedelta('16h 0min 11s'))
    return n


def test_cli_alpaca_session_in_a_subprocess(data, tmp_path):
    """`alphatrade live --mode paper --broker alpaca --clock broker` as its own process against the fake (the fake's
    URLs on the command line, the keys in the environment): it trades the 09:30 bar on the fake's simulated clock (synced
    from `GET /v2/clock`), cancels before the close, stops after it with exit 0 and a clean reconciliation. Each client
    id was POSTed once; the journal's positions equal the fake's; the journal holds the bars decided on (the streamed
    bar) and the session's starting equity; no secret in the output. A `--date` other than the broker's today is refused."""
    import subprocess, sys
    from conftest import ROOT
    from alphatrade.execution.runner import session_key
    last = load_bars(data, symbols=SYMS, workers=1).bars.groupby(level='symbol')['close'].last()
    fake, env = fake_for_a_process(last)
    try:
        c = fake.control
        jpath = tmp_path/'cli.sqlite'
        cmd = [sys.executable, '-c', 'import sys; from alphatrade.cli import main; sys.exit(main(sys.argv[1:]))', '--log-level', 'INFO',
               'live', '--mode', 'paper', '--broker', 'alpaca', '--data-dir', str(data), '--journal', str(jpath), '--heartbeat', '0',
               '--alpaca-url', fake.urls['trading'], '--alpaca-stream-url', fake.urls['trading_stream'],
               '--alpaca-data-url', fake.urls['data_stream'], '--clock', 'broker', '--clock-sync', '0.05', '--tick', '0.02']
        bad = subprocess.run(cmd + ['--date', '2024-03-27'], capture_output=True, text=True, env=env, timeout=120, cwd=str(ROOT))
        assert bad.returncode == 2 and "the broker's today" in bad.stderr and '2024-03-28' in bad.stderr, (bad.returncode, bad.stderr[-2000:])
        proc = subprocess.Popen(cmd + ['--date', '2024-03-28'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        try:
            n_sub = drive_fake_session(fake, last, proc)
            out, err = proc.communicate(timeout=90)
        finally:
            if proc.poll() is None: proc.kill(); proc.communicate()
        assert proc.returncode == 0, (proc.returncode, out, err[-4000:])
        assert 'exit 0' in out and 'pipeline_stopped reconcile_ok=True' in err, (out, err[-3000:])
        assert len(c.requests('submit')) == n_sub and n_sub > 0                              # nothing sent after the close
        assert 'orders_canceled reason=' in err                                              # BF-8
        j = Journal(jpath)
        orders = j.orders()
        posts = collections.Counter(e['body']['client_order_id'] for e in c.requests('submit'))
        assert posts == collections.Counter(o.client_order_id for o in orders)              # I1: one POST per order
        assert all(o.created_at == T0 for o in orders)
        assert j.positions() == {s: q for s, q in c.positions().items() if q}               # I3
        b = j.bars()
        assert b.index.get_level_values(0).unique().tolist() == [T0]
        assert np.allclose(b['close'].xs(T0).reindex(SYMS).to_numpy(), last[SYMS].to_numpy())
        assert np.allclose(b['volume'].xs(T0).to_numpy(), 15 * 1000)
        ss = j.load_state(session_key('2024-03-28'))
        assert ss['broker'] == 'alpaca' and ss['equity'] > 0
        j.close()
        for text in (out, err, bad.stdout, bad.stderr): assert KEY not in text and SECRET not in text   # SEC
    finally:
        fake.stop()


def test_hand_trade_mid_session_stops_new_orders(data, tmp_path, monkeypatch, caplog):
    """Issue 6 / reconciliation on a schedule: after the 09:30 bar's orders, someone buys 7 XOM by hand in the same account
    (a POST of its own, filled). With `reconcile_every=1` the 09:45 check sees the difference and the 10:00 check confirms
    it: the pipeline raises a `reconcile_mismatch` alert and sends nothing more (no flattening: the hand trade stays);
    the final reconciliation reports the XOM position and the unknown order, and the run exits 1. No key in the log."""
    import requests
    from alphatrade.execution.runner import EXIT_RECONCILE
    fake, c, last, opts = _session(data, tmp_path, monkeypatch, watchdog_s=1000, reconcile_every=1, max_bars=3)
    caplog.set_level(logging.INFO, logger='alphatrade')
    try:
        async def drive():
            task = asyncio.ensure_future(arun_live(opts))
            await _first_bar(task, fake, c, last)
            n_sub = len(c.requests('submit'))
            r = requests.post(fake.urls['trading'] + '/v2/orders', headers={'APCA-API-KEY-ID': KEY, 'APCA-API-SECRET-KEY': SECRET}, timeout=5,
                              json={'symbol': 'XOM', 'qty': '7', 'side': 'buy', 'type': 'market', 'time_in_force': 'day', 'client_order_id': 'by-hand-1'})
            assert r.status_code == 200, r.text                                     # filled at once (fill mode)
            for k in (1, 2):
                _push_bucket(fake, last, T0 + pd.Timedelta(minutes=15 * k))
                await asyncio.sleep(0.3)
                c.set_clock(T0 + pd.Timedelta(minutes=15 * (k + 1), seconds=11))
                await until(lambda: len(task_bars()) >= k + 1 or task.done(), what=f'bar {k + 1}')
            res = await asyncio.wait_for(task, 60)
            return res, n_sub
        def task_bars():
            j = Journal(tmp_path/'live.sqlite')
            try: return j.bars().index.get_level_values(0).unique()
            finally: j.close()
        r, n_sub = asyncio.run(drive())
        assert r.exit_code == EXIT_RECONCILE, (r.exit_code, r.message)
        p = r.pipeline
        assert [a['kind'] for a in p.alerts] == ['reconcile_mismatch'] and 'position XOM' in p.frozen, p.alerts
        assert len(c.requests('submit')) == n_sub + 1                                # only the hand trade after the first bar
        assert {(d.kind, d.symbol) for d in r.final.differences} >= {('position', 'XOM')}
        assert c.positions().get('XOM', 0) >= 7                                      # not flattened
        assert 'reconcile_mismatch_halt' in caplog.text
        assert KEY not in caplog.text and SECRET not in caplog.text
    finally:
        fake.stop()
