# Set-up is part of every target: a fresh machine needs only Python 3.11 and the package index.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
# The CPU build of PyTorch by default; e.g. `make demo TORCH=torch TORCH_INDEX=https://download.pytorch.org/whl/cu128`
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin

.PHONY: demo test test-fast lint clean

# Both CPUs (ENCODERZOO_TEST_PIN=1: each worker pinned to its own core, see tests/conftest.py)
TEST_WORKERS ?= 2

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/encoderzoo run demo

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal --durations=15

test-fast: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
