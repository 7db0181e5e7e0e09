"""Issue 18 (first part): the universe, point in time, synced from SEC's company tickers/exchange
file (answered offline by capwatch.replay.sec)."""

from __future__ import annotations

from datetime import date

from click.testing import CliRunner

from capwatch.cli import main
from capwatch.replay.market import tickers_for
from capwatch.universe import Listing, excluded, parse_exchange_file, sync
from tests.conftest import open_db


def test_the_rule_keeps_common_stocks_and_names_what_it_leaves_out():
    def why(ticker, name="Acme Inc", exchange="NYSE"):
        return excluded(Listing(ticker, 1, name, exchange))

    assert why("NVDA", "NVIDIA CORP", "Nasdaq") is None
    assert why("BRK-B", "BERKSHIRE HATHAWAY INC") is None  # a class, not a preferred
    assert why("O", "Realty Income Trust") is None  # a REIT trust is a common stock
    assert why("BAC-PL") == "a preferred, not a common stock (BAC-PL)"
    assert why("XYZ-WT") == "a warrant, not a common stock (XYZ-WT)"
    assert why("ACMEW", exchange="Nasdaq") == "Nasdaq fifth letter W: a warrant (ACMEW)"
    assert why("GOOGL", "Alphabet Inc.", "Nasdaq") is None  # fifth letter L: a class
    assert (
        why("SPY", "SPDR S&P 500 ETF TRUST")
        == "a fund or exchange-traded product (SPDR S&P 500 ETF TRUST)"
    )
    assert why("OTCH", exchange="OTC") == "not on a US national exchange (OTC)"
    assert why("UNLS", exchange=None) == "not on a US national exchange (none)"


def _file(rows):
    return parse_exchange_file({"fields": ["cik", "name", "ticker", "exchange"], "data": rows})


def test_sync_keeps_who_left_and_why(tmp_path):
    con = open_db(tmp_path / "w.duckdb", read_only=False)
    first = sync(
        con,
        _file(
            [
                [1, "Old Name Inc", "OLDN", "NYSE"],
                [2, "Gone Corp", "GONE", "Nasdaq"],
                [3, "Stay Co", "STAY", "NYSE"],
                [4, "A Fund", "FUND", "NYSE"],
            ]
        ),
        date(2026, 1, 5),
    )
    assert (first.members, sorted(first.added), first.excluded) == (
        3,
        ["GONE", "OLDN", "STAY"],
        {"a fund or exchange-traded product": 1},
    )
    second = sync(
        con,
        _file([[1, "New Name Inc", "NEWN", "NYSE"], [3, "Stay Co", "STAY", "NYSE"]]),
        date(2026, 2, 2),
    )
    assert second.added == ["NEWN"]
    assert sorted(second.left) == [
        ("GONE", "not in SEC's company tickers file any more (delisted, merged or renamed)"),
        ("OLDN", "renamed: CIK 1 now trades as NEWN"),
    ]
    rows = con.execute(
        "select ticker, first_seen, last_seen, left_on from universe_members order by ticker"
    ).fetchall()
    assert rows == [
        ("GONE", date(2026, 1, 5), date(2026, 1, 5), date(2026, 2, 2)),
        ("NEWN", date(2026, 2, 2), date(2026, 2, 2), None),
        ("OLDN", date(2026, 1, 5), date(2026, 1, 5), date(2026, 2, 2)),
        ("STAY", date(2026, 1, 5), date(2026, 2, 2), None),
    ]
    # back on the list later: a new stretch of membership, the old one kept
    sync(
        con,
        _file(
            [
                [2, "Gone Corp", "GONE", "Nasdaq"],
                [3, "Stay Co", "STAY", "NYSE"],
                [1, "New Name Inc", "NEWN", "NYSE"],
            ]
        ),
        date(2026, 3, 2),
    )
    assert (
        con.execute("select count(*) from universe_members where ticker = 'GONE'").fetchone()[0]
        == 2
    )
    con.close()


def test_sync_then_backfill_over_the_synced_universe_offline(prefect_harness, tmp_path):
    """Done-when of issue 18's universe part: `capwatch universe sync` then a backfill over the
    synced universe, offline in the demo's replay mode; a removed ticker stays in the backfill."""
    db = str(tmp_path / "w.duckdb")
    res = CliRunner().invoke(main, ["universe", "--db", db, "sync", "--source", "replay:demo"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("38 listings in SEC's file: 30 members (30 new, 0 left)")
    removed = CliRunner().invoke(
        main, ["universe", "--db", db, "remove", "ZULU", "--reason", "acquired"]
    )
    assert removed.output.strip() == "removed 1: ZULU"
    listed = CliRunner().invoke(main, ["universe", "--db", db, "--format", "csv"])
    assert len(listed.output.strip().splitlines()) == 1 + 29
    res = CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            db,
            "--source",
            "replay:demo",
            "--start",
            "2025-01-21",
            "--end",
            "2025-01-31",
        ],
    )
    assert res.exit_code in (0, 1), res.output
    assert "loaded 30 tickers" in res.output  # every ticker ever a member, ZULU included
    con = open_db(db)
    loaded = [
        t for (t,) in con.execute("select distinct ticker from prices_daily order by 1").fetchall()
    ]
    left = con.execute("select left_reason from universe_members where ticker = 'ZULU'").fetchone()[
        0
    ]
    con.close()
    assert loaded == sorted(tickers_for(30)) and left == "removed by hand: acquired"
