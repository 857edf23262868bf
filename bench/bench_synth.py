"""`synth`: generating and writing the synthetic market, 46 symbols x 2 years of 15-minute bars.
No peer library generates such a market; the comparison is against the target of 10 s on this
2-core machine, so ratio <= 1 meets it."""
import tempfile
from pathlib import Path
from alphatrade.data.synthetic import write_synthetic, read_manifest


def cases():
    d = Path(tempfile.mkdtemp(prefix='bench_synth_'))
    def ours(): return write_synthetic(d, years=2, end='2024-12-31', seed=42)
    yield dict(task='generate+write synthetic', size='46 symbols x 2 years', ours=ours, peer='target 10 s', peer_fn=None,
               peer_s=10.0, equal=lambda man, _: man == read_manifest(d), target='ratio <= 1')
