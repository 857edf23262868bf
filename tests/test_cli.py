"CLI: `alphatrade data load` writes a Parquet dataset that reloads to the same bars; `data check` on clean data exits 0."
import json, subprocess, sys
import pandas as pd
from pathlib import Path
from conftest import ROOT
from alphatrade.cli import main
from alphatrade.data.loader import load_bars
from alphatrade.data.store import read_dataset


def test_load_writes_dataset_that_reloads_identically(synth_dir, tmp_path, capsys):
    assert main(['--log-level', 'WARNING', 'data', 'load', str(synth_dir), '--out', str(tmp_path / 'ds')]) == 0
    bars, man = read_dataset(tmp_path / 'ds')
    direct = load_bars(synth_dir)
    pd.testing.assert_frame_equal(bars, direct.bars)
    assert man['data_hash'] == direct.data_hash and man['synthetic'] is True
    assert man['meta']['assumptions'][0]['timestamp_col'] == 'timestamp'
    # the dataset is itself a valid source
    again = load_bars(tmp_path / 'ds')
    assert again.data_hash == direct.data_hash and again.synthetic


def test_check_clean_exits_zero_json(synth_dir, capsys):
    assert main(['--log-level', 'WARNING', 'data', 'check', str(synth_dir), '--json']) == 0
    out = json.loads(capsys.readouterr().out)
    assert out['failures'] == [] and len(out['quality']) == 4


def test_console_script_installed():
    p = subprocess.run([str(Path(sys.executable).parent / 'alphatrade'), '--help'], capture_output=True, text=True)
    assert p.returncode == 0 and 'run' in p.stdout and 'data' in p.stdout
