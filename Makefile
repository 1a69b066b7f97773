# Shoebox: `make run` starts the service (SQLite, local blobs, CPU); `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Verified model files are copied from this mirror when it exists (see onnx_models/manifest.json).
SHOEBOX_MODEL_MIRROR ?= $(if $(wildcard ../shared/models),$(abspath ../shared/models),)
export SHOEBOX_MODEL_MIRROR
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: setup install models run test lint reliability bench-tagging

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export,distributed]'
	# facenet-pytorch's module imports torchvision (no CPU build here); only its MTCNN weights are used.
	$(BIN)/pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

install: $(VENV)/.installed

models: install
	$(BIN)/python -m onnx_models.setup

setup: install models

# Slow clients are cut off: idle keep-alive connections after 5 s, request bodies by the app's own
# timeouts (SHOEBOX_REQUEST_BODY_*); past 200 open connections new ones get 503 at once.
UVICORN_FLAGS ?= --timeout-keep-alive 5 --limit-concurrency 200 --timeout-graceful-shutdown 30

run: setup
	$(BIN)/uvicorn --factory api.main:create_app --host $(HOST) --port $(PORT) $(UVICORN_FLAGS)

test: setup
	$(BIN)/python -m pytest

# The long reliability checks (fuzzed uploads; kill -9 during analysis on PostgreSQL).
reliability: setup
	$(BIN)/python bench/reliability.py all

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy --strict
