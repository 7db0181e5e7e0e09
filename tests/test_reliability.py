"""Issue 14: nothing stored is lost, one bad input never stops the rest, exit codes say what happened."""

from __future__ import annotations

import shutil
from datetime import date

import pandas as pd
import pytest
from click.testing import CliRunner

from capwatch.cli import main
from tests.conftest import market_slice, open_db


def _backfill(db, market, *extra, start="2024-05-01", end="2024-06-28", tickers="NVDA,ORCL"):
    return CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            str(db),
            "--source",
            f"csv:{market}",
            "--start",
            start,
            "--end",
            end,
            "--tickers",
            tickers,
            *extra,
        ],
    )


def test_a_file_missing_a_split_is_held_not_applied_and_accepting_it_keeps_what_it_replaced(
    prefect_harness, shared_dir, tmp_path
):
    db = tmp_path / "w.duckdb"
    market = market_slice(shared_dir, tmp_path)
    first = _backfill(db, market)
    assert first.exit_code == 0, first.output
    con = open_db(db)
    stored = con.execute("select * from prices_daily order by all").df()
    con.close()
    # The vendor's next file lacks NVDA's 2024-06-10 10-for-1 split: re-loaded, every NVDA price
    # before it would be 10x smaller.
    sp = pd.read_csv(market / "splits.csv")
    sp[~((sp.ticker == "NVDA") & (sp.date == "2024-06-10"))].to_csv(
        market / "splits.csv", index=False
    )
    held = _backfill(db, market, "--refresh")
    assert held.exit_code == 1, held.output
    assert "corrections held)" in held.output and "  held: correction held: " in held.output
    con = open_db(db)
    pd.testing.assert_frame_equal(
        con.execute("select * from prices_daily order by all").df(), stored
    )
    n_pre_split = int(
        ((stored.ticker == "NVDA") & (stored.date < pd.Timestamp("2024-06-10"))).sum()
    )
    reasons = con.execute(
        "select distinct reason from quarantine where dataset = 'prices_daily'"
    ).fetchall()
    assert reasons == [
        (
            f"correction held: {n_pre_split} stored prices_daily rows of NVDA would change by 0.1x at "
            "once (a split missing from or added to the source, or a unit change); run again with "
            "--accept-corrections to apply it",
        )
    ]
    assert con.execute("select count(*) from revisions").fetchone() == (0,)
    # The range stays pending for NVDA (ORCL is complete): the next backfill tries it again.
    recorded = con.execute(
        "select ticker, count(*) from load_intervals group by ticker order by ticker"
    ).fetchall()
    con.close()
    assert recorded == [
        ("NVDA", 1),
        ("ORCL", 2),
    ]  # ORCL recorded by the refresh too, NVDA only by the first run
    snapshot = pd.Timestamp.now(tz="UTC")

    accepted = _backfill(db, market, "--refresh", "--accept-corrections")
    # Applied as asked; the stored split row now disagrees with the prices, and the models say so.
    assert accepted.exit_code == 1, accepted.output
    assert "held: NVDA 2024-06-10 (splits): split not in the prices" in accepted.output
    con = open_db(db)
    assert con.execute(
        "select count(*) from revisions where table_name = 'prices_daily' and ticker = 'NVDA'"
    ).fetchone() == (n_pre_split,)
    # What was known before the correction is still there, to the row.
    known = con.execute(
        "select ticker, date, open, high, low, close, volume, source from prices_known_at(?) "
        "order by all",
        [snapshot.to_pydatetime()],
    ).df()
    pd.testing.assert_frame_equal(
        known,
        stored[["ticker", "date", "open", "high", "low", "close", "volume", "source"]].reset_index(
            drop=True
        ),
        check_dtype=False,
    )
    con.close()


def test_a_single_corrected_value_is_applied_and_keeps_the_old_one(
    prefect_harness, shared_dir, tmp_path
):
    db = tmp_path / "w.duckdb"
    market = market_slice(shared_dir, tmp_path)
    assert _backfill(db, market).exit_code == 0
    prices = pd.read_csv(market / "prices.csv")
    day = (prices.ticker == "ORCL") & (prices.date == "2024-06-03")
    prices.loc[day, ["open", "high", "low", "close"]] = 123.45  # the vendor corrects one bar
    prices.to_csv(market / "prices.csv", index=False)
    res = _backfill(db, market, "--refresh")
    assert res.exit_code == 0, res.output
    con = open_db(db)
    (old_row, new_row) = con.execute("select old_row, new_row from revisions").fetchone()
    assert (
        '"ticker":"ORCL"' in old_row
        and '"close":123.45' in new_row
        and '"close":123.45' not in old_row
    )
    assert con.execute(
        "select close from prices_daily where ticker = 'ORCL' and date = '2024-06-03'"
    ).fetchone() == (123.45,)
    con.close()


def test_exit_codes_for_partial_and_total_failure(prefect_harness, shared_dir, tmp_path):
    market = market_slice(shared_dir, tmp_path)
    none_known = _backfill(tmp_path / "a.duckdb", market, tickers="NOSUCH,NOPE")
    assert none_known.exit_code == 5 and "nothing landed" in none_known.output
    header_only = tmp_path / "header"
    header_only.mkdir()
    (header_only / "prices.csv").write_text("date,ticker,open,high,low,close,volume\n")
    res = _backfill(tmp_path / "b.duckdb", header_only, tickers="NVDA")
    assert res.exit_code == 5, res.output
    bad_env = CliRunner().invoke(
        main, ["losses", "--db", str(tmp_path / "c.duckdb")], env={"CAPWATCH_HISTORY_YEARS": "abc"}
    )
    assert bad_env.exit_code == 3
    assert bad_env.output.strip() == "capwatch: CAPWATCH_HISTORY_YEARS='abc': not a whole number"
    assert CliRunner().invoke(main, ["losses", "--top", "-1"]).exit_code == 2


def test_future_dates_never_count_as_loaded(prefect_harness, shared_dir, tmp_path):
    from flows.pipeline import ny_today

    db = tmp_path / "w.duckdb"
    market = market_slice(shared_dir, tmp_path, start="2026-05-01", end="2026-05-29")
    end = ny_today() + pd.Timedelta(days=30)
    res = _backfill(db, market, start="2026-05-01", end=end.isoformat())
    assert res.exit_code == 0, res.output
    con = open_db(db)
    assert con.execute("select max(end_date) from load_intervals").fetchone() == (
        ny_today() - pd.Timedelta(days=1),
    )
    con.close()


@pytest.mark.file_only
def test_files_are_created_user_only(prefect_harness, shared_dir, tmp_path):
    db = tmp_path / "w.duckdb"
    assert _backfill(db, market_slice(shared_dir, tmp_path)).exit_code == 0
    assert oct(db.stat().st_mode & 0o777) == "0o600"


@pytest.fixture
def copy_of(tmp_path):
    def make(path):
        dst = tmp_path / path.name
        shutil.copy(path, dst)
        return dst

    return make


def test_bad_cells_refuse_their_rows_only_and_name_file_line_ticker_column(shared_dir, tmp_path):
    from capwatch.extract.csv import CsvSource
    from capwatch.validate import gate_raw

    market = market_slice(
        shared_dir, tmp_path, tickers=("NVDA", "ORCL", "AAPL"), start="2024-09-09", end="2024-09-20"
    )
    prices = pd.read_csv(market / "prices.csv", dtype=str)
    nvda = prices.index[prices.ticker == "NVDA"]
    prices.loc[nvda[0], "date"] = "16/09/2024"  # a day-first date
    prices.loc[nvda[1], "close"] = "1,234.50"  # a thousands separator
    prices.loc[prices.ticker == "ORCL", "ticker"] = " orcl"  # spelled loosely: still ORCL
    prices.to_csv(market / "prices.csv", index=False)
    splits = pd.read_csv(market / "splits.csv", dtype=str)
    splits.loc[splits.ticker == "AAPL", "ratio"] = "0"  # a ratio that cannot scale prices
    splits.to_csv(market / "splits.csv", index=False)

    batch = CsvSource(market).fetch(["NVDA", "ORCL", "AAPL"], date(2024, 9, 9), date(2024, 9, 20))
    clean, quarantine, _ = gate_raw(batch, date(2026, 1, 2))
    line = {i: i + 2 for i in prices.index}
    reasons = sorted(quarantine["reason"])
    assert reasons == sorted(
        [
            f"prices.csv line {line[nvda[0]]}: date '16/09/2024' is not a YYYY-MM-DD date",
            f"prices.csv line {line[nvda[1]]}: close '1,234.50' is not a number",
            *[
                f"splits.csv line {i + 2}: ratio '0' is not a split ratio > 0"
                for i in splits.index[splits.ticker == "AAPL"]
            ],
        ]
    )
    assert set(quarantine["ticker"]) == {"NVDA", "AAPL"}
    # The rest lands: NVDA's other days, every ORCL day; AAPL's prices wait for a usable split row.
    landed = clean.prices.groupby("ticker").size().to_dict()
    assert landed == {"NVDA": 8, "ORCL": 10}
    assert [str(p) for p in batch.problems] == [
        "AAPL (prices): a row of splits.csv for AAPL could not be read (see quarantine): its prices were left out"
    ]


def test_the_run_names_each_refused_row_and_the_tickers_it_left_out(
    prefect_harness, shared_dir, tmp_path
):
    market = market_slice(
        shared_dir, tmp_path, tickers=("NVDA", "ORCL", "AAPL"), start="2024-09-09", end="2024-09-20"
    )
    prices = pd.read_csv(market / "prices.csv", dtype=str)
    nvda = prices.index[prices.ticker == "NVDA"]
    prices.loc[nvda[1], "close"] = "1,234.50"
    prices.to_csv(market / "prices.csv", index=False)
    res = _backfill(
        tmp_path / "w.duckdb", market, start="2024-09-09", end="2024-09-20", tickers="NVDA,ORCL"
    )
    assert res.exit_code == 1, res.output  # partial: a row was refused
    day = prices.loc[nvda[1], "date"]
    assert (
        f"  refused: NVDA {day} (prices_daily): prices.csv line {nvda[1] + 2}: "
        "close '1,234.50' is not a number" in res.output.splitlines()
    )
    assert (
        f"  note: csv:{market} holds 1 tickers not asked for; their rows were not loaded: AAPL"
        in res.output.splitlines()
    )


def test_a_file_missing_a_column_is_named_and_the_other_files_still_land(shared_dir, tmp_path):
    from capwatch.extract.csv import CsvSource

    market = market_slice(shared_dir, tmp_path, start="2024-09-09", end="2024-09-20")
    pd.read_csv(market / "shares_outstanding.csv").drop(columns=["shares_outstanding"]).to_csv(
        market / "shares_outstanding.csv", index=False
    )
    batch = CsvSource(market).fetch(["NVDA", "ORCL"], date(2024, 9, 9), date(2024, 9, 20))
    assert len(batch.prices) == 20 and batch.shares.empty
    assert {str(p) for p in batch.problems} == {
        f"{t} (shares_outstanding): {market / 'shares_outstanding.csv'} has no column 'shares': nothing of it was used"
        for t in ("NVDA", "ORCL")
    }


def test_a_yahoo_response_for_another_symbol_is_refused(shared_frames, offline_yahoo):
    src, _ = offline_yahoo(shared_frames, faults={"NVDA": "other_symbol"})
    out = src.fetch(["NVDA", "MSFT"], date(2025, 1, 2), date(2025, 1, 31))
    assert set(out.prices.ticker) == {"MSFT"}
    (problem,) = [str(p) for p in out.problems if p.dataset == "prices"]
    assert problem.startswith("NVDA (prices): Yahoo answered for ") and problem.endswith(
        ", not NVDA: nothing of it was used"
    )


@pytest.mark.file_only
def test_check_passes_a_sound_file_and_names_damage_and_a_stray_wal(
    prefect_harness, shared_dir, tmp_path
):
    import os
    import random

    db = tmp_path / "w.duckdb"
    assert _backfill(db, market_slice(shared_dir, tmp_path)).exit_code == 0
    ok = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert ok.exit_code == 0, ok.output
    assert "all" in ok.output and "model audits pass" in ok.output and "FAIL" not in ok.output

    damaged = tmp_path / "damaged.duckdb"
    shutil.copy(db, damaged)
    rng = random.Random(1)
    size = damaged.stat().st_size
    with damaged.open("r+b") as f:  # 12 random 2 KiB blocks of garbage past the headers
        for _ in range(12):
            f.seek(rng.randrange(3 * 262144, size - 4096))
            f.write(os.urandom(2048))
    res = CliRunner().invoke(main, ["check", "--db", str(damaged)])
    # Caught when the file opens (a damaged catalog) or when a table is read back (a damaged block).
    assert res.exit_code == 4 and "FAIL" in res.output and "Corrupt database file" in res.output, (
        res.output
    )
    losses = CliRunner().invoke(main, ["losses", "--db", str(damaged), "--top", "100000"])
    assert losses.exit_code == 4 and len(losses.output.strip().splitlines()) == 1
    assert losses.output.startswith("capwatch: ") and "damaged" in losses.output

    (tmp_path / "w.duckdb.wal").write_bytes(b"\0" * 100)  # a WAL from somewhere else
    stray = CliRunner().invoke(main, ["check", "--db", str(db)])
    assert stray.exit_code == 4 and "write-ahead log w.duckdb.wal (100 bytes)" in stray.output


@pytest.mark.file_only
def test_a_truncated_file_and_a_full_disk_are_one_line(tmp_path):
    import errno

    from capwatch.cli import one_line
    from capwatch.warehouse import WarehouseError, connect

    db = tmp_path / "t.duckdb"
    con = connect(db)
    con.execute("create table big as select range as i from range(300000)")
    con.close()
    with db.open("r+b") as f:
        f.truncate(db.stat().st_size // 3)
    with pytest.raises(WarehouseError) as info:
        connect(db).execute("select count(*) from big").fetchone()
    assert "\n" not in str(info.value)
    assert one_line(OSError(errno.ENOSPC, "No space left on device", str(db))) == (
        f"disk full writing {db}: free some space and run again"
    )


def test_quarantined_days_and_failed_share_fetches_stay_pending(
    db_path, shared_frames, offline_yahoo
):
    from capwatch.settings import Settings
    from capwatch.staging import Staging
    from flows.pipeline import validate_and_load

    src, _ = offline_yahoo(shared_frames, faults={"AAPL": "no_shares", "NVDA": "nan_rows"})
    start, end = date(2025, 1, 2), date(2025, 1, 31)
    batch = src.fetch(["AAPL", "NVDA", "MSFT"], start, end)
    chunk = Staging(db_path.parent / "staging").write(
        "r", src.name, ["AAPL", "NVDA", "MSFT"], start, end, date(2026, 1, 2), batch
    )
    validate_and_load.fn(Settings.from_env(db_path=db_path), chunk, run_id="r", flow_name="test")
    assert not chunk.path.exists()  # loaded: the staged copy is gone
    con = open_db(db_path)
    # Only MSFT is complete: AAPL has no share count, NVDA has quarantined days. Both stay pending.
    assert con.execute("select ticker, start_date, end_date from load_intervals").fetchall() == [
        ("MSFT", start, end)
    ]
    assert con.execute("select count(distinct ticker) from prices_daily").fetchone() == (3,)
    con.close()


def test_a_tiny_memory_cap_is_one_line(prefect_harness, shared_dir, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            str(tmp_path / "m.duckdb"),
            "--source",
            f"csv:{shared_dir}",
            "--start",
            "2024-01-01",
            "--end",
            "2024-12-31",
            "--tickers",
            "NVDA",
        ],
        env={"CAPWATCH_DUCKDB_MEMORY_LIMIT": "1KB"},
    )
    assert res.exit_code in (3, 4), res.output
    assert len(res.output.strip().splitlines()) == 1 and res.output.startswith("capwatch: ")
