# PeerLearn: `make run` serves the platform, `make test` runs every suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_TEST_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/test
AXE := web/node_modules/axe-core/axe.min.js

.PHONY: run test install install-test system-deps test-sqlite test-sfu-python test-postgres css lint fmt typecheck bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python system-deps $(AXE)
	$(BIN)/pip install -q -e ".[test,bench]"

# axe-core from the npm registry (web/package-lock.json pins it): the browser suite injects it
# into every page it visits for the accessibility pass (tests/browser/accessibility.py). The same
# `npm ci` installs puppeteer-core, which drives Debian's firefox-esr (it never downloads a browser).
$(AXE): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $@

# Debian packages the tests drive for real: Chromium (browser tests), coturn (TURN tests),
# redis-server (the scale-out tests start a private one they can stop), wrk (the API benchmark's generator),
# npm (axe-core for the browser suite's accessibility pass, puppeteer-core for its Firefox participant),
# firefox-esr (the browser suite's Firefox participant, tests/browser/firefox_participant.py).
# janus (the peer SFU of `sfu_load.py --peer janus`, started by the benchmark with its own config; the
# package's system service is switched off so no Janus runs with the stock configuration).
# nginx (tests/scale/test_deploy.py runs deploy/ as shipped); postgresql (a private server the restart test stops).
# linux-perf (`sfu_load.py --profile`: where the server's CPU goes per forwarded packet, by perf samples).
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  command -v chromium >/dev/null || missing="$$missing chromium fonts-liberation"; \
	  command -v firefox-esr >/dev/null || missing="$$missing firefox-esr"; \
	  command -v turnserver >/dev/null || missing="$$missing coturn"; \
	  command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	  command -v tc >/dev/null || missing="$$missing iproute2"; \
	  command -v wrk >/dev/null || missing="$$missing wrk"; \
	  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	  command -v npm >/dev/null || missing="$$missing npm"; \
	  command -v janus >/dev/null || missing="$$missing janus"; \
	  command -v perf >/dev/null || missing="$$missing linux-perf"; \
	  [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	  if [ -n "$$missing" ]; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	    case "$$missing" in *janus*) systemctl disable --now janus >/dev/null 2>&1 || true;; esac; \
	  fi; \
	fi

run: install
	$(BIN)/peerlearn demo
	$(BIN)/peerlearn serve

test: install-test
	$(MAKE) test-sqlite
	$(MAKE) test-sfu-python
	$(MAKE) test-postgres

test-sqlite:
	PEERLEARN_FORBID_SKIPS=$${PEERLEARN_FORBID_SKIPS:-1} $(BIN)/python -m pytest tests -q -p no:cacheprovider

# The SFU suites again on the pure-Python packet path (sfu/transport/fastio_py.py, forwarding.RtpForwarder and
# RtpRewriter): the native one (sfu/transport/_fastio.pyx, _forwarder.pyx, _rewriter.pyx) must behave the same.
test-sfu-python:
	PEERLEARN_SFU_NATIVE=0 $(BIN)/python -m pytest tests/sfu -q -p no:cacheprovider

# The database-bound suites again against the local PostgreSQL (skipped only when none answers).
test-postgres:
	@if $(BIN)/python -c "import asyncio,asyncpg,sys; asyncio.run(asyncpg.connect('$(PG_TEST_URL)'.replace('+asyncpg','')))" 2>/dev/null; then \
	  PEERLEARN_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m pytest tests/api -q -p no:cacheprovider; \
	else echo "PostgreSQL not reachable at $(PG_TEST_URL): PostgreSQL suite not run"; \
	  [ "$${PEERLEARN_REQUIRE_POSTGRES:-0}" = "0" ]; fi

css:
	cd web && npm install --no-audit --no-fund && npx tailwindcss -i ./tailwind.input.css -o ./static/css/app.css --minify

# Rules and strictness live in pyproject.toml ([tool.ruff.lint], [tool.mypy]); both fail on findings.
lint:
	$(BIN)/python -m ruff check api web sfu tests benchmarks
	$(BIN)/python -m ruff format --check api web sfu tests benchmarks

fmt:
	$(BIN)/python -m ruff format api web sfu tests benchmarks

typecheck:
	$(BIN)/python -m mypy sfu api/services api/recommender

bench: install-test
	$(BIN)/python benchmarks/sfu_load.py --rooms 1,5,10

clean:
	rm -rf $(VENV) data
