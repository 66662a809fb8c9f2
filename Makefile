# The two commands of the README:
#   make serve   install what is needed, import the models, serve on http://localhost:3000
#   make test    install what is needed, run the whole test suite (offline, tiny profile)

SHELL := bash
PROFILE ?= $(or $(IMAGE_EMBED_PROFILE),default)
# the models to serve, comma-separated (default: every model, less the gated ones without HF_TOKEN)
MODELS ?= $(IMAGE_EMBED_MODELS)
PORT ?= 3000
CONFIG ?= configuration.yaml
HOST ?= 0.0.0.0
PYTEST_ARGS ?=
# make build ENGINE=onnx: the lean image (ONNX Runtime, no PyTorch; docs/deploy.md)
ENGINE ?=
# seconds the server may drain requests in flight on SIGTERM (empty: no bound but their own timeouts)
GRACE ?= 25
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: serve test demo install install-test models build bench clean

IMPORT := IMAGE_EMBED_PROFILE=$(PROFILE) $(PY) -m cli import-models --profile $(PROFILE) $(if $(MODELS),--models $(MODELS))

# import the chosen models' weights (once), then serve exactly those
serve: install
	@served=$$($(IMPORT) --print-served) && \
	BENTOML_CONFIG=$(CONFIG) IMAGE_EMBED_PROFILE=$(PROFILE) \
		$(VENV)/bin/bentoml serve . --arg models=$$served --host $(HOST) --port $(PORT) $(if $(GRACE),--timeout-graceful-shutdown $(GRACE))

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

# Offline demo: the same server with tiny random-weight models.
demo:
	$(MAKE) serve PROFILE=tiny

install:
	scripts/install.sh

install-test:
	scripts/install.sh --test

models: install
	$(IMPORT)

build: install
	@served=$$($(IMPORT) --print-served) && \
	BENTOML_CONFIG=$(CONFIG) IMAGE_EMBED_PROFILE=$(PROFILE) $(VENV)/bin/bentoml build . --arg models=$$served $(if $(ENGINE),--arg engine=$(ENGINE))

bench: install-test
	$(PY) -m bench --profile $(or $(BENCH_PROFILE),bench)

clean:
	rm -rf $(VENV) .pytest_cache
