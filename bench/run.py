"""capwatch benchmark: one command, one run, ratios against bare DuckDB on the same generated data.

    uv run python -m bench.run                       # 500 tickers x 25 years (~3.1M price rows)
    uv run python -m bench.run --tickers 50 --years 5  # a quick look

Writes bench/RESULTS.md. Each measured step runs in its own process (so peak memory is that step's),
on the same generated market (seeded), saved once as parquet:
  1. capwatch full backfill from already-fetched frames: raw gate (GX) + load + models + model gate
  2. bare DuckDB floor: CREATE TABLE AS from the frame, one upsert per table (prices: MERGE on ticker, date), the same SQL models
  3. naive peer: row-by-row INSERTs (a sample, extrapolated)
  4. daily incremental run: one new day for every ticker on top of the history from 1
  5. yfinance extraction overhead per ticker on Yahoo-shaped responses (no network)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
TODAY = date(2026, 11, 23)
CAPPED_LIMIT = "512MB"


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _frames(data: Path, last_day: bool | None):
    """The saved market; last_day None = all, False = all but the last day, True = only it."""
    from capwatch.extract import Extracted

    prices = pd.read_parquet(data / "prices.parquet")
    last = prices["date"].max()
    if last_day is True:
        prices = prices[prices["date"] == last]
    elif last_day is False:
        prices = prices[prices["date"] < last]
    return Extracted(
        prices=prices.reset_index(drop=True),
        splits=pd.read_parquet(data / "splits.parquet"),
        shares=pd.read_parquet(data / "shares.parquet"),
    )


def step_capwatch(data: Path, db: Path, last_day: bool | None) -> dict:
    from capwatch.calendar import nyse
    from capwatch.load import load_batch
    from capwatch.transform import build_and_gate
    from capwatch.validate import gate_raw
    from capwatch.validate.suites import warm_up
    from capwatch.warehouse import connect

    t = time.perf_counter()
    warm_up()
    nyse()  # the flows consult the calendar (holiday check) before any gate runs
    gx_import = time.perf_counter() - t
    batch = _frames(data, last_day)
    from capwatch.settings import Settings

    con = connect(
        db, memory_limit=Settings.from_env().duckdb_memory_limit
    )  # the capped run sets it
    t0 = time.perf_counter()
    clean, quarantine, results = gate_raw(batch, TODAY)
    t1 = time.perf_counter()
    load_batch(
        con,
        clean,
        quarantine,
        source="bench",
        run_id="bench",
        flow="bench",
        start=None,
        end=None,
        tickers=[],
        validation=results,
    )
    t2 = time.perf_counter()
    runs = build_and_gate(con, "bench")
    t3 = time.perf_counter()
    rows = con.execute("select count(*) from prices_daily").fetchone()[0]
    con.close()
    model_seconds = sum(r.seconds for r in runs)
    return {
        "rows_in": len(batch.prices),
        "rows_stored": rows,
        "gx_import_s": gx_import,
        "raw_gate_s": t1 - t0,
        "load_s": t2 - t1,
        "models_and_gate_s": t3 - t2,
        "models_s": model_seconds,
        "model_gate_s": (t3 - t2) - model_seconds,
        "total_s": t3 - t0,
        "peak_rss_mb": _rss_mb(),
        "quarantined": len(quarantine),
    }


WHOLE_MARKET = "whole-market"


def _section(path: Path, name: str) -> tuple[str, int, int]:
    """``path``'s text and where the section ``name`` starts and ends in it (-1, -1 if absent)."""
    text = path.read_text() if path.exists() else ""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        return text, -1, -1
    return text, text.index(start), text.index(end) + len(end)


def kept_section(path: Path, name: str) -> str:
    """The section another benchmark wrote into ``path`` between its markers ('' if none)."""
    text, lo, hi = _section(path, name)
    return "\n" + text[lo:hi] + "\n" if lo >= 0 else ""


def write_section(path: Path, name: str, body: str) -> None:
    """Put ``body`` into ``path`` between the markers of ``name``, replacing an older copy."""
    text, lo, hi = _section(path, name)
    block = f"<!-- {name}:start -->\n{body.rstrip()}\n<!-- {name}:end -->"
    if lo >= 0:
        text = text[:lo] + block + text[hi:]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def bare_upsert(con, prices: str, splits: str, shares: str) -> None:
    """The floor's load: one upsert per raw table from the named tables or frames. Prices have no
    primary-key index (migration 013), so theirs is a MERGE on (ticker, date); the other tables'
    is ``insert or replace`` on their keys."""
    con.execute(f"""merge into prices_daily t
                    using (select ticker, date::date as date, open, high, low, close,
                                  volume::bigint as volume from {prices}) s
                    on t.ticker = s.ticker and t.date = s.date
                    when matched then update set open = s.open, high = s.high, low = s.low,
                        close = s.close, volume = s.volume, source = 'bench', loaded_at = now(),
                        run_id = 'r'
                    when not matched then insert values (s.ticker, s.date, s.open, s.high, s.low,
                        s.close, s.volume, 'bench', now(), 'r')""")
    con.execute(
        f"insert or replace into splits select ticker, date::date, ratio, 'bench', now(), 'r' from {splits}"
    )
    con.execute(f"""insert or replace into shares_outstanding
                        (ticker, share_class, as_of, shares, reported_date, source, loaded_at, run_id)
                    select ticker, share_class, as_of::date, shares::bigint, reported_date::date,
                           'bench', now(), 'r' from {shares}""")


def step_bare(data: Path, db: Path) -> dict:
    import duckdb

    from capwatch.transform import run_models
    from capwatch.warehouse import migrate

    batch = _frames(data, None)
    con = duckdb.connect(str(db))
    migrate(con)
    con.register("frame_prices", batch.prices)
    con.register("frame_splits", batch.splits)
    con.register("frame_shares", batch.shares)
    t0 = time.perf_counter()
    con.execute("create table staged as select * from frame_prices")
    t1 = time.perf_counter()
    bare_upsert(con, "staged", "frame_splits", "frame_shares")
    t2 = time.perf_counter()
    run_models(con)
    t3 = time.perf_counter()
    con.close()
    return {
        "ctas_s": t1 - t0,
        "upsert_s": t2 - t1,
        "models_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_mb": _rss_mb(),
    }


def step_naive(data: Path, db: Path, sample: int = 5000) -> dict:
    import duckdb

    from capwatch.warehouse import migrate

    batch = _frames(data, None)
    con = duckdb.connect(str(db))
    migrate(con)
    rows = batch.prices.head(sample).itertuples(index=False)
    t0 = time.perf_counter()
    for r in rows:
        con.execute(
            "insert into prices_daily values (?, ?, ?, ?, ?, ?, ?, 'bench', now(), 'r')",
            [r.ticker, r.date.date(), r.open, r.high, r.low, r.close, int(r.volume)],
        )
    per_row = (time.perf_counter() - t0) / sample
    con.close()
    return {
        "sample_rows": sample,
        "per_row_ms": per_row * 1000,
        "extrapolated_s": per_row * len(batch.prices),
    }


def step_extract(tickers: int = 20) -> dict:
    import yfinance as yf

    from capwatch.extract.yahoo import YahooSource
    from capwatch.replay import offline_session
    from capwatch.replay.market import generate_market
    from capwatch.replay.yahoo import OfflineYahoo

    yf.set_tz_cache_location(tempfile.mkdtemp())
    market = generate_market(
        n_tickers=tickers, start=date(2001, 1, 2), end=date(2025, 12, 31), seed=3
    )
    adapter = OfflineYahoo(market.yahoo_frames())
    src = YahooSource(session=offline_session(adapter), concurrency=1)
    names = sorted(market.prices["ticker"].unique())
    src.fetch(names[:1], date(2001, 1, 2), date(2025, 12, 31))  # warm: imports, timezone cache
    t0 = time.perf_counter()
    out = src.fetch(names, date(2001, 1, 2), date(2025, 12, 31))
    total = time.perf_counter() - t0
    return {
        "tickers": tickers,
        "rows": len(out.prices),
        "per_ticker_ms": 1000 * total / tickers,
        "note": "includes building the Yahoo JSON in the offline transport",
    }


def _child(step: str, data: Path, db: Path, **env: str) -> dict:
    cmd = [sys.executable, "-m", "bench.run", "--step", step, "--data", str(data), "--db", str(db)]
    out = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        env={**os.environ, "PYTHONWARNINGS": "ignore", **env},
    )
    if out.returncode != 0:
        raise SystemExit(f"bench step {step} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _versions() -> str:
    import duckdb
    import great_expectations
    import prefect
    import yfinance

    return (
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}, great-expectations "
        f"{great_expectations.__version__}, prefect {prefect.__version__}, yfinance {yfinance.__version__}, pandas {pd.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description="capwatch benchmark")
    ap.add_argument("--tickers", type=int, default=500)
    ap.add_argument("--years", type=int, default=25)
    ap.add_argument("--step")
    ap.add_argument("--data", type=Path)
    ap.add_argument("--db", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = ap.parse_args()
    if args.step:
        fn = {
            "capwatch": lambda: step_capwatch(args.data, args.db, False),
            "daily": lambda: step_capwatch(args.data, args.db, True),
            "bare": lambda: step_bare(args.data, args.db),
            "naive": lambda: step_naive(args.data, args.db),
            "extract": lambda: step_extract(),
        }[args.step]
        print(json.dumps(fn()))
        return

    from capwatch.replay.market import generate_market

    work = Path(tempfile.mkdtemp(prefix="capwatch-bench-"))
    t = time.perf_counter()
    market = generate_market(
        n_tickers=args.tickers,
        start=date(2025 - args.years + 1, 1, 2),
        end=date(2025, 12, 31),
        seed=8,
    )
    gen_s = time.perf_counter() - t
    market.prices.to_parquet(work / "prices.parquet")
    market.splits.to_parquet(work / "splits.parquet")
    market.shares.to_parquet(work / "shares.parquet")
    print(
        f"generated {len(market.prices):,} price rows for {args.tickers} tickers x {args.years} years in {gen_s:.1f}s",
        flush=True,
    )

    results = {}
    for step in ("capwatch", "bare", "naive", "extract"):
        results[step] = _child(step, work, work / f"{step}.duckdb")
        print(step, results[step], flush=True)
    shutil.copy(work / "capwatch.duckdb", work / "daily.duckdb")
    results["daily"] = _child("daily", work, work / "daily.duckdb")
    print("daily", results["daily"], flush=True)
    # Step 1 again with DuckDB capped (the operator's knob, see capwatch/settings.py).
    results["capped"] = _child(
        "capwatch", work, work / "capped.duckdb", CAPWATCH_DUCKDB_MEMORY_LIMIT=CAPPED_LIMIT
    )
    print("capped", results["capped"], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    write_results(args, results, len(market.prices))


def write_results(args, r: dict, n_rows: int) -> None:
    cw, bare, naive, daily, ex, capped = (
        r["capwatch"],
        r["bare"],
        r["naive"],
        r["daily"],
        r["extract"],
        r["capped"],
    )
    gx = cw["raw_gate_s"] + cw["model_gate_s"]
    rows = [
        (
            "1. capwatch full backfill (gate + load + models + model gate)",
            f"{cw['total_s']:.1f} s",
            f"peak {cw['peak_rss_mb']:,.0f} MB",
        ),
        ("   of which raw gate (GX)", f"{cw['raw_gate_s']:.1f} s", ""),
        ("   of which load (idempotent upsert)", f"{cw['load_s']:.1f} s", ""),
        ("   of which models", f"{cw['models_s']:.1f} s", ""),
        ("   of which model audits (SQL)", f"{cw['model_gate_s']:.1f} s", ""),
        (
            "   GX import and NYSE calendar, once per process (not in the total)",
            f"{cw['gx_import_s']:.1f} s",
            "",
        ),
        (
            "2. bare DuckDB floor (CTAS + upsert + same models)",
            f"{bare['total_s']:.1f} s",
            f"CTAS {bare['ctas_s']:.1f} s, upsert {bare['upsert_s']:.1f} s, models {bare['models_s']:.1f} s",
        ),
        (
            "3. naive row-by-row INSERT (extrapolated)",
            f"{naive['extrapolated_s']:,.0f} s",
            f"{naive['per_row_ms']:.3f} ms/row over {naive['sample_rows']:,} rows",
        ),
        (
            "4. daily incremental run (1 new day, all tickers)",
            f"{daily['total_s']:.2f} s",
            f"peak {daily['peak_rss_mb']:,.0f} MB; gate {daily['raw_gate_s']:.2f} s, load {daily['load_s']:.2f} s, models+gate {daily['models_and_gate_s']:.2f} s",
        ),
        (
            "5. yfinance path, per ticker (25 years, offline)",
            f"{ex['per_ticker_ms']:.0f} ms",
            ex["note"],
        ),
        (
            f"1 again with CAPWATCH_DUCKDB_MEMORY_LIMIT={CAPPED_LIMIT}",
            f"{capped['total_s']:.1f} s",
            f"peak {capped['peak_rss_mb']:,.0f} MB",
        ),
    ]
    ratios = [
        (
            "(1) / (2): capwatch vs bare DuckDB",
            cw["total_s"] / bare["total_s"],
            "<= 2",
            cw["total_s"] / bare["total_s"] <= 2,
        ),
        (
            "(3) / (1): naive vs capwatch",
            naive["extrapolated_s"] / cw["total_s"],
            ">= 100",
            naive["extrapolated_s"] / cw["total_s"] >= 100,
        ),
        (
            "(4) / (1): daily vs full backfill",
            daily["total_s"] / cw["total_s"],
            "< 0.10",
            daily["total_s"] / cw["total_s"] < 0.10,
        ),
        (
            "GX / (1): validation share of the pipeline",
            gx / cw["total_s"],
            "< 0.25",
            gx / cw["total_s"] < 0.25,
        ),
        ("peak memory of (1), MB", cw["peak_rss_mb"], "< 2048", cw["peak_rss_mb"] < 2048),
        ("peak memory of (4), MB", daily["peak_rss_mb"], "< 2048", daily["peak_rss_mb"] < 2048),
    ]
    lines = [
        "# capwatch benchmark results",
        "",
        f"Command: `uv run python -m bench.run --tickers {args.tickers} --years {args.years}` "
        f"({n_rows:,} price rows, generated, seed 8). All figures from one run on "
        f"{datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}. {_versions()}.",
        "",
        "| step | time | notes |",
        "|---|---:|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "| ratio | measured | target | met |",
        "|---|---:|---:|:---:|",
        *[f"| {a} | {b:,.3f} | {c} | {'yes' if ok else 'NO'} |" for a, b, c, ok in ratios],
        "",
    ]
    notes = (HERE / "NOTES.md").read_text() if (HERE / "NOTES.md").exists() else ""
    kept = kept_section(args.out, WHOLE_MARKET)  # written by bench/whole_market.py
    args.out.write_text("\n".join(lines) + ("\n" + notes if notes else "") + kept)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
