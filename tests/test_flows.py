"""The daily flow through the real yfinance path (offline replay), on a real Prefect run."""

from __future__ import annotations

from datetime import date

import pytest

from capwatch.warehouse import wal_path
from flows.pipeline import daily
from tests.conftest import LAKE_LANE, open_db


def test_daily_on_empty_warehouse_backfills_then_only_fetches_recent_days(
    prefect_harness, shared_dir, db_path, monkeypatch
):
    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    first = daily(
        tickers=["NVDA", "ORCL"], db=str(db_path), history_years=2, today=date(2025, 1, 28)
    )
    assert first.problems == []
    # the flow's writers left their commits in the log; the flow's end checkpointed them
    assert LAKE_LANE or not wal_path(db_path).exists()
    con = open_db(db_path)
    lo, hi, n = con.execute(
        "select min(date), max(date), count(*) from prices_daily where ticker='NVDA'"
    ).fetchone()
    import pandas as pd

    csv = pd.read_csv(shared_dir / "prices.csv", usecols=["date", "ticker"])
    expected = (
        (csv.ticker == "NVDA") & (csv.date >= "2023-01-29") & (csv.date <= "2025-01-28")
    ).sum()
    assert lo == date(2023, 1, 30) and hi == date(2025, 1, 28) and n == expected
    loss = con.execute(
        "select round(change_usd/1e9, 1) from daily_moves where ticker='NVDA' and date='2025-01-27'"
    ).fetchone()
    assert loss == (-592.7,)
    con.close()
    again = daily(
        tickers=["NVDA", "ORCL"], db=str(db_path), history_years=2, today=date(2025, 1, 28)
    )
    assert again.rows_inserted == 0 and again.rows_updated == 0
    assert sum(r.unchanged for r in again.load) > 0  # it did look at the last week again
    assert LAKE_LANE or not wal_path(db_path).exists()


@pytest.mark.file_only
def test_a_failed_daily_run_still_checkpoints_what_it_loaded_into_the_file(
    prefect_harness, shared_dir, db_path, monkeypatch, tmp_path
):
    """The flow's writers leave their commits in the write-ahead log; the flow's end checkpoints
    them into the file even when a later step fails, so the file alone holds every loaded row."""
    import shutil

    import flows.pipeline as pipeline

    def broken(settings, run_id):
        raise RuntimeError("the models' step broke")

    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    monkeypatch.setattr(pipeline, "build_models", broken)
    with pytest.raises(RuntimeError, match="the models' step broke"):
        daily(tickers=["NVDA"], db=str(db_path), history_years=1, today=date(2025, 1, 28))
    assert not wal_path(db_path).exists()
    alone = tmp_path / "alone.duckdb"
    shutil.copy(db_path, alone)  # the file without any log beside it
    con = open_db(alone)
    assert (
        con.execute("select count(*) from prices_daily where ticker = 'NVDA'").fetchone()[0] > 240
    )
    con.close()


def test_a_backfill_logs_the_first_alert_events_and_counts_the_rest(
    prefect_harness, shared_dir, db_path, monkeypatch, tmp_path
):
    """A backfill over years records every alert event, but its log names only the first
    LOGGED_EVENTS one by one and counts the others (each log line is a call to Prefect's API)."""
    import logging

    from flows.pipeline import LOGGED_EVENTS, backfill

    rules = tmp_path / "alerts.toml"
    rules.write_text('[rules.pct_drop]\nkind = "pct_drop"\nthreshold = -1.0\n')
    monkeypatch.setenv("CAPWATCH_ALERTS_CONFIG", str(rules))
    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    keep = Keep(level=logging.INFO)
    task_logs = logging.getLogger("prefect.task_runs")
    task_logs.addHandler(keep)
    try:
        summary = backfill(
            start=date(2024, 1, 2),
            end=date(2024, 12, 31),
            tickers=["NVDA", "ORCL", "AVGO"],
            db=str(db_path),
        )
    finally:
        task_logs.removeHandler(keep)
    con = open_db(db_path)
    (recorded,) = con.execute("select count(*) from alert_events").fetchone()
    con.close()
    assert summary.alerts.new_events == recorded > LOGGED_EVENTS + 10  # 1 % drops: many a year
    named = [line for line in lines if line.startswith("alert event ")]
    assert len(named) == LOGGED_EVENTS
    assert f"... and {recorded - LOGGED_EVENTS} more alert events recorded" in "\n".join(lines)
