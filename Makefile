# The two commands of the README: `make run` (every notebook, smoke preset, through the papermill
# runner) and `make test`. Both create .venv from requirements.txt on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PRESET ?= smoke
# A package index to install torch from first, e.g. PyTorch's CPU-only one (README, "Which torch you get").
TORCH_INDEX ?=

.PHONY: run test lint wheel strip-outputs-on-commit floor-check

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(if $(TORCH_INDEX),$(PY) -m pip install -q --index-url $(TORCH_INDEX) "$$(grep '^torch==' requirements.txt)")
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(MAKE) -s strip-outputs-on-commit
	touch $@

# Notebooks are committed without outputs, however JupyterLab saved them: git's clean filter
# (.gitattributes) runs nbstripout on every notebook it stages. Nothing to do outside a git checkout.
strip-outputs-on-commit:
	-git rev-parse --git-dir >/dev/null 2>&1 && \
		git config filter.nbstripout.clean "$(abspath $(PY)) -m nbstripout --keep-id" && \
		git config filter.nbstripout.smudge cat && git config filter.nbstripout.required true

run: $(VENV)/.installed
	$(PY) -m lstm_nb.run notebooks/*.ipynb --preset $(PRESET)

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .

# A wheel of the package, for Colab (upload it to Google Drive's MyDrive/lstm_nb/ folder: README, Colab).
DIST ?= dist
wheel:
	$(PY) -m pip wheel -q --no-deps --no-build-isolation -w $(DIST) .

# The core's tests under the oldest versions the package admits (requirements-floor.txt), in a venv of
# their own: a call to an API newer than a floor fails here. The package is read from this checkout.
FLOOR_VENV ?= .venv-floor
FLOOR_TESTS := tests/test_cells.py tests/test_lstm.py tests/test_models.py tests/test_gemm.py tests/test_gates.py \
	tests/test_objectives.py tests/test_dyneval.py tests/test_claims.py tests/test_install.py
floor-check:
	rm -rf $(FLOOR_VENV)
	python3 -m venv $(FLOOR_VENV)
	$(FLOOR_VENV)/bin/pip install -q -r requirements-floor.txt
	PYTHONPATH=$(CURDIR) $(FLOOR_VENV)/bin/python -m pytest -q -p no:cacheprovider $(FLOOR_TESTS)
