# Entry points that work on a fresh machine: `make serve`, `make test` (the two
# README.md starts with) and `make render`. Each creates the virtual
# environment from nothing the first time.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve render test lint types fmt check clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev,apps,mic,vcam,pipecat]'
	touch $(STAMP)

serve: $(STAMP)  ## serve the default avatar live: open the printed URL, allow the microphone, speak
	$(BIN)/avatar serve

render: $(STAMP)  ## render the default avatar speaking the built-in sample to out/avatar.mp4
	$(BIN)/avatar render -o out/avatar.mp4

test: $(STAMP)  ## run the test suite (CI runs `make check` first)
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff: lint rules and formatting, checked (nothing is changed)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)  ## mypy over the packages (configured in pyproject.toml)
	$(BIN)/mypy

check: lint types  ## every static check

fmt: $(STAMP)  ## ruff: apply the formatting and the safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)
