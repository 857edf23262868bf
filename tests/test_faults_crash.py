"""Process-crash scenarios PC-1..PC-6 of ALPACA.md §6.3, one test per scenario.

A crash is a real process death: `alphatrade live --mode paper --broker sim` runs as a subprocess with
`ALPHATRADE_CRASH_AT=<label>[:n]`, and the crash point (`alphatrade.execution.crash`) calls `os._exit(137)` there: no
`finally`, no graceful stop, no journal close. The run is then restarted without the crash on the same journal, and the
invariants of §6.1 are checked against a reference run of the same day that never crashed:

- I1 exactly-once: every client order id was sent to the broker once (the simulated broker's committed `ledger`, its
  `/_ledger`), each decision key (strategy, symbol, bar, side) has at most one order, and the set of orders sent equals
  the reference run's (nothing sent twice, no decision lost);
- I2 nothing lost: every journal order is terminal at the end, every broker order is in the journal;
- I3 state equality: journal positions (the sum of its fills) equal the broker's positions, and equal the reference's.

The simulated broker survives a crash as a real one would: `DurableSimBroker` commits its account (orders, fills,
ledger, bar position) after every change on its side, before the runner hears of it (see `nbs/77_execution.runner`).
PC-3 (the world moves while the runner is down: fills, an expiry, a manual order and position) needs a broker that
moves on its own, so it runs in process against `AlpacaBroker` + `FakeAlpaca` with the runner's own startup check.
"""
import asyncio, collections, logging, os, re, signal, sqlite3, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from pydantic import SecretStr
from conftest import ROOT

from alphatrade.core.calendar import TZ
from alphatrade.core.config import Secrets
from alphatrade.execution.broker import submit_with_journal
from alphatrade.execution.journal import Journal
from alphatrade.execution.orders import Order, OrderStatus, TERMINAL
from alphatrade.execution.runner import SIM_KEY, EXIT_LOCKED, startup_check

pytestmark = pytest.mark.timeout(300)

DAY = '2024-03-28'
CLI = [sys.executable, '-c', 'import sys; from alphatrade.cli import main; sys.exit(main(sys.argv[1:]))']


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    "A small synthetic market: 4 symbols, about a month up to 2024-04-02."
    from alphatrade.data.synthetic import write_synthetic
    d = tmp_path_factory.mktemp('crash_data')
    write_synthetic(d, symbols=['AAPL', 'MSFT', 'XOM', 'JPM'], years=0.1, end='2024-04-02', seed=7)
    return d


def live_cmd(data, journal, *extra):
    return CLI + ['--log-level', 'INFO', 'live', '--mode', 'paper', '--broker', 'sim', '--date', DAY, '--data-dir', str(data),
                  '--journal', str(journal), '--heartbeat', '0', *extra]


def live_env(crash=None):
    env = {k: v for k, v in os.environ.items() if k not in ('ALPHATRADE_CRASH_AT', 'RUNNER_CRASH_AT')}
    if crash: env['ALPHATRADE_CRASH_AT'] = crash
    return env


def live(data, journal, crash=None, *extra):
    "Run `alphatrade live` to its end (or its crash)."
    return subprocess.run(live_cmd(data, journal, *extra), capture_output=True, text=True, env=live_env(crash), timeout=240, cwd=str(ROOT))


def snapshot(jpath):
    "What the journal and the (durable) simulated broker hold."
    with Journal(jpath) as j:
        return dict(orders={o.client_order_id: o for o in j.orders()}, pos=j.positions(), sim=j.load_state(SIM_KEY) or {},
                    in_doubt=[o.client_order_id for o in j.orders_in_doubt()], fills=j.fills())


def finished_ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-3000:])
    assert 'exit 0' in p.stdout and 'pipeline_stopped reconcile_ok=True' in p.stderr, (p.stdout, p.stderr[-3000:])


def check_invariants(jpath, ref):
    "I1-I3 after the restarted run, and equality with the reference run."
    s = snapshot(jpath)
    led = collections.Counter(s['sim']['ledger'])
    assert led and max(led.values()) == 1, f'a client id was sent twice: {led}'                        # I1
    keys = [(cid.split('-')[0], o.symbol, o.created_at, o.side) for cid, o in s['orders'].items()]
    assert len(keys) == len(set(keys)), keys                                                        # I1: one order per decision key
    assert set(led) == set(s['orders']) == set(s['sim']['orders']), 'broker and journal hold other orders'   # I2
    assert all(o.status in TERMINAL for o in s['orders'].values()), {c: o.status for c, o in s['orders'].items()}
    assert not s['in_doubt']
    for cid, o in s['orders'].items():                                                             # I2/I3: same state per order
        bo = s['sim']['orders'][cid]['order']
        assert (o.status.value, o.filled_qty) == (bo['status'], bo['filled_qty']), (cid, o.status, bo)
    bpos = {k: v for k, v in s['sim']['pos'].items() if v}
    assert s['pos'] == bpos, (s['pos'], bpos)                                                      # I3
    assert s['fills'].groupby('symbol').qty.sum().loc[lambda x: x != 0].to_dict() == bpos
    assert set(s['orders']) == set(ref['orders']), (sorted(s['orders']), sorted(ref['orders']))    # same decisions as no crash
    assert s['pos'] == ref['pos']
    return s


@pytest.fixture(scope='module')
def ref(data, tmp_path_factory):
    "The day run once without a crash."
    j = tmp_path_factory.mktemp('crash_ref')/'ref.sqlite'
    finished_ok(live(data, j))
    s = snapshot(j)
    assert len(s['orders']) >= 2 and s['pos'], 'the reference day must trade'
    return s


def lines(p, word): return [i for i, l in enumerate(p.stderr.splitlines()) if word in l]


def test_PC1_killed_after_intent_before_send(data, ref, tmp_path):
    """PC-1 "Killed after the intent commit, before the POST." Expect: on restart a lookup by id finds nothing; the bar
    window is still open, so the runner submits once with the same id (a bar that has passed: abandoned, tested in
    nbs/77_execution.runner). Check: at most 1 order for the id at the broker and the intent terminal; I1, I2, I3."""
    j = tmp_path/'pc1.sqlite'
    p = live(data, j, 'after_intent_commit')
    assert p.returncode == 137, (p.returncode, p.stderr[-2000:])
    s = snapshot(j)
    (cid,) = s['in_doubt']                                   # the intent is committed...
    assert s['sim'].get('ledger', []) == [] and cid not in s['sim']['orders']   # ...and was never sent
    p2 = live(data, j)
    finished_ok(p2)
    assert re.search(rf'order_recovered client_order_id={cid} .*action=resubmitted', p2.stderr), p2.stderr[-3000:]
    s = check_invariants(j, ref)
    assert s['sim']['ledger'].count(cid) == 1 and s['orders'][cid].status in TERMINAL


def test_PC2_killed_after_post_before_ack(data, ref, tmp_path):
    """PC-2 "Killed after the POST was accepted, before the journal ack." (the second order of the bar), and the
    restart killed again during reconciliation. Expect: on restart, reconciliation finds the order by id **before** any
    new decision; the journal is reconciled and no second order is sent. Check: exactly 1 order with that id, journal
    status equal to the broker's; I1, I2, I3."""
    j = tmp_path/'pc2.sqlite'
    p = live(data, j, 'after_post_sent:2')
    assert p.returncode == 137, (p.returncode, p.stderr[-2000:])
    s = snapshot(j)
    (cid,) = s['in_doubt']
    assert s['sim']['ledger'].count(cid) == 1 and s['sim']['orders'][cid]['order']['status'] == 'accepted'
    p1 = live(data, j, 'during_reconcile')                   # killed again while recovering
    assert p1.returncode == 137 and snapshot(j)['in_doubt'] == [cid]
    p2 = live(data, j)
    finished_ok(p2)
    rec, sub, rdy = lines(p2, f'order_recovered client_order_id={cid}'), lines(p2, 'order_submitted'), lines(p2, 'startup_reconciled ok=True')
    assert rec and 'action=synced' in p2.stderr.splitlines()[rec[0]]
    assert rdy and sub and rec[0] < rdy[0] < sub[0], 'recovery and reconciliation come before any new order'
    s = check_invariants(j, ref)
    assert s['sim']['ledger'].count(cid) == 1
    assert s['orders'][cid].status.value == s['sim']['orders'][cid]['order']['status']


KEY, SECRET = 'PKCANARYCRASH0KEY77X', 'canary-crash-secret-3f1d0c9b-do-not-leak'


def test_PC3_down_while_the_world_moves(tmp_path, caplog):
    """PC-3 "Down while the world moves." Inject: the runner dies, then two of its orders fill, one expires, and a
    manual order and a manual position appear at the broker (AlpacaBroker + FakeAlpaca, in process). Expect: the
    startup check imports the fills and the expiry, flags the manual items as EXTERNAL and halts (not ok); it never
    liquidates (no POST or DELETE). Check: I2 (every journal order resolved, every broker order in the journal or
    EXTERNAL) and I3 on the journal's symbols; the EXTERNAL alert is present. The daily-loss state from
    `equity - last_equity` at the restart: `test_PC3_daily_loss_recomputed_at_restart`."""
    from alphatrade.execution.alpaca import AlpacaBroker
    from alphatrade.execution.fake_alpaca import FakeAlpaca
    sec = Secrets(alpaca_api_key=SecretStr(KEY), alpaca_api_secret=SecretStr(SECRET), alpaca_paper=True)
    fake = FakeAlpaca(KEY, SECRET).start()
    try:
        c = fake.control
        c.set_clock(pd.Timestamp('2024-03-12 10:00', tz=TZ))
        for s_, px in (('AAPL', 100.0), ('MSFT', 400.0), ('XOM', 50.0), ('JPM', 200.0)): c.set_price(s_, px)
        mk = lambda: AlpacaBroker(sec, url_override=fake.urls['trading'], stream=False, timeout=(2.0, 2.0), clock_ttl=0.0)
        ords = [Order(client_order_id=f'momentum-pc3-{i}', symbol=s_, side='buy', qty=q) for i, (s_, q) in enumerate((('AAPL', 10), ('MSFT', 5), ('AAPL', 3)))]

        async def before(j):
            b = mk(); await b.connect()
            for o in ords: assert (await submit_with_journal(b, j, o)).status == OrderStatus.ACCEPTED
            await b.close()                                  # the runner is down from here
        async def after(j):
            b = mk(); await b.connect()
            try: return await startup_check(j, b, None), await b.positions()
            finally: await b.close()

        with Journal(tmp_path/'pc3.sqlite') as j:
            asyncio.run(before(j))
            c.fill(ords[0].client_order_id); c.fill(ords[1].client_order_id); c.expire(ords[2].client_order_id)
            man = mk()
            asyncio.run(man.submit(Order(client_order_id='manual-pos', symbol='XOM', side='buy', qty=7)))
            asyncio.run(man.submit(Order(client_order_id='manual-open', symbol='JPM', side='buy', qty=2)))
            c.fill('manual-pos')
            n_req = len(c.requests())
            with caplog.at_level(logging.INFO, logger='alphatrade'):
                (rec, rep), bpos = asyncio.run(after(j))
            assert sorted(rec) == sorted((o.client_order_id, 'synced') for o in ords)
            st = {o.client_order_id: o.status for o in j.orders()}
            assert st == {ords[0].client_order_id: OrderStatus.FILLED, ords[1].client_order_id: OrderStatus.FILLED, ords[2].client_order_id: OrderStatus.EXPIRED}
            assert j.positions() == {'AAPL': 10.0, 'MSFT': 5.0}                     # I3 on the journal's symbols
            assert {k: bpos[k] for k in ('AAPL', 'MSFT')} == j.positions()
            assert not rep.ok and {(d.kind, d.symbol, d.client_order_id) for d in rep.differences} == {('unknown_order', 'JPM', 'manual-open'), ('position', 'XOM', None)}
            broker_ids = {o['client_order_id'] for o in c.orders.values()}          # I2
            assert broker_ids - set(st) == {'manual-open', 'manual-pos'}
            alerts = [r.getMessage() for r in caplog.records if 'alert=EXTERNAL' in r.getMessage()]
            assert len(alerts) == 2 and any('manual-open' in a for a in alerts) and any('symbol=XOM' in a for a in alerts), alerts
            assert not [e for e in c.requests()[n_req:] if e.get('op') in ('submit', 'cancel', 'cancel_all', 'close_positions', 'close_position')]
            assert not [r for r in caplog.records if SECRET in r.getMessage() or KEY in r.getMessage()]
    finally:
        fake.stop()



def test_PC3_daily_loss_recomputed_at_restart(data, tmp_path, monkeypatch, caplog):
    """PC-3, the daily-loss part: "Daily-loss state is recomputed from `equity − last_equity`." A paper session on
    AlpacaBroker + FakeAlpaca (in process, `arun_live`) trades the 09:30 bar and stops (its breaker, ACTIVE, saved in the
    journal). While it is down its holdings fall so far that equity is 5 % below `last_equity` (100 000; the limit is
    3 %). Restarted at 10:20, the runner comes back REDUCE_ONLY **before any bar**: the trip is stamped at the restart
    (the 10:00 bar, the last completed one), not at the next live bar (10:15), with the daily-loss reason; the 10:15
    bar keeps it, no order raises a position, and the journal latches REDUCE_ONLY."""
    from alphatrade.execution.fake_alpaca import FakeAlpaca
    from alphatrade.execution.runner import EXIT_OK, LiveOptions, arun_live
    from alphatrade.risk.limits import RiskState
    monkeypatch.setenv('ALPACA_API_KEY', KEY); monkeypatch.setenv('ALPACA_API_SECRET', SECRET); monkeypatch.setenv('ALPACA_PAPER', 'true')
    syms = ['AAPL', 'MSFT', 'XOM', 'JPM']
    t0 = pd.Timestamp(f'{DAY} 09:30', tz=TZ)
    fake = FakeAlpaca(KEY, SECRET).start()
    c = fake.control
    jpath = tmp_path/'pc3.sqlite'

    def push(start, px):
        for k in range(15):
            for s_ in syms: fake.push_bar(s_, start + pd.Timedelta(minutes=k), px[s_], px[s_] * 1.001, px[s_] * 0.999, px[s_], 1000, n=10, vw=px[s_])

    async def session(start, px):
        opts = LiveOptions(mode='paper', broker='alpaca', data_dir=data, journal=jpath, heartbeat_s=0, signals=False, max_bars=1,
                           alpaca_url=fake.urls['trading'], alpaca_stream_url=fake.urls['trading_stream'], watchdog_s=3600,
                           alpaca_data_url=fake.urls['data_stream'], clock=c.now, tick_s=0.02)
        n_sub = len([e for e in c.requests() if e.get('op') == 'subscribe'])
        task = asyncio.ensure_future(arun_live(opts))
        t = time.monotonic()
        while len([e for e in c.requests() if e.get('op') == 'subscribe']) == n_sub and not task.done() and time.monotonic() - t < 20: await asyncio.sleep(0.02)
        assert not task.done(), task.result().message
        push(start, px)
        await asyncio.sleep(0.3)
        c.set_clock(start + pd.Timedelta('15min 11s'))
        return await asyncio.wait_for(task, 60)

    try:
        from alphatrade.data.loader import load_bars
        last = load_bars(data, symbols=syms, workers=1).bars
        last = last[last.index.get_level_values('timestamp') < t0].groupby(level='symbol')['close'].last()
        px = {s_: float(last[s_]) for s_ in syms}
        c.set_fill_mode('fill'); c.set_clock(t0 + pd.Timedelta('1s'))
        for s_ in syms: c.set_price(s_, px[s_])
        r1 = asyncio.run(session(t0, px))
        assert r1.exit_code == EXIT_OK, r1.message
        assert r1.pipeline.breaker.state == RiskState.ACTIVE
        pos = {k: q for k, q in c.positions().items() if q}
        assert pos, 'the first session should have bought something'
        # the world moves: every holding falls by the same factor f so that equity = 95 000 (5 % below last_equity)
        eq = float(c.account_json()['equity']); held = sum(q * px[k] for k, q in pos.items())
        f = 1 - (eq - 95_000.0) / held
        assert 0 < f < 1, f
        px2 = {k: v * f for k, v in px.items()}
        for s_ in syms: c.set_price(s_, px2[s_])
        assert abs(float(c.account_json()['equity']) - 95_000.0) < 1e-6 * 95_000 + 0.01
        assert float(c.account_json()['last_equity']) == 100_000.0
        c.set_clock(pd.Timestamp(f'{DAY} 10:20', tz=TZ))
        n_req = len(c.requests('submit'))
        with caplog.at_level(logging.INFO, logger='alphatrade'):
            r2 = asyncio.run(session(pd.Timestamp(f"{DAY} 10:15", tz=TZ), px2))
        assert r2.exit_code == EXIT_OK, r2.message
        ev = r2.pipeline.breaker.events
        trip = ev[ev['to'] == 'REDUCE_ONLY']
        assert len(trip) == 1 and trip['reason'].iloc[0] == 'daily loss limit', ev
        assert trip['ts'].iloc[0] == pd.Timestamp(f'{DAY} 10:00', tz=TZ)                 # at the restart, before any bar
        assert r2.pipeline.breaker.state == RiskState.REDUCE_ONLY
        assert 'breaker_at_start state=REDUCE_ONLY' in caplog.text
        for e in c.requests('submit')[n_req:]:                                              # reduce-only: never raises |position|
            b = e['body']; q = pos.get(b['symbol'], 0.0)
            assert (b['side'] == 'sell' and q > 0) or (b['side'] == 'buy' and q < 0), (b, pos)
        with Journal(jpath) as j: saved = j.load_state('breaker:momentum')
        assert saved['state'][0] == int(RiskState.REDUCE_ONLY)
        assert not [r for r in caplog.records if SECRET in r.getMessage() or KEY in r.getMessage()]
    finally:
        fake.stop()

def test_PC4_torn_journal_write(data, ref, tmp_path):
    """PC-4 "Torn journal write." Inject: the runner dies inside the SQLite transaction that records the first fill
    (crash point `mid_fill_txn`: the event row is written, the fill row and the commit are not). Expect: SQLite recovers
    to the last commit (`PRAGMA integrity_check` ok) and reconciliation restores the missing fill. Check: integrity ok,
    no partial rows, I3 (and I1, I2)."""
    j = tmp_path/'pc4.sqlite'
    p = live(data, j, 'mid_fill_txn')
    assert p.returncode == 137, (p.returncode, p.stderr[-2000:])
    con = sqlite3.connect(str(j))
    try:
        assert con.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        n_ev = con.execute("SELECT COUNT(*) FROM events WHERE kind LIKE '%fill%'").fetchone()[0]
        n_fill = con.execute('SELECT COUNT(*) FROM fills').fetchone()[0]
        assert n_ev == n_fill, 'a fill event without its fill row (a partial transaction survived)'
    finally: con.close()
    s = snapshot(j)
    assert s['sim']['fills'] and len(s['fills']) < len(s['sim']['fills']), 'the broker has a fill the journal lost'
    torn = {f['client_order_id'] for f in s['sim']['fills']} - set(s['fills'].client_order_id)
    p2 = live(data, j)
    finished_ok(p2)
    for cid in torn: assert re.search(rf'order_recovered client_order_id={cid} .*action=synced', p2.stderr), p2.stderr[-3000:]
    s = check_invariants(j, ref)
    assert sorted(s['fills'].fill_id) == sorted(f"sim-fill-{i + 1}" for i in range(len(s['sim']['fills'])))   # each fill once


def test_PC5_double_start(data, ref, tmp_path):
    """PC-5 "Double start." Inject: a second runner on the same journal while the first runs. Expect: the second refuses
    to start (exclusive lock on `<journal>.lock`) before opening anything (no `live_start`, no journal, no broker).
    Check: exit code 4 and message; the first runs on undisturbed to the same result as the reference (I1-I3). (The sim
    has no stream; the lock is taken before any stream would be opened.)"""
    j = tmp_path/'pc5.sqlite'
    first = subprocess.Popen(live_cmd(data, j, '--pace', '0.15'), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=live_env(), cwd=str(ROOT))
    try:
        err1, t0 = [], time.monotonic()
        for line in first.stderr:
            err1.append(line)
            if 'pipeline_started' in line or time.monotonic() - t0 > 120: break
        assert 'pipeline_started' in err1[-1], ''.join(err1)
        second = live(data, j)
        assert second.returncode == EXIT_LOCKED, (second.returncode, second.stdout, second.stderr[-2000:])
        assert 'another runner' in second.stderr and f'pid {first.pid}' in second.stderr, second.stderr
        assert 'live_start' not in second.stderr and 'pipeline_started' not in second.stderr
        out, rest = first.communicate(timeout=120)
    finally:
        if first.poll() is None: first.kill(); first.wait()
    assert first.returncode == 0 and 'exit 0' in out, (first.returncode, out, rest[-2000:])
    check_invariants(j, ref)


def test_PC6_restart_across_bar_boundary(data, ref, tmp_path):
    """PC-6 "Restart across a bar boundary and bar replay." Inject: the runner dies right after the first bar was
    delivered (before its decision), and the restart dies right after deciding the next bar; the restarts replay those
    bars (a re-delivered bar: `nbs/76_execution.pipeline`, "decided once"). Expect: the decision key (strategy, symbol,
    bar_open) is processed once. Check: one order per decision key, the same decisions as without the crashes; I1."""
    j = tmp_path/'pc6.sqlite'
    p = live(data, j, 'after_bar_advance')
    assert p.returncode == 137 and snapshot(j)['orders'] == {}, (p.returncode, p.stderr[-2000:])
    p1 = live(data, j, 'after_decision:2')
    assert p1.returncode == 137, (p1.returncode, p1.stderr[-2000:])
    s1 = snapshot(j)
    assert set(s1['orders']) == set(ref['orders'])           # the first bar was decided (once) by the first restart
    p2 = live(data, j)
    finished_ok(p2)
    assert 'order_submitted' not in p2.stderr                # nothing decided twice
    check_invariants(j, ref)
