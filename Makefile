# capwatch: `make demo` runs the pipeline offline, `make test` runs the fast tests. Needs only python3.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: all install postgres demo run test test-slow test-lake test-all lint format bench
all: test lint

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --all-groups

# A PostgreSQL server binary for the lake tests (they start their own throwaway cluster on
# 127.0.0.1): Debian's package, installed when missing and allowed (root), else how to get it.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing PostgreSQL (Debian's postgresql) for the lake tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "PostgreSQL's server is missing: the lake tests will be skipped (make test-lake fails);"; \
	    echo "install it with: sudo apt-get install postgresql"; fi; }

demo: install
	$(UV) run capwatch demo

run: install
	$(UV) run capwatch run

# The fast lane (about 4 min): everything but the tests marked slow.
test: install postgres
	$(UV) run pytest -q

# The slow lane: a real Prefect server and worker, kill tests, full-history fixtures, the wheel.
test-slow: install postgres
	$(UV) run pytest -q -m slow

# The fast lane again with the warehouse in a DuckLake (catalog in PostgreSQL) instead of a file;
# tests of the file itself (its lock, the CLI opening it) are marked file_only and left out.
test-lake: install postgres
	CAPWATCH_TEST_WAREHOUSE=ducklake $(UV) run pytest -q -m "not slow and not file_only"

test-all: test test-slow test-lake

lint: install
	$(UV) run ruff check capwatch flows tests bench
	$(UV) run ruff format --check capwatch flows tests bench

format: install
	$(UV) run ruff format capwatch flows tests bench

bench: install
	$(UV) run python -m bench.run
