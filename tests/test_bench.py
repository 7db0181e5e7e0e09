"""The benchmarks still run against the current schema (a smoke run at toy size; the figures that
matter are in bench/RESULTS.md, measured on purpose, never asserted here)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_benchmark_runs_end_to_end_at_toy_size(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--tickers", "5", "--years", "1", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    text = out.read_text()
    for step in ("1. capwatch full backfill", "2. bare DuckDB floor", "4. daily incremental run"):
        assert step in text
