# Two commands do all set-up on a fresh machine: `make bench` (the main job) and `make test`.
# Each creates .venv on first use and installs the kit into it with pyproject.toml's dependencies
# and its dev extra, so what is declared is what is tested.
# CPU_ONLY=1 takes torch and torchvision from PyTorch's CPU-only wheels (a lab laptop without an
# NVIDIA GPU skips about 3 GB of CUDA libraries): make bench CPU_ONLY=1
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CPU_ONLY ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_INDEX := $(if $(CPU_ONLY),--index-url $(TORCH_CPU_INDEX),)
NBGRADER_SERVER_EXTENSIONS := $(addprefix nbgrader.server_extensions.,formgrader validate_assignment assignment_list course_list)

.PHONY: install bench test unit slow mutants notebooks browser lab exercises links site assignments gradebook outputs busy-check gpu-check clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(CPU_ONLY),$(PY) -m pip install -q $(TORCH_INDEX) "torch>=2.2" "torchvision>=0.17",)
	$(PY) -m pip install -q -e ".[dev]"
	# nbgrader grades from the command line (make gradebook): its JupyterLab menus stay out of the students' lab
	$(VENV)/bin/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader >/dev/null 2>&1
	$(VENV)/bin/jupyter server extension disable --sys-prefix $(NBGRADER_SERVER_EXTENSIONS) >/dev/null 2>&1
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(PY) -m fwdlib bench --preset quick

test: unit slow notebooks browser

# The fast loop (about a minute on 2 cores): everything but what `slow`, `course` and `browser` mark.
unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not course and not browser and not slow"

# Real training to each algorithm's accuracy floor, killed and resumed processes, tuner workers,
# PostgreSQL, the exercise notebooks, the Colab install; then the checks' mutation score (make mutants).
slow: $(STAMP)
	$(PY) -m pytest -q tests -m "slow and not course and not browser"
	$(PY) scripts/mutants.py

# Wrong answers generated from each exercise's reference solution (ast mutants), run through every
# check: prints the score per exercise and in total; exits 1 below 95% in total or 90% for one.
# Mutants that compute the same function are listed, each with why, in scripts/equivalent_mutants.txt.
mutants: $(STAMP)
	$(PY) scripts/mutants.py

# Every lesson and solution executed again as a student runs it (a fresh kernel, quick mode, the CPU,
# the default backend, no CI flag: scripts/store_outputs.py STUDENT_SET/STUDENT_UNSET), in a scratch copy of the tree, and compared by nbval with its stored outputs:
# every output, numbers included, but the times, paths and process ids tests/nbval_sanitize.cfg
# replaces and the cells whose metadata says why their output varies; then the check that an
# edited stored number fails. (exercises/ run unsolved in tests/test_exercises.py.)
notebooks: $(STAMP)
	rm -rf .nbval-run && mkdir .nbval-run && cp -r notebooks solutions tests/nbval_sanitize.cfg .nbval-run/
	cd .nbval-run && env -u MPLBACKEND -u CI FWDLIB_QUICK=1 CUDA_VISIBLE_DEVICES= ../$(PY) -m pytest -q -p no:cacheprovider \
		--rootdir=. --nbval --nbval-current-env --nbval-cell-timeout=600 --nbval-sanitize-with nbval_sanitize.cfg \
		notebooks solutions
	rm -rf .nbval-run
	$(PY) -m pytest -q tests/test_stored_outputs.py -m course

# The course in JupyterLab in headless Chromium (Debian's chromium), then its website; screenshots in
# browser-screenshots/.
browser: $(STAMP)
	$(PY) -m pytest -q -s tests/test_browser.py tests/test_site.py

# The lab's gradebook, with nbgrader (scripts/gradebook.py): `make assignments` writes the exercise
# notebooks to hand out (release/students/) and the autograder with their hidden tests (release/autograder/:
# keep it); `make gradebook SUBMISSIONS=DIR [NOTEBOOKS=01,02]` grades DIR/<student>/<notebook>.ipynb into
# DIR/gradebook.csv (NOTEBOOKS: the notebooks assigned, by number; default all).
assignments: $(STAMP)
	$(PY) scripts/gradebook.py release

gradebook: $(STAMP)
	$(if $(SUBMISSIONS),,$(error give the submissions: make gradebook SUBMISSIONS=DIR, with DIR/<student>/<notebook>.ipynb))
	$(PY) scripts/gradebook.py grade "$(SUBMISSIONS)" $(if $(NOTEBOOKS),--notebooks $(NOTEBOOKS))

# The course's website, built offline from the stored notebooks into site/ (open site/index.html);
# tests/test_site.py opens every page of it in Chromium (make browser).
site: $(STAMP)
	$(PY) scripts/build_site.py --out site

# Every lesson in quick mode on the quiet machine, then beside one busy process the command starts
# itself, and the quick benchmark both ways: each time, the ratio, and exit 1 above 2x (a lesson)
# or 2.5x (the benchmark). Run it on an otherwise idle machine (a few minutes on 2 cores).
busy-check: $(STAMP)
	$(PY) scripts/busy_check.py

# Every GPU acceptance check (CUDA graphs, speed targets and floors, energy meter, FF run, every
# lesson in full mode) in one go; writes gpu-check/report.md. The lessons take longest;
# `$(PY) -m fwdlib gpu-check --only graphs,speed,energy,ff` runs the rest. Says so and stops
# on a machine without a CUDA GPU.
gpu-check: $(STAMP)
	$(PY) -m fwdlib gpu-check --out gpu-check

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

exercises: $(STAMP)
	$(PY) scripts/make_exercises.py

# The course's one address: make links REPO=owner/name REF=tag moves every Colab badge, install
# cell, site button and README link to a fork at a tag (scripts/links.py holds the address,
# scripts/make_exercises.py stamps it); without them, says it.
links: $(STAMP)
	$(PY) scripts/make_exercises.py $(if $(REPO),--repo "$(REPO)") $(if $(REF),--ref "$(REF)")

# Every lesson's and solution's stored outputs (quick mode, CPU), which readers see and nbval
# compares, and every time the course states (lesson headers, README's course map, the guide's
# plans) from fwdlib/course/timetable.py and the measured compute; rerun after changing a notebook's
# code or anything in fwdlib/ (tests/test_stored_outputs.py fails until you do).
outputs: $(STAMP)
	$(PY) scripts/make_exercises.py
	$(PY) scripts/store_outputs.py
	$(PY) scripts/make_exercises.py

clean:
	rm -rf $(VENV) bench-results browser-screenshots gpu-check .nbval-run site release
