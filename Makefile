# Two entry points; each creates (or refreshes) the virtual environment it needs.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: sample test test-all bench clean chromium images tools

$(STAMP): pyproject.toml infra/fabric/kql/package-lock.json hud/package-lock.json tests/services/azurite/package-lock.json
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"
	test infra/fabric/kql/node_modules/.package-lock.json -nt infra/fabric/kql/package-lock.json || npm ci --prefix infra/fabric/kql --no-audit --no-fund
	test hud/node_modules/.package-lock.json -nt hud/package-lock.json || npm ci --prefix hud --no-audit --no-fund
	test tests/services/azurite/node_modules/.package-lock.json -nt tests/services/azurite/package-lock.json || npm ci --prefix tests/services/azurite --no-audit --no-fund
	touch $(STAMP)

## The built-in sample end to end with the main dataflow, into ./lake: on first use the sample is generated, its
## earlier days are replayed and a champion model trained on them (flows/sample.py); then its last day is scored.
sample: $(STAMP)
	$(VENV)/bin/python -m bytewax.run flows.main

## Lint (ruff), type-check (mypy, files and strictness in pyproject.toml), then the test suite
## without the tests marked slow (each over about 20 s; what .ci/run runs). Each step must pass
## before the next runs. test-all: the same with the slow tests too, before a release.
test: $(STAMP) chromium tools
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m mypy
	$(VENV)/bin/python -m pytest -q -m "not slow"

test-all: $(STAMP) chromium tools
	$(VENV)/bin/python -m ruff check .
	$(VENV)/bin/python -m mypy
	$(VENV)/bin/python -m pytest -q

## Tools the infrastructure tests run, each in its own virtualenv (their pins differ from the project's):
## checkov (tests/infra/test_checkov.py) and azure-ai-ml's offline loaders (tests/scoring/test_azureml_specs.py).
tools: $(STAMP)
	test -x $(VENV)/checkov/bin/checkov || { $(PY) -m venv $(VENV)/checkov && $(VENV)/checkov/bin/python -m pip install --quiet "checkov==3.3.30"; }
	test -x $(VENV)/azureml/bin/python -a -d $(VENV)/azureml/lib/python3.11/site-packages/azure/ai/ml || { $(PY) -m venv $(VENV)/azureml && $(VENV)/azureml/bin/python -m pip install --quiet "azure-ai-ml==1.35.2"; }

## The browser tests drive Debian's Chromium headless (no browser is downloaded at run time).
chromium:
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; }

bench: $(STAMP)
	$(VENV)/bin/spymaster bench

## The flow image (also the HUD's) and the Databento ingestor image, on a machine with Docker.
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
images:
	command -v docker >/dev/null 2>&1 || { echo "make images needs Docker"; exit 1; }
	docker build -f infra/Dockerfile -t spymaster:$(IMAGE_TAG) -t spymaster:latest .
	docker build -f infra/ingestor.Dockerfile -t spymaster-ingestor:$(IMAGE_TAG) -t spymaster-ingestor:latest .

clean:
	rm -rf lake sample .bench recovery mlflow.db mlartifacts
