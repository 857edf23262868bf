"""`load`: 46 symbols x 2 years of 15-minute CSV (about 600k rows) loaded and validated, against a
bare `pandas.read_csv(engine="pyarrow")` of the same files (target ratio <= 3); and the Parquet
dataset reload against the CSV load (target ratio <= 0.2)."""
import tempfile
from pathlib import Path
import numpy as np
import pandas as pd
from alphatrade.data.synthetic import write_synthetic
from alphatrade.data.loader import load_bars
from alphatrade.data.store import write_dataset, read_dataset


def cases():
    d = Path(tempfile.mkdtemp(prefix='bench_load_'))
    write_synthetic(d / 'csv', years=2, end='2024-12-31', seed=1)
    files = sorted((d / 'csv').glob('*.csv'))

    def ours(): return load_bars(d / 'csv')
    def peer(): return [pd.read_csv(f, engine='pyarrow') for f in files]

    def same(res, raw):
        closes = np.sort(np.concatenate([r['close'].to_numpy() for r in raw]))
        return len(res.bars) == len(closes) and np.allclose(np.sort(res.bars['close'].to_numpy()), closes)

    csv_res = ours()
    n = len(csv_res.bars)
    yield dict(task='load+validate csv', size=f'{len(files)} files, {n:,} bars', ours=ours,
               peer='pandas.read_csv(pyarrow)', peer_fn=peer, equal=same, target='<= 3')
    write_dataset(d / 'pq', csv_res.bars, synthetic=True)
    yield dict(task='reload parquet dataset', size=f'{len(files)} files, {n:,} bars', ours=lambda: read_dataset(d / 'pq')[0],
               peer='our csv load', peer_fn=ours, equal=lambda a, b: a.equals(b.bars), target='<= 0.2')
