# The two commands of the README:
#   make serve   install what is needed, import the models, serve on http://localhost:3000
#   make test    install what is needed, run the whole test suite (offline, tiny profile)

PROFILE ?= $(or $(IMAGE_EMBED_PROFILE),default)
PORT ?= 3000
CONFIG ?= configuration.yaml
HOST ?= 0.0.0.0
PYTEST_ARGS ?=
# seconds the server may drain requests in flight on SIGTERM (empty: no bound but their own timeouts)
GRACE ?= 25
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: serve test demo install install-test models build bench clean

serve: install models
	BENTOML_CONFIG=$(CONFIG) IMAGE_EMBED_PROFILE=$(PROFILE) \
		$(VENV)/bin/bentoml serve . --host $(HOST) --port $(PORT) $(if $(GRACE),--timeout-graceful-shutdown $(GRACE))

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
	IMAGE_EMBED_PROFILE=$(PROFILE) $(PY) scripts/import_models.py --profile $(PROFILE)

build: install models
	BENTOML_CONFIG=$(CONFIG) IMAGE_EMBED_PROFILE=$(PROFILE) $(VENV)/bin/bentoml build .

bench: install-test
	$(PY) scripts/benchmark.py --profile $(or $(BENCH_PROFILE),bench)

clean:
	rm -rf $(VENV) .pytest_cache
