"""`soak_runner`: seeded randomised runs of the FULL live runner (`run_live`, paper mode, `DurableSimBroker`) with REAL
process deaths, checking the invariants of ALPACA.md §6.1 and equality with a session that never crashed.

It complements `bench_soak.py`, which drives only SimBroker + Journal + `submit_with_journal` in process. Here every
session is a forked child process that runs `run_live(LiveOptions(mode='paper', broker='sim', date=DAY, ...))` on a
small synthetic market (the fixture of `tests/test_faults_crash.py`), armed with `ALPHATRADE_CRASH_AT=<label>:<n>`: the
crash point (`alphatrade.execution.crash`) calls `os._exit(137)` on its n-th pass, with no `finally`, no graceful stop and
no journal close. The parent restarts the session on the same journal (armed again with probability `p_again`, at most
`max_crashes` crashes per run) until a child exits 0, then checks, from the journal and the simulated broker's account
that `DurableSimBroker` commits to it (as a real broker's account survives a crash):

- I1 exactly-once: every client order id was sent to the broker once (its committed `ledger`), each decision key
  (strategy, symbol, bar, side) has at most one order;
- I2 nothing lost: every journal order is terminal and none is in doubt, every broker order (and every POST in the ledger)
  is in the journal, a journal order the broker never booked ended REJECTED (an intent abandoned at a restart), each
  order's status and filled quantity are the broker's;
- I3 state equality: journal positions equal the broker's, the journal's fills sum to them, one journal fill row per
  broker fill; every startup reconciliation after a crash is clean, and every crash left an intact SQLite file with no
  partial fill transaction (`PRAGMA integrity_check`, fill events == fill rows);
- equality with the reference session (the same day, never crashed): the same orders with the same status, fill and
  average price, the same positions and cash.

The day's strategy is momentum; profile 'rich' (default) rebalances every bar (about 50 buys and sells over 24 bars,
a few canceled at the close), profile 'pc' is the default momentum of the PC tests (3 buys at 09:30). A run's plan
(which label, which pass) is drawn from its seed; `n` is uniform up to the label's pass count in the reference (bars,
orders or fills), so a plan may outlast a restarted session: that child then finishes the day. `during_reconcile` is
armed only on restarts (a fresh journal has nothing to recover). The parent is warmed by one in-process session (imports,
JIT), then holds no event loop, SQLite connection or helper thread while it forks; each child leaves by `os._exit`.

Optional broker faults (`p_fault` > 0): in the child only, `DurableSimBroker.submit` is wrapped (harness code, not the
library) to inject `SimBroker` faults drawn from the run's seed. A lost response is resolved by lookup, so runs with
only lost responses must still equal the reference; a lost request or a reject changes the outcome, so those runs are
checked against I1-I3 only, with a POST that booked nothing (lost request, reject) allowed a resend under the same id
and a journal order the broker never booked required to end REJECTED. A session that halts with exit 1 (reconciliation
failed: I6 "halted with an alert") is counted as a halt and restarted, at most `max_halts` times; without faults any
exit other than 0 and 137 is a violation.

Recovery time = wall time from the restart (the parent's fork) to the child's first clean startup reconciliation
(`startup_reconciled ok=True`), which includes process start-up, config and bar loading.

`ALPHATRADE_SOAK_RUNNER_RUNS` (default 1000) sets the run count, `ALPHATRADE_SOAK_RUNNER_PROFILE` the day ('rich'),
`ALPHATRADE_SOAK_RUNNER_FAULTS` the fault chance per submit (default 0) and `ALPHATRADE_SOAK_RUNNER_FAULT_KINDS` the
kinds (comma-separated, default all three); `python bench/run.py soak_runner --repeat 0` runs it once (the default
`--repeat 5` runs it six times). Target: 0 violations; no peer. POSIX only (os.fork).
"""
from __future__ import annotations
import collections, os, shutil, sqlite3, tempfile, threading, time, traceback
from pathlib import Path
import numpy as np
from alphatrade.execution.broker import FAULTS as FAULT_KINDS                 # lost_request, lost_response, reject
from alphatrade.execution.crash import CRASH_EXIT as EXIT_CRASH               # 137, a SIGKILL's status
from alphatrade.execution.runner import EXIT_RECONCILE

DAY = '2024-03-28'
SYMBOLS = ['AAPL', 'MSFT', 'XOM', 'JPM']
SALT = 20261129
PROFILES = {'pc': {},                                          # the default momentum of tests/test_faults_crash.py: 3 buys at 09:30
            'rich': dict(lookback=2, top_k=2, rebalance_every=1)}   # rebalanced every bar: ~50 buys and sells over 24 bars
EXIT_CHILD_ERROR = 70                                          # the child raised (a harness or library exception)


def market(folder:Path) -> Path:
    "The small synthetic market of `tests/test_faults_crash.py`: 4 symbols, about a month up to 2024-04-02."
    from alphatrade.data.synthetic import write_synthetic
    d = Path(folder)/'data'
    write_synthetic(d, symbols=SYMBOLS, years=0.1, end='2024-04-02', seed=7)
    return d


def _files(jpath:Path) -> list[Path]:
    return [jpath, Path(f'{jpath}-wal'), Path(f'{jpath}-shm'), jpath.with_suffix('.lock'), jpath.with_suffix('.KILL')]


class _Lines:
    "A child's log handler: `monotonic message` per record, written through at once (it must survive `os._exit`)."
    def __init__(self, path:Path):
        import logging
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        class H(logging.Handler):
            def emit(h, rec):
                try: os.write(self.fd, f'{time.monotonic():.6f} {rec.levelname} {rec.getMessage()}\n'.encode())
                except Exception: pass
        self.handler = H(logging.INFO)


def _child(data:Path, jpath:Path, log:Path, crash:str|None, fault_seed, p_fault:float, params:dict, kinds:tuple) -> None:
    "Body of a forked session: arm the crash point, run the day, exit with its code (never returns)."
    code = EXIT_CHILD_ERROR
    try:
        import logging
        for k in ('ALPHATRADE_CRASH_AT', 'RUNNER_CRASH_AT'): os.environ.pop(k, None)
        if crash: os.environ['ALPHATRADE_CRASH_AT'] = crash
        lines = _Lines(log)
        lg = logging.getLogger('alphatrade')
        for h in list(lg.handlers): lg.removeHandler(h)             # this process only: the parent keeps its logging
        lg.addHandler(lines.handler); lg.setLevel(logging.INFO); lg.propagate = False
        from alphatrade.execution.runner import DurableSimBroker, LiveOptions, run_live
        if p_fault > 0:                                             # harness-only wrapper, in this child's memory
            rng, orig = np.random.default_rng(fault_seed), DurableSimBroker.submit
            async def submit(self, order):
                if rng.random() < p_fault:
                    k = kinds[rng.integers(len(kinds))]
                    os.write(lines.fd, f'{time.monotonic():.6f} SOAK fault_injected kind={k} client_order_id={order.client_order_id}\n'.encode())
                    self.inject(k)
                return await orig(self, order)
            DurableSimBroker.submit = submit
        r = run_live(LiveOptions(mode='paper', broker='sim', date=DAY, data_dir=data, journal=jpath, heartbeat_s=0, signals=False,
                                 strategy_params=dict(params)))
        code = int(r.exit_code)
        if r.message: os.write(lines.fd, f'{time.monotonic():.6f} SOAK result exit={code} {r.message!r}\n'.encode())
    except BaseException:
        try:
            with open(log, 'a') as f: f.write(f'{time.monotonic():.6f} SOAK child_error {traceback.format_exc()!r}\n')
        except Exception: pass
    finally: os._exit(code)


def session(data:Path, # the market
            jpath:Path, # the journal (shared by the restarts of one run)
            log:Path, # the child's log lines (appended)
            crash:str|None=None, # 'label:n' to arm, or None
            fault_seed=None, # seed of the injected broker faults
            p_fault:float=0.0, # chance that a submit gets an injected fault
            params:dict|None=None, # the momentum strategy's parameters (`PROFILES`)
            kinds:tuple=FAULT_KINDS, # which faults to inject
           ) -> dict:
    "Fork one session of the day; wait for it. Returns its exit code, wall seconds and startup-reconciliation time."
    start = log.stat().st_size if log.exists() else 0
    t0 = time.monotonic()
    pid = os.fork()
    if pid == 0: _child(data, jpath, log, crash, fault_seed, p_fault, params or {}, tuple(kinds))
    _, st = os.waitpid(pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(st)
    txt = ''
    if log.exists():
        with open(log) as f: f.seek(start); txt = f.read()
    rec = [ln for ln in txt.splitlines() if ' startup_reconciled ' in ln]
    return {'code': code, 'crash': crash, 'wall_s': wall, 'log': txt,
            'startup_ok': None if not rec else ' ok=True' in rec[0],
            'recovery_s': None if not rec else float(rec[0].split(' ', 1)[0]) - t0}


def snapshot(jpath:Path) -> dict:
    "What the journal and the (durable) simulated broker hold (the connection is closed again before returning)."
    from alphatrade.execution.journal import Journal
    from alphatrade.execution.runner import SIM_KEY
    with Journal(jpath) as j:
        return dict(orders={o.client_order_id: o for o in j.orders()}, pos=j.positions(), sim=j.load_state(SIM_KEY) or {},
                    in_doubt=[o.client_order_id for o in j.orders_in_doubt()], fills=j.fills())


def torn(jpath:Path) -> list[str]:
    "After a crash: SQLite integrity and no partial fill transaction (a fill event without its fill row)."
    if not jpath.exists(): return []
    con = sqlite3.connect(str(jpath))
    try:
        ok = con.execute('PRAGMA integrity_check').fetchone()[0]
        tabs = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        n_ev = con.execute("SELECT COUNT(*) FROM events WHERE kind LIKE '%fill%'").fetchone()[0] if 'events' in tabs else 0
        n_fill = con.execute('SELECT COUNT(*) FROM fills').fetchone()[0] if 'fills' in tabs else 0
    finally: con.close()
    out = [] if ok == 'ok' else [f'I3 integrity_check after the crash: {ok}']
    if n_ev != n_fill: out.append(f'I3 partial fill transaction survived the crash: {n_ev} fill events, {n_fill} fill rows')
    return out


def check(s:dict, # `snapshot` after the final session
          ref:dict|None, # the reference's snapshot (None: invariants only)
          lost:dict|None=None, # client id -> injected lost requests and rejects (POSTs in the ledger that booked nothing)
          strict:bool=True, # no injected faults: every POST in the ledger booked an order
         ) -> list[str]:
    "I1-I3 and equality with the reference; one line per violation."
    from alphatrade.execution.orders import TERMINAL, OrderStatus
    v, sim, lost = [], s['sim'], lost or {}
    led = collections.Counter(sim.get('ledger', []))
    v += [f'I1 client id {c} sent {n} times ({lost.get(c, 0)} of them lost or rejected)' for c, n in led.items() if n > 1 + lost.get(c, 0)]
    keys = collections.Counter((c.split('-')[0], o.symbol, o.created_at, o.side) for c, o in s['orders'].items())
    v += [f'I1 decision key {k} has {n} orders' for k, n in keys.items() if n > 1]
    jo, so, lo = set(s['orders']), set(sim.get('orders', {})), set(led)
    if so - jo or lo - jo: v.append(f'I2 broker orders not in the journal: {sorted((so | lo) - jo)}')
    if strict and lo != so: v.append(f'I2 sent but not booked (no fault injected): {sorted(lo - so)}')
    v += [f'I2 {c} never booked at the broker but ends {s["orders"][c].status.value}' for c in sorted(jo - so)   # abandoned,
          if s['orders'][c].status != OrderStatus.REJECTED]                                                 # or a reject/lost POST
    v += [f'I2 {c} ends {o.status.value}' for c, o in s['orders'].items()     # CANCELED may still see a late fill, but
          if o.status not in TERMINAL and o.status != OrderStatus.CANCELED]    # not in a replayed day that is over
    if s['in_doubt']: v.append(f'I2 in doubt at the end: {s["in_doubt"]}')
    for c, o in s['orders'].items():
        bo = sim.get('orders', {}).get(c, {}).get('order')
        if bo is not None and (o.status.value, o.filled_qty) != (bo['status'], bo['filled_qty']):
            v.append(f'I3 {c}: journal {o.status.value} {o.filled_qty}, broker {bo["status"]} {bo["filled_qty"]}')
    bpos = {k: q for k, q in sim.get('pos', {}).items() if q}
    if s['pos'] != bpos: v.append(f'I3 positions: journal {s["pos"]}, broker {bpos}')
    f = s['fills']
    fsum = f.groupby('symbol').qty.sum().loc[lambda x: x != 0].to_dict() if len(f) else {}
    if fsum != bpos: v.append(f'I3 journal fills sum to {fsum}, broker positions {bpos}')
    if len(f) != len(sim.get('fills', [])) or (len(f) and f.fill_id.duplicated().any()):
        v.append(f'I3 {len(f)} journal fill rows ({f.fill_id.duplicated().sum() if len(f) else 0} duplicated), {len(sim.get("fills", []))} broker fills')
    if ref is not None:
        if jo != set(ref['orders']): v.append(f'REF orders: missing {sorted(set(ref["orders"]) - jo)}, extra {sorted(jo - set(ref["orders"]))}')
        for c in jo & set(ref['orders']):
            a, b = s['orders'][c], ref['orders'][c]
            if (a.status, a.qty, a.filled_qty) != (b.status, b.qty, b.filled_qty) or not np.isclose(a.avg_fill_price or 0.0, b.avg_fill_price or 0.0, rtol=0, atol=1e-9):
                v.append(f'REF {c}: {a.status.value} {a.filled_qty}/{a.qty} @ {a.avg_fill_price}, reference {b.status.value} {b.filled_qty}/{b.qty} @ {b.avg_fill_price}')
        if s['pos'] != ref['pos']: v.append(f'REF positions {s["pos"]}, reference {ref["pos"]}')
        if not np.isclose(float(sim.get('cash', np.nan)), float(ref['sim']['cash']), rtol=0, atol=1e-6):
            v.append(f'REF cash {sim.get("cash")}, reference {ref["sim"]["cash"]}')
    return v


def pass_counts(ref:dict) -> dict:
    "How often each crash label is passed in a whole uncrashed session (the range of `n` in a plan)."
    bars, orders, fills = 26, max(len(ref['orders']), 1), max(len(ref['sim'].get('fills', [])), 1)
    return {'after_bar_advance': bars, 'after_decision': bars, 'after_intent_commit': orders, 'after_post_sent': orders,
            'after_ack_commit': orders, 'mid_fill_txn': fills, 'after_fill_commit': fills, 'during_reconcile': 2}


def draw_plan(rng:np.random.Generator, counts:dict, max_crashes:int, p_again:float) -> list[str]:
    "The crash specs of one run: the first session always armed, each restart again with chance `p_again`."
    from alphatrade.execution.crash import LABELS
    plan = []
    while len(plan) < max_crashes and (not plan or rng.random() < p_again):
        labels = [l for l in LABELS if plan or l != 'during_reconcile']
        lab = labels[rng.integers(len(labels))]
        plan.append(f'{lab}:{int(rng.integers(1, counts[lab] + 1))}')
    return plan


def soak_run(seed:int, # the run's seed
             data:Path, # the market
             folder:Path, # where the run's journal lives
             ref:dict, # the reference's snapshot
             plan:list|None=None, # crash specs ('label:n') per session; None: drawn from the seed
             p_fault:float=0.0, # chance that a submit gets an injected broker fault
             fault_kinds:tuple=FAULT_KINDS, # which (`SimBroker.inject` kinds)
             max_crashes:int=4, # crashes per run at most
             p_again:float=0.5, # chance that a restart is armed again
             keep_log:bool=False, # keep the children's log text in the result
             max_halts:int=3, # with faults: sessions that halt (exit 1, reconciliation failed) and are restarted, at most
             tamper=None, # test aid: callable(journal path) run after each crash (e.g. a journal that lost a commit)
            ) -> dict:
    "One seeded run: sessions until one exits 0 (or the limit), then the checks."
    rng = np.random.default_rng([SALT, seed])
    if plan is None: plan = draw_plan(rng, pass_counts(ref), max_crashes, p_again)
    jpath, log = folder/f'run-{seed}.sqlite', folder/f'run-{seed}.log'
    for p in _files(jpath) + [log]: p.unlink(missing_ok=True)
    viol, sessions, halts = [], [], []
    t0 = time.monotonic()
    for k in range(len(plan) + 1 + max_halts):
        s = session(data, jpath, log, plan[k] if k < len(plan) else None, [SALT, seed, k], p_fault, ref['params'], fault_kinds)
        sessions.append(s)
        if k > 0 and s['startup_ok'] is None and s['code'] != EXIT_CRASH:
            viol.append(f'restart {k} exited {s["code"]} without a startup reconciliation')
        if s['code'] == EXIT_CRASH:
            if not s['crash'] or f' crash_point label={s["crash"].split(":")[0]} ' not in s['log']:
                viol.append(f'session {k} exited 137 without passing its crash point {s["crash"]}')
            viol += torn(jpath)
            if tamper is not None: tamper(jpath)
            continue
        if s['code'] == 0: break
        why = [ln.split(' ', 2)[2][:160] for ln in s['log'].splitlines() if ' ERROR ' in ln or ' SOAK ' in ln][-2:]
        if s['code'] == EXIT_RECONCILE and p_fault > 0 and len(halts) < max_halts:
            halts.append(f'session {k} halted (exit 1, startup ok={s["startup_ok"]}): {why}')   # I6: halted with an alert;
            continue                                                                     # the operator restarts it
        viol.append(f'session {k} ({s["crash"] or "unarmed"}) exited {s["code"]}: {why}')
        break
    else: viol.append(f'no clean exit after {len(sessions)} sessions')
    wall = time.monotonic() - t0
    txt = log.read_text() if log.exists() else ''
    faults = [ln.split('kind=')[1].split()[0] for ln in txt.splitlines() if ' SOAK fault_injected ' in ln]
    lost = collections.Counter(ln.split('client_order_id=')[1].split()[0] for ln in txt.splitlines()   # POSTs that never
                               if ' SOAK fault_injected kind=lost_request ' in ln or ' SOAK fault_injected kind=reject ' in ln)   # booked it
    s = snapshot(jpath)
    exact = not [f for f in faults if f != 'lost_response']     # a lost request or a reject changes the outcome
    viol += check(s, ref if exact else None, lost, strict=not faults)
    crashed = [x['crash'].split(':')[0] for x in sessions if x['code'] == EXIT_CRASH]
    rec = [x['recovery_s'] for p_, x in zip(sessions, sessions[1:]) if p_['code'] == EXIT_CRASH and x['startup_ok']]
    out = {'seed': seed, 'plan': plan, 'violations': viol, 'crashes': len(crashed), 'crashed_labels': crashed, 'halts': halts,
           'exits': [x['code'] for x in sessions], 'recovery_s': rec,
           'wall_s': wall, 'orders': len(s['orders']), 'faults': faults, 'compared_to_reference': exact}
    if keep_log or viol: out['log'] = log.read_text() if log.exists() else ''
    for p in _files(jpath) + [log]: p.unlink(missing_ok=True)
    return out


def _quiesce() -> None:
    "Stop the parent's helper threads before forking (tqdm's monitor, started by a progress bar while loading bars)."
    from tqdm import tqdm
    mon = getattr(tqdm, 'monitor', None)
    if mon is not None:
        mon.exit(); tqdm.monitor = None


def prepare(folder:Path, # scratch folder
            profile:str='rich', # a key of `PROFILES`
           ) -> tuple[Path, dict]:
    "Write the market, warm the parent (imports, JIT) with one in-process session, run the reference in a child."
    params = PROFILES[profile]
    from alphatrade.execution.runner import LiveOptions, run_live
    import logging
    data = market(folder)
    lg = logging.getLogger('alphatrade')
    lvl, prop, hs = lg.level, lg.propagate, list(lg.handlers)
    lg.setLevel(logging.CRITICAL)
    try: run_live(LiveOptions(mode='paper', broker='sim', date=DAY, data_dir=data, journal=folder/'warm.sqlite', heartbeat_s=0, signals=False,
                              strategy_params=dict(params)))
    finally: lg.setLevel(lvl)
    _quiesce()
    jpath, log = folder/'reference.sqlite', folder/'reference.log'
    r = session(data, jpath, log, params=params)
    if r['code'] != 0: raise RuntimeError(f'the reference session exited {r["code"]}: {r["log"][-2000:]}')
    ref = {**snapshot(jpath), 'params': params, 'profile': profile}
    if len(ref['orders']) < 2 or not ref['pos']: raise RuntimeError('the reference day must trade')
    if check(ref, None): raise RuntimeError(f'the reference breaks an invariant: {check(ref, None)}')
    return data, ref


def soak(runs:int|None=None, # number of runs (default `ALPHATRADE_SOAK_RUNNER_RUNS`, else 1000)
         seed0:int=0, # first run's seed
         plans:dict|None=None, # seed -> explicit crash plan (the others are drawn)
         p_fault:float|None=None, # broker-fault chance per submit (default `ALPHATRADE_SOAK_RUNNER_FAULTS`, else 0)
         seeds:list|None=None, # explicit seeds (overrides runs/seed0)
         profile:str|None=None, # a key of `PROFILES` (default `ALPHATRADE_SOAK_RUNNER_PROFILE`, else 'rich')
         fault_kinds:tuple|None=None, # default `ALPHATRADE_SOAK_RUNNER_FAULT_KINDS` (comma-separated), else all three
         **kw, # to `soak_run`
        ) -> dict:
    "Run the soak; return runs, crashes, violations (first 20 listed), recovery-time percentiles and throughput."
    runs = int(os.environ.get('ALPHATRADE_SOAK_RUNNER_RUNS', 1000)) if runs is None else runs
    p_fault = float(os.environ.get('ALPHATRADE_SOAK_RUNNER_FAULTS', 0.0)) if p_fault is None else p_fault
    profile = os.environ.get('ALPHATRADE_SOAK_RUNNER_PROFILE', 'rich') if profile is None else profile
    seeds = list(range(seed0, seed0 + runs)) if seeds is None else list(seeds)
    if fault_kinds is None: fault_kinds = tuple(os.environ.get('ALPHATRADE_SOAK_RUNNER_FAULT_KINDS', ','.join(FAULT_KINDS)).split(','))
    plans = plans or {}
    folder = Path(tempfile.mkdtemp(prefix='soak_runner_', dir='/dev/shm' if os.path.isdir('/dev/shm') else None))
    t0 = time.monotonic()
    try:
        data, ref = prepare(folder, profile)
        if threading.active_count() > 1:
            print(f'soak_runner: warning, Python threads alive in the parent while forking: {threading.enumerate()}')
        t1 = time.monotonic()
        res = [soak_run(s, data, folder, ref, plans.get(s), p_fault=p_fault, fault_kinds=tuple(fault_kinds), **kw) for s in seeds]
        t_runs = time.monotonic() - t1
    finally: shutil.rmtree(folder, ignore_errors=True)
    rec = np.array([x for r in res for x in r['recovery_s']]) * 1e3
    pct = (lambda q: round(float(np.percentile(rec, q)), 1) if len(rec) else None)
    viol = [(r['seed'], r['plan'], v) for r in res for v in r['violations']]
    ex = collections.Counter(c for r in res for c in r['exits'])
    return {'profile': profile, 'runs': len(res), 'sessions': int(sum(ex.values())), 'crashes': int(ex.get(EXIT_CRASH, 0)),
            'runs_with_crash': sum(r['crashes'] > 0 for r in res), 'violations': len(viol), 'violation_list': viol[:20],
            'runs_with_violation': sum(bool(r['violations']) for r in res),
            'crashed_labels': dict(sorted(collections.Counter(l for r in res for l in r['crashed_labels']).items())),
            'exit_codes': dict(sorted(ex.items())), 'halts': sum(len(r['halts']) for r in res),
            'halts_at_startup': sum('startup ok=False' in h for r in res for h in r['halts']),
            'halt_list': [(r['seed'], h) for r in res for h in r['halts']][:20], 'faults': dict(collections.Counter(f for r in res for f in r['faults'])),
            'runs_vs_reference': sum(r['compared_to_reference'] for r in res), 'reference_orders': len(ref['orders']),
            'recovery_ms_p50': pct(50), 'recovery_ms_p95': pct(95), 'recovery_ms_p99': pct(99), 'recovery_ms_max': pct(100),
            'runs_per_s': round(len(res) / t_runs, 3) if t_runs > 0 else None, 'setup_s': round(t1 - t0, 2),
            'results': res}


def cases():
    n = int(os.environ.get('ALPHATRADE_SOAK_RUNNER_RUNS', 1000))
    pf = float(os.environ.get('ALPHATRADE_SOAK_RUNNER_FAULTS', 0.0))
    prof = os.environ.get('ALPHATRADE_SOAK_RUNNER_PROFILE', 'rich')
    kinds = os.environ.get('ALPHATRADE_SOAK_RUNNER_FAULT_KINDS', ','.join(FAULT_KINDS))
    yield dict(task='soak_runner: run_live as forked processes, real crashes (os._exit 137) at random crash points, invariants I1-I3 + reference',
               size=f'{n} runs x 1 day x 4 symbols, profile {prof}' + (f', faults p={pf} ({kinds})' if pf else ''),
               ours=lambda: soak(n, p_fault=pf, profile=prof), peer='none', peer_fn=None, peer_s=None, equal=lambda a, b: a['violations'] == 0,
               target='0 violations',
               extra=lambda r: {**{k: v for k, v in r.items() if k not in ('violation_list', 'results', 'halt_list')},
                                'violation_list': [f'seed={sd} plan={",".join(pl)}: {v[:200]}' for sd, pl, v in r['violation_list']]})


def summarize(rows):
    for r in rows:
        yield {'summary': 'soak_runner', 'runs': r.get('runs'), 'crashes': r.get('crashes'), 'violations': r.get('violations'),
               'recovery_ms_p50': r.get('recovery_ms_p50'), 'recovery_ms_p99': r.get('recovery_ms_p99'),
               'runs_per_s': r.get('runs_per_s'), 'ok': r.get('equal')}
        for v in r.get('violation_list') or []: yield {'violation': v}
