# One venv for everything. torch is installed first and pinned so pip takes the CPU wheel
# instead of resolving an open range to several GB of CUDA packages. `make train` installs the core only
# (pyproject's dependencies); the targets that need an extra install it on top (.installed-<extra>).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed
DEV := $(VENV)/.installed-dev
# --no-compile: pip compiles no bytecode (most of torch's install time, for files a run never imports); Python
# compiles and caches a module when a run first imports it. Where PYTHONDONTWRITEBYTECODE is set it never caches,
# so the install compiles what a run imports once (WARM_UP) instead of every run compiling it again.
PIP_INSTALL := $(BIN)/pip install --quiet --no-compile
WARM_UP := import torch, lightning.pytorch, torchmetrics, hydra, rich, sklearn.model_selection, sklearn.datasets, \
	matplotlib.figure, torch.utils.tensorboard

.PHONY: setup train test lint format docs tensorboard mlflow optuna-dashboard compare clean

setup: $(STAMP)

# pip is upgraded only where too old for an editable install from pyproject.toml alone (pip 21.3)
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import pip, sys; sys.exit(tuple(map(int, pip.__version__.split('.')[:2])) < (21, 3))" \
		|| $(BIN)/pip install --quiet --upgrade pip
	$(PIP_INSTALL) torch==$(TORCH_VERSION)
	$(PIP_INSTALL) -e .
	$(if $(PYTHONDONTWRITEBYTECODE),PYTHONDONTWRITEBYTECODE= $(BIN)/python -c "$(WARM_UP)")
	touch $(STAMP)

# an extra on top of the core: .installed-dev (the tests, ruff and every other extra), -docs, -trackers
$(VENV)/.installed-%: $(STAMP)
	$(PIP_INSTALL) -e '.[$*]'
	touch $@

train: $(STAMP)
	$(BIN)/python src/train.py $(ARGS)

# one torch thread per test worker: two workers share the 2 cores without oversubscribing them
test: $(DEV)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(ARGS)

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# the docs site on http://127.0.0.1:8000, rebuilt as its pages change
docs: $(VENV)/.installed-docs
	$(BIN)/mkdocs serve $(ARGS)

tensorboard: $(STAMP)
	$(BIN)/tensorboard --logdir logs

# The UI of logger=mlflow's store on http://127.0.0.1:5000; one worker and no job runner (GenAI jobs) is plenty here.
mlflow: $(VENV)/.installed-trackers
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow server --backend-store-uri sqlite:///logs/mlflow.db --workers 1 $(ARGS)

# The Optuna searches' studies (hydra.sweeper.storage) on http://127.0.0.1:8080.
optuna-dashboard: $(VENV)/.installed-trackers
	$(BIN)/optuna-dashboard $(or $(STORAGE),sqlite:///logs/optuna.db) $(ARGS)

# comparison.md/.csv/.png of a multirun folder, finished or not: make compare DIR=logs/train/multiruns/<time>
compare: $(STAMP)
	$(BIN)/python -m recipe.sweeps.compare $(or $(DIR),$(lastword $(sort $(wildcard logs/train/multiruns/*))))

clean:
	rm -rf logs/*/ .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
