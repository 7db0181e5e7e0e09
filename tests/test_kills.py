"""Issue 14: crash safety under SIGKILL (seeded, some aimed at a commit) and no orphan processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TICKERS = ["NVDA", "AAPL", "MSFT", "ORCL"]
START, END = date(2022, 1, 1), date(2024, 12, 31)

# The child: a backfill in chunks of one ticker-year; KILL_AT_COMMIT=k kills it just before or just
# after the k-th load transaction commits (the test's own patch, not a hook in capwatch).
CHILD = """
import os, signal, sys
from contextlib import contextmanager
from datetime import date
import capwatch.load

k, when, seen = int(os.environ.get("KILL_AT_COMMIT", "0")), os.environ.get("KILL_WHEN", "before"), [0]

@contextmanager
def dying(con):
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    seen[0] += 1
    if seen[0] == k and when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    con.execute("commit")
    if seen[0] == k and when == "after":
        os.kill(os.getpid(), signal.SIGKILL)

capwatch.load.transaction = dying
from flows.pipeline import backfill
backfill(start=date(2022, 1, 1), end=date(2024, 12, 31), tickers=%r, source=%r, db=%r, chunk_size=1, chunk_years=1)
print("finished", flush=True)
"""


def _child(db: Path, source: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD % (TICKERS, source, str(db))],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _check_consistent(db: Path, csv: pd.DataFrame) -> int:
    """The file opens; every recorded interval has all of its rows (no half-written chunk)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        intervals = con.execute(
            "select ticker, start_date, end_date from load_intervals"
        ).fetchall()
        for ticker, s, e in intervals:
            stored = con.execute(
                "select count(*) from prices_daily where ticker = ? and date between ? and ?",
                [ticker, s, e],
            ).fetchone()[0]
            expected = int(
                ((csv.ticker == ticker) & csv.date.between(s.isoformat(), e.isoformat())).sum()
            )
            assert stored == expected, (ticker, s, e, stored, expected)
        return len(intervals)
    finally:
        con.close()


def test_twenty_seeded_kills_lose_no_row(prefect_harness, shared_dir, tmp_path):
    from prefect.settings import PREFECT_API_URL

    from bench.compare import compare
    from flows.pipeline import backfill

    csv = pd.read_csv(shared_dir / "prices.csv", usecols=["date", "ticker"])
    source = f"replay:csv:{shared_dir}"
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "CAPWATCH_REPLAY_LATENCY": "0.05",
        "PYTHONUNBUFFERED": "1",
    }
    db = tmp_path / "killed.duckdb"
    rng = random.Random(20250127)
    outcomes = []
    for i in range(20):
        aimed = (
            i % 2 == 0
        )  # every other kill is aimed at a commit, the rest land at a random moment
        child_env = (
            dict(
                env,
                KILL_AT_COMMIT=str(rng.randint(1, 3)),
                KILL_WHEN=rng.choice(["before", "after"]),
            )
            if aimed
            else env
        )
        proc = _child(db, source, child_env)
        if not aimed:
            time.sleep(rng.uniform(2.0, 6.0))
            os.killpg(proc.pid, signal.SIGKILL)
        out = proc.communicate(timeout=300)[0]
        outcomes.append((aimed, proc.returncode, "finished" in out))
        if db.exists():
            _check_consistent(db, csv)
    assert sum(1 for aimed, code, _ in outcomes if code == -signal.SIGKILL) >= 15, outcomes
    # Resume to the end, then compare with a clean run of the same backfill: the same rows.
    backfill(
        start=START,
        end=END,
        tickers=TICKERS,
        source=source,
        db=str(db),
        chunk_size=1,
        chunk_years=1,
    )
    clean = tmp_path / "clean.duckdb"
    backfill(
        start=START,
        end=END,
        tickers=TICKERS,
        source=source,
        db=str(clean),
        chunk_size=1,
        chunk_years=1,
    )
    assert compare(
        str(clean), str(db), skip={"load_intervals", "quarantine", "alert_events", "revisions"}
    )
    assert _check_consistent(db, csv) >= 12


def test_ten_killed_cli_runs_leave_no_prefect_server(shared_dir, tmp_path):
    rng = random.Random(7)
    orphans = []
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(CAPWATCH_REPLAY_LATENCY="0.3", PREFECT_HOME=str(tmp_path / "prefect"))
    capwatch = Path(sys.executable).parent / "capwatch"
    for i in range(10):
        proc = subprocess.Popen(
            [
                capwatch,
                "backfill",
                "--db",
                tmp_path / f"k{i}.duckdb",
                "--source",
                f"replay:csv:{shared_dir}",
                "--start",
                "2020-01-01",
                "--end",
                "2024-12-31",
                "--tickers",
                ",".join(TICKERS),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + rng.uniform(3.0, 12.0)
        children: set[int] = set()
        while time.monotonic() < deadline:
            children |= {
                int(p)
                for p in subprocess.run(
                    ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True
                ).stdout.split()
            }
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        give_up = time.monotonic() + 8  # the watchdog ends them: SIGTERM, then SIGKILL after 5 s
        while time.monotonic() < give_up and any(Path(f"/proc/{c}").exists() for c in children):
            time.sleep(0.2)
        alive = [c for c in children if Path(f"/proc/{c}").exists()]
        orphans += alive
        for c in alive:  # do not let a failure here leak into the next round
            os.kill(c, signal.SIGKILL)
    assert orphans == []
