"""A slice of `bench/bench_soak_runner.py`: the FULL live runner (`run_live`, paper mode, `DurableSimBroker`) as forked
processes killed for real (`ALPHATRADE_CRASH_AT=<label>:<n>` -> `os._exit(137)`) and restarted on the same journal,
checked against ALPACA.md §6.1 I1-I3 and against a reference session of the same day that never crashed.

One run per crash label in `alphatrade.execution.crash.LABELS` (explicit plans, so every label is killed at least once:
`during_reconcile` on the restart after a kill between the POST and its ack, as in PC-2), then seeded random plans, then
seeded random broker faults (lost request, lost response, reject) on top of the crashes. The day is the 'rich'
profile (momentum rebalanced every bar: about 50 buys and sells over the session). A negative control shows the
checks can fail: a journal that loses its last commit after the crash is caught.
"""
import shutil, sqlite3, sys, tempfile
from pathlib import Path
import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / 'bench'))
import bench_soak_runner as sr                                           # noqa: E402
from alphatrade.execution.crash import LABELS                            # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.skipif(not hasattr(__import__('os'), 'fork'), reason='needs os.fork')]

COVER = {'after_bar_advance': ['after_bar_advance:3'], 'after_intent_commit': ['after_intent_commit:1'],
         'after_post_sent': ['after_post_sent:2'], 'after_ack_commit': ['after_ack_commit:1'], 'mid_fill_txn': ['mid_fill_txn:1'],
         'after_fill_commit': ['after_fill_commit:2'], 'during_reconcile': ['after_post_sent:1', 'during_reconcile:1'],
         'after_decision': ['after_decision:5', 'after_bar_advance:2']}


@pytest.fixture(scope='module')
def soak_env():
    "The market, the reference session and a scratch folder (on /dev/shm when there is one)."
    folder = Path(tempfile.mkdtemp(prefix='soak_runner_test_', dir='/dev/shm' if Path('/dev/shm').is_dir() else None))
    try:
        data, ref = sr.prepare(folder)
        yield data, ref, folder
    finally: shutil.rmtree(folder, ignore_errors=True)


def test_soak_runner_crash_slice(soak_env):
    """Every crash label killed at least once, plus 8 seeded random plans: 0 violations (I1-I3, clean startup
    reconciliation after every kill, an intact journal after every kill, the same orders, fills, positions and cash as
    the reference), and the kills really happened (exit 137)."""
    data, ref, folder = soak_env
    assert set(COVER) == set(LABELS)
    assert len(ref['orders']) >= 2 and ref['pos']
    res = [sr.soak_run(i, data, folder, ref, plan=COVER[l]) for i, l in enumerate(LABELS)]
    res += [sr.soak_run(s, data, folder, ref) for s in range(100, 108)]
    bad = [(r['seed'], r['plan'], v) for r in res for v in r['violations']]
    assert bad == [], bad
    crashed = {l for r in res for l in r['crashed_labels']}
    assert crashed == set(LABELS), set(LABELS) - crashed
    n137 = sum(c == sr.EXIT_CRASH for r in res for c in r['exits'])
    assert n137 >= len(LABELS) + 1 and n137 == sum(r['crashes'] for r in res)
    assert all(r['exits'][-1] == 0 and r['compared_to_reference'] for r in res)
    rec = [x for r in res for x in r['recovery_s']]
    n_before_startup = sum(l == 'during_reconcile' for r in res for l in r['crashed_labels'])   # killed inside recovery
    assert len(rec) == n137 - n_before_startup and all(0 < x < 30 for x in rec)   # every other kill: a clean startup next


def test_soak_runner_fault_slice(soak_env):
    """Seeded random crashes plus random broker faults on a fifth of the submits: 0 violations. With lost responses
    only, every run still equals the reference (each is resolved by lookup, never by a resend); with all three kinds
    (a lost request or a reject changes the outcome) the invariants hold and every kind was injected."""
    data, ref, folder = soak_env
    only = [sr.soak_run(s, data, folder, ref, p_fault=0.2, fault_kinds=('lost_response',)) for s in range(200, 206)]
    mixed = [sr.soak_run(s, data, folder, ref, p_fault=0.2) for s in range(300, 306)]
    bad = [(r['seed'], r['plan'], v) for r in only + mixed for v in r['violations']]
    assert bad == [], bad
    assert all(r['compared_to_reference'] and r['faults'] for r in only)
    assert {f for r in mixed for f in r['faults']} == set(sr.FAULT_KINDS)
    assert sum(r['crashes'] for r in only + mixed) > 0


def test_soak_runner_catches_a_lost_commit(soak_env):
    """Negative control: after the kill the journal loses its last order (its rows deleted, as if the commit never hit
    the disk). The broker holds an order the journal never sent: the restart's startup reconciliation fails and the
    checks report it (I2, and the difference from the reference)."""
    data, ref, folder = soak_env

    def lose_last_order(jpath):
        con = sqlite3.connect(str(jpath))
        try:
            (cid,) = con.execute('SELECT client_order_id FROM orders ORDER BY rowid DESC LIMIT 1').fetchone()
            for t in ('fills', 'events', 'orders'): con.execute(f'DELETE FROM {t} WHERE client_order_id=?', (cid,))
            con.commit()
        finally: con.close()

    r = sr.soak_run(900, data, folder, ref, plan=['after_ack_commit:1'], tamper=lose_last_order)
    assert r['crashes'] == 1 and r['exits'][0] == sr.EXIT_CRASH
    assert any('exited 1' in v for v in r['violations']), r['violations']
    assert any(v.startswith('I2') for v in r['violations']) and any(v.startswith('REF') for v in r['violations']), r['violations']
    s = dict(ref, sim={**ref['sim'], 'ledger': ref['sim']['ledger'] * 2})   # the checker alone: an id sent twice is I1
    assert any(v.startswith('I1') for v in sr.check(s, ref))


def test_soak_runner_last_bar_intent_matches_reference(soak_env):
    """Killed after committing the intent of the day's last order (decided on the last bar): the restarted run ends like
    the reference (the same orders with the same status). Found by this soak (bench seed 408 among others): the restart's
    recovery used to abandon that intent (the replay's clock says closed after the last bar) while the replay decided the
    same bar again and sent its other orders; the bar still open for decisions is now the one the replay decides."""
    data, ref, folder = soak_env
    last = max(o.created_at for o in ref['orders'].values())
    assert sorted(o.created_at for o in ref['orders'].values())[-1] == last
    r = sr.soak_run(901, data, folder, ref, plan=[f'after_intent_commit:{len(ref["orders"])}'])
    assert r['exits'] == [sr.EXIT_CRASH, 0] and not [v for v in r['violations'] if not v.startswith('REF')], r['violations']
    assert r['violations'] == [], r['violations']
