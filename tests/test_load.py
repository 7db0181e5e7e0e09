"""Loads are idempotent, corrections replace, and a failed load leaves the previous state."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from capwatch import load as load_mod
from capwatch.extract.csv import CsvSource
from capwatch.load import load_batch
from capwatch.validate import gate_raw
from tests.conftest import gate_and_load, table

TICKERS = ["NVDA", "AVGO", "ORCL", "AAPL"]


def _load(con, src, run_id, start=date(2023, 1, 1), end=date(2025, 6, 30)):
    return gate_and_load(con, src.fetch(TICKERS, start, end), src.name, run_id, TICKERS, start, end)


def test_reload_changes_nothing(db, shared_dir):
    src = CsvSource(shared_dir)
    first = _load(db, src, "run-1")
    assert first.inserted > 2000 and first.updated == 0
    before = {
        t: table(db, t, "all")
        for t in ("prices_daily", "splits", "shares_outstanding", "dividends")
    }
    second = _load(db, src, "run-2")
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, first.inserted)
    for t, frame in before.items():
        pd.testing.assert_frame_equal(
            table(db, t, "all"), frame
        )  # provenance (run_id, loaded_at) included


def test_corrected_value_replaces_the_old_one(db, shared_dir):
    src = CsvSource(shared_dir)
    _load(db, src, "run-1")
    batch = src.fetch(["NVDA"], date(2025, 1, 27), date(2025, 1, 27))
    batch.prices.loc[:, "close"] = 118.5  # the vendor corrects the close
    batch.shares = batch.shares.iloc[0:0]
    clean, q, _ = gate_raw(batch, date(2026, 11, 23))
    res = load_batch(
        db,
        clean,
        q,
        source=src.name,
        run_id="run-fix",
        flow="test",
        start=None,
        end=None,
        tickers=["NVDA"],
    )
    assert res.updated == 1 and res.inserted == 0
    row = db.execute(
        "select close, run_id from prices_daily where ticker='NVDA' and date='2025-01-27'"
    ).fetchone()
    assert row == (118.5, "run-fix")


def test_one_batch_of_new_changed_and_unchanged_rows_counts_each_and_keeps_what_it_replaces(
    db, shared_dir
):
    """New keys are inserted, a corrected value replaces its row (the old row kept in
    revisions), the rest stays as stored; the change counts from its earliest day."""
    src = CsvSource(shared_dir)
    _load(db, src, "run-1", end=date(2024, 12, 31))
    batch = src.fetch(["NVDA", "AVGO"], date(2024, 12, 1), date(2025, 1, 31))
    batch.shares = batch.shares.iloc[0:0]
    p = batch.prices
    fixed = (p["ticker"] == "NVDA") & (pd.to_datetime(p["date"]) == "2024-12-16")
    old_close = float(p.loc[fixed, "close"].iloc[0])
    p.loc[fixed, "close"] = old_close + 1.0
    n_new = int((pd.to_datetime(p["date"]) >= "2025-01-01").sum())
    n_dec = len(p) - n_new
    stored = db.execute("select count(*) from prices_daily").fetchone()[0]
    res = gate_and_load(db, batch, src.name, "run-2", ["NVDA", "AVGO"], None, None)
    assert res.by_table["prices_daily"] == (n_new, 1, n_dec - 1)
    assert res.earliest_change == date(2024, 12, 16)
    assert db.execute("select count(*) from prices_daily").fetchone()[0] == stored + n_new
    assert db.execute(
        "select close, run_id from prices_daily where ticker = 'NVDA' and date = '2024-12-16'"
    ).fetchone() == (old_close + 1.0, "run-2")
    ((old_row,),) = db.execute(
        "select old_row from revisions where table_name = 'prices_daily' and run_id = 'run-2'"
    ).fetchall()
    assert (json.loads(old_row)["close"], json.loads(old_row)["run_id"]) == (old_close, "run-1")
    assert db.execute(
        "select count(*) from prices_daily where run_id = 'run-2' and date < '2024-12-16'"
    ).fetchone() == (0,)


def test_crash_mid_load_leaves_previous_state(db, shared_dir, monkeypatch):
    src = CsvSource(shared_dir)
    _load(db, src, "run-1", end=date(2024, 12, 31))
    before = table(db, "prices_daily", "ticker, date")
    real = load_mod._upsert

    def crash_on_shares(con, t, *a, **kw):
        if t.name == "shares_outstanding":
            raise RuntimeError("disk full")
        return real(con, t, *a, **kw)

    monkeypatch.setattr(load_mod, "_upsert", crash_on_shares)
    with pytest.raises(RuntimeError, match="disk full"):
        _load(
            db, src, "run-2", end=date(2025, 6, 30)
        )  # prices for 2025 were written before the crash
    pd.testing.assert_frame_equal(table(db, "prices_daily", "ticker, date"), before)
    assert db.execute("select count(*) from load_runs where run_id='run-2'").fetchone() == (0,)


@pytest.mark.file_only
def test_migrations_are_versioned_and_applied_once(db_path):
    from capwatch.warehouse import connect, migrations

    con = connect(db_path)
    con.close()
    con = connect(db_path)
    rows = con.execute("select version, name from schema_migrations order by version").fetchall()
    assert rows == [(v, n) for v, n, _ in migrations()]
    con.close()


@pytest.mark.file_only
def test_prices_lose_their_key_index_and_keep_every_row_and_one_row_per_key(
    db_path, shared_dir, monkeypatch
):
    """Migration 013 rebuilds a stored prices_daily without its primary key: every row stays, in
    its stored order; a reload still inserts nothing; a duplicated day is what `check` reports."""
    from click.testing import CliRunner

    from capwatch import warehouse
    from capwatch.cli import main

    every = warehouse.migrations
    monkeypatch.setattr(warehouse, "migrations", lambda: [m for m in every() if m[0] < 13])
    src = CsvSource(shared_dir)
    con = warehouse.connect(db_path)
    first = _load(con, src, "run-1")
    before = con.execute("select * from prices_daily").fetchdf()  # stored order
    con.close()
    monkeypatch.setattr(warehouse, "migrations", every)

    con = warehouse.connect(db_path)
    assert con.execute(
        "select count(*) from duckdb_constraints() where table_name = 'prices_daily' "
        "and constraint_type = 'PRIMARY KEY'"
    ).fetchone() == (0,)
    pd.testing.assert_frame_equal(con.execute("select * from prices_daily").fetchdf(), before)
    second = _load(con, src, "run-2")
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, first.inserted)
    assert con.execute("select count(*) from prices_daily").fetchone() == (len(before),)
    con.close()
    assert CliRunner().invoke(main, ["check", "--db", str(db_path)]).exit_code == 0

    con = warehouse.connect(db_path)
    con.execute("insert into prices_daily select * from prices_daily where ticker = 'NVDA' limit 2")
    con.close()
    res = CliRunner().invoke(main, ["check", "--db", str(db_path)])
    assert res.exit_code != 0
    assert "prices_daily: 2 duplicated keys" in res.output


@pytest.mark.file_only
def test_a_load_stores_its_rows_in_date_order(db, shared_dir):
    """Rows land day by day, not ticker by ticker, so a backfill chunk's years lie in row groups of
    their own and reads of recent days skip the rest by the date's zone maps."""
    _load(db, CsvSource(shared_dir), "run-1")
    stored = db.execute("select date, ticker from prices_daily").fetchall()  # stored order
    assert len({t for _, t in stored}) == len(TICKERS)
    assert stored == sorted(stored)


@pytest.mark.file_only
def test_a_file_that_is_not_duckdb_is_refused_and_untouched(tmp_path):
    from capwatch.warehouse import WarehouseError, connect

    bad = tmp_path / "prices.duckdb"
    bad.write_bytes(b"date,ticker,close\n2025-01-27,NVDA,118.42\n")
    with pytest.raises(WarehouseError, match="not a DuckDB database file"):
        connect(bad)
    assert bad.read_bytes() == b"date,ticker,close\n2025-01-27,NVDA,118.42\n"


def test_duckdb_memory_limit_comes_from_the_environment(tmp_path, monkeypatch):
    from capwatch.settings import Settings
    from capwatch.warehouse import WarehouseError, open_warehouse

    monkeypatch.setenv("CAPWATCH_DUCKDB_MEMORY_LIMIT", "700MB")
    settings = Settings.from_env(db_path=tmp_path / "w.duckdb")
    with open_warehouse(settings) as con:
        assert con.execute("select current_setting('memory_limit')").fetchone() == (
            "667.5 MiB",
        )  # 700e6 bytes
    monkeypatch.setenv("CAPWATCH_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(WarehouseError, match="CAPWATCH_DUCKDB_MEMORY_LIMIT='lots'"):
        open_warehouse(Settings.from_env(db_path=tmp_path / "w.duckdb")).__enter__()


@pytest.mark.file_only
def test_a_writer_that_defers_its_checkpoint_keeps_what_it_committed_in_the_log(tmp_path):
    """A flow's writers close without checkpointing (flows/pipeline.py ``checkpoint_at_end``):
    what they committed is in the write-ahead log, read back by every later open, and only the
    checkpoint at the flow's end puts it in the file itself, which a copy of the file alone shows."""
    import shutil

    from capwatch.settings import Settings
    from capwatch.warehouse import checkpoint, connect, wal_path

    db = tmp_path / "w.duckdb"
    wal = wal_path(db)
    connect(db).close()  # created and migrated, checkpointed on close: no log
    assert not wal.exists()
    con = connect(db, checkpoint_on_close=False)
    con.execute("create table kept as select range as i from range(1000)")
    con.close()
    assert wal.stat().st_size > 0
    reader = connect(db, read_only=True)
    assert reader.execute("select count(*), sum(i) from kept").fetchone() == (1000, 499500)
    reader.close()
    shutil.copy(db, tmp_path / "alone.duckdb")  # the file without its log
    alone = connect(tmp_path / "alone.duckdb", read_only=True)
    assert alone.execute(
        "select count(*) from duckdb_tables() where table_name = 'kept'"
    ).fetchone() == (0,)
    alone.close()

    checkpoint(Settings.from_env(db_path=db))
    assert not wal.exists()
    checkpoint(Settings.from_env(db_path=db))  # no log: the file is not even opened
    checkpoint(Settings.from_env(db_path=tmp_path / "none.duckdb"))
    assert not (tmp_path / "none.duckdb").exists()
    shutil.copy(db, tmp_path / "alone.duckdb")
    alone = connect(tmp_path / "alone.duckdb", read_only=True)
    assert alone.execute("select count(*), sum(i) from kept").fetchone() == (1000, 499500)
    alone.close()
