# Two commands on a fresh clone (only Python 3.11 needed):
#   make backtest   generate the synthetic market if data/raw is empty, run the backtest workflow, write reports/backtest/<run-id>.html
#   make test       run the notebook tests (nbdev-test) and the pytest suite (end-to-end, workflows via nbval, faults, real data)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install backtest train test nbtest pytest export clean-nbs sync-check bench readme lab clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip 2>&1 | grep -v "is ignored: it is neither" || true
	# torch first, pinned: pip finds its CPU wheel on this machine's disk; a bare `torch` would pull a multi-GB CUDA build
	set -o pipefail; $(PIP) install torch==2.13.0 2>&1 | { grep -v "is ignored: it is neither" || true; }
	set -o pipefail; $(PIP) install -e '.[dev]' 2>&1 | { grep -v "is ignored: it is neither" || true; }
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

backtest: install
	$(BIN)/alphatrade run backtest -p symbols=all -p start=2023-01-03 -p end=2024-12-31

# the training workflow on the whole universe (two years of bars; CPCV, PBO over 4 candidates and SHAP: the longest workflow)
train: install
	$(BIN)/alphatrade run train -p symbols=all -p start=2023-01-03 -p end=2024-12-31

test: install nbtest pytest

# a fresh numba cache per run: numba's cache does not notice when a kernel that another kernel calls has changed
nbtest: install
	rm -rf .numba_cache && NUMBA_CACHE_DIR=.numba_cache $(BIN)/nbdev-test --n-workers 2 --timing

pytest: install
	NUMBA_CACHE_DIR=.numba_cache $(BIN)/python -m pytest --durations=15

export: install
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean

sync-check: install
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean
	@if [ -n "$$(git status --porcelain -- nbs alphatrade)" ]; then \
	  echo "nbdev-export / nbdev-clean changed these files: notebooks and package are out of sync:"; \
	  git status --porcelain -- nbs alphatrade; exit 1; fi

bench: install
	$(BIN)/python bench/run.py load && $(BIN)/python bench/run.py synth

readme: install
	$(BIN)/jupyter nbconvert --to markdown --stdout nbs/index.ipynb --log-level WARN > README.md

lab: install
	$(BIN)/jupyter lab

clean:
	rm -rf $(VENV) reports/*/ data/processed/*/ _proc
