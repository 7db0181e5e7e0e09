"""Issue 7: schedules on NYSE trading days after the close, holidays, resumable backfills, one writer at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from capwatch.calendar import is_trading_day
from tests.conftest import open_db

ROOT = Path(__file__).resolve().parent.parent

NY = ZoneInfo("America/New_York")


def _schedules():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    daily = next(d for d in spec["deployments"] if d["name"] == "daily")
    return daily["schedules"]


@pytest.mark.parametrize(
    "start,label",
    [
        (datetime(2026, 3, 4, tzinfo=NY), "DST starts 2026-03-08"),
        (datetime(2026, 10, 28, tzinfo=NY), "DST ends 2026-11-01"),
        (datetime(2026, 11, 23, tzinfo=NY), "Thanksgiving 2026-11-26, early close 11-27"),
        (datetime(2026, 12, 21, tzinfo=NY), "Christmas and New Year"),
        (datetime(2027, 3, 22, tzinfo=NY), "Good Friday 2027-03-26"),
    ],
)
def test_daily_schedule_runs_on_trading_days_after_the_close(start, label):
    import asyncio

    from prefect.server.schemas.schedules import RRuleSchedule

    for spec in _schedules():
        assert spec["timezone"] == "America/New_York"
        schedule = RRuleSchedule(rrule=spec["rrule"], timezone=spec["timezone"])
        runs = asyncio.run(schedule.get_dates(n=8, start=start))
        assert len(runs) == 8, label
        local = [r.astimezone(NY) for r in runs]
        assert all(is_trading_day(d.date()) for d in local), (label, local)
        assert all(d.hour >= 16 for d in local), (label, local)
        assert len({(d.hour, d.minute) for d in local}) == 1  # same wall-clock time across DST
        days = [d.date() for d in local]
        # Consecutive: no trading day is skipped either.

        from capwatch.calendar import trading_days

        assert days == [t.date() for t in trading_days(days[0], days[-1])], label


def test_schedule_holidays_are_generated_and_staleness_is_checked():
    """The EXDATEs in prefect.yaml are generated: regenerate with `python -m capwatch.schedule --write prefect.yaml`;
    `--check prefect.yaml` exits 1 within MARGIN_DAYS of the end (a date-independent test of that check)."""
    from capwatch.schedule import MARGIN_DAYS, daily_rrule, days_left

    text = (ROOT / "prefect.yaml").read_text()
    assert days_left(text, date(2030, 12, 25)) == 0 and days_left(text, date(2030, 1, 1)) == 358
    assert days_left(text, date(2030, 6, 28)) == MARGIN_DAYS
    for spec in _schedules():
        last = max(
            datetime.strptime(x[:8], "%Y%m%d").date()
            for x in spec["rrule"].split("EXDATE:")[1].split(",")
        )
        assert last == date(2030, 12, 25)
        first_year = int(spec["rrule"].split("DTSTART:")[1][:4])
        hhmm = spec["rrule"].split("DTSTART:")[1][9:13]
        from datetime import time as t

        assert spec["rrule"] == daily_rrule(t(int(hhmm[:2]), int(hhmm[2:])), first_year, last.year)


def test_daily_does_nothing_on_a_holiday_when_up_to_date(
    prefect_harness, shared_dir, db_path, monkeypatch
):
    from flows.pipeline import daily

    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    first = daily(tickers=["NVDA"], db=str(db_path), history_years=1, today=date(2025, 7, 3))
    assert first.skipped is None and first.rows_inserted > 200
    holiday = daily(tickers=["NVDA"], db=str(db_path), history_years=1, today=date(2025, 7, 4))
    assert (
        holiday.skipped
        == "2025-07-04 is not an NYSE trading day and 2025-07-03 is loaded: nothing to do"
    )
    assert holiday.chunks == [] and holiday.load == []


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_killed_backfill_resumes_with_only_what_is_missing(prefect_harness, shared_dir, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from flows.pipeline import backfill

    db = tmp_path / "w.duckdb"
    args = dict(
        start=date(2022, 1, 1),
        end=date(2024, 12, 31),
        tickers=["NVDA", "AAPL", "MSFT", "ORCL"],
        source=f"replay:csv:{shared_dir}",
        db=str(db),
        chunk_size=2,
        chunk_years=1,
    )
    env = {
        **os.environ,
        "CAPWATCH_REPLAY_LATENCY": "0.3",
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PYTHONUNBUFFERED": "1",
    }
    code = (
        "import datetime; from datetime import date; from flows.pipeline import backfill; "
        f"backfill(**{{k: v for k, v in {args!r}.items()}})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen = []
    deadline = time.monotonic() + 240
    try:
        for line in proc.stdout:
            seen.append(line)
            if "[2/6]" in line or time.monotonic() > deadline:
                break
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # killed mid-way, as a crash or an OOM kill would
        proc.wait()
    assert any("[2/6]" in ln for ln in seen), "".join(seen[-20:])

    if True:
        resumed = backfill(**args)
        done_first = {
            (tuple(t), s, e)
            for t, s, e in [
                (["AAPL", "MSFT"], date(2022, 1, 1), date(2022, 12, 31)),
                (["NVDA", "ORCL"], date(2022, 1, 1), date(2022, 12, 31)),
            ]
        }
        planned = {(tuple(t), s, e) for t, s, e in resumed.chunks}
        # Only what the killed run did not finish: 2023 and 2024 for both ticker pairs (chunks
        # hold the tickers in symbol order), either fetched now or -- the chunks it had already
        # fetched and staged -- loaded without a fetch.
        remaining = {
            (pair, date(y, 1, 1), date(y, 12, 31))
            for pair in (("AAPL", "MSFT"), ("NVDA", "ORCL"))
            for y in (2023, 2024)
        }
        assert planned <= remaining and len(planned) + resumed.resumed_chunks == len(remaining)
        assert not planned & done_first

        con = open_db(db)
        assert con.execute("select count(*) from prices_daily").fetchone()[0] == 4 * 753
        con.close()
        again = backfill(**args)
        assert again.chunks == [] and "already loaded" in again.skipped


@pytest.mark.file_only
def test_a_second_writer_waits_then_fails_clearly(db_path):
    from capwatch.warehouse import WarehouseError, connect

    connect(db_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db_path)!r}); "
            "print('held', flush=True); time.sleep(4)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    t0 = time.monotonic()
    with pytest.raises(
        WarehouseError, match=rf"is being written by .*python.* \(PID {holder.pid}\) \(waited 1s\)"
    ):
        connect(db_path, wait_seconds=1)
    assert time.monotonic() - t0 >= 1
    con = connect(db_path, wait_seconds=30)  # waits for the other writer, then gets the file
    assert con.execute("select count(*) from schema_migrations").fetchone()[0] >= 4
    con.close()
    holder.wait()


@pytest.mark.file_only
@pytest.mark.slow
def test_a_reader_that_stays_open_is_named_and_a_polling_reader_never_stops_a_backfill(
    prefect_harness, shared_dir, db_path
):
    from capwatch.warehouse import WarehouseError, connect
    from flows.pipeline import backfill

    args = dict(
        tickers=["NVDA", "ORCL", "AAPL", "MSFT"],
        source=f"csv:{shared_dir}",
        db=str(db_path),
        chunk_size=1,
    )
    backfill(start=date(2024, 1, 2), end=date(2024, 3, 28), **args)
    # A session left open, like `duckdb -readonly capwatch.duckdb` in another terminal.
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db_path)!r}, read_only=True); "
            "print('reading', flush=True); time.sleep(5)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout.readline().strip() == "reading"
    with pytest.raises(
        WarehouseError,
        match=rf"held open for reading by .*\(PID {reader.pid}\); capwatch waited 1s",
    ):
        connect(db_path, wait_seconds=1)
    reader.wait()
    # A reader polling every half second (open, query, close) during a backfill of 8 chunks.
    poller = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, time, sys\n"
            "n = 0\n"
            "end = time.monotonic() + 20\n"
            "while time.monotonic() < end:\n"
            "    try:\n"
            f"        c = duckdb.connect({str(db_path)!r}, read_only=True)\n"
            "        c.execute('select count(*) from prices_daily').fetchone(); c.close(); n += 1\n"
            "    except duckdb.IOException:\n"
            "        pass  # the backfill is writing this moment\n"
            "    time.sleep(0.5)\n"
            "print(n)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    summary = backfill(start=date(2024, 4, 1), end=date(2024, 12, 31), refresh=True, **args)
    assert summary.rows_inserted > 0 and len(summary.chunks) == 4
    assert int(poller.communicate(timeout=60)[0]) >= 10  # the reader kept reading all along
