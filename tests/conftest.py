"""Shared fixtures: a small synthetic market and the real data folder beside the project.

The whole test session runs against a scratch project home (`$ALPHATRADE_HOME`): a copy of
`config/` and `nbs/workflows/` in a temporary folder. Tests and the workflow notebooks that nbval
smoke-runs (its kernels inherit the environment) then never read a user's own `data/raw` nor write
into the checkout's data, reports or MLflow store.
"""
import asyncio, os, shutil, tempfile, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / 'shared' / 'data'
_HOME = None


def pytest_configure(config):
    global _HOME
    _HOME = Path(tempfile.mkdtemp(prefix='alphatrade_home_'))
    shutil.copytree(ROOT / 'config', _HOME / 'config')
    shutil.copytree(ROOT / 'nbs' / 'workflows', _HOME / 'nbs' / 'workflows')
    os.environ['ALPHATRADE_HOME'] = str(_HOME)


def pytest_unconfigure(config):
    if _HOME is not None: shutil.rmtree(_HOME, ignore_errors=True)


@pytest.fixture(scope='session')
def home():
    "The scratch project home of this test session."
    return _HOME


@pytest.fixture(scope='session')
def synth_dir(tmp_path_factory):
    "A small synthetic market (4 symbols, ~3 months) written as CSV files in the seed's format."
    from alphatrade.data.synthetic import write_synthetic
    d = tmp_path_factory.mktemp('synth')
    write_synthetic(d, symbols=['AAPL', 'MSFT', 'XOM', 'JPM'], years=0.25, end='2024-12-31', seed=7)
    return d


@pytest.fixture(scope='session')
def shared_data():
    "The real market data in ../shared/data; tests using it skip when it is absent (a user's fresh clone)."
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent (it lives beside the project, not in it)')
    return SHARED_DATA


async def until(pred, timeout=20.0, what='condition'):
    "Wait (polling every 20 ms) until `pred()` is true; fail after `timeout` seconds naming `what`."
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred(): return
        await asyncio.sleep(0.02)
    raise AssertionError(f'timed out waiting for {what}')
