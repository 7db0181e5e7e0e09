"""The whole-market benchmark: 6,000 tickers x 25 years through the flows' real chunked path.

    uv run python -m bench.whole_market                          # 6,000 x 25 years (~38M rows)
    uv run python -m bench.whole_market --tickers 300 --years 5  # a quick look

Writes bench/WHOLE_MARKET.md. One run, each step in its own process (its peak memory is its own):
  1. full backfill: the real ``backfill`` flow (Prefect, parallel extract tasks staging Parquet,
     the one writer, models, audits, alerts) over a generated market that is made ticker by
     ticker as chunks ask for it (``GeneratedSource``: never all in memory);
  2. the bare-DuckDB floor on the same stream: the same chunks generated and appended with
     INSERT ... FROM the frame, one upsert per table (prices: a MERGE on ticker and date), the
     same SQL models, with DuckDB's default memory (80 % of RAM); and 2b. the same under
     capwatch's memory limit;
  3. the daily run (the real ``daily`` flow) on top of 1, for each of the last DAILY_SESSIONS
     sessions in turn (the median is reported: of the calls' wall clock, and of the flow runs' own
     time as Prefect records it, see ``_flow_run_seconds``);
  4. 1 and 3 again at 5 years of history: the daily run's cost must not grow with history;
  5. extraction of every ticker's daily window through the real yfinance code path against an
     offline Yahoo that answers 429 above its rate limit: time vs the floor requests / rate.
The flows' source is the generated market (the only change to the flow: ``make_source``).
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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
END = date(2026, 11, 20)  # the last generated session
# The daily run is measured on the last DAILY_SESSIONS sessions, one run each (the backfill stops
# before them) and reported as their median: one run's Prefect task-run overhead alone moves by
# a second or two from run to run on this shared machine (three sessions at 6,000 x 25:
# 5.90 to 7.56 s of flow-run time).
DAILY_SESSIONS = 5
CRASH = date(2025, 1, 27)
# CAPWATCH_DUCKDB_MEMORY_LIMIT for every capwatch step (the floor's: see step_floor)
MEMORY_LIMIT = "1GB"


def _peak_mb() -> float:
    """Peak RSS of this process and of the children it waited for (Prefect's API server)."""
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(me, kids)


def _start(years: int) -> date:
    return date(END.year - years, 1, 2)


def _daily_days() -> list[date]:
    from capwatch.calendar import trading_days

    return [d.date() for d in trading_days(END - timedelta(days=14), END)[-DAILY_SESSIONS:]]


def _source(years: int):
    from capwatch.extract.generated import GeneratedSource

    return GeneratedSource(_start(years), END, seed=18, crash_day=CRASH)


def _env(db: Path, chunk: int) -> None:
    os.environ.update(
        CAPWATCH_SHARES_SOURCE="none",
        CAPWATCH_CHUNK_SIZE=str(chunk),
        CAPWATCH_DUCKDB_MEMORY_LIMIT=MEMORY_LIMIT,
        CAPWATCH_REPORTS_DIR=str(db.parent / "reports"),
        PREFECT_LOGGING_LEVEL="WARNING",
    )


def _warm() -> float:
    """What every process pays once, whatever the data: Prefect's API server (a running server
    in production), importing Great Expectations and building the NYSE calendar. Reported beside
    the steps, not in them (as in bench/run.py)."""
    from prefect import flow

    from capwatch.calendar import nyse
    from capwatch.validate.suites import warm_up

    t0 = time.perf_counter()
    flow(name="bench-warm-up")(lambda: None)()
    warm_up()
    nyse()
    return time.perf_counter() - t0


def _stream(tickers: int, years: int, chunk: int):
    """The floors' stream: the generated market chunk by chunk over the backfill's range. The
    source and the range are made here, before the caller's clock starts; each chunk is made as
    it is asked for."""
    from capwatch.replay.market import tickers_for

    source = _source(years)
    names = tickers_for(tickers)
    start, end = _start(years), _daily_days()[0] - timedelta(days=1)
    return (source.fetch(names[i : i + chunk], start, end) for i in range(0, len(names), chunk))


def step_backfill(db: Path, tickers: int, years: int, chunk: int) -> dict:
    _env(db, chunk)
    import flows.pipeline as pipeline
    from capwatch.replay.market import tickers_for

    source = _source(years)
    pipeline.make_source = lambda settings: source  # the generated market instead of Yahoo
    once = _warm()
    t0 = time.perf_counter()
    summary = pipeline.backfill(
        start=_start(years),
        end=_daily_days()[0] - timedelta(days=1),
        tickers=tickers_for(tickers),
        source="replay:demo",  # named for the settings check; make_source above is what runs
        db=str(db),
        chunk_size=chunk,
        # The range runs from 2 January, `years` years back, to November: `years` years and most
        # of one more. In chunks of `years` years it would be two chunks per 200 tickers (the
        # second of 11 months), each paying what a chunk costs whatever its length (a request,
        # a Great Expectations run, a transaction; the generated market makes every ticker's
        # whole history for any chunk). One chunk per 200 tickers over the whole range, the
        # chunks the floors read.
        chunk_years=years + 1,
    )
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "chunks": len(summary.chunks),
        "rows_inserted": summary.rows_inserted,
        "models_s": sum(m.seconds for m in summary.models),
        "tasks": _task_seconds(summary.run_id),
        "problems": len(summary.problems),
        "peak_rss_mb": _peak_mb(),
        "file_mb": db.stat().st_size / 1e6,
        "once_per_process_s": once,
    }


def _task_seconds(flow_run_id: str) -> dict[str, float]:
    """Where a flow run's time went, from Prefect's own records of its task runs: the seconds
    each kind of task ran (extract and load summed over chunks), and the ingest's wall clock
    (first extract start to last load end: extraction and loads overlap)."""
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    runs = []
    with get_client(sync_client=True) as client:
        only = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)]))
        while batch := client.read_task_runs(flow_run_filter=only, limit=200, offset=len(runs)):
            runs += batch
    out: dict[str, float] = {}
    spans: list[tuple] = []
    for t in runs:
        # "load ALFA,... 2001-01-02..": a run name of the flow's own, its first word; else
        # Prefect's default "build-models-088": the task's name before its suffix
        kind = t.name.split()[0].rsplit("-", 1)[0]
        seconds = t.total_run_time.total_seconds()
        out[kind] = out.get(kind, 0.0) + seconds
        if kind in ("extract", "load") and t.start_time and t.end_time:
            spans.append((t.start_time, t.end_time))
    if spans:
        out["ingest_wall"] = (max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds()
    return out


def _floor(db: Path, tickers: int, years: int, chunk: int, config: dict) -> dict:
    """The least any DuckDB pipeline can do with the same stream: append each generated chunk,
    then one upsert per table and the same SQL models."""
    import duckdb

    from bench.run import bare_upsert
    from capwatch.transform import run_models
    from capwatch.warehouse import migrate

    con = duckdb.connect(str(db), config=config)
    migrate(con)
    con.execute(
        "create temp table stage_prices (ticker varchar, date timestamp, open double, high double, "
        "low double, close double, volume bigint)"
    )
    con.execute("create temp table stage_splits (ticker varchar, date timestamp, ratio double)")
    con.execute(
        "create temp table stage_shares (ticker varchar, share_class varchar, as_of timestamp, "
        "shares bigint, reported_date timestamp)"
    )
    stream = _stream(tickers, years, chunk)
    t0 = time.perf_counter()
    for batch in stream:
        p, sp, sh = batch.prices, batch.splits, batch.shares  # noqa: F841 - scanned by name
        con.execute(
            "insert into stage_prices select ticker, date, open, high, low, close, volume from p"
        )
        if len(sp):
            con.execute("insert into stage_splits select ticker, date, ratio from sp")
        con.execute(
            "insert into stage_shares select ticker, share_class, as_of, shares, reported_date from sh"
        )
    t1 = time.perf_counter()
    bare_upsert(con, "stage_prices", "stage_splits", "stage_shares")
    t2 = time.perf_counter()
    run_models(con)
    t3 = time.perf_counter()
    con.close()
    return {
        "append_s": t1 - t0,
        "upsert_s": t2 - t1,
        "models_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_mb": _peak_mb(),
    }


def step_floor(db: Path, tickers: int, years: int, chunk: int) -> dict:
    """The floor with DuckDB's default memory limit (80 % of RAM): the whole machine, a harder
    mark for capwatch (held to MEMORY_LIMIT) to meet."""
    return _floor(db, tickers, years, chunk, {})


def step_floor_limited(db: Path, tickers: int, years: int, chunk: int) -> dict:
    """The floor under capwatch's memory limit (MEMORY_LIMIT). Without the prices' primary-key
    index (migration 013) its one upsert of every row fits there too, so 2b is the floor's own
    steps on one connection. (With the index it did not: out of memory at ~25M rows, so 2b was
    then each chunk upserted on its own connection.)"""
    return _floor(db, tickers, years, chunk, {"memory_limit": MEMORY_LIMIT})


def step_daily(db: Path, tickers: int, years: int, chunk: int) -> dict:
    _env(db, chunk)
    import flows.pipeline as pipeline
    from capwatch.replay.market import tickers_for

    source = _source(years)
    source.keep_from(tickers_for(tickers), END - timedelta(days=40))  # the vendor's answers, ready
    pipeline.make_source = lambda settings: source
    once = _warm()
    runs = []
    for day in _daily_days():  # one new session each, as the schedule would run them
        t0 = time.perf_counter()
        summary = pipeline.daily(
            tickers=tickers_for(tickers), source="replay:demo", db=str(db), today=day
        )
        runs.append((time.perf_counter() - t0, summary))
    runs_s = [round(t, 3) for t, _ in runs]
    total, summary = sorted(runs, key=lambda r: r[0])[len(runs) // 2]  # the median run
    flow_s = _flow_run_seconds([s.run_id for _, s in runs])
    return {
        "total_s": total,
        "runs_s": runs_s,
        "flow_s": sorted(flow_s)[len(flow_s) // 2],
        "flow_runs_s": [round(t, 3) for t in flow_s],
        "rows_inserted": summary.rows_inserted,
        "rows_updated": summary.rows_updated,
        "models_s": sum(m.seconds for m in summary.models),
        "tasks": _task_seconds(summary.run_id),
        "slowest_models": sorted(
            ((m.name, round(m.seconds, 3)) for m in summary.models), key=lambda x: -x[1]
        )[:6],
        "chunks": len(summary.chunks),
        "peak_rss_mb": _peak_mb(),
        "once_per_process_s": once,
    }


def _flow_run_seconds(flow_run_ids: list[str]) -> list[float]:
    """Each flow run's own time as Prefect records it (its time in the Running state). The call's
    wall clock adds Prefect's engine around it, and on the way out the engine joins its flow-run
    heartbeat thread, which sleeps in steps of one second (prefect/flow_engine.py,
    ``_send_heartbeats``): every call then ends on a whole second after that thread started, so
    the wall clock of a run of a few seconds is rounded up by 0 to 1 s at random."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return [client.read_flow_run(UUID(i)).total_run_time.total_seconds() for i in flow_run_ids]


def step_extract(tickers: int, rate: float) -> dict:
    """Every ticker's daily window (the last week) through yfinance, against an offline Yahoo
    that refuses more than ``rate`` requests in any second; the client is paced at ``rate``."""
    import yfinance as yf

    from capwatch.extract.generated import GeneratedSource
    from capwatch.extract.yahoo import YahooSource
    from capwatch.replay import offline_session
    from capwatch.replay.market import tickers_for
    from capwatch.replay.yahoo import MarketFrames, OfflineYahoo

    yf.set_tz_cache_location(tempfile.mkdtemp())  # a fresh machine: every timezone asked once
    names = tickers_for(tickers)
    window = GeneratedSource(END - timedelta(days=60), END, seed=18).fetch(
        names, END - timedelta(days=60), END
    )
    frames = MarketFrames(
        prices=window.prices,
        splits=window.splits,
        shares=window.shares[["ticker", "as_of", "shares"]],
    )
    adapter = OfflineYahoo(frames, max_rate=rate)
    src = YahooSource(
        session=offline_session(adapter),
        concurrency=8,
        rate=rate * 0.95,  # a user sets the client a little under the source's limit
        backoff_seconds=1.0,
        today=lambda: END,
    )
    t0 = time.perf_counter()
    out = src.fetch(names, END - timedelta(days=7), END)
    total = time.perf_counter() - t0
    seen = sum(adapter.requests_seen.values())
    return {
        "tickers": tickers,
        "requests": seen + adapter.rejected,
        "rejected_429": adapter.rejected,
        "floor_s": seen / rate,
        "total_s": total,
        "rows": len(out.prices),
        "problems": len(out.problems),
        "peak_rss_mb": _peak_mb(),
    }


# The measured steps a results file holds (what `--resume` may keep).
STEPS = (
    "backfill_long",
    "daily_long",
    "backfill_short",
    "daily_short",
    "floor",
    "floor_limited",
    "extract",
)


def _child(step: str, **kw) -> dict:
    cmd = [sys.executable, "-m", "bench.whole_market", "--step", step]
    for k, v in kw.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    if out.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{p} {version(p)}" for p in ("duckdb", "prefect", "yfinance", "pandas"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=6000)
    ap.add_argument("--years", type=int, default=25)
    ap.add_argument("--short-years", type=int, default=5)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--rate", type=float, default=40.0)
    ap.add_argument("--extract-tickers", type=int, default=None)
    ap.add_argument("--step")
    ap.add_argument("--resume", help="a JSON of steps already measured: run only the others")
    ap.add_argument("--db")
    ap.add_argument("--out", default=str(HERE / "WHOLE_MARKET.md"))
    a = ap.parse_args()
    if a.step:
        db = Path(a.db) if a.db else None
        fn = {
            "backfill": lambda: step_backfill(db, a.tickers, a.years, a.chunk),
            "floor": lambda: step_floor(db, a.tickers, a.years, a.chunk),
            "floor-limited": lambda: step_floor_limited(db, a.tickers, a.years, a.chunk),
            "daily": lambda: step_daily(db, a.tickers, a.years, a.chunk),
            "extract": lambda: step_extract(a.tickers, a.rate),
        }[a.step]
        print(json.dumps(fn()))
        return

    work = Path(tempfile.mkdtemp(prefix="capwatch-wm-"))
    # --resume: the figures of steps already measured in this session (a later step failed)
    r = json.loads(Path(a.resume).read_text()) if a.resume else {}
    for label in ("long", "short"):
        if f"daily_{label}" in r and "flow_s" not in r[f"daily_{label}"]:
            # a daily step from before it recorded its flow runs' own time: its backfill and it
            # are measured again (the daily step needs the backfill's file)
            for step in ("backfill", "daily", "file_mb"):
                r.pop(f"{step}_{label}", None)
    # what the resumed file had measured, and when that run started (said in the results' header)
    r["kept"] = sorted(k for k in r if k in STEPS)
    r["kept_from"] = r.get("started")
    common = dict(tickers=a.tickers, chunk=a.chunk)
    started = datetime.now(UTC)
    r["started"] = f"{started:%Y-%m-%d %H:%M}"
    for label, years in (("long", a.years), ("short", a.short_years)):
        if f"daily_{label}" in r:
            continue
        db = work / f"{label}.duckdb"
        r[f"backfill_{label}"] = _child("backfill", db=db, years=years, **common)
        print(label, "backfill", r[f"backfill_{label}"], flush=True)
        r[f"daily_{label}"] = _child("daily", db=db, years=years, **common)
        print(label, "daily", r[f"daily_{label}"], flush=True)
        r[f"file_mb_{label}"] = db.stat().st_size / 1e6
        db.unlink()
    r["floor"] = r.get("floor") or _child(
        "floor", db=work / "floor.duckdb", years=a.years, **common
    )
    print("floor", r["floor"], flush=True)
    r["floor_limited"] = r.get("floor_limited") or _child(
        "floor-limited", db=work / "floor-limited.duckdb", years=a.years, **common
    )
    print("floor under the memory limit", r["floor_limited"], flush=True)
    r["extract"] = r.get("extract") or _child(
        "extract", tickers=a.extract_tickers or a.tickers, rate=a.rate
    )
    print("extract", r["extract"], flush=True)
    _write(a, r, started)
    shutil.rmtree(work, ignore_errors=True)


def _phases(bl: dict, fll: dict) -> str:
    """Where the backfill's time went (Prefect's task-run records), and what it is beside the
    floor under the same limit without the two steps the floors do not have: the model audits
    (the build task beyond its models: audits and publication) and the alert evaluation."""
    t = bl.get("tasks")
    if not t:
        return ""
    beyond = t["build-models"] - bl["models_s"]
    rest = bl["total_s"] - beyond - t["alert"]
    return (
        f"; by task: ingest {t['ingest_wall']:,.1f} s wall clock (extract tasks "
        f"{t['extract']:,.1f} s, writer {t['load']:,.1f} s), build {t['build-models']:,.1f} s "
        f"(audits and publication {beyond:,.1f} s), alert {t['alert']:,.1f} s; without the "
        f"audits and the alert step {rest:,.1f} s = {rest / fll['total_s']:.3f} x 2b"
    )


def _write(a, r: dict, started: datetime) -> None:
    bl, bs, dl, ds, fl, ex = (
        r["backfill_long"],
        r["backfill_short"],
        r["daily_long"],
        r["daily_short"],
        r["floor"],
        r["extract"],
    )
    fll = r["floor_limited"]
    ratios = [
        ("full backfill / bare-DuckDB floor", bl["total_s"] / fl["total_s"], "<= 1.25"),
        (
            f"full backfill / bare-DuckDB floor under the same memory limit ({MEMORY_LIMIT})",
            bl["total_s"] / fll["total_s"],
            "<= 1.25",
        ),
        (
            "peak memory of any step, MB",
            max(x["peak_rss_mb"] for x in (bl, bs, dl, ds, ex)),
            "< 2048",
        ),
        (f"daily / full backfill at {a.years} years", dl["total_s"] / bl["total_s"], "< 0.02"),
        (
            f"daily at {a.years} years / daily at {a.short_years} years, wall clock of the call",
            dl["total_s"] / ds["total_s"],
            "<= 1.2",
        ),
        (
            f"daily at {a.years} years / daily at {a.short_years} years, the flow runs' own time "
            "(Prefect's record, without the engine's whole-second exit wait: see the notes)",
            dl["flow_s"] / ds["flow_s"],
            "<= 1.2",
        ),
        ("extraction / its rate floor (requests / rate)", ex["total_s"] / ex["floor_s"], "<= 1.2"),
    ]

    def met(value, target):
        op, bound = target.split()
        bound = float(bound)
        return {"<=": value <= bound, "<": value < bound}[op]

    lines = [
        "# capwatch whole-market benchmark",
        "",
        f"Command: `uv run python -m bench.whole_market --tickers {a.tickers} --years {a.years} "
        f"--chunk {a.chunk} --rate {a.rate:g}` (generated market, seed 18, last session {END}). "
        + (
            f"All figures from one run started {started:%Y-%m-%d %H:%M} UTC"
            if not r.get("kept")
            else f"Figures from the run started {started:%Y-%m-%d %H:%M} UTC, except "
            f"{', '.join(r['kept'])}: kept from the run started {r['kept_from'] or '(unknown)'} UTC "
            "(`--resume`)"
        )
        + ". Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"{_versions()}. DuckDB memory limit {MEMORY_LIMIT} in every capwatch step; the floor (2) has "
        "DuckDB's default (80 % of RAM); 2b is the same floor under the same limit as capwatch.",
        "",
        "| step | time | notes |",
        "|---|---:|---|",
        f"| 1. full backfill, {a.tickers:,} tickers x {a.years} years (real flow) | "
        f"{bl['total_s']:,.1f} s | {bl['rows_inserted']:,} rows, {bl['chunks']} chunks, models "
        f"{bl['models_s']:,.1f} s, peak {bl['peak_rss_mb']:,.0f} MB, file {r['file_mb_long']:,.0f} MB"
        f"{_phases(bl, fll)} |",
        f"| 2. bare-DuckDB floor, same stream | {fl['total_s']:,.1f} s | append "
        f"{fl['append_s']:,.1f} s, upsert {fl['upsert_s']:,.1f} s, models {fl['models_s']:,.1f} s, "
        f"peak {fl['peak_rss_mb']:,.0f} MB |",
        f"| 2b. the same floor under capwatch's memory limit ({MEMORY_LIMIT}) | "
        f"{fll['total_s']:,.1f} s | append {fll['append_s']:,.1f} s, upsert "
        f"{fll['upsert_s']:,.1f} s, models {fll['models_s']:,.1f} s, peak "
        f"{fll['peak_rss_mb']:,.0f} MB |",
        f"| 3. daily run, one new session (real flow; the median of {len(dl['runs_s'])} sessions run one "
        f"after the other: {', '.join(f'{x:.2f}' for x in dl['runs_s'])} s) | {dl['total_s']:,.2f} s | "
        f"{dl['rows_inserted']:,} new rows, {dl['chunks']} chunks, models {dl['models_s']:,.2f} s, "
        f"peak {dl['peak_rss_mb']:,.0f} MB; the flow runs' own time (Prefect) "
        f"{', '.join(f'{x:.2f}' for x in dl['flow_runs_s'])} s, median {dl['flow_s']:,.2f} s |",
        f"| 1 at {a.short_years} years | {bs['total_s']:,.1f} s | {bs['rows_inserted']:,} rows, "
        f"file {r['file_mb_short']:,.0f} MB |",
        f"| 3 at {a.short_years} years (sessions: {', '.join(f'{x:.2f}' for x in ds['runs_s'])} s) | "
        f"{ds['total_s']:,.2f} s | models {ds['models_s']:,.2f} s; the flow runs' own time "
        f"{', '.join(f'{x:.2f}' for x in ds['flow_runs_s'])} s, median {ds['flow_s']:,.2f} s |",
        f"| once per process, not in the steps: Prefect API server, GX import, NYSE calendar | "
        f"{dl['once_per_process_s']:,.1f} s | a worker's flow-run process pays GX and the "
        f"calendar each run; the server runs on its own in production |",
        f"| 5. extraction, {ex['tickers']:,} tickers' last week via yfinance, offline Yahoo "
        f"limited to {a.rate:g} req/s | {ex['total_s']:,.1f} s | {ex['requests']:,} requests "
        f"({ex['rejected_429']} answered 429), floor {ex['floor_s']:,.1f} s, "
        f"{ex['problems']} problems |",
        "",
        "| ratio | measured | target | met |",
        "|---|---:|---:|:---:|",
    ]
    for name, value, target in ratios:
        lines.append(
            f"| {name} | {value:,.3f} | {target} | {'yes' if met(value, target) else 'no'} |"
        )
    notes = HERE / "WHOLE_MARKET_NOTES.md"
    if notes.exists():
        lines += ["", notes.read_text().rstrip()]
    Path(a.out).write_text("\n".join(lines) + "\n")
    # The targets' ratios also go into bench/RESULTS.md (issue 18), in their own marked section.
    from bench.run import WHOLE_MARKET, write_section

    table_at = lines.index("| ratio | measured | target | met |")
    write_section(
        HERE / "RESULTS.md",
        WHOLE_MARKET,
        "\n".join(
            [
                "## Whole market: 6,000 tickers x 25 years (bench/whole_market.py)",
                "",
                (
                    f"From one run started {started:%Y-%m-%d %H:%M} UTC"
                    if not r.get("kept")
                    else f"From the run started {started:%Y-%m-%d %H:%M} UTC, with "
                    f"{', '.join(r['kept'])} kept from the run started {r['kept_from']} UTC"
                )
                + "; every step, figure and note: [WHOLE_MARKET.md](WHOLE_MARKET.md).",
                "",
                *lines[table_at : table_at + 2 + len(ratios)],
            ]
        ),
    )
    (HERE / "whole_market.json").write_text(json.dumps(r, indent=1, default=str))


if __name__ == "__main__":
    main()
