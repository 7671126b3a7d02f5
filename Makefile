# AniPortrait Kit — set-up and the two everyday commands.
#   make demo   set up if needed, then run the whole notebook suite (PROFILE=cpu by default)
#   make test   set up if needed, then unit tests + quick-profile suite + notebook validation
#   make lab    JupyterLab with the kit's kernel
# Variables: PYTHON (interpreter for the venv), PROFILE, TORCH_SPEC (what to install when no torch
# is present: GPU users can pass e.g. TORCH_SPEC="torch==2.13.0 --index-url <their CUDA index>").

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROFILE ?= cpu
TORCH_SPEC ?= torch==2.13.0
KERNEL_NAME := aniportrait-kit
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit suite-quick validate lab lint format samples weights clean-outputs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install $(TORCH_SPEC)
	$(BIN)/python -m pip install -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL_NAME) --display-name "AniPortrait Kit"
	$(BIN)/python -m aniportrait_lib.landmarks.model_file
	touch $@

setup: $(STAMP)

demo: setup
	$(BIN)/python -m aniportrait_lib.runner --profile $(PROFILE)

unit: setup
	$(BIN)/python -m pytest

suite-quick: setup
	$(BIN)/python -m aniportrait_lib.runner --profile quick

# nbval re-executes the suite's executed notebooks and checks the cells marked NBVAL_CHECK_OUTPUT.
validate: setup
	$(BIN)/python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
		--sanitize-with tests/nbval_sanitize.cfg outputs/runs/latest-quick/*.ipynb

test: lint unit suite-quick validate

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks

# lint-imports: the import contracts of pyproject.toml ([tool.importlinter]: layers, no cycles).
lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

samples: setup
	$(BIN)/python -m aniportrait_lib.data.samples

weights: setup
	$(BIN)/python -m aniportrait_lib.weights check

clean-outputs:
	rm -rf outputs
