# Two entry points (see README): `make run` and `make test`.
# Both create .venv from the pinned set in constraints.txt on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-slow bench clean-venv data

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smeintl run

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow -s

# regenerate the bundled synthetic survey, src/smeintl/bundled/hitachi_synthetic.csv
data: $(STAMP)
	$(BIN)/python scripts/make_synthetic_data.py

clean-venv:
	rm -rf $(VENV)
