"""End-to-end: `alphatrade run paper_session -p date=...` runs one session on SimBroker and writes
reports/paper_session/<date>.html (named by the date, the workflow's `run_id_param`) with every section;
an injected data difference shows up in the data component of the paper-vs-replay divergence."""
import json, os, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

CLI = [str(Path(sys.executable).parent / 'alphatrade')]  # the installed console script
SECTIONS = ('Run information', 'Orders', 'Fills and transaction costs', 'Positions and P&amp;L', 'Risk state and alerts',
            'Same-day backtest replay', 'Divergence: paper vs replay', 'Tracking')


def _run(*args, timeout=600):
    return subprocess.run([*CLI, '--log-level', 'WARNING', *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _outputs(nb):
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) for c in nb['cells'] for o in c.get('outputs', []))


def _divergence(text):
    "The 'all' column of the divergence table: component -> dollars."
    out = {}
    for k in ('data', 'signal', 'fill', 'cost', 'total'):
        m = re.search(rf'^{k}\s+(.*)$', text[text.index('component'):], re.M)
        out[k] = float(m.group(1).split()[-1])
    return out


def test_report_named_by_date(home, synth_dir):
    p = _run('run', 'paper_session', '-p', 'date=2024-12-30', '-p', f'data_dir={synth_dir}')
    assert p.returncode == 0, p.stderr[-3000:]
    out = home / 'reports' / 'paper_session'
    html = (out / '2024-12-30.html').read_text()
    assert (out / '2024-12-30.yaml').is_file() and '2024-12-30.html' in p.stdout
    for s in SECTIONS: assert s in html, s
    for needle in ('SYNTHETIC', 'SimBroker', 'data hash', 'vs_open_bps', 'unexplained_bps', 'shortfall_bps', 'MLflow run id: '):
        assert needle in html, needle
    nb = json.loads((out / '2024-12-30.ipynb').read_text())
    assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))
    text = _outputs(nb)
    n = int(re.search(r'(\d+) fills', text).group(1))
    assert n > 0
    d = _divergence(text)   # identical bars, strategy, costs and cash: paper and replay agree
    assert all(abs(v) < 0.01 for v in d.values()), d
    assert 'reconciled with the broker: True' in text


def test_injected_bar_is_a_data_difference(synth_dir, tmp_path):
    p = _run('run', 'paper_session', '-p', 'date=2024-12-30', '-p', f'data_dir={synth_dir}', '-p', 'perturb_bar=AAPL,2024-12-30 15:45,1.02',
             '-p', 'track=false', '--run-id', 'perturbed', '--reports', str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    assert 'DATA DIFFERENCE INJECTED' in (tmp_path / 'perturbed.html').read_text()
    d = _divergence(_outputs(json.loads((tmp_path / 'perturbed.ipynb').read_text())))
    assert abs(d['data']) > 1.0, d
    assert abs(d['data'] + d['signal'] + d['fill'] + d['cost'] - d['total']) < 0.02, d   # displayed rounded to cents


def test_alpaca_without_keys_is_refused_clearly(synth_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('ALPACA_')}
    p = subprocess.run([*CLI, '--log-level', 'WARNING', 'run', 'paper_session', '-p', f'data_dir={synth_dir}', '-p', 'broker=alpaca',
                        '-p', 'track=false', '--run-id', 'alp', '--reports', str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 1 and 'needs Alpaca keys' in p.stderr, p.stderr[-2000:]


def test_alpaca_paper_session_against_the_fake(tmp_path):
    """`alphatrade run paper_session -p broker=alpaca` against FakeAlpaca on 127.0.0.1 (its URLs as parameters, the keys
    in the environment, the market's time from the fake's clock): the workflow runs the live runner through the session
    (the 09:30 bar streamed, orders filled at the fake, canceled before the close), then reviews the journal. The report
    shows the orders and fills the fake booked, the account's starting equity, and the replay on the local bars of the
    date, whose difference from the streamed bar is data divergence; the components add up to the total. No key in the
    report, its notebook or the output."""
    from alphatrade.data.synthetic import write_synthetic
    from alphatrade.data.loader import load_bars
    from test_live_alpaca import KEY, SECRET, SYMS, T0, drive_fake_session, fake_for_a_process
    data = tmp_path/'raw'
    write_synthetic(data, symbols=SYMS, years=0.1, end='2024-03-28', seed=7)
    b = load_bars(data, symbols=SYMS, workers=1).bars
    last = b[b.index.get_level_values(0) < T0].groupby(level='symbol')['close'].last()
    fake, env = fake_for_a_process(last)
    try:
        cmd = [*CLI, '--log-level', 'WARNING', 'run', 'paper_session', '-p', 'date=2024-03-28', '-p', f'data_dir={data}', '-p', 'broker=alpaca',
               '-p', f'symbols={",".join(SYMS)}', '-p', f"alpaca_url={fake.urls['trading']}", '-p', f"alpaca_stream_url={fake.urls['trading_stream']}",
               '-p', f"alpaca_data_url={fake.urls['data_stream']}", '-p', 'clock=broker', '-p', 'clock_sync_s=0.05', '-p', 'tick_s=0.02',
               '-p', 'track=false', '--run-id', 'alpaca', '--reports', str(tmp_path/'reports')]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            n_sub = drive_fake_session(fake, last, proc, start_timeout=240)
            out, err = proc.communicate(timeout=240)
        finally:
            if proc.poll() is None: proc.kill(); proc.communicate()
        assert proc.returncode == 0, (out, err[-4000:])
        html = (tmp_path/'reports'/'alpaca.html').read_text()
        for sec in SECTIONS: assert sec in html, sec
        nb_text = (tmp_path/'reports'/'alpaca.ipynb').read_text()
        nb = json.loads(nb_text)
        assert not any(o.get('output_type') == 'error' for c_ in nb['cells'] for o in c_.get('outputs', []))
        text = _outputs(nb)
        assert 'Alpaca paper session: exit 0' in html and 'data divergence' in html
        assert re.search(r'(\d+) orders decided, (\d+) sent', text).group(2) == str(n_sub) and n_sub > 0
        assert int(re.search(r'(\d+) fills', text).group(1)) > 0
        assert 'startup reconciliation ok: True; final: True' in text
        d = _divergence(text)
        assert abs(d['data']) > 0.01, d                                              # the streamed bar is not the local one
        assert abs(d['data'] + d['signal'] + d['fill'] + d['cost'] - d['total']) < 0.02, d
        for t in (html, nb_text, (tmp_path/'reports'/'alpaca.yaml').read_text(), out, err): assert KEY not in t and SECRET not in t
    finally:
        fake.stop()
