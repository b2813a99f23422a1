# related-articles: the two quick-start commands are `make serve` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS_DIR ?= models
CORPUS ?= data/wikinews-sample.jsonl.gz
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install test train serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml setup.py training/_update_kernels.pyx | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q training service  # byte-code now: every `related` start skips it
	touch $@

install: $(VENV)/.installed

test: install
	$(BIN)/python -m pytest -q

train: install
	$(BIN)/related train --corpus $(CORPUS) --models-dir $(MODELS_DIR)

$(MODELS_DIR)/CURRENT: | $(VENV)/.installed
	$(BIN)/related train --corpus $(CORPUS) --models-dir $(MODELS_DIR)

serve: install $(MODELS_DIR)/CURRENT
	$(BIN)/related serve --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT)

bench: install
	$(BIN)/python benchmarks/train_bench.py
	$(BIN)/python benchmarks/serve_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
