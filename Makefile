# Entry points for developers and CI. Every target that runs something first makes sure .venv is ready.
VENV := .venv
# Second virtualenv, ROS 2 Jazzy wheels instead of Kilted: `make test-jazzy` runs the graph tests (marker `ros`) there.
JAZZY_VENV := .venv-jazzy
PY := $(VENV)/bin/python
BENCH_ARGS ?=

.PHONY: setup setup-jazzy demo test test-jazzy lint bench clean

setup:
	bash scripts/setup_venv.sh

demo: setup
	$(VENV)/bin/depth-anything-ros demo

test: setup
	$(PY) -m pytest -q test

setup-jazzy:
	VENV=$(JAZZY_VENV) REQUIREMENTS=requirements-jazzy.txt bash scripts/setup_venv.sh

test-jazzy: setup-jazzy
	$(JAZZY_VENV)/bin/python -m pytest -q -m ros test

lint: setup
	$(VENV)/bin/ruff check .

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf build install log demo_output output
