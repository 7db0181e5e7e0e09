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


def test_the_whole_market_section_of_results_survives_a_rewrite(tmp_path):
    """bench/whole_market.py writes its ratios into RESULTS.md between markers; bench/run.py
    rewrites the rest of the file and keeps that section; a newer section replaces the older."""
    from bench.run import WHOLE_MARKET, kept_section, write_section

    results = tmp_path / "RESULTS.md"
    results.write_text("# capwatch benchmark results\n\n| a | b |\n")
    write_section(results, WHOLE_MARKET, "## Whole market\n\n| ratio | 2.3 |")
    write_section(results, WHOLE_MARKET, "## Whole market\n\n| ratio | 1.9 |")
    text = results.read_text()
    assert text.startswith("# capwatch benchmark results") and text.count("## Whole market") == 1
    assert "| ratio | 1.9 |" in text and "2.3" not in text
    kept = kept_section(results, WHOLE_MARKET)
    assert kept.strip().startswith("<!-- whole-market:start -->") and "| ratio | 1.9 |" in kept
    assert kept_section(tmp_path / "missing.md", WHOLE_MARKET) == ""
