# Two entry points (see README): `make run` and `make test`.
# Both create .venv on first use from the tested set of PY's stack:
#   Python 3.11       -> constraints/pymc5.txt (PyMC 5, PyTensor 2, ArviZ 0.x)
#   Python 3.12, 3.13 -> constraints/pymc6.txt (PyMC 6, PyTensor 3, ArviZ 1)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PY_MINOR := $(shell $(PY) -c 'import sys; print(sys.version_info[1] if sys.version_info[0] == 3 else 0)' 2>/dev/null)
CONSTRAINTS ?= $(if $(filter 11,$(PY_MINOR)),constraints/pymc5.txt,$(if $(filter 12 13,$(PY_MINOR)),constraints/pymc6.txt,))

.PHONY: run test test-slow bench clean-venv data

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -n "$(CONSTRAINTS)" || { echo "smeintl needs Python 3.11, 3.12 or 3.13; '$(PY)' is $$($(PY) --version 2>&1). Pass PY=python3.13 (for example)."; exit 2; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smeintl run

# two worker processes (pytest-xdist), each taking whole test files, so that module and session
# fixtures and the compiled models stay within one process: 972 s -> 559 s on 2 cores
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -s

# regenerate the bundled synthetic survey, src/smeintl/bundled/hitachi_synthetic.csv
data: $(STAMP)
	$(BIN)/python scripts/make_synthetic_data.py

clean-venv:
	rm -rf $(VENV)
