"""The fake Alpaca's websockets, driven by alpaca-py's own `TradingStream` and `StockDataStream` and by raw clients.

REST behaviour is tested in `nbs/73_execution.fake_alpaca.ipynb`; these tests need threads and event loops, so they
live here. Every server binds 127.0.0.1 on ephemeral ports and is stopped by its context manager.
"""
import json, threading, time
import msgpack
import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from alphatrade.core.calendar import TZ
from alphatrade.execution.fake_alpaca import FakeAlpaca

pytestmark = pytest.mark.timeout(60)

KEY, SECRET = 'PKCANARY0000KEYID42', 'canary-secret-9f3b7c1e-do-not-leak'


def wait_for(pred, timeout=10.0, what='condition'):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return
        time.sleep(0.02)
    raise AssertionError(f'timed out waiting for {what}')


def trading_client(fake):
    from alpaca.trading.client import TradingClient
    tc = TradingClient(KEY, SECRET, paper=True, url_override=fake.urls['trading'])
    tc._retry_wait = 0
    return tc


def market(sym, qty, cid):
    from alpaca.trading.requests import MarketOrderRequest
    from alpaca.trading.enums import OrderSide, TimeInForce
    return MarketOrderRequest(symbol=sym, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, client_order_id=cid)


def ws_auth(url, key=KEY, secret=SECRET):
    "A raw trading-stream client: authenticate and listen; return (socket, authorization reply)."
    ws = connect(url, open_timeout=5)
    ws.send(json.dumps({'action': 'authenticate', 'data': {'key_id': key, 'secret_key': secret}}))
    auth = ws.recv(timeout=5)
    return ws, auth


# ---- trading stream ------------------------------------------------------------------------------------------------

def test_trading_stream_raw_protocol_binary_frames():
    "Auth and listen acks as Alpaca sends them, JSON in binary frames; a wrong secret is refused and the socket closed."
    with FakeAlpaca(KEY, SECRET, fill_mode='fill') as fake:
        ws, auth = ws_auth(fake.urls['trading_stream'])
        assert isinstance(auth, bytes)  # paper sends binary frames
        assert json.loads(auth) == {'stream': 'authorization', 'data': {'status': 'authorized', 'action': 'authenticate'}}
        ws.send(json.dumps({'action': 'listen', 'data': {'streams': ['trade_updates']}}))
        assert json.loads(ws.recv(timeout=5)) == {'stream': 'listening', 'data': {'streams': ['trade_updates']}}
        fake.control.set_price('AAPL', 100.0)
        trading_client(fake).submit_order(market('AAPL', 2, 'raw-1'))
        msgs = [json.loads(ws.recv(timeout=5)) for _ in range(2)]
        assert [m['data']['event'] for m in msgs] == ['new', 'fill']
        fill = msgs[1]['data']
        assert (fill['qty'], fill['price'], fill['position_qty'], fill['order']['filled_qty']) == ('2', '100', '2', '2')
        assert fill['order']['client_order_id'] == 'raw-1' and len(fill['execution_id']) == 36
        ws.close()
        bad, auth = ws_auth(fake.urls['trading_stream'], secret='wrong')
        assert json.loads(auth)['data']['status'] == 'unauthorized'
        with pytest.raises(ConnectionClosed): bad.recv(timeout=5)


def test_trading_stream_drop_loses_events_no_replay():
    "BF-5: kill the stream, fill while it is down (upgrades refused), reconnect: the gap's fill is never replayed."
    with FakeAlpaca(KEY, SECRET) as fake:
        tc = trading_client(fake)
        a = tc.submit_order(market('AAPL', 5, 'gap-1'))
        b = tc.submit_order(market('AAPL', 5, 'gap-2'))
        ws, _ = ws_auth(fake.urls['trading_stream'])
        ws.send(json.dumps({'action': 'listen', 'data': {'streams': ['trade_updates']}})); ws.recv(timeout=5)
        fake.block_streams(True)
        assert fake.kill_streams() == 1
        with pytest.raises(ConnectionClosed): ws.recv(timeout=5)
        with pytest.raises(InvalidStatus) as e: connect(fake.urls['trading_stream'], open_timeout=5)
        assert e.value.response.status_code == 429
        fake.control.fill('gap-1', price=101.0)  # nobody listens
        fake.block_streams(False)
        ws, _ = ws_auth(fake.urls['trading_stream'])
        ws.send(json.dumps({'action': 'listen', 'data': {'streams': ['trade_updates']}})); ws.recv(timeout=5)
        fake.control.fill('gap-2', price=102.0)
        m = json.loads(ws.recv(timeout=5))['data']
        assert (m['event'], m['order']['client_order_id'], m['position_qty']) == ('fill', 'gap-2', '10')
        with pytest.raises(TimeoutError): ws.recv(timeout=0.3)  # nothing else: no replay of gap-1
        ws.close()
        # the REST poll is how the runner finds the gap's fill
        assert tc.get_order_by_id(a.id).status.value == 'filled' and tc.get_order_by_id(b.id).status.value == 'filled'


def test_alpaca_py_trading_stream_gets_fill_and_reconnects_without_replay():
    "alpaca-py's TradingStream receives a fill; after a server kill it reconnects and misses the gap's event."
    from alpaca.trading.stream import TradingStream
    with FakeAlpaca(KEY, SECRET) as fake:
        tc = trading_client(fake)
        got = []
        async def on_update(u): got.append(u)
        stream = TradingStream(KEY, SECRET, paper=True, url_override=fake.urls['trading_stream'])
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = 0.05, 0.2  # private: keep the test fast
        stream.subscribe_trade_updates(on_update)
        th = threading.Thread(target=stream.run, daemon=True); th.start()
        try:
            wait_for(lambda: fake.stream_clients() == 1, what='the SDK to listen')
            fake.control.set_price('MSFT', 400.0)
            tc.submit_order(market('MSFT', 3, 'sdk-1'))
            fake.control.fill('sdk-1', qty=1, price=400.0)
            fake.control.fill('sdk-1', price=401.0)
            wait_for(lambda: len(got) == 3, what='three updates')
            assert [str(getattr(u.event, 'value', u.event)) for u in got] == ['new', 'partial_fill', 'fill']
            last = got[-1]
            assert (last.qty, last.price, last.position_qty, last.order.filled_qty) == (2.0, 401.0, 3.0, '3')
            assert last.order.client_order_id == 'sdk-1'
            # drop the stream and fill while it is down
            fake.block_streams(True)
            fake.kill_streams()
            wait_for(lambda: fake.stream_clients() == 0, what='the kill')
            tc.submit_order(market('MSFT', 1, 'sdk-gap'))
            fake.control.fill('sdk-gap', price=402.0)
            fake.block_streams(False)
            wait_for(lambda: fake.stream_clients() == 1, what='the SDK to reconnect')
            tc.submit_order(market('MSFT', 1, 'sdk-after'))
            wait_for(lambda: any(u.order.client_order_id == 'sdk-after' for u in got), what='the post-reconnect event')
            assert not any(u.order.client_order_id == 'sdk-gap' for u in got)
        finally:
            stream.stop()
            fake.kill_streams()
            th.join(10)


# ---- market-data stream ----------------------------------------------------------------------------------------------

def test_alpaca_py_data_stream_receives_bars():
    "StockDataStream authenticates with msgpack, subscribes, and parses a pushed bar (t a msgpack Timestamp)."
    from alpaca.data.live import StockDataStream
    with FakeAlpaca(KEY, SECRET) as fake:
        got = []
        async def on_bar(b): got.append(b)
        s = StockDataStream(KEY, SECRET, url_override=fake.urls['data_stream'])
        s.subscribe_bars(on_bar, 'AAPL')
        th = threading.Thread(target=s.run, daemon=True); th.start()
        try:
            wait_for(lambda: any(e.get('op') == 'subscribe' for e in fake.control.requests()), what='the subscription')
            t = pd.Timestamp('2024-03-11 09:30', tz=TZ)
            fake.push_bar('MSFT', t, 1, 2, 0.5, 1.5, 10)  # not subscribed: not delivered
            fake.push_bar('AAPL', t, 172.0, 172.5, 171.8, 172.2, 1000, n=10, vw=172.1)
            wait_for(lambda: len(got) == 1, what='the bar')
            time.sleep(0.2)
            assert len(got) == 1
            b = got[0]
            assert (b.symbol, b.open, b.high, b.low, b.close, b.volume, b.trade_count, b.vwap) == \
                   ('AAPL', 172.0, 172.5, 171.8, 172.2, 1000, 10, 172.1)
            assert b.timestamp == t.tz_convert('UTC').to_pydatetime()
        finally:
            s.stop()
            th.join(10)


def test_data_stream_raw_protocol_406_and_402():
    "msgpack frames; the subscription ack lists every channel; a second connection gets 406, a wrong secret 402."
    with FakeAlpaca(KEY, SECRET) as fake:
        url = fake.urls['data_stream']
        ws = connect(url, open_timeout=5)
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{'T': 'success', 'msg': 'connected'}]
        ws.send(msgpack.packb({'action': 'auth', 'key': KEY, 'secret': SECRET}))
        assert msgpack.unpackb(ws.recv(timeout=5)) == [{'T': 'success', 'msg': 'authenticated'}]
        ws.send(msgpack.packb({'action': 'subscribe', 'bars': ['AAPL', 'MSFT']}))
        ack = msgpack.unpackb(ws.recv(timeout=5))[0]
        assert ack['T'] == 'subscription' and ack['bars'] == ['AAPL', 'MSFT'] and ack['trades'] == []
        assert {'quotes', 'updatedBars', 'dailyBars', 'statuses', 'lulds', 'corrections', 'cancelErrors'} <= set(ack)
        second = connect(url, open_timeout=5); second.recv(timeout=5)
        second.send(msgpack.packb({'action': 'auth', 'key': KEY, 'secret': SECRET}))
        assert msgpack.unpackb(second.recv(timeout=5)) == [{'T': 'error', 'code': 406, 'msg': 'connection limit exceeded'}]
        ws.close(); second.close()
        wait_for(lambda: fake.stream_clients('data') == 0, what='the close')
        bad = connect(url, open_timeout=5); bad.recv(timeout=5)
        bad.send(msgpack.packb({'action': 'auth', 'key': KEY, 'secret': 'wrong'}))
        assert msgpack.unpackb(bad.recv(timeout=5)) == [{'T': 'error', 'code': 402, 'msg': 'auth failed'}]
        bad.close()


def test_ledger_has_no_secret_after_stream_auth():
    "SEC-1 canary: websocket auth frames are in the ledger, with the key and the secret masked."
    with FakeAlpaca(KEY, SECRET) as fake:
        ws, _ = ws_auth(fake.urls['trading_stream']); ws.close()
        d = connect(fake.urls['data_stream'], open_timeout=5); d.recv(timeout=5)
        d.send(msgpack.packb({'action': 'auth', 'key': KEY, 'secret': SECRET})); d.recv(timeout=5); d.close()
        trading_client(fake).get_account()
        ops = [e['op'] for e in fake.control.requests()]
        assert ops.count('authenticate') == 1 and ops.count('auth') == 1 and 'account' in ops
        dump = json.dumps(fake.control.ledger, default=str)
        assert SECRET not in dump and KEY not in dump


def test_resend_duplicates_and_unknown_events():
    "BF-6: a recorded event is streamed again with the same execution_id, or altered to an unknown event name."
    with FakeAlpaca(KEY, SECRET, fill_mode='fill') as fake:
        ws, _ = ws_auth(fake.urls['trading_stream'])
        ws.send(json.dumps({'action': 'listen', 'data': {'streams': ['trade_updates']}})); ws.recv(timeout=5)
        fake.control.set_price('AAPL', 100.0)
        trading_client(fake).submit_order(market('AAPL', 1, 'dup-1'))
        first = [json.loads(ws.recv(timeout=5))['data'] for _ in range(2)]
        fake.control.resend()
        fake.control.resend(event='order_cancel_rejected')
        again = [json.loads(ws.recv(timeout=5))['data'] for _ in range(2)]
        assert again[0] == first[1] and again[0]['event'] == 'fill'
        assert again[1]['event'] == 'order_cancel_rejected' and again[1]['execution_id'] == first[1]['execution_id']
        assert fake.control.positions() == {'AAPL': 1.0}  # the book did not change
        ws.close()


def test_insufficient_subscription_ends_alpaca_py_data_stream():
    "§0.4: a 409 on auth makes StockDataStream.run() return for good (the thread ends)."
    from alpaca.data.live import StockDataStream
    with FakeAlpaca(KEY, SECRET) as fake:
        fake.data_auth_error = 409
        s = StockDataStream(KEY, SECRET, url_override=fake.urls['data_stream'])
        async def on_bar(b): pass
        s.subscribe_bars(on_bar, 'AAPL')
        th = threading.Thread(target=s.run, daemon=True); th.start()
        th.join(10)
        assert not th.is_alive()
        assert [e['op'] for e in fake.control.requests() if e['api'] == 'data_stream'] == ['auth']
