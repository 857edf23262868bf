"""End-to-end: `alphatrade run paper_session -p date=...` runs one session on SimBroker and writes
reports/paper_session/<date>.html (named by the date, the workflow's `run_id_param`) with every section;
an injected data difference shows up in the data component of the paper-vs-replay divergence."""
import json, re, subprocess, sys
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


def test_alpaca_broker_is_refused_clearly(synth_dir, tmp_path):
    p = _run('run', 'paper_session', '-p', f'data_dir={synth_dir}', '-p', 'broker=alpaca', '--run-id', 'alp', '--reports', str(tmp_path))
    assert p.returncode == 1 and 'only the simulated broker' in p.stderr
