# capwatch: `make demo` runs the pipeline offline, `make test` runs the fast tests. Needs only python3.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: all install demo run test test-slow test-all lint format bench
all: test lint

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --all-groups

demo: install
	$(UV) run capwatch demo

run: install
	$(UV) run capwatch run

# The fast lane (about 3 min): everything but the tests marked slow.
test: install
	$(UV) run pytest -q

# The slow lane: a real Prefect server and worker, kill tests, full-history fixtures, the wheel.
test-slow: install
	$(UV) run pytest -q -m slow

test-all: test test-slow

lint: install
	$(UV) run ruff check capwatch flows tests bench
	$(UV) run ruff format --check capwatch flows tests bench

format: install
	$(UV) run ruff format capwatch flows tests bench

bench: install
	$(UV) run python -m bench.run
