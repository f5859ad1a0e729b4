# Entry points for developers and CI. Every target that runs something first makes sure .venv is ready.
VENV := .venv
PY := $(VENV)/bin/python
BENCH_ARGS ?=

.PHONY: setup demo test lint bench clean

setup:
	bash scripts/setup_venv.sh

demo: setup
	$(VENV)/bin/depth-anything-ros demo

test: setup
	$(PY) -m pytest -q test

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf build install log demo_output
