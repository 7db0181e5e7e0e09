"""Shared fixtures: a DuckDB file per test, the shared market data, offline Yahoo, a Prefect harness."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

ROOT = Path(__file__).resolve().parent.parent

SHARED = Path(os.environ.get("CAPWATCH_SHARED_DATA", ROOT.parent / "shared" / "marketdata"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared/marketdata``: real prices, splits and SEC share counts (never copied into the repo)."""
    if not (SHARED / "prices.csv").is_file():
        pytest.fail(f"shared market data not found at {SHARED}; set CAPWATCH_SHARED_DATA")
    return SHARED


@pytest.fixture(scope="session")
def shared_frames(shared_dir):
    from capwatch.replay.yahoo import frames_from_csv

    return frames_from_csv(str(shared_dir))


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "capwatch.duckdb"


# The lake lane (`make test-lake`): CAPWATCH_TEST_WAREHOUSE=ducklake runs every test not marked
# file_only against a DuckLake (its catalog in a fresh PostgreSQL database) instead of a file.
LAKE_LANE = os.environ.get("CAPWATCH_TEST_WAREHOUSE") == "ducklake"


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL on 127.0.0.1 for the session (tests/lakes.py), stopped at the end."""
    from tests.lakes import start_postgres

    try:
        server = start_postgres()
    except RuntimeError as exc:
        # A newcomer's `make test` without PostgreSQL (and without root to install it) still runs
        # everything else; CI and the lake lane must have it.
        if os.environ.get("CI") or os.environ.get("CAPWATCH_TEST_WAREHOUSE") == "ducklake":
            pytest.fail(str(exc))
        pytest.skip(f"lake tests skipped: {exc}")
    _POSTGRES.append(server)
    yield server
    server.stop()


@pytest.fixture
def pg_lake(postgres, tmp_path) -> dict[str, str]:
    """A new, empty lake: its catalog in a fresh PostgreSQL database, its files in tmp_path."""
    from tests.lakes import lake_env

    catalog = postgres.createdb("lake_" + uuid.uuid4().hex[:12])
    return lake_env(catalog, tmp_path / "lake-files")


# In the lake lane: the lake of each warehouse path (full_history's, built once per session, and
# a test's second warehouse), the test lake's owner path, and the session's PostgreSQL.
# (kept in tests.lakes: test modules import this file as tests.conftest, a second module object)
from tests.lakes import _LAKE_OWNERS, _POSTGRES, SHARED_LAKES  # noqa: E402


@pytest.fixture(autouse=True)
def _warehouse_backend(request, monkeypatch):
    if not LAKE_LANE:
        return
    if request.node.get_closest_marker("file_only"):
        pytest.skip("tests the one-file warehouse itself")
    if "full_history" in request.fixturenames:
        env = SHARED_LAKES[str(request.getfixturevalue("full_history"))]
    else:
        env = request.getfixturevalue("pg_lake")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def open_db(path, read_only: bool = True):
    """The warehouse a test wrote at ``path``: that DuckDB file, or in the lake lane the test's
    lake (the path then only names it). The caller closes it."""
    if LAKE_LANE:
        from capwatch import lake

        env = SHARED_LAKES.get(str(path))
        if env is None:
            # the test's lake names its first warehouse; another path in the same test (two
            # warehouses compared) gets a lake of its own
            claimed = _LAKE_OWNERS.setdefault(os.environ["CAPWATCH_LAKE_CATALOG"], str(path))
            if claimed == str(path):
                env = dict(os.environ)
            else:
                from tests.lakes import lake_env

                env = lake_env(
                    _POSTGRES[0].createdb("lake_" + uuid.uuid4().hex[:12]),
                    Path(path).with_suffix(".lake"),
                )
            SHARED_LAKES[str(path)] = env
        con = lake.connect(
            env["CAPWATCH_LAKE_CATALOG"], env["CAPWATCH_LAKE_DATA_PATH"], read_only=read_only
        )
        if not read_only:
            from capwatch.warehouse import migrate

            migrate(con, for_lake=True)
        return con
    if read_only:
        import duckdb

        return duckdb.connect(str(path), read_only=True)
    from capwatch.warehouse import connect

    return connect(path)


@pytest.fixture
def db(db_path, _warehouse_backend):
    """The test's warehouse, migrated: a DuckDB file, or in the lake lane a DuckLake."""
    if LAKE_LANE:
        from capwatch.settings import Settings
        from capwatch.warehouse import open_warehouse

        _LAKE_OWNERS.setdefault(os.environ["CAPWATCH_LAKE_CATALOG"], str(db_path))
        with open_warehouse(Settings.from_env(db_path=db_path)) as con:
            yield con
        return
    from capwatch.warehouse import connect

    con = connect(db_path)
    yield con
    con.close()


@pytest.fixture(scope="session", autouse=True)
def _yfinance_offline(tmp_path_factory):
    """yfinance keeps its timezone and cookie caches in a temp dir for the whole session."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yf-cache")))


@pytest.fixture
def offline_yahoo():
    """Build a YahooSource whose yfinance requests are answered offline from frames."""
    from capwatch.extract.yahoo import YahooSource
    from capwatch.replay import offline_session
    from capwatch.replay.yahoo import OfflineYahoo

    def make(frames, faults=None, fail_times=None, **kw):
        adapter = OfflineYahoo(frames, faults=faults, fail_times=fail_times)
        kw.setdefault("backoff_seconds", 0.01)
        return YahooSource(session=offline_session(adapter), **kw), adapter

    return make


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect API for flow runs (started once per session)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def table(con, name: str, order: str) -> pd.DataFrame:
    return con.execute(f"select * from {name} order by {order}").df()


def gate_and_load(con, batch, source: str, run_id: str, tickers, start, end):
    """A fetched batch through the raw gate (as of 2026-11-23) and loaded, as a flow's load task
    does it (without the flow)."""
    from datetime import date

    from capwatch.load import load_batch
    from capwatch.validate import gate_raw

    clean, quarantine, _ = gate_raw(batch, date(2026, 11, 23))
    return load_batch(
        con,
        clean,
        quarantine,
        source=source,
        run_id=run_id,
        flow="test",
        start=start,
        end=end,
        tickers=tickers,
    )


# Literal rows straight into the raw tables, for the model tests (provenance: source 'test').
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def insert_prices(con, rows) -> None:
    """(ticker, date, close): open = high = low = close, volume 0."""
    con.executemany(
        "insert into prices_daily values (?, ?, ?, ?, ?, ?, 0, 'test', ?, 'r')",
        [(t, d, c, c, c, c, NOW) for t, d, c in rows],
    )


def insert_shares(con, rows) -> None:
    """(ticker, share_class, as_of, shares, reported_date)."""
    con.executemany(
        "insert into shares_outstanding (ticker, share_class, as_of, shares, reported_date, source, "
        "loaded_at, run_id) values (?, ?, ?, ?, ?, 'test', ?, 'r')",
        [(t, cls, as_of, n, rep, NOW) for t, cls, as_of, n, rep in rows],
    )


def insert_splits(con, rows) -> None:
    """(ticker, date, ratio)."""
    con.executemany(
        "insert into splits values (?, ?, ?, 'test', ?, 'r')", [(t, d, r, NOW) for t, d, r in rows]
    )


@pytest.fixture(scope="session")
def full_history(prefect_harness, shared_dir, tmp_path_factory, request) -> Path:
    """The whole ../shared/marketdata history loaded through `capwatch backfill --source csv:...`."""
    from click.testing import CliRunner

    from capwatch.cli import main

    db = tmp_path_factory.mktemp("full") / "capwatch.duckdb"
    if LAKE_LANE:  # built in a lake of its own, which the tests using it then read
        from tests.lakes import lake_env

        postgres = request.getfixturevalue("postgres")
        SHARED_LAKES[str(db)] = lake_env(postgres.createdb("full_history"), db.with_suffix(".lake"))
    res = CliRunner(env=SHARED_LAKES.get(str(db))).invoke(
        main,
        [
            "backfill",
            "--db",
            str(db),
            "--source",
            f"csv:{shared_dir}",
            "--start",
            "2010-01-01",
            "--end",
            "2026-05-29",
        ],
    )
    # Exit 1: the run completed, and it names the five share counts the SEC data got wrong.
    assert res.exit_code == 1, res.output
    assert "loaded 36 tickers" in res.output
    held = [
        ln.split(":")[0].strip() for ln in res.output.splitlines() if ln.strip().startswith("held:")
    ]
    assert held == ["held"] * 5, res.output
    for day in (
        "AMD 2012-07-27",
        "CRM 2011-04-30",
        "ORCL 2012-09-17",
        "QCOM 2011-04-18",
        "QCOM 2011-10-31",
    ):
        assert f"held: {day} (shares_outstanding): count " in res.output
    return db


def market_slice(
    shared_dir,
    tmp_path,
    tickers=("NVDA", "ORCL"),
    start="2024-05-01",
    end="2024-06-28",
    splits=True,
):
    """A csv: directory with a slice of the shared data (real prices, splits, counts)."""
    d = tmp_path / "market"
    d.mkdir(exist_ok=True)
    prices = pd.read_csv(shared_dir / "prices.csv")
    prices[prices.ticker.isin(tickers) & prices.date.between(start, end)].to_csv(
        d / "prices.csv", index=False
    )
    sp = pd.read_csv(shared_dir / "splits.csv")
    (sp[sp.ticker.isin(tickers)] if splits else sp.head(0)).to_csv(d / "splits.csv", index=False)
    sh = pd.read_csv(shared_dir / "shares_outstanding.csv")
    sh[sh.ticker.isin(tickers)].to_csv(d / "shares_outstanding.csv", index=False)
    return d
