# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds its own virtual environment with a Python >= 3.12 found by scripts/find-python.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint browser bench clean

$(STAMP): pyproject.toml
	@PYBIN=$$(scripts/find-python) || exit 1; \
	  echo "using $$PYBIN ($$($$PYBIN --version))"; \
	  [ -x $(PY) ] || $$PYBIN -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test,bench]'
	@rm -f $(VENV)/.installed-*; touch $@

demo: $(STAMP)
	$(VENV)/bin/imagezarr demo

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

# the viewer's tests drive a headless Chromium (tests/test_view.py; skipped without one): install
# Debian's when absent and this runs as root (CI); elsewhere only say so, never fail
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    chromium chromium-driver) || echo "could not install chromium: browser tests skipped"; \
	else echo "no chromium + chromedriver (not root): the viewer's browser tests are skipped"; fi

test: $(STAMP) lint browser
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/startup_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
