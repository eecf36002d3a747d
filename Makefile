# Two commands do all set-up on a fresh machine: `make bench` (the main job) and `make test`.
# Each creates .venv on first use and installs the kit into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install bench test unit notebooks lab exercises clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(PY) -m fwdlib.bench --preset quick

test: unit notebooks

unit: $(STAMP)
	$(PY) -m pytest -q tests

# Stored notebooks have no outputs, so nbval checks that every cell runs; asserts are the tests.
# (exercises/ run unsolved in tests/test_exercises.py, which also runs the generator's --check.)
notebooks: $(STAMP)
	FWDLIB_QUICK=1 MPLBACKEND=agg $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 notebooks solutions

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

exercises: $(STAMP)
	$(PY) scripts/make_exercises.py

clean:
	rm -rf $(VENV) bench-results
