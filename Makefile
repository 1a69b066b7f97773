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

.PHONY: setup install models run test lint bench-tagging

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,export]'
	# facenet-pytorch's module imports torchvision (no CPU build here); only its MTCNN weights are used.
	$(BIN)/pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $@

install: $(VENV)/.installed

models: install
	$(BIN)/python -m onnx_models.setup

setup: install models

run: setup
	$(BIN)/uvicorn --factory api.main:create_app --host $(HOST) --port $(PORT)

test: setup
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy --strict
