# Two entry points; each creates (or refreshes) the virtual environment it needs.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: sample test bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Replay the built-in sample (generated on first use) into ./lake with the main dataflow.
sample: $(STAMP)
	$(VENV)/bin/python -m bytewax.run flows.main

## Run the whole test suite (slow tests included).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/spymaster bench

clean:
	rm -rf lake sample .bench recovery
