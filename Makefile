# Two commands do all set-up on a fresh machine: `make bench` (the main job) and `make test`.
# Each creates .venv on first use and installs the kit into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install bench test unit notebooks browser lab exercises clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(PY) -m fwdlib.bench --preset quick

test: unit notebooks browser

unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not course and not browser"

# Every lesson as a student runs it (fresh kernel, default backend): errors, figures printed as
# text, empty widgets. Solutions run under nbval, as an instructor's notebook CI would run them.
# (exercises/ run unsolved in tests/test_exercises.py, which also runs the generator's --check.)
notebooks: $(STAMP)
	$(PY) -m pytest -q -s tests/test_notebooks.py
	FWDLIB_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=600 solutions

# The course in JupyterLab in headless Chromium (Debian's chromium); screenshots in browser-screenshots/.
browser: $(STAMP)
	$(PY) -m pytest -q -s tests/test_browser.py

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

exercises: $(STAMP)
	$(PY) scripts/make_exercises.py

clean:
	rm -rf $(VENV) bench-results browser-screenshots
