# Entry points that work on a fresh machine: `make serve`, `make test` (the two
# README.md starts with) and `make render`. Each creates the virtual
# environment from nothing the first time.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve render test clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,dev]'
	touch $(STAMP)

serve: $(STAMP)  ## serve the default avatar live: open the printed URL, allow the microphone, speak
	$(BIN)/avatar serve

render: $(STAMP)  ## render the default avatar speaking the built-in sample to out/avatar.mp4
	$(BIN)/avatar render -o out/avatar.mp4

test: $(STAMP)  ## run the test suite
	$(BIN)/python -m pytest -q

clean-venv:
	rm -rf $(VENV)
