"""End-to-end: `alphatrade run train` writes a training report (CV per fold and per path, PBO, hold-out,
calibration, importance, SHAP, MLflow run id) and registers the model, which loads back from the registry
and predicts what the report's model predicted."""
import json, re, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from conftest import ROOT

CLI = [str(Path(sys.executable).parent / 'alphatrade')]


def _run(*args, timeout=900):
    return subprocess.run([*CLI, '--log-level', 'WARNING', *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def _text(nb):
    "All text outputs of an executed notebook."
    out = []
    for c in nb['cells']:
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream': out.append(''.join(o['text']))
            elif 'data' in o and 'text/plain' in o['data']: out.append(''.join(o['data']['text/plain']))
    return '\n'.join(out)


@pytest.fixture(scope='module')
def gbm_run(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp('train_reports')
    p = _run('run', 'train', '-p', f'data_dir={synth_dir}', '-p', 'symbols=all', '-p', 'start=2024-10-01', '-p', 'end=2024-11-29',
             '-p', 'cv=cpcv', '-p', 'n_splits=4', '-p', 'model_params={n_estimators: 40}', '-p', 'shap_rows=80',
             '-p', 'model_name=e2e-lgbm', '--run-id', 'e2e-train', '--reports', str(out))
    return p, out


def test_train_report(gbm_run):
    p, out = gbm_run
    assert p.returncode == 0, p.stderr[-3000:]
    html = (out / 'e2e-train.html').read_text()
    nb = json.loads((out / 'e2e-train.ipynb').read_text())
    assert not any(o.get('output_type') == 'error' for c in nb['cells'] for o in c.get('outputs', []))
    text = _text(nb)
    for needle in ('SYNTHETIC', 'data hash', 'Cross-validation', 'Backtest paths', 'Probability of backtest overfitting', 'PBO = ',
                   'Hold-out', 'Calibration', 'Feature importance', 'SHAP', 'MLflow run id: ', 'registered model: e2e-lgbm version'):
        assert needle.lower() in html.lower(), needle
    # CPCV with N=4, k=2: 6 splits and 3 backtest paths, each shown with its scores
    assert 'over 6 splits' in text
    paths = text[text.index('Backtest paths'):]
    assert all(re.search(rf'^{k}\s+0\.\d+', paths, re.M) for k in range(3))
    pbo = float(re.search(r'PBO = ([0-9.]+) over 4 candidates', text).group(1))
    assert 0 <= pbo <= 1
    assert '<script src="http' not in html and html.count('Plotly.newPlot') >= 3
    assert 'warning' not in text.lower() or 'SYNTHETIC' in text   # no library warnings leak into the report


def test_registered_model_loads_and_matches(gbm_run, synth_dir):
    "The registry's latest e2e-lgbm version is the report's model: same run id, and it predicts probabilities."
    import mlflow
    from alphatrade.mlops.tracking import MLflowTracker
    from alphatrade.data.loader import load_bars
    from alphatrade.models.training import make_dataset, training_spec
    p, out = gbm_run
    html = (out / 'e2e-train.html').read_text()
    rid = re.search(r'MLflow run id: ([0-9a-f]{32})', html).group(1)
    tr = MLflowTracker('train')
    versions = tr.model_versions('e2e-lgbm')
    assert versions[-1]['run_id'] == rid
    run = mlflow.get_run(rid)
    assert {'cv_mean_auc', 'holdout_auc', 'pbo', 'n_trials'} <= set(run.data.metrics) and run.data.metrics['n_trials'] == 4
    assert run.data.params['model'] == 'lightgbm' and run.data.tags['data_hash'] in html
    model = tr.load_model('e2e-lgbm')
    bars = load_bars(synth_dir, start='2024-10-01', end='2024-11-29').bars
    ds = make_dataset(bars, training_spec())
    pr = model.predict_proba(ds.X.iloc[-50:])
    assert pr.shape == (50, 2) and np.allclose(pr.sum(1), 1) and model.n_trees_ == 40


def test_train_sequence_model(synth_dir, tmp_path):
    "The LSTM path: windows of features, purged k-fold, permutation SHAP; not registered."
    p = _run('run', 'train', '-p', f'data_dir={synth_dir}', '-p', 'symbols=AAPL,MSFT', '-p', 'start=2024-11-01', '-p', 'end=2024-12-31',
             '-p', 'model=lstm', '-p', 'window=4', '-p', 'model_params={epochs: 2, hidden: 8}', '-p', 'cv=purged_kfold', '-p', 'n_splits=3',
             '-p', 'pbo=false', '-p', 'shap_rows=10', '-p', 'register=false', '--run-id', 'e2e-lstm', '--reports', str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    text = _text(json.loads((tmp_path / 'e2e-lstm.ipynb').read_text()))
    assert 'over 3 splits' in text and 'model logged, not registered' in text and 'PBO not computed' in text


def test_backtest_of_the_registered_model(gbm_run, synth_dir, tmp_path):
    """The backtest workflow trades the model the train workflow registered, only after its training period, and
    counts the model search's trials (recorded in MLflow) in its overfitting statistics."""
    p = _run('run', 'backtest', '-p', f'data_dir={synth_dir}', '-p', 'symbols=all', '-p', 'start=2024-10-01', '-p', 'end=2024-12-31',
             '-p', 'strategy=ml', '-p', 'model_name=e2e-lgbm', '-p', 'strategy_params={upper: 0.5, lower: 0.5}',
             '--run-id', 'e2e-ml', '--reports', str(tmp_path))
    assert p.returncode == 0, p.stderr[-3000:]
    nb = json.loads((tmp_path / 'e2e-ml.ipynb').read_text())
    text = _text(nb)
    assert re.search(r'model e2e-lgbm version \d+ from MLflow run [0-9a-f]{32} \(4 trials recorded\)', text)
    m = re.search(r'([\d,]+) fills from (\S+ \S+) to', text)
    assert m and int(m.group(1).replace(',', '')) > 0, 'the model never traded'
    assert m.group(2) > '2024-11-30', f'first fill {m.group(2)} falls inside the training period (to 2024-11-29)'
    html = (tmp_path / 'e2e-ml.html').read_text()
    assert 'Overfitting statistics' in html and 'trials' in html


def test_live_trades_the_registered_model(gbm_run, synth_dir, tmp_path):
    """`alphatrade live --model e2e-lgbm` trades the model the train workflow registered on a session after its training
    period (sim broker, replayed day): the run ends cleanly with orders. In process, the live pipeline's decisions bar by
    bar equal the same strategy's `target_weights` on the same bars in one go (the backtest's)."""
    import pandas as pd
    from alphatrade.mlops.tracking import registered_strategy
    from alphatrade.execution.runner import LiveOptions, run_live
    assert gbm_run[0].returncode == 0, gbm_run[0].stderr[-2000:]
    p = subprocess.run([*CLI, '--log-level', 'WARNING', 'live', '--broker', 'sim', '--date', '2024-12-30', '--data-dir', str(synth_dir),
                        '--journal', str(tmp_path / 'ml.sqlite'), '--heartbeat', '0', '--model', 'e2e-lgbm',
                        '--strategy-param', 'upper=0.5', '--strategy-param', 'lower=0.5'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (p.stdout, p.stderr[-3000:])
    assert re.search(r'model e2e-lgbm version \d+ \(MLflow run [0-9a-f]{32}\), trained to 2024-11-30', p.stdout), p.stdout
    assert '26 bars' in p.stdout and int(re.search(r'(\d+) orders', p.stdout).group(1)) > 0, p.stdout
    strat, info = registered_strategy('e2e-lgbm', upper=0.5, lower=0.5)
    r = run_live(LiveOptions(broker='sim', date='2024-12-30', data_dir=synth_dir, journal=tmp_path / 'ml2.sqlite', heartbeat_s=0,
                             signals=False, strategy=strat, history_sessions=30))
    assert r.exit_code == 0, r.message
    pipe = r.pipeline
    panel = pipe.history.panel()
    day = [t for t in panel.index if str(t.date()) == '2024-12-30']
    assert len(day) == 26 and len(panel.index) >= 26 * 30
    bt = strat.target_weights(panel).loc[day]
    live = pd.DataFrame(pipe.targets).T.reindex(index=bt.index, columns=bt.columns)
    assert np.array_equal(live.to_numpy(), bt.to_numpy(), equal_nan=True)
    assert np.nansum(np.abs(bt.to_numpy())) > 0                                      # the model takes positions that day
