"""`builder`: the full default feature set (`default_spec()`) for the 46-symbol synthetic universe over
two years of 15-minute bars: wall time (median of the runs after a warm-up that includes JIT
compilation) and the process's peak resident memory. There is no peer library; the figures are
reported as they are."""
import resource
from alphatrade.data.synthetic import generate_market
from alphatrade.features.builder import build_features, default_spec


def _peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def cases():
    bars = generate_market(years=2, end='2024-12-31', seed=42)
    spec = default_spec()
    before = _peak_mb()
    yield dict(task='build default feature set', size=f'{bars.index.get_level_values(1).nunique()} symbols, {len(bars):,} bars, {len(spec.names())} columns',
               ours=lambda: build_features(bars, spec), peer='(none)', peer_fn=None, peer_s=None,
               equal=lambda df, _: df.shape == (len(bars), len(spec.names())),
               extra=lambda df: {'peak_rss_mb': _peak_mb(), 'peak_rss_before_mb': before,
                                 'result_mb': round(df.memory_usage(index=False).sum() / 2**20, 1)})
