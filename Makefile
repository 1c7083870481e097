# Two commands from a fresh clone:  `make demo` (the main job) and `make test` (the test suite).
PY ?= python3
PIP ?= $(PY) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# what emovox uses (voices, audio I/O, the microphone); the browser only for the web-page tests
DEBIAN_PACKAGES := espeak-ng sox libsndfile1 libportaudio2
TEST_PACKAGES := chromium chromium-driver

.PHONY: setup system-deps test-deps demo test lint

system-deps:
	@$(MAKE) --no-print-directory install-debian PACKAGES="$(DEBIAN_PACKAGES)"

test-deps:
	@$(MAKE) --no-print-directory install-debian PACKAGES="$(DEBIAN_PACKAGES) $(TEST_PACKAGES)"

install-debian:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

# torch==2.13.0 is pinned through constraints.txt so that pip takes the CPU wheel where one is
# configured; the package itself asks for a range, so GPU users get CUDA builds.
setup: system-deps
	$(PIP) install -q -c constraints.txt -e ".[dev]"

demo: setup
	emovox demo --out demo_out

lint:
	$(PY) -m ruff check src tests benchmarks

test: test-deps setup lint
	$(PY) -m pytest -q
