"""Whole-market plumbing: staged extraction, the one writer, chunks that ask only for their range,
and the generated market the whole-market benchmark streams."""

from __future__ import annotations

import time
from datetime import date

import numpy as np
import pandas as pd
import pytest

from capwatch.calendar import trading_days
from capwatch.extract.generated import GeneratedSource, ticker_index
from capwatch.replay.market import generate_market, tickers_for
from tests.conftest import open_db


def _generated_frames():
    m = generate_market(n_tickers=6, start=date(2012, 1, 3), end=date(2025, 12, 31), seed=5)
    return m, m.yahoo_frames()


def test_a_past_chunk_asks_only_for_its_range_and_is_put_back_as_traded(offline_yahoo):
    """A chunk that ends in the past asks Yahoo for its own days (not up to today), plus one small
    monthly request per ticker for the splits around it; its prices still come out exactly as
    traded, across splits inside, after and before the chunk."""
    market, frames = _generated_frames()
    assert market.splits["ticker"].nunique() >= 2  # splits to undo
    src, adapter = offline_yahoo(frames, today=lambda: date(2026, 1, 5))
    names = sorted(market.prices["ticker"].unique())
    chunks = [
        (date(2012, 1, 3), date(2016, 12, 31)),
        (date(2017, 1, 1), date(2021, 12, 31)),
        (date(2022, 1, 1), date(2026, 1, 5)),
    ]
    got = pd.concat([src.fetch(names, s, e).prices for s, e in chunks], ignore_index=True)
    got = got.sort_values(["ticker", "date"], ignore_index=True)
    want = market.prices.sort_values(["ticker", "date"], ignore_index=True)
    assert len(got) == len(want)
    assert np.abs(got["close"].to_numpy() - want["close"].to_numpy()).max() < 1e-6

    daily = [r for r in adapter.ranges_seen if r[3] == "1d"]
    monthly = [r for r in adapter.ranges_seen if r[3] == "1mo"]
    for ticker, first, last, _ in daily:
        chunk = next(
            c
            for c in chunks
            if c[0] <= first + pd.Timedelta(days=600) <= c[1] + pd.Timedelta(days=600)
        )
        assert last <= max(chunk[1], date(2026, 1, 5)) + pd.Timedelta(days=2), (ticker, first, last)
    past = [r for r in daily if r[2] <= date(2022, 1, 2)]
    assert len(past) == 2 * len(names)  # the two past chunks asked only up to their own end
    assert len(monthly) == len(names)  # one splits request per ticker, shared by its chunks
    days_asked = sum((last - first).days for _, first, last, _ in daily)
    days_needed = sum((e - s).days for s, e in chunks) * len(names)
    assert days_asked < 1.2 * days_needed  # was ~2x: every chunk asked up to today


def test_a_crash_after_extraction_never_fetches_again(prefect_harness, tmp_path, monkeypatch):
    """Chunks an extract task staged before the run died are loaded by the next run without a
    request to the source; a half-written chunk is swept, never loaded."""
    from capwatch.extract import make_source
    from capwatch.settings import Settings
    from capwatch.staging import Staging
    from flows.pipeline import backfill, extract

    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("CAPWATCH_SHARES_SOURCE", "none")
    settings = Settings.from_env(db_path=db, source="replay:demo", tickers=["ALFA", "BRAV"])
    staging = Staging(settings.staging())
    src = make_source(settings)
    start, end = date(2024, 1, 2), date(2024, 12, 31)
    chunk = extract.fn(src, staging, "dead-run", ["ALFA", "BRAV"], start, end, date(2025, 12, 31))
    half = staging.root / "dead-run" / "20240101-20241231-x.tmp-1"
    half.mkdir()
    (half / "prices.parquet").write_bytes(b"PAR1 cut short")
    assert [c.path for c in staging.pending()] == [chunk.path]

    summary = backfill(
        start=start, end=end, tickers=["ALFA", "BRAV"], source="replay:demo", db=str(db)
    )
    assert summary.resumed_chunks == 1
    assert summary.skipped and "already loaded" in summary.skipped  # nothing left to fetch
    assert summary.chunks == []
    assert not staging.root.exists() or not any(staging.root.iterdir())
    con = open_db(db)
    n = con.execute(
        "select count(*) from prices_daily where date between ? and ?", [start, end]
    ).fetchone()[0]
    con.close()
    assert n == 2 * len(trading_days(start, end))  # both tickers, every 2024 session


@pytest.mark.parametrize("rows_per_open", [250_000, 1])
def test_chunks_already_staged_share_one_open_of_the_file(
    prefect_harness, tmp_path, monkeypatch, rows_per_open
):
    """The writer keeps the file open for the next chunk when that chunk is already staged (here
    three left by a dead run), each chunk still in its own transaction; past the row budget of
    one open it closes and opens again."""
    import flows.pipeline as pipeline
    from capwatch.extract import make_source
    from capwatch.settings import Settings
    from capwatch.staging import Staging

    db = tmp_path / "w.duckdb"
    monkeypatch.setenv("CAPWATCH_SHARES_SOURCE", "none")
    monkeypatch.setattr(pipeline, "WRITER_ROWS_PER_OPEN", rows_per_open)
    names = ["ALFA", "BRAV", "CHAR"]
    settings = Settings.from_env(db_path=db, source="replay:demo", tickers=names)
    staging = Staging(settings.staging())
    src = make_source(settings)
    start, end = date(2024, 1, 2), date(2024, 12, 31)
    for t in names:
        pipeline.extract.fn(src, staging, "dead-run", [t], start, end, date(2025, 12, 31))
    opens = []  # the connection each chunk was loaded on (kept alive: distinct objects)
    load_chunk = pipeline._load_chunk

    def spy(flow_name, settings, chunk, summary, accept_corrections, con):
        opens.append(con)
        return load_chunk(flow_name, settings, chunk, summary, accept_corrections, con)

    monkeypatch.setattr(pipeline, "_load_chunk", spy)
    summary = pipeline.backfill(
        start=start, end=end, tickers=names, source="replay:demo", db=str(db)
    )
    assert summary.resumed_chunks == 3 and summary.chunks == []
    assert len({id(c) for c in opens}) == (1 if rows_per_open > 1000 else 3)
    con = open_db(db)
    runs = sorted(con.execute("select tickers from load_runs").fetchall())
    n = con.execute("select count(*) from prices_daily").fetchone()[0]
    con.close()
    assert runs == [([t],) for t in names]  # one transaction per chunk
    assert n == 3 * len(trading_days(start, end))


def test_writers_queue_on_a_prefect_limit_of_one_slot(prefect_harness, tmp_path, monkeypatch):
    """With CAPWATCH_WRITER_LIMIT naming a global concurrency limit of one slot, every write
    takes that slot; a name that does not exist fails the run instead of letting writers collide."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    from flows.pipeline import backfill

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="capwatch-warehouse-test", limit=1)
        )
    monkeypatch.setenv("CAPWATCH_SHARES_SOURCE", "none")
    monkeypatch.setenv("CAPWATCH_WRITER_LIMIT", "capwatch-warehouse-test")
    args = dict(tickers=["ALFA", "BRAV", "CHAR"], source="replay:demo", chunk_size=1)
    summary = backfill(
        start=date(2025, 1, 2), end=date(2025, 3, 31), db=str(tmp_path / "a.duckdb"), **args
    )
    assert len(summary.load) == 3 and summary.rows_inserted > 0
    with get_client(sync_client=True) as client:
        gcl = client.read_global_concurrency_limit_by_name("capwatch-warehouse-test")
    assert gcl.active_slots == 0  # every slot taken was given back

    monkeypatch.setenv("CAPWATCH_WRITER_LIMIT", "no-such-limit")
    with pytest.raises(Exception, match="no-such-limit"):
        backfill(
            start=date(2025, 1, 2), end=date(2025, 3, 31), db=str(tmp_path / "b.duckdb"), **args
        )


def test_offline_yahoo_enforces_a_rate_limit_that_the_client_keeps(offline_yahoo):
    """The benchmark's offline Yahoo answers 429 above its rate; a client paced under that rate
    never sees one."""
    from capwatch.replay import offline_session
    from capwatch.replay.yahoo import OfflineYahoo

    _, frames = _generated_frames()
    adapter = OfflineYahoo(frames, max_rate=20)
    session = offline_session(adapter)
    url = "https://query2.finance.yahoo.com/v8/finance/chart/ALFA?period1=0&period2=1&interval=1d"
    codes = [session.get(url).status_code for _ in range(30)]
    assert codes.count(429) == 10 and adapter.rejected == 10  # a burst: the 21st on is refused

    time.sleep(1.1)
    src, paced = offline_yahoo(frames, rate=15)
    paced.max_rate = 20
    names = sorted(frames.tickers)
    src.fetch(names, date(2025, 1, 2), date(2025, 12, 31))
    assert paced.rejected == 0 and src.requests >= 2 * len(names)


def test_generated_source_streams_any_ticker_on_its_own():
    """Each generated ticker is the same whatever it is asked with: chunks of a 6,000-ticker
    market are generated independently and agree with a whole fetch."""
    assert [ticker_index(t) for t in tickers_for(60)] == list(range(60))
    assert ticker_index("AAPL") is None and ticker_index("ALFA1") is None
    g = GeneratedSource(date(2015, 1, 2), date(2025, 12, 31), crash_day=date(2025, 1, 27))
    names = tickers_for(40)[::7]
    whole = g.fetch(names, date(2015, 1, 2), date(2025, 12, 31))
    parts = pd.concat(
        [g.fetch([t], date(2015, 1, 2), date(2025, 12, 31)).prices for t in reversed(names)]
    ).sort_values(["ticker", "date"], ignore_index=True)
    assert whole.prices.sort_values(["ticker", "date"], ignore_index=True).equals(parts)
    crash = whole.prices[whole.prices["date"] == pd.Timestamp("2025-01-27")].set_index("ticker")
    before = whole.prices[whole.prices["date"] == pd.Timestamp("2025-01-24")].set_index("ticker")
    fall = 1 - crash["close"] / before["close"]
    assert fall["ALFA"] > 0.15  # every 8th ticker crashes that day, the first by 17 %
    bad = g.fetch(["ZZZZ"], date(2024, 1, 2), date(2024, 1, 31))
    assert [str(p) for p in bad.problems] == [
        "ZZZZ (prices): not a generated ticker (unknown symbol)"
    ]


def test_backfill_command_takes_chunk_shape(prefect_harness, tmp_path, monkeypatch):
    """`capwatch backfill --chunk-size N --chunk-years Y`: the chunks the run loads have that shape."""
    from click.testing import CliRunner

    from capwatch.cli import main

    monkeypatch.setenv("CAPWATCH_SHARES_SOURCE", "none")
    db = tmp_path / "c.duckdb"
    args = ["backfill", "--db", str(db), "--source", "replay:demo", "--tickers", "ALFA,BRAV,CHAR"]
    args += [
        "--start",
        "2023-01-02",
        "--end",
        "2024-12-31",
        "--chunk-size",
        "2",
        "--chunk-years",
        "1",
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    con = open_db(db)
    chunks = con.execute(
        "select start_date, end_date, count(*) from load_intervals group by all order by all"
    ).fetchall()
    loads = con.execute(
        "select start_date, len(tickers) from load_runs where flow = 'backfill' order by all"
    ).fetchall()
    con.close()
    # two one-year ranges (a year from the start day), each loaded for the three tickers
    assert chunks == [
        (date(2023, 1, 2), date(2024, 1, 1), 3),
        (date(2024, 1, 2), date(2024, 12, 31), 3),
    ]
    # and each range in chunks of at most two tickers: 2 + 1
    assert [n for _, n in loads] == [1, 2, 1, 2]


def test_generated_source_serves_a_kept_window_as_generated():
    g = GeneratedSource(date(2015, 1, 2), date(2025, 12, 31))
    names = tickers_for(30)[::5]
    fresh = g.fetch(names, date(2025, 12, 1), date(2025, 12, 31))
    g.keep_from(names, date(2025, 11, 1))
    kept = g.fetch(names, date(2025, 12, 1), date(2025, 12, 31))
    assert kept.prices.equals(fresh.prices) and kept.shares.equals(fresh.shares)
    older = g.fetch(names, date(2025, 6, 2), date(2025, 6, 30))  # before the window: generated
    assert older.prices["date"].min() == pd.Timestamp("2025-06-02")


def test_a_run_still_staging_is_neither_swept_nor_loaded_by_another(tmp_path):
    """Flow runs writing one lake share a staging area: while the run that staged a chunk is
    alive, another run neither sweeps its half-written chunks nor loads its complete ones."""
    import socket
    import subprocess

    from capwatch.extract import make_source
    from capwatch.settings import Settings
    from capwatch.staging import Staging
    from flows.pipeline import extract

    settings = Settings.from_env(db_path=tmp_path / "w.duckdb", source="replay:demo")
    staging = Staging(settings.staging())
    chunk = extract.fn(
        make_source(settings),
        staging,
        "live-run",
        ["ALFA"],
        date(2024, 1, 2),
        date(2024, 3, 28),
        date(2025, 12, 31),
    )
    half = chunk.path.parent / "20240101-20240328-x.tmp-424242"
    half.mkdir()
    other = subprocess.Popen(["sleep", "120"])  # stands for the other flow run's process
    (chunk.path.parent / ".owner").write_text(f"{socket.gethostname()}:{other.pid}")
    try:
        assert staging.sweep() == 0 and half.exists()
        assert staging.pending() == []
    finally:
        other.kill()
        other.wait()
    # its process is gone (crashed): its complete chunk is loaded, its half-written one swept
    assert [c.path for c in staging.pending()] == [chunk.path]
    assert staging.sweep() == 1 and not half.exists()


def test_a_backfills_chunks_each_hold_a_range_of_symbols_of_their_own():
    """Chunked in symbol order, a chunk's tickers lie between the ones of the chunks before and
    after it, so a load's check of the stored keys skips earlier chunks' row groups."""
    from capwatch.intervals import plan_chunks

    universe = tickers_for(1000)  # ALFA, BRAV, ..., ZULU, ALFA2, ...: not in symbol order
    late = set(universe[::7])  # listed later: a second range of its own
    gaps = {
        t: [(date(2020, 1, 1), date(2024, 12, 31))]
        if t in late
        else [(date(2001, 1, 1), date(2024, 12, 31))]
        for t in universe
    }
    chunks = plan_chunks(gaps, 100, 30)
    assert sorted(t for ts, _, _ in chunks for t in ts) == sorted(universe)
    for year in (2001, 2020):
        group = [ts for ts, s, _ in chunks if s.year == year]
        assert group and all(len(ts) <= 100 for ts in group)
        flat = [t for ts in group for t in ts]
        assert flat == sorted(flat)  # each chunk a run of the symbols in order, none overlapping
