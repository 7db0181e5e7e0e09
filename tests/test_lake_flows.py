"""Issue 19 end to end: backfill flow runs in parallel processes writing one DuckLake (catalog in a
real PostgreSQL on 127.0.0.1), a reader during the loads, a writer killed by SIGKILL in the middle
of a commit; then the same tables as the one-file backend from the same data, row for row."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from capwatch.replay.market import generate_market, tickers_for
from capwatch.settings import Settings
from capwatch.warehouse import open_warehouse
from tests.lakes import attach_both, differences, duplicate_keys

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
START, END = date(2021, 1, 4), date(2025, 12, 31)
# Alert events depend on the universe seen when they are evaluated (ranks by size among the
# companies loaded so far): flow runs over parts of the universe record different ones by design.
NOT_COMPARED = {"alert_events", "alert_deliveries"}

# The child: one backfill flow run over its tickers. KILL_AT_COMMIT=k: SIGKILL the process
# KILL_DELAY_MS after its k-th load commit has begun (the test's own patch, not a hook in capwatch).
CHILD = """
import json, os, signal, sys, threading
from contextlib import contextmanager
from datetime import date
import capwatch.lake as lake
import capwatch.load

k, delay, seen = int(os.environ.get("KILL_AT_COMMIT", "0")), float(os.environ.get("KILL_DELAY_MS", "0")), [0]

@contextmanager
def dying(con):
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        try:
            con.execute("rollback")
        except Exception:
            pass
        raise
    seen[0] += 1
    if seen[0] == k:
        threading.Timer(delay / 1000, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
    con.execute("commit")
    if seen[0] == k:
        threading.Event().wait(5)  # the commit was faster than the delay: die right after it

capwatch.load.transaction = dying
from flows.pipeline import backfill
summary = backfill(start=date.fromisoformat(%r), end=date.fromisoformat(%r), tickers=%r,
                   source=%r, chunk_size=2, chunk_years=2)
print("CHUNKS", len(summary.chunks), flush=True)
print("RETRIED", json.dumps(lake.retried), flush=True)
print("finished", flush=True)
"""


@pytest.fixture
def market(tmp_path):
    m = generate_market(n_tickers=20, start=START, end=END)
    return m, f"replay:csv:{m.write_csv(tmp_path / 'market')}"


def _writer(tickers, source, env) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD % (START.isoformat(), END.isoformat(), tickers, source)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _env(pg_lake: dict) -> dict:
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        **pg_lake,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PYTHONUNBUFFERED": "1",
        # The throwaway Prefect server keeps its state in SQLite, which answers 503 (SQLITE_BUSY)
        # while five writers' task runs update it at once; on a slow machine that outlasted the
        # client's default five retries (2 + 4 + ... + 32 s) and failed a writer's task before it
        # ran. More retries, as for any shared SQLite-backed server (README: several workers).
        "PREFECT_CLIENT_MAX_RETRIES": "10",
        # this test's own staging area: what a failed test left staged is not another's to load
        "CAPWATCH_STAGING_DIR": str(Path(pg_lake["CAPWATCH_LAKE_DATA_PATH"]).parent / "staging"),
    }


def _lake_settings(pg_lake: dict, tmp_path: Path) -> Settings:
    return Settings.from_env(
        warehouse="ducklake",
        lake_catalog=pg_lake["CAPWATCH_LAKE_CATALOG"],
        lake_data_path=pg_lake["CAPWATCH_LAKE_DATA_PATH"],
        db_path=tmp_path / "unused.duckdb",
    )


SNAPSHOT_CHECK = """
    select
        (select coalesce(sum(rows_inserted), 0) from load_runs),
        (select count(*) from prices_daily) + (select count(*) from splits)
        + (select count(*) from dividends) + (select count(*) from shares_outstanding),
        (select count(*) from load_runs)
"""


def _reader(settings: Settings, stop: threading.Event, seen: list, bad: list) -> None:
    """Reads while the writers load: in every snapshot the rows stored are exactly the rows the
    committed load runs say they inserted (a load and its record commit together, or not at all)."""
    while not stop.is_set():
        try:
            with open_warehouse(settings, read_only=True) as con:
                con.execute("begin transaction")
                said, stored, runs = con.execute(SNAPSHOT_CHECK).fetchone()
                con.execute("commit")
        except Exception as exc:  # noqa: BLE001 - a lake not migrated yet has no tables
            if "does not exist" in str(exc):
                time.sleep(0.2)
                continue
            bad.append(repr(exc))
            return
        seen.append((runs, stored))
        if said != stored:
            bad.append((runs, said, stored))
        time.sleep(0.1)


def _file_reference(tickers, source, tmp_path, monkeypatch) -> tuple[Path, float]:
    from flows.pipeline import backfill

    monkeypatch.delenv("CAPWATCH_WAREHOUSE", raising=False)
    db = tmp_path / "file.duckdb"
    t0 = time.perf_counter()
    backfill(
        start=START,
        end=END,
        tickers=tickers,
        source=source,
        db=str(db),
        chunk_size=2,
        chunk_years=2,
    )
    return db, time.perf_counter() - t0


def _check_lake_matches_file(pg_lake, file_db, tickers: int) -> dict:
    con = attach_both(
        file_db, pg_lake["CAPWATCH_LAKE_CATALOG"], Path(pg_lake["CAPWATCH_LAKE_DATA_PATH"])
    )
    try:
        assert duplicate_keys(con, "l") == {}
        result = differences(con, skip_tables=differences.__defaults__[0] | NOT_COMPARED)
        assert result["differ"] == {}, result
        # ~1,255 trading days per ticker over the five years
        assert (
            result["rows"]["prices_daily"] == 1255 * tickers
            and result["rows"]["largest_losses"] > 0
        )
        return result["rows"]
    finally:
        con.close()


def test_parallel_flow_runs_lose_nothing_and_readers_see_whole_loads(
    prefect_harness, pg_lake, market, tmp_path, monkeypatch
):
    m, source = market
    tickers = tickers_for(20)
    groups = [tickers[i : i + 5] for i in range(0, 20, 5)]
    # a fifth writer repeats tickers of two others at the same time: leases keep it off them
    groups.append(groups[0][:3] + groups[1][:2])
    env = _env(pg_lake)
    stop, seen, bad = threading.Event(), [], []
    reader = threading.Thread(
        target=_reader, args=(_lake_settings(pg_lake, tmp_path), stop, seen, bad)
    )
    t0 = time.perf_counter()
    writers = [_writer(g, source, env) for g in groups]
    reader.start()
    outs = [w.communicate(timeout=900)[0] for w in writers]
    lake_seconds = time.perf_counter() - t0
    stop.set()
    reader.join(30)
    for w, out in zip(writers, outs, strict=True):
        assert w.returncode == 0 and "finished" in out, out[-3000:]
    assert bad == []
    assert len({runs for runs, _ in seen}) >= 5, seen  # the reader saw the loads land one by one
    chunks = sum(int(re.search(r"CHUNKS (\d+)", o).group(1)) for o in outs)
    retried: dict[str, int] = {}
    for out in outs:
        for what, n in json.loads(re.search(r"RETRIED (.*)", out).group(1)).items():
            retried[what] = retried.get(what, 0) + n
    file_db, file_seconds = _file_reference(tickers, source, tmp_path, monkeypatch)
    rows = _check_lake_matches_file(pg_lake, file_db, len(tickers))
    print(
        f"\nlake: {len(groups)} writers x {chunks} chunks in {lake_seconds:.1f} s; conflicts retried "
        f"{retried}; reader snapshots {len(seen)}; file backend, one run: {file_seconds:.1f} s; "
        f"rows {rows['prices_daily']} prices, 0 lost, 0 duplicated"
    )


def test_a_writer_killed_mid_commit_loses_nothing(
    prefect_harness, pg_lake, market, tmp_path, monkeypatch
):
    """SIGKILL lands inside a lake commit (at seeded delays); the lake stays whole (every load run
    recorded has its rows, none twice), and a new run finishes the work without waiting for the
    dead writer's lease."""
    m, source = market
    tickers = tickers_for(20)[:6]
    env = _env(pg_lake)
    rng = random.Random(19)
    settings = _lake_settings(pg_lake, tmp_path)
    killed = 0
    for k in (1, 2, 3):
        w = _writer(
            tickers, source, dict(env, KILL_AT_COMMIT=str(k), KILL_DELAY_MS=str(rng.uniform(0, 40)))
        )
        out = w.communicate(timeout=600)[0]
        killed += w.returncode == -signal.SIGKILL
        with open_warehouse(settings, read_only=True) as con:
            said, stored, _ = con.execute(SNAPSHOT_CHECK).fetchone()
            assert said == stored, out[-2000:]
            assert duplicate_keys(con, "lake") == {}
    assert killed == 3
    with open_warehouse(settings, read_only=True) as con:
        (lapse,) = con.execute("select max(expires_at) from lake_leases").fetchone()
    assert lapse is not None  # the killed writers' leases are still there, live
    w = _writer(tickers, source, env)
    out = w.communicate(timeout=600)[0]
    assert w.returncode == 0 and "finished" in out, out[-3000:]
    with open_warehouse(settings, read_only=True) as con:
        # finished before those leases would have lapsed: taken over, not waited out
        assert con.execute("select now() < ?", [lapse]).fetchone() == (True,)
        assert con.execute("select count(*) from lake_leases").fetchone() == (0,)
    file_db, _ = _file_reference(tickers, source, tmp_path, monkeypatch)
    _check_lake_matches_file(pg_lake, file_db, len(tickers))


def test_writers_opening_a_new_lake_together_apply_each_migration_once(postgres, tmp_path):
    """Five processes open three new lakes at once: each lake records every migration once (they
    once recorded migration 009, a table rebuilt and renamed, twice: nothing in DuckLake made the
    two commits conflict)."""
    from tests.lakes import lake_env

    opener = (
        "from capwatch.settings import Settings\n"
        "from capwatch.warehouse import open_warehouse\n"
        "with open_warehouse(Settings.from_env()):\n    pass\n"
    )
    for n in range(3):
        env = {**os.environ, **lake_env(postgres.createdb(f"opened_{n}"), tmp_path / f"f{n}")}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", opener],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(5)
        ]
        for p in procs:
            err = p.communicate(timeout=300)[1]
            assert p.returncode == 0, err[-2000:]
        settings = Settings.from_env(
            warehouse="ducklake",
            lake_catalog=env["CAPWATCH_LAKE_CATALOG"],
            lake_data_path=env["CAPWATCH_LAKE_DATA_PATH"],
        )
        with open_warehouse(settings, read_only=True) as con:
            assert (
                con.execute(
                    "select version, count(*) from schema_migrations group by 1 having count(*) > 1"
                ).fetchall()
                == []
            )
            assert duplicate_keys(con, "lake") == {}
