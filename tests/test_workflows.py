"""End-to-end: `alphatrade run backtest` writes the executed notebook, the resolved config and a
self-contained HTML report; a failing run exits non-zero and still writes the report."""
import json, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT

CLI = [str(Path(sys.executable).parent / 'alphatrade')]  # the installed console script


def _run(*args, timeout=600):
    return subprocess.run([*CLI, '--log-level', 'WARNING', *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def ok_run(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('reports')
    p = _run('run', 'backtest', '-p', f'data_dir={synth_dir}', '-p', 'symbols=all', '-p', 'start=2024-10-01',
             '-p', 'end=2024-12-31', '-p', 'top_k=2', '--run-id', 'e2e-ok', '--reports', str(out))
    return p, out


def test_report_written(ok_run, synth_dir):
    p, out = ok_run
    assert p.returncode == 0, p.stderr[-3000:]
    html = (out / 'e2e-ok.html').read_text()
    nb = json.loads((out / 'e2e-ok.ipynb').read_text())
    assert (out / 'e2e-ok.yaml').is_file()
    # the report states run id, data source, synthetic marker, data hash and code version
    for needle in ('e2e-ok', str(synth_dir), 'SYNTHETIC', 'data hash', 'alphatrade 0.', 'Sharpe', 'Max drawdown', 'MLflow run id: '):
        assert needle.lower() in html.lower(), needle
    assert re.search(r'[0-9a-f]{16}', html)
    # no code cells in the report; plotly charts inline, nothing fetched from a CDN
    assert 'skip_exec' not in html and 'MomentumStrategy(' not in html and 'load_bars(' not in html and 'write_synthetic(' not in html
    assert '<script src="http' not in html and html.count('Plotly.newPlot') >= 2
    assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))


def test_run_is_tracked_in_mlflow(ok_run, synth_dir):
    "The MLflow run named in the report exists and carries the report's data hash and the run's parameters."
    import mlflow
    from alphatrade.data.loader import load_bars
    from alphatrade.mlops.tracking import tracking_uri
    p, out = ok_run
    html = (out / 'e2e-ok.html').read_text()
    rid = re.search(r'MLflow run id: ([0-9a-f]{32})', html).group(1)
    mlflow.set_tracking_uri(tracking_uri())
    run = mlflow.get_run(rid)
    expected_hash = load_bars(synth_dir, start='2024-10-01', end='2024-12-31').data_hash
    assert run.data.tags['data_hash'] == expected_hash and expected_hash in html
    assert run.data.params['strategy_params.top_k'] == '2' and run.data.params['strategy'] == 'momentum' and run.info.run_name == 'e2e-ok'
    assert 'sharpe_ratio' in run.data.metrics


def test_failing_run_exits_nonzero_and_writes_report(synth_dir, tmp_path):
    p = _run('run', 'backtest', '-p', f'data_dir={synth_dir}', '-p', 'fail=true', '--run-id', 'e2e-fail', '--reports', str(tmp_path))
    assert p.returncode == 1
    assert 'failure requested' in p.stderr
    html = (tmp_path / 'e2e-fail.html').read_text()
    assert 'failure requested by the `fail` parameter' in html and 'RuntimeError' in html


def test_unknown_workflow_is_named():
    p = _run('run', 'nosuch')
    assert p.returncode == 2 and 'no such workflow' in p.stderr and 'backtest' in p.stderr


def _outputs(nb):
    return '\n'.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', '')) for c in nb['cells'] for o in c.get('outputs', []))


def test_sweep_gives_dsr_and_pbo(synth_dir, tmp_path):
    "A parameter sweep runs on the vectorised engine; its best-equal run matches the event engine and feeds DSR and PBO."
    p = _run('run', 'backtest', '-p', f'data_dir={synth_dir}', '-p', 'symbols=all', '-p', 'start=2024-10-01', '-p', 'end=2024-12-31',
             '-p', 'sweep={lookback: [26, 130], top_k: [1, 2]}', '-p', 'top_k=2', '-p', 'risk=false', '-p', 'impact_eta=0',
             '--run-id', 'e2e-sweep', '--reports', str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    text = _outputs(json.loads((tmp_path / 'e2e-sweep.ipynb').read_text()))
    for needle in ('DSR', 'PBO', 'PSR (vs Sharpe 0)', 'trials'):
        assert needle in text, needle
    # the sweep row with the run's own parameters (lookback 130, top_k 2) has the event engine's Sharpe ratio
    sharpe = float(re.search(r'^Sharpe ratio\s+(-?[\d.]+)', text[text.index('Overfitting statistics'):], re.M).group(1))
    row = re.search(r'^\d+\s+130\s+2\s+(-?[\d.]+)', text, re.M)
    assert row and abs(float(row.group(1)) - sharpe) < 1e-3


def test_pairs_strategy_report(synth_dir, tmp_path):
    "A named pair is traded with both legs (hedge ratio on a rolling window); the report lists the pair and its fills."
    p = _run('run', 'backtest', '-p', f'data_dir={synth_dir}', '-p', 'symbols=all', '-p', 'start=2024-10-01', '-p', 'end=2024-12-31',
             '-p', 'strategy=pairs', '-p', 'strategy_params={pairs: [[AAPL, MSFT]], entry: 1.0}', '--run-id', 'e2e-pairs', '--reports', str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    text = _outputs(json.loads((tmp_path / 'e2e-pairs.ipynb').read_text()))
    assert re.search(r"pairs traded: .*AAPL.*MSFT", text)
    n = int(re.search(r'([\d,]+) fills from', text).group(1).replace(',', ''))
    assert n >= 2
