"""`soak`: seeded randomised runs of the order path (SimBroker as the venue, a SQLite Journal, `submit_with_journal`)
with random injected broker faults (lost request, lost response, reject: `SimBroker.inject`) and random process crashes
(the runner object, its journal connection and any undelivered events are dropped mid-sequence; a new runner opens the
journal file, resolves orders in doubt by client-order-id lookup and reconciles before its next decision), checking the
invariants of ALPACA.md §6.1 after every run:

- I1 exactly-once: each decision key (strategy, symbol, bar, side) has at most one order booked at the venue, and no
  client order id already booked is ever sent again (a blind retry would show as a 'client_order_id must be unique' reject);
- I2 nothing lost: every journal order is terminal at the end and every venue order is in the journal;
- I3 state equality: journal positions equal venue positions, journal fills per symbol equal the venue's fills, each
  order's filled quantity equals the venue's, and `Journal.reconcile` finds no difference.

Crash points: `after_intent_commit` (intent and SUBMITTED committed, the POST never sent), `after_post_sent` (booked at
the venue, the ack never journaled), `mid_events` (part of a bar's fills/expiries journaled, the rest lost: the venue
never replays), `between_bars` (down for 1-3 bars while the venue keeps filling and expiring). A crash restarts the
runner either within the same bar (its decision window still open: an order that never reached the venue is sent once
with the same id) or after the downtime (the window closed: the intent is closed as abandoned).
Recovery time = wall time from opening the journal to a clean reconciliation. The journal runs with
`PRAGMA synchronous=OFF`: a simulated process crash loses nothing SQLite committed (the WAL survives in the OS cache),
and it keeps 1000 runs to seconds.

`ALPHATRADE_SOAK_RUNS` (default 1000) sets the run count; `python bench/run.py soak --repeat 0` runs it once
(the default `--repeat 5` runs it six times). Target: 0 violations; no peer.
"""
from __future__ import annotations
import asyncio, os, shutil, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
from alphatrade.backtest.costs import CostModel
from alphatrade.core.calendar import bar_grid
from alphatrade.data.bars import make_bars, to_panel
from alphatrade.execution.broker import SimBroker, SubmitUnknown, submit_with_journal
from alphatrade.execution.journal import IN_DOUBT, Journal
from alphatrade.core.errors import DataError
from alphatrade.execution.orders import (OrderStatus, OrderRejected, OrderStateError, OrderSubmitted, TERMINAL, Order,
                                         make_client_order_id)

STRATEGY = 'soak'
SYMBOLS = ('AAA', 'BBB', 'CCC')
CRASH_POINTS = ('after_intent_commit', 'after_post_sent', 'mid_events', 'between_bars')
FAULT_KINDS = ('lost_request', 'lost_response', 'reject')


class Crash(Exception):
    "The runner process died here (simulated)."


def soak_panel(seed:int=0):
    "30 bars (the last 15 of 2024-03-07 and the first 15 of 2024-03-08: one session boundary) of 3 symbols."
    g = bar_grid('2024-03-07', '2024-03-08')[11:41]
    rng = np.random.default_rng(seed)
    frames = {}
    for j, s in enumerate(SYMBOLS):
        c = (50.0 + 25 * j) * np.exp(np.cumsum(rng.normal(0, 2e-3, len(g))))
        o = np.r_[c[0], c[:-1]]
        frames[s] = pd.DataFrame({'open': o, 'high': np.maximum(o, c) * 1.001, 'low': np.minimum(o, c) * 0.999, 'close': c,
                                  'volume': np.full(len(g), 1e5)}, index=g)
    return to_panel(make_bars(frames))


class CrashingBroker:
    "The runner's handle on the venue: counts POSTs per client id, can kill the runner just before or after a POST."
    def __init__(self, venue:SimBroker, stats:dict):
        self.venue, self.stats, self.crash_at = venue, stats, None
    async def submit(self, order:Order):
        if self.crash_at == 'after_intent_commit': self.crash_at = None; raise Crash('after_intent_commit')
        cid = order.client_order_id
        self.stats['posts'][cid] = self.stats['posts'].get(cid, 0) + 1
        try: ev = await self.venue.submit(order)
        except SubmitUnknown:
            if self.crash_at == 'after_post_sent': self.crash_at = None; raise Crash('after_post_sent') from None
            raise
        if isinstance(ev, OrderRejected) and 'unique' in ev.reason: self.stats['reused_ids'].append(cid)
        if self.crash_at == 'after_post_sent': self.crash_at = None; raise Crash('after_post_sent')
        return ev
    def __getattr__(self, k): return getattr(self.venue, k)


class Runner:
    "A minimal runner: journal first, one submit per decision, lookup (never resubmit blindly) when in doubt."
    def __init__(self, path:Path, venue:SimBroker, stats:dict, mode:str='correct'):
        self.journal, self.mode = Journal(path), mode
        self.journal.con.execute('PRAGMA synchronous=OFF')
        self.venue, self.broker, self.stats = venue, CrashingBroker(venue, stats), stats

    def close(self):
        "Drop the runner (as a killed process would): nothing more is written."
        self.journal.close()

    async def resolve(self, window_bar:int) -> None:
        """Sync every open or in-doubt order from the venue by client id; one never booked is resent once with the same id
        while its decision bar is current, else closed as abandoned."""
        if self.mode == 'no_recovery': return                        # a broken runner, to show the checks can fail
        j, seen = self.journal, set()
        for o in j.orders_in_doubt() + j.open_orders():
            cid = o.client_order_id
            if cid in seen: continue
            seen.add(cid)
            bo = None if self.mode == 'blind_retry' and o.status in IN_DOUBT else await self.venue.get_order(cid)
            if bo is not None: j.sync_order(bo); continue
            if o.status not in IN_DOUBT:
                self.stats['violations'].append(f'I2 open journal order {cid} unknown to the venue'); continue
            if o.status == OrderStatus.INITIALIZED: j.record_event(OrderSubmitted(client_order_id=cid))
            if o.created_at == self.venue.panel.index[window_bar] or self.mode == 'blind_retry':   # window open: same id, once
                fresh = Order(**{**o.to_dict(), 'status': OrderStatus.INITIALIZED, 'filled_qty': 0.0, 'avg_fill_price': None})
                try: ev = await self.broker.submit(fresh)
                except SubmitUnknown:
                    bo = await self.venue.get_order(cid)
                    if bo is not None: j.sync_order(bo)
                    else: j.record_event(OrderRejected(client_order_id=cid, reason='not at the venue after a retry with the same id'))
                    continue
                j.record_event(ev)
            else: j.record_event(OrderRejected(client_order_id=cid, reason='never reached the venue; decision window closed (abandoned)'))

    async def recover(self, window_bar:int) -> float:
        "Startup: resolve, then reconcile; seconds until the reconciliation is clean."
        t0 = time.perf_counter()
        await self.resolve(window_bar)
        rep = await self.journal.reconcile(self.venue)
        if not rep.ok: self.stats['violations'].append(f'I3 reconcile after restart: {rep.frame().to_dict("records")}')
        return time.perf_counter() - t0

    def record(self, events, crash_after:int|None=None):
        "Journal the venue's events; a crash after `crash_after` of them loses the rest."
        for k, ev in enumerate(events):
            if crash_after is not None and k == crash_after: raise Crash('mid_events')
            if self.journal.order(ev.client_order_id) is not None: self.journal.record_event(ev)

    async def decide(self, t:int, rng:np.random.Generator, p_fault:float, crash:str|None):
        "Random decisions at bar t's close, each sent through `submit_with_journal`."
        P, j = self.venue.panel, self.journal
        doubt = {o.symbol for o in j.orders_in_doubt()}
        for s in SYMBOLS:
            if rng.random() > 0.45: continue
            side = 'buy' if rng.random() < 0.55 else 'sell'
            cid = make_client_order_id(STRATEGY, s, P.index[t], side)
            if j.order(cid) is not None or s in doubt: continue     # decided already (a replayed bar) or in doubt
            px = float(P.close[t, P.symbols.index(s)])
            lim = rng.random() < 0.3
            o = Order(cid, s, side, float(rng.integers(1, 100)), 'limit' if lim else 'market',
                      limit_price=round(px * (1 + (rng.random() - 0.5) * 0.004), 2) if lim else None, created_at=P.index[t])
            self.stats['keys'][cid] = (STRATEGY, s, P.index[t], side)
            if rng.random() < p_fault:
                self.venue.inject(FAULT_KINDS[rng.integers(len(FAULT_KINDS))]); self.stats['faults'] += 1
            if crash in ('after_intent_commit', 'after_post_sent'): self.broker.crash_at, crash = crash, None
            await submit_with_journal(self.broker, j, o)
            if self.broker.crash_at is not None: self.broker.crash_at = None   # armed but the submit never got there
        await self.resolve(t)


def check_invariants(journal:Journal, venue:SimBroker, stats:dict) -> list[str]:
    "I1-I3 at the end of a run (after a final resolve and with every bar replayed)."
    v, orders = [], venue._orders
    per_key = {}
    for cid in orders: per_key.setdefault(stats['keys'].get(cid, ('?', cid)), []).append(cid)
    v += [f'I1 {k}: {len(c)} venue orders' for k, c in per_key.items() if len(c) > 1]
    v += [f'I1 booked id {cid} sent again' for cid in stats['reused_ids']]
    for o in journal.orders():
        if o.status not in TERMINAL and o.status != OrderStatus.CANCELED: v.append(f'I2 {o.client_order_id} ends {o.status.value}')
        bo = orders.get(o.client_order_id)
        if bo is not None and abs(bo.filled_qty - o.filled_qty) > 1e-9:
            v.append(f'I3 {o.client_order_id} filled {o.filled_qty} in the journal, {bo.filled_qty} at the venue')
    v += [f'I2 venue order {cid} not in the journal' for cid in orders if journal.order(cid) is None]
    bpos = {s: float(venue.pos[j]) for s, j in venue._sym.items() if venue.pos[j] != 0}
    jpos = journal.positions()
    for s in set(bpos) | set(jpos):
        if abs(bpos.get(s, 0.0) - jpos.get(s, 0.0)) > 1e-9: v.append(f'I3 position {s}: journal {jpos.get(s, 0.0)}, venue {bpos.get(s, 0.0)}')
    jf, vf = journal.fills(), venue.fills()
    a = jf.groupby('symbol')['qty'].sum() if len(jf) else pd.Series(dtype=float)
    b = vf.groupby('symbol')['qty'].sum() if len(vf) else pd.Series(dtype=float)
    if not np.allclose(a.reindex(sorted(set(a.index) | set(b.index)), fill_value=0.0).to_numpy(),
                       b.reindex(sorted(set(a.index) | set(b.index)), fill_value=0.0).to_numpy(), atol=1e-9):
        v.append(f'I3 fills differ: journal {a.to_dict()}, venue {b.to_dict()}')
    if len(jf) != len(vf): v.append(f'I3 {len(jf)} journal fill rows, {len(vf)} venue fills')
    return v


async def soak_run(seed:int, # the run's seed
                   panel, # from `soak_panel`
                   folder:Path, # where the run's journal file lives
                   p_fault:float=0.15, # chance that a submit gets an injected fault
                   p_crash:float=0.7, # chance that the run has a crash (then 1-3 crashes)
                   mode:str='correct', # 'correct'; 'no_recovery' or 'blind_retry': deliberately broken runners
                  ) -> dict:
    "One seeded run; returns violations, crashes, faults and recovery times."
    rng = np.random.default_rng([20261129, seed])
    venue = SimBroker(panel, CostModel(half_spread_bps=1.0, commission_bps=1.0), initial_cash=1e7)
    stats = {'posts': {}, 'reused_ids': [], 'violations': [], 'keys': {}, 'faults': 0}
    T, path = len(panel.index), folder / f'journal-{seed}.sqlite'
    n_crash = int(rng.integers(1, 4)) if rng.random() < p_crash else 0
    plan = {int(t): CRASH_POINTS[rng.integers(len(CRASH_POINTS))] for t in rng.choice(np.arange(1, T - 2), n_crash, replace=False)}
    runner, rec, t = Runner(path, venue, stats, mode), [], 0
    venue.advance()                                            # bar 0
    viol = []
    try:
        while t < T - 1:
            crash, down = plan.pop(t, None), 0
            try:
                if crash == 'between_bars': raise Crash('between_bars')
                await runner.decide(t, rng, p_fault, crash)
                evs = venue.advance(); t += 1
                runner.record(evs, int(rng.integers(0, len(evs))) if crash == 'mid_events' and evs else None)
            except Crash as c:
                runner.close()
                if str(c) in ('after_intent_commit', 'after_post_sent'): down = 0 if rng.random() < 0.5 else int(rng.integers(1, 4))
                else: down = int(rng.integers(0, 4))
                for _ in range(min(down, T - 1 - t)): venue.advance(); t += 1   # the world moves; its events are lost
                runner = Runner(path, venue, stats, mode)
                rec.append(await runner.recover(t))
        await runner.resolve(t)
    except (OrderStateError, DataError) as e:                      # the journal refused an event: its state had diverged
        viol.append(f'I3 journal refused an event: {e}')
    viol += stats['violations'] + check_invariants(runner.journal, venue, stats)
    rep = await runner.journal.reconcile(venue)
    if not rep.ok: viol.append(f'I3 final reconcile: {rep.frame().to_dict("records")}')
    out = {'violations': viol, 'crashes': len(rec), 'recovery_s': rec, 'orders': len(runner.journal.orders()),
           'faults': stats['faults'], 'fills': len(venue.fills())}
    runner.close()
    path.unlink(missing_ok=True)
    for x in ('-wal', '-shm'): Path(str(path) + x).unlink(missing_ok=True)
    return out


def soak(runs:int|None=None, # number of runs (default `ALPHATRADE_SOAK_RUNS`, else 1000)
         seed0:int=0, # first run's seed
         mode:str='correct', # see `soak_run`
        ) -> dict:
    "Run the soak; return runs, violations (first 20 listed), crashes, orders, fills and recovery-time percentiles."
    runs = int(os.environ.get('ALPHATRADE_SOAK_RUNS', 1000)) if runs is None else runs
    panel, folder = soak_panel(), Path(tempfile.mkdtemp(prefix='soak_', dir='/dev/shm' if os.path.isdir('/dev/shm') else None))
    res = []
    try:
        async def go():
            for r in range(seed0, seed0 + runs): res.append(await soak_run(r, panel, folder, mode=mode))
        asyncio.run(go())
    finally: shutil.rmtree(folder, ignore_errors=True)
    rec = np.array([x for r in res for x in r['recovery_s']]) * 1e3
    viol = [(i + seed0, v) for i, r in enumerate(res) for v in r['violations']]
    pct = (lambda q: round(float(np.percentile(rec, q)), 3) if len(rec) else None)
    return {'runs': runs, 'violations': len(viol), 'violation_list': viol[:20], 'runs_with_crash': sum(r['crashes'] > 0 for r in res),
            'restarts': int(sum(r['crashes'] for r in res)), 'orders': int(sum(r['orders'] for r in res)),
            'fills': int(sum(r['fills'] for r in res)), 'faults': int(sum(r['faults'] for r in res)), 'recovery_ms_p50': pct(50), 'recovery_ms_p95': pct(95),
            'recovery_ms_p99': pct(99), 'recovery_ms_max': pct(100)}


def cases():
    n = int(os.environ.get('ALPHATRADE_SOAK_RUNS', 1000))
    yield dict(task='soak: SimBroker + Journal, random faults and crashes, invariants I1-I3', size=f'{n} runs x 30 bars x 3 symbols',
               ours=lambda: soak(n), peer='none', peer_fn=None, peer_s=None, equal=lambda a, b: a['violations'] == 0,
               target='0 violations',
               extra=lambda r: {k: v for k, v in r.items() if k != 'violation_list'})


def summarize(rows):
    for r in rows:
        yield {'summary': 'soak', 'runs': r.get('runs'), 'violations': r.get('violations'), 'restarts': r.get('restarts'),
               'recovery_ms_p50': r.get('recovery_ms_p50'), 'recovery_ms_p95': r.get('recovery_ms_p95'),
               'recovery_ms_p99': r.get('recovery_ms_p99'), 'ok': r.get('equal')}
