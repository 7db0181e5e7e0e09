"""SEC source benchmark: requests and time to read the share counts of a universe, offline.

The real ``SecClient`` / ``SecSource`` against ``capwatch.replay.sec`` built from a marketdata
directory (default ../shared/marketdata: 36 tickers, 2010..2026), paced at SEC's budget
(8 requests/s, the process-wide limiter) exactly as it would be against EDGAR:

1. a cold backfill of the whole history (empty cache);
2. the same range again with the disk cache (what a re-run costs: revalidation only);
3. a daily run (the last 10 days) with the cache;
4. a cold one-year backfill.

    uv run python -m bench.sec [--dir ../shared/marketdata] [--rate 8]

Prints a Markdown table (copied into bench/RESULTS.md, section "SEC source").
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

from capwatch.extract.sec import RateLimiter, SecClient, SecSource
from capwatch.replay import offline_session
from capwatch.replay.sec import OfflineSec, archive_from_csv
from capwatch.settings import default_universe

UA = "capwatch benchmark bench@example.com"


def run(
    source_dir: Path, rate: float, tickers: list[str], start: date, end: date, cache: Path | None
):
    archive = archive_from_csv(source_dir)
    adapter = OfflineSec(archive, max_per_second=10)  # SEC's own limit, enforced by the fake
    client = SecClient(
        UA, session=offline_session(adapter), cache_dir=cache, limiter=RateLimiter(rate)
    )
    t0 = time.perf_counter()
    out = SecSource(client).fetch(tickers, start, end)
    seconds = time.perf_counter() - t0
    throttled = sum(1 for _, s in adapter.requests if s == 429)
    return out, client.stats, seconds, throttled


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "marketdata")
    )
    ap.add_argument("--rate", type=float, default=8.0)
    args = ap.parse_args()
    source_dir = Path(args.dir)
    tickers = default_universe()
    last = date.fromisoformat(
        str(pd.read_csv(source_dir / "prices.csv", usecols=["date"])["date"].max())
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "sec-cache"
        cases = [
            ("cold backfill 2010..", date(2010, 1, 4), last, cache),
            ("same range again, cached", date(2010, 1, 4), last, cache),
            ("daily run (10 days), cached", last - timedelta(days=10), last, cache),
            ("cold backfill, last year", last - timedelta(days=365), last, None),
        ]
        for label, start, end, c in cases:
            out, stats, seconds, throttled = run(source_dir, args.rate, tickers, start, end, c)
            floor = stats.requests / args.rate
            rows.append(
                (
                    label,
                    stats.requests,
                    stats.downloaded,
                    stats.not_modified,
                    stats.from_cache,
                    stats.bytes / 1e6,
                    seconds,
                    floor,
                    throttled,
                    len(out.shares),
                    out.shares["ticker"].nunique() if len(out.shares) else 0,
                    len(out.problems),
                )
            )
    print(
        f"Command: `uv run python -m bench.sec --rate {args.rate:g}` on {source_dir.name} "
        f"({len(tickers)} tickers), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{platform.machine()}, Python {platform.python_version()}.\n"
    )
    print(
        "| run | requests | downloaded | 304 | from cache | MB | time | floor (requests / rate) | 429s | counts | tickers with counts | problems |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} s | {r[7]:.1f} s | {r[8]} | {r[9]:,} | {r[10]} | {r[11]} |"
        )


if __name__ == "__main__":
    main()
