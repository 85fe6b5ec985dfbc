# The README's commands. `make demo` and `make test` work from a fresh clone (Python 3.11).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOME_DIR ?= shopsense-data
SS     := $(BIN)/shopsense --home $(HOME_DIR)
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench lint format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is installed first and pinned: an unpinned torch would pull a multi-GB CUDA build.
# The spark extra (PySpark, no torch) is installed with dev so the `spark` tests run; they need Java 17.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $(STAMP)

install: $(STAMP)

## The main job on embedded defaults: knowledge base under ./shopsense-data from the sample shop,
## a trained model, a recommendation, a search, then the storefront at http://127.0.0.1:8000 (Ctrl-C stops it).
demo: install
	$(SS) init --sample-pictures
	$(SS) ingest products src/shopsense/sample/products.csv
	$(SS) ingest events src/shopsense/sample/events.csv
	$(SS) stats
	HF_HUB_OFFLINE=1 $(SS) train
	HF_HUB_OFFLINE=1 $(SS) recommend U001 -k 5
	HF_HUB_OFFLINE=1 $(SS) search "espresso machine" --user U001 -k 5
	@echo "storefront: http://127.0.0.1:8000/   dashboard: http://127.0.0.1:8000/dashboard   API docs: http://127.0.0.1:8000/docs"
	HF_HUB_OFFLINE=1 $(SS) serve --host 127.0.0.1 --port 8000

## The test suite (PostgreSQL tests run when a local server can be started; see scripts/postgres.sh).
test: install
	@PGURL=$$(scripts/postgres.sh 2>/dev/null || true); \
	if [ -n "$$PGURL" ]; then echo "PostgreSQL for tests: $$PGURL"; else echo "no PostgreSQL: those tests are skipped"; fi; \
	SHOPSENSE_TEST_PG_URL=$$PGURL HF_HUB_OFFLINE=1 $(BIN)/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo 'no tests collected'; rc=0; fi; exit $$rc

## Engine and peers side by side on the public datasets; writes docs/benchmarks.md and reports/.
## Then the next purchase on the Taobao funnel sample (engine surfaces and the README's peers), and
## unseen items (10% of the items held out with their interactions) beside the content peer.
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/run.py
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/next_purchase.py --json reports/next_purchase.json
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/unseen_items.py --json reports/unseen_items.json

## ruff (lint and format) and mypy, as CI runs them.
lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

format:
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

clean:
	rm -rf $(HOME_DIR) reports .pytest_cache .ruff_cache .mypy_cache
