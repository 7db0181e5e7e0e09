"""The daily flow through the real yfinance path (offline replay), on a real Prefect run."""

from __future__ import annotations

from datetime import date

from flows.pipeline import daily
from tests.conftest import open_db


def test_daily_on_empty_warehouse_backfills_then_only_fetches_recent_days(
    prefect_harness, shared_dir, db_path, monkeypatch
):
    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    first = daily(
        tickers=["NVDA", "ORCL"], db=str(db_path), history_years=2, today=date(2025, 1, 28)
    )
    assert first.problems == []
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
