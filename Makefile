# One venv for everything. torch is installed first and pinned so pip takes the CPU wheel
# instead of resolving an open range to several GB of CUDA packages.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup train test lint format tensorboard mlflow optuna-dashboard compare clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/python src/train.py $(ARGS)

# one torch thread per test worker: two workers share the 2 cores without oversubscribing them
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir logs

# The UI of logger=mlflow's store on http://127.0.0.1:5000; one worker and no job runner (GenAI jobs) is plenty here.
mlflow: $(STAMP)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri sqlite:///logs/mlflow.db --workers 1 $(ARGS)

# The Optuna searches' studies (hydra.sweeper.storage) on http://127.0.0.1:8080.
optuna-dashboard: $(STAMP)
	$(BIN)/optuna-dashboard $(or $(STORAGE),sqlite:///logs/optuna.db) $(ARGS)

# comparison.md/.csv/.png of a multirun folder, finished or not: make compare DIR=logs/train/multiruns/<time>
compare: $(STAMP)
	$(BIN)/python -m recipe.sweeps.compare $(or $(DIR),$(lastword $(sort $(wildcard logs/train/multiruns/*))))

clean:
	rm -rf logs/*/ .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
