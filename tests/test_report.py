"""Issue 17: the crash-day report (HTML + charts), rendered offline, checked in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from capwatch.cli import main
from capwatch.transform import run_models
from tests.conftest import insert_prices, insert_shares, open_db

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def small_market(tmp_path) -> Path:
    """Three companies over a few weeks; on 2025-01-27 one falls 17 %, one 12 %, one rises."""
    db = tmp_path / "w.duckdb"
    con = open_db(db, read_only=False)
    days = [d for d in (date(2025, 1, n) for n in range(2, 32)) if d.weekday() < 5 and d.day != 20]
    moves = {"NVDA": (140.0, 0.83), "AVGO": (240.0, 0.88), "AAPL": (220.0, 1.02)}
    rows = []
    for t, (base, crash) in moves.items():
        for d in days:
            rows.append((t, d, base * (crash if d >= date(2025, 1, 27) else 1.0)))
    insert_prices(con, rows)
    insert_shares(
        con,
        [
            (t, "all", date(2024, 11, 15), n, date(2024, 11, 20))
            for t, n in (
                ("NVDA", 24_490_000_000),
                ("AVGO", 4_690_000_000),
                ("AAPL", 15_000_000_000),
            )
        ],
    )
    run_models(con)
    con.close()
    return db


def test_report_writes_a_page_and_charts_from_the_models(small_market, tmp_path):
    out = tmp_path / "reports"
    res = CliRunner().invoke(
        main, ["report", "--db", str(small_market), "--on", "2025-01-27", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    page = out / "capwatch-report-2025-01-27.html"
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') == 3  # charts inlined: no file, no network
    assert "http://" not in text.replace('href="capwatch', "") and "<script src" not in text
    for name in ("losses", "market_cap_history", "groups"):
        png = (out / f"capwatch-report-2025-01-27-{name}.png").read_bytes()
        svg = (out / f"capwatch-report-2025-01-27-{name}.svg").read_text()
        assert png.startswith(PNG) and len(png) > 5_000 and "<svg" in svg
    # the losses table in loss order, with the move, the % and the ranks
    body = text[text.index("<h2>Largest losses</h2>") : text.index("<h2>Market value")]
    assert body.index(">NVDA<") < body.index(">AVGO<") and ">AAPL<" not in body
    assert "-$582.9B" in body and "-17.00%" in body and "#1" in body
    assert "On 2025-01-27 the 3 companies tracked moved" in res.output
    as_json = CliRunner().invoke(
        main,
        [
            "report",
            "--db",
            str(small_market),
            "--on",
            "2025-01-27",
            "--out",
            str(out),
            "--format",
            "json",
        ],
    )
    rows = json.loads(as_json.output)
    assert [r["company"] for r in rows] == ["NVDA", "AVGO", "AAPL"]
    assert rows[0]["change_usd"] == pytest.approx(-24_490_000_000 * 140.0 * 0.17)


def test_report_for_a_day_without_trading_names_the_nearest(small_market, tmp_path):
    res = CliRunner().invoke(
        main, ["report", "--db", str(small_market), "--on", "2025-01-20", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    assert "no trading data for 2025-01-20" in res.output and "2025-01-17, 2025-01-21" in res.output


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed here if missing (as CI does); skipped only where it cannot be."""
    found = shutil.which("chromium")
    if not found and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "install", "-y", "-q", "chromium"],
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "chromium"],
        ):
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=900)
            if cmd[1] == "install" and done.returncode == 0:
                break
        found = shutil.which("chromium")
    if not found:
        pytest.skip(
            "Debian's chromium is not installed and cannot be installed here (needs root and apt)"
        )
    return found


@pytest.mark.slow
def test_deepseek_day_report_renders_in_a_real_browser(full_history, chromium, tmp_path):
    """Done-when of issue 17: `capwatch report --on 2025-01-27` on the shared data, opened in
    headless Chromium: every chart drawn (images decoded, non-empty), the loss table present."""
    out = tmp_path / "reports"
    res = CliRunner().invoke(
        main, ["report", "--db", str(full_history), "--on", "2025-01-27", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    page = out / "capwatch-report-2025-01-27.html"
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert 'data-charts-drawn="3"' in dom  # the page's own count of decoded, non-empty images
    losses = dom[dom.index("<h2>Largest losses</h2>") : dom.index("<h2>Market value")]
    order = [t for t in ("NVDA", "AVGO", "ORCL", "MSFT") if f">{t}<" in losses]
    assert order[:3] == ["NVDA", "AVGO", "ORCL"]
    assert losses.index(">NVDA<") < losses.index(">AVGO<") < losses.index(">ORCL<")
    assert "-$592.7B" in losses and "-16.97%" in losses
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1100,2600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 100_000
