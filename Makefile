# capwatch: `make demo` runs the pipeline offline, `make test` runs the suite. Needs only python3.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: all install demo run test lint bench
all: test lint

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==0.13.9"
	$(UV) sync --frozen --all-groups

demo: install
	$(UV) run capwatch demo

run: install
	$(UV) run capwatch run

test: install
	$(UV) run pytest -q

lint: install
	$(UV) run ruff check capwatch flows tests bench

bench: install
	$(UV) run python -m bench.run
