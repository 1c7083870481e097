# Two commands from a fresh clone:  `make demo` (the main job) and `make test` (the test suite).
PY ?= python3
PIP ?= $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := espeak-ng sox libsndfile1

.PHONY: setup system-deps demo test lint

system-deps:
	@if command -v apt-get >/dev/null && ! command -v espeak-ng >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(DEBIAN_PACKAGES) >/dev/null; \
	fi

# torch==2.13.0 is pinned through constraints.txt so that pip takes the CPU wheel where one is
# configured; the package itself asks for a range, so GPU users get CUDA builds.
setup: system-deps
	$(PIP) install -q -c constraints.txt -e ".[dev]"

demo: setup
	emovox demo --out demo_out

lint:
	$(PY) -m ruff check src tests benchmarks

test: setup lint
	$(PY) -m pytest -q
