"""Run one benchmark: `python bench/run.py NAME [--json]`.

Each benchmark module `bench/bench_NAME.py` defines `cases()`, yielding dicts with `task`, `size`,
`ours` (a zero-argument callable), `peer` (name), `peer_fn` (callable or None), `peer_s` (a fixed
target in seconds when there is no peer, or None: no ratio), `equal` (a callable comparing the two
results) and optionally `extra` (a callable on our result returning more fields, e.g. memory).
Times are medians of `--repeat` runs after one warm-up call (`--repeat 0`: one call, no warm-up, for slow benchmarks); the warm-up's excess over the median
(JIT compilation, caches) is reported separately as `warmup_extra_s`. Ratio = ours / peer.
A module may also define `summarize(rows)`, returning summary dicts printed after the comparisons.
"""
import argparse, importlib, json, statistics, sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def timed(fn, repeat):
    "Result, median time of `repeat` runs after a warm-up call, warm-up time; repeat=0: one timed call (slow benchmarks)."
    t0 = time.perf_counter(); res = fn(); first = time.perf_counter() - t0
    if repeat == 0: return res, first, first
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return res, statistics.median(ts), first


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('name'); ap.add_argument('--json', action='store_true'); ap.add_argument('--repeat', type=int, default=5)
    a = ap.parse_args(argv)
    mod = importlib.import_module(f'bench_{a.name}')
    rows = []
    for c in mod.cases():
        ours, ours_s, first = timed(c['ours'], a.repeat)
        if c.get('peer_fn') is not None: peer, peer_s, _ = timed(c['peer_fn'], a.repeat)
        else: peer, peer_s = None, c.get('peer_s')
        row = {'task': c['task'], 'size': c['size'], 'ours_s': round(ours_s, 4), 'peer': c['peer'],
               'peer_s': None if peer_s is None else round(peer_s, 4), 'ratio': None if peer_s is None else round(ours_s / peer_s, 3),
               'equal': bool(c['equal'](ours, peer)), 'warmup_extra_s': round(max(first - ours_s, 0.0), 4)}
        if 'extra' in c: row.update(c['extra'](ours))  # e.g. memory figures
        if c.get('target') is not None: row['target'] = c['target']
        rows.append(row)
        print(json.dumps(row) if a.json else
              '  '.join(f'{k}={v}' for k, v in row.items()), flush=True)
    for s in getattr(mod, 'summarize', lambda rows: [])(rows):  # optional: one line per group of comparisons
        print(json.dumps(s) if a.json else '  '.join(f'{k}={v}' for k, v in s.items()), flush=True)


if __name__ == '__main__':
    main()
