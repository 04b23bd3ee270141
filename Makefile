# The README's commands.  Everything runs from a virtual environment in .venv.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A "strict" editable install links the sources from build/ and puts one static
# path in a .pth file; the default mode installs an import hook that costs every
# Python start in the venv about 18 ms (37 ms instead of 17 for `python -c pass`).
# `python -m crawlsel` from this folder (what the targets run) always sees the
# sources; the `crawlsel` script sees a module added since the install after
# `make clean`.  (PYTHONWARNINGS hides setuptools' notice box about that mode.)
INSTALL := PYTHONWARNINGS=ignore $(PY) -m pip install --quiet --config-settings editable_mode=strict -e

.PHONY: run test soak lint bench bench-quick bench-versions clean

run: $(STAMP)
	$(PY) demo/serve.py --run

test: $(STAMP)
	$(PY) -m pytest

# The randomised reliability test with many more cases than make test runs.
soak: $(STAMP)
	CRAWLSEL_SOAK=$${CRAWLSEL_SOAK:-1000} $(PY) -m pytest -q tests/test_reliability.py

lint: $(STAMP)
	$(INSTALL) '.[test,lint]'
	$(PY) -m ruff check crawlsel tests bench demo
	$(PY) -m ruff format --check crawlsel tests bench demo
	$(PY) -m mypy crawlsel

bench: $(STAMP)
	$(INSTALL) '.[test,bench]'
	$(PY) bench/run.py

bench-quick: $(STAMP)
	$(INSTALL) '.[test,bench]'
	$(PY) bench/run.py --quick

# Two revisions side by side, e.g. make bench-versions OLD=c037d00 NEW=HEAD ARGS='--only small,big'
NEW ?= HEAD
bench-versions: $(STAMP)
	@test -n "$(OLD)" || { echo 'make bench-versions OLD=rev [NEW=rev] [ARGS=...]'; exit 2; }
	$(INSTALL) '.[test,bench]'
	$(PY) bench/versions.py $(OLD) $(NEW) $(ARGS)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(INSTALL) '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build crawled_page crawled_site .pytest_cache
