# Two entry points for a fresh machine: `make demo` and `make test`.
# Each builds its own virtual environment with a Python >= 3.12 found by scripts/find-python.
VENV ?= .venv
PY := $(VENV)/bin/python
HASH := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# the demo needs only the core dependencies; the tests need every extra: two stamps, so that
# `make demo` on a fresh machine does not wait for the test and benchmark tools
DEMO_STAMP := $(VENV)/.demo-$(HASH)
TEST_STAMP := $(VENV)/.test-$(HASH)
TEST_EXTRAS := .[all,test,bench]

.PHONY: demo test test-napari test-plantcv lint browser bench clean

$(PY):
	@PYBIN=$$(scripts/find-python) || exit 1; \
	  echo "using $$PYBIN ($$($$PYBIN --version))"; \
	  $$PYBIN -m venv $(VENV)

# uv resolves and installs several times faster than pip; it is itself a wheel from PyPI, so
# it is installed into the venv first, and pip does the install wherever uv cannot be had
define install
	@if [ -x $(VENV)/bin/uv ] || $(PY) -m pip install -q --disable-pip-version-check uv 2>/dev/null; \
	then $(VENV)/bin/uv pip install -q --python $(PY) -e '$(1)'; \
	else $(PY) -m pip install -q --disable-pip-version-check -e '$(1)'; fi
endef

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(call install,.)
	@rm -f $(VENV)/.demo-*; touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(call install,$(TEST_EXTRAS))
	@rm -f $(VENV)/.demo-* $(VENV)/.test-*; touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/imagezarr demo

lint: $(TEST_STAMP)
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

test: $(TEST_STAMP) lint browser
	$(PY) -m pytest -q

# real napari under Xvfb, in its own environment: napari's pytest plugins and Qt stay out of
# the main test run (tests/test_napari.py there uses a stand-in viewer and skips this test)
NAPARI_VENV ?= .venv-napari
test-napari: $(TEST_STAMP)
	@if ! command -v xvfb-run >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; \
	then DEBIAN_FRONTEND=noninteractive apt-get install -y -q xvfb xauth libxcb-icccm4 \
	  libxcb-keysyms1 libxcb-xinerama0 libxkbcommon-x11-0 libgl1 libegl1; fi
	@[ -x $(NAPARI_VENV)/bin/python ] || $(VENV)/bin/uv venv -q --python $(PY) $(NAPARI_VENV)
	$(VENV)/bin/uv pip install -q --python $(NAPARI_VENV)/bin/python "napari[pyqt6]>=0.5" -e '.[test]'
	xvfb-run -a $(NAPARI_VENV)/bin/python -m pytest -q -p no:napari -p no:npe2 tests/test_napari.py

# the worked PlantCV example against the installed PlantCV, in its own environment
PLANTCV_VENV ?= .venv-plantcv
test-plantcv: $(TEST_STAMP)
	@[ -x $(PLANTCV_VENV)/bin/python ] || $(VENV)/bin/uv venv -q --python $(PY) $(PLANTCV_VENV)
	$(VENV)/bin/uv pip install -q --python $(PLANTCV_VENV)/bin/python -e '.[plantcv,test]'
	$(PLANTCV_VENV)/bin/python -m pytest -q tests/test_plantcv_map.py tests/test_plantcv.py

bench: $(TEST_STAMP)
	$(PY) benchmarks/run.py
	$(PY) benchmarks/startup_bench.py
	$(PY) benchmarks/map_bench.py

clean:
	rm -rf $(VENV) $(NAPARI_VENV) $(PLANTCV_VENV) .pytest_cache
