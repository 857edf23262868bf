"""`AlpacaBroker` against the fake Alpaca with its trading stream: the websocket-heavy broker-fault scenarios of
ALPACA.md §6.2 (BF-1 with the stream, BF-5 stream gap, BF-6 messy trade updates) and the SEC-1 canary with every logger
at DEBUG. The REST-only scenarios (BF-1..BF-4, BF-7, BF-8) are tested in `nbs/74_execution.alpaca.ipynb`.

Each test runs its own event loop (`asyncio.run`); the broker's stream is a task on it. Servers bind 127.0.0.1 on
ephemeral ports and are stopped in `finally`.
"""
import asyncio, json, logging, math, time, traceback
from pathlib import Path
import pandas as pd
import pytest
from pydantic import SecretStr
from conftest import until

from alphatrade.core.calendar import TZ
from alphatrade.core.config import Secrets
from alphatrade.execution.alpaca import AlpacaBroker, AlpacaError, record_broker_event
from alphatrade.execution.broker import submit_with_journal
from alphatrade.execution.fake_alpaca import FakeAlpaca
from alphatrade.execution.journal import Journal
from alphatrade.execution.orders import Order, OrderStatus

pytestmark = pytest.mark.timeout(60)

KEY, SECRET = 'PKCANARYBROKERKEY77', 'canary-secret-77-5e1f0a9b-do-not-leak'
SEC = Secrets(alpaca_api_key=SecretStr(KEY), alpaca_api_secret=SecretStr(SECRET), alpaca_paper=True)
OPEN_TS = pd.Timestamp('2024-03-12 10:00', tz=TZ)


def mkfake(**kw):
    f = FakeAlpaca(KEY, SECRET, **kw).start()
    f.control.set_clock(OPEN_TS)
    f.control.set_price('AAPL', 100.0); f.control.set_price('MSFT', 400.0)
    return f


def mkbroker(fake, **kw):
    kw = {'timeout': (1.0, 1.0), 'stream': True, 'clock_ttl': 0.0, 'stream_backoff': (0.05, 0.2), **kw}
    return AlpacaBroker(SEC, url_override=fake.urls['trading'], stream_url=fake.urls['trading_stream'], **kw)


def order(cid, sym='AAPL', qty=10, side='buy'): return Order(client_order_id=cid, symbol=sym, side=side, qty=qty)



def record_all(journal, broker):
    for ev in broker.drain(): record_broker_event(journal, ev)


def fills_of(journal, cid):
    f = journal.fills()
    return f[f.client_order_id == cid]


def test_BF1_accept_then_504_resolved_with_stream_events(tmp_path):
    "BF-1 with the stream on: one POST, resolved by lookup; stream + lookup report one fill; events() feeds the journal."
    async def main():
        fake = mkfake(fill_mode='fill')
        try:
            with Journal(tmp_path / 'j.db') as j:
                b = mkbroker(fake); await b.connect()
                await until(lambda: fake.stream_clients() == 1, what='the stream to listen')
                async def consume():
                    async for ev in b.events(): record_broker_event(j, ev)
                task = asyncio.ensure_future(consume())
                fake.control.inject('submit', 504, times=4, commit=True)
                o = await submit_with_journal(b, j, order('bf1s-a'))
                assert o.status in (OrderStatus.ACCEPTED, OrderStatus.FILLED)
                await until(lambda: j.order('bf1s-a').status == OrderStatus.FILLED, what='the fill in the journal')
                await b.poll_orders()                      # nothing new to add
                await asyncio.sleep(0.1)
                assert fake.control.post_count('bf1s-a') == 1                                       # I1
                assert sum(o['client_order_id'] == 'bf1s-a' for o in fake.control.orders.values()) == 1
                assert len(fills_of(j, 'bf1s-a')) == 1 and fills_of(j, 'bf1s-a').qty.sum() == 10    # one fill row
                assert j.orders_in_doubt() == []                                                    # I2
                assert (await j.reconcile(b)).ok                                                    # I3
                await b.close()
                await asyncio.wait_for(task, 5)            # events() ends after close()
        finally: fake.stop()
    asyncio.run(main())


def test_BF5_stream_drop_fill_in_gap_found_by_poll(tmp_path):
    "BF-5: the stream dies, an order fills while it is down (no replay); one poll finds it; exactly one fill row each."
    async def main():
        fake = mkfake()
        try:
            with Journal(tmp_path / 'j.db') as j:
                b = mkbroker(fake); await b.connect()
                await until(lambda: fake.stream_clients() == 1, what='the stream to listen')
                for cid in ('gap-1', 'gap-2'): await submit_with_journal(b, j, order(cid, qty=5))
                fake.block_streams(True)
                fake.kill_streams()
                await until(lambda: fake.stream_clients() == 0 and not b.stream_connected, what='the kill')
                fake.control.fill('gap-1', price=101.0)    # nobody listens
                fake.block_streams(False)
                await until(lambda: fake.stream_clients() == 1, what='the reconnect')
                fake.control.fill('gap-2', price=102.0)    # streamed
                await until(lambda: any(getattr(e, 'client_order_id', '') == 'gap-2' for e in b._pending), what='gap-2 fill')
                record_all(j, b)
                assert j.order('gap-1').status == OrderStatus.ACCEPTED          # the stream never told us
                assert j.positions() == {'AAPL': 5.0}
                assert await b.positions() == {'AAPL': 10.0}                    # the broker has both fills
                t0 = time.monotonic()
                evs = await b.poll_orders()                                     # one poll finds it
                assert time.monotonic() - t0 < 2
                assert [(type(e).__name__, e.client_order_id, e.qty, e.price) for e in evs] == [('OrderFilled', 'gap-1', 5.0, 101.0)]
                record_all(j, b)
                for cid in ('gap-1', 'gap-2'):
                    assert len(fills_of(j, cid)) == 1 and j.order(cid).status == OrderStatus.FILLED
                assert j.positions() == await b.positions() == {'AAPL': 10.0}   # I3
                assert (await j.reconcile(b)).ok
                assert await b.poll_orders() == []
                await b.close()
        finally: fake.stop()
    asyncio.run(main())


def test_BF6_messy_trade_updates(tmp_path, caplog):
    "BF-6: duplicate execution ids, new after fill, partial after fill, an unknown event, a fill after cancel."
    async def main():
        fake = mkfake()
        try:
            with Journal(tmp_path / 'j.db') as j:
                b = mkbroker(fake); await b.connect()
                await until(lambda: fake.stream_clients() == 1, what='the stream to listen')
                await submit_with_journal(b, j, order('m-1', qty=10))
                i_new = len(fake.control.trade_updates) - 1
                fake.control.fill('m-1', qty=4, price=100.0); i_part = len(fake.control.trade_updates) - 1
                fake.control.fill('m-1', price=101.0)
                await until(lambda: b._known['m-1']['closed'] == 'filled', what='the fill')
                fake.control.resend()                                  # the same execution_id twice
                fake.control.resend(i_new)                             # 'new' after 'fill'
                fake.control.resend(i_part)                            # 'partial_fill' after 'fill' (its own execution id again)
                fake.control.resend(event='order_cancel_rejected')    # unknown event
                fake.control.resend(i_part, execution_id='other-exec-id')  # a stale partial with a new id: cumulative 4 < 10
                await submit_with_journal(b, j, order('m-2', 'MSFT', qty=3))
                fake.control.cancel('m-2')
                fake.control.fill('m-2', qty=3, price=399.0)          # late fill after the cancel
                await until(lambda: b._known['m-2']['closed'] == 'filled', what='the late fill')
                await asyncio.sleep(0.3)                               # let the resent frames arrive
                record_all(j, b)
                for cid in ('m-1', 'm-2'):                             # journal fill qty == the fake's
                    assert fills_of(j, cid).qty.abs().sum() == fake.control.order(cid)['filled_qty']
                    assert j.order(cid).status == OrderStatus.FILLED
                assert len(fills_of(j, 'm-1')) == 2                    # the partial and the rest, nothing else
                test_avg = j.order('m-1').avg_fill_price
                assert abs(test_avg - (4 * 100 + 6 * 101) / 10) < 1e-9
                assert [type(e).__name__ for e in j.order('m-2').events][-2:] == ['OrderCanceled', 'OrderFilled']
                assert j.positions() == await b.positions() == {'AAPL': 10.0, 'MSFT': 3.0}
                assert (await j.reconcile(b)).ok
                await b.close()
        finally: fake.stop()
    with caplog.at_level(logging.INFO, logger='alphatrade'):
        asyncio.run(main())
    msgs = [r.getMessage() for r in caplog.records]
    assert any('unknown trade update ignored' in m and 'order_cancel_rejected' in m for m in msgs)
    assert any('duplicate execution ignored' in m for m in msgs)
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def test_restart_tracks_journal_orders_and_reports_only_the_missing(tmp_path):
    "After a restart, `track(journal.open_orders())` makes the poll emit only fills the journal lacks."
    async def main():
        fake = mkfake()
        try:
            with Journal(tmp_path / 'j.db') as j:
                b = mkbroker(fake, stream=False); await b.connect()
                await submit_with_journal(b, j, order('r-1', qty=10))
                fake.control.fill('r-1', qty=3, price=100.0)
                await b.poll_orders(); record_all(j, b)
                await b.close()
                fake.control.fill('r-1', qty=2, price=104.0)             # while the runner is down
                b2 = mkbroker(fake, stream=False); await b2.connect()
                b2.track(j.open_orders())
                evs = await b2.poll_orders()
                assert [(e.qty, e.price, e.fill_id) for e in evs] == [(2.0, 104.0, 'r-1@5')]   # (3*100+2*104)/5 avg, minus the known 3
                record_all(j, b2)
                assert j.order('r-1').filled_qty == 5 and (await j.reconcile(b2)).ok
                await b2.close()
        finally: fake.stop()
    asyncio.run(main())


def test_SEC1_canary_never_in_logs_errors_or_tracebacks(tmp_path):
    "SEC-1/SEC-2: every logger at DEBUG (websockets, urllib3, alpaca), stream auth, errors: 0 canary hits."
    records = []
    class Keep(logging.Handler):
        def emit(self, r):
            records.append(self.format(r) + (''.join(traceback.format_exception(*r.exc_info)) if r.exc_info else ''))
    root, h = logging.getLogger(), Keep(level=logging.DEBUG)
    old = {n: logging.getLogger(n).level for n in ('', 'websockets', 'websockets.client', 'alphatrade', 'urllib3', 'alpaca')}
    old_prop = logging.getLogger('alphatrade').propagate
    root.addHandler(h)
    for n in old: logging.getLogger(n).setLevel(logging.DEBUG)
    logging.getLogger('alphatrade').propagate = True
    texts = []
    async def main():
        fake = mkfake(fill_mode='fill')
        try:
            with Journal(tmp_path / 'j.db') as j:
                b = mkbroker(fake, get_retries=0); await b.connect()
                await until(lambda: fake.stream_clients() == 1, what='the stream to listen')
                await submit_with_journal(b, j, order('sec-1'))
                fake.control.inject('submit', 500, commit=True)
                await submit_with_journal(b, j, order('sec-2'))
                for kw in (dict(status=500), dict(status=502, html=True), dict(status=None, delay=math.inf)):
                    fake.control.inject('positions', **kw)
                    try: await b.positions()
                    except AlpacaError as e: texts.append(str(e) + repr(e) + ''.join(traceback.format_exception(e)))
                await until(lambda: any(e['event'] == 'fill' for e in fake.control.trade_updates), what='fills')
                texts.append(json.dumps([e.to_dict() for e in b.drain()], default=str))
                texts.append(repr(b))
                await b.close()
        finally: fake.stop()
    try: asyncio.run(main())
    finally:
        root.removeHandler(h)
        for n, lv in old.items(): logging.getLogger(n).setLevel(lv)
        logging.getLogger('alphatrade').propagate = old_prop
    assert len(texts) == 5
    assert any('authenticate' in r or 'connected to' in r for r in records)   # the stream did log at DEBUG/INFO
    blob = '\n'.join(records + texts) + (tmp_path / 'j.db').read_bytes().decode('latin-1')
    assert not leaks(blob)


def leaks(text, n=8):
    "Whether any n-character piece of the canary key or secret occurs in `text` (websockets truncates frames mid-secret)."
    return any(s[i:i + n] in text for s in (KEY, SECRET) for i in range(len(s) - n + 1))


def test_leak_detector_sees_a_truncated_frame():
    "The check above must catch what websockets prints at DEBUG without the cap: the tail of the secret after '...'."
    assert leaks('> TEXT \'{"action": "authenticate", "data": {"key_id": "...' + SECRET[-20:] + '"}}\'')
    assert not leaks('> TEXT \'{"action": "listen", "data": {"streams": ["trade_updates"]}}\'')


def test_alpaca_py_private_attributes_still_exist():
    "The hardening relies on private alpaca-py 0.44 attributes: fail loudly if an upgrade renames them."
    import alpaca
    from alpaca.trading.client import TradingClient
    from alpaca.trading.stream import TradingStream
    c = TradingClient(KEY, SECRET, paper=True)
    assert {'_retry', '_retry_wait', '_retry_codes', '_session'} <= set(vars(c))
    s = TradingStream(KEY, SECRET, paper=True)
    assert {'_reconnect_min_backoff', '_reconnect_max_backoff', '_running'} <= set(vars(s))
    assert callable(getattr(s, '_run_forever', None)) and callable(getattr(s, 'stop_ws', None))
    assert alpaca.__version__ == '0.44.0'


def test_a_renamed_sdk_internal_stops_the_broker(monkeypatch):
    """If an alpaca-py release renamed `_retry`, setting it would silently leave the SDK's re-POST on: `AlpacaBroker`
    refuses to start instead, naming the attribute and the reviewed version (and no key)."""
    import alphatrade.execution.alpaca as ea
    from alphatrade.core.errors import ConfigError
    from alpaca.trading.client import TradingClient

    class Renamed(TradingClient):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self._retry_count = self.__dict__.pop('_retry')
    monkeypatch.setattr(ea, 'TradingClient', Renamed)
    with pytest.raises(ConfigError) as e:
        ea.AlpacaBroker(Secrets(alpaca_api_key=KEY, alpaca_api_secret=SECRET), url_override='http://127.0.0.1:9')
    msg = str(e.value)
    assert 'Renamed._retry' in msg and '0.44' in msg and 're-POST' in msg, msg
    assert not leaks(msg)
