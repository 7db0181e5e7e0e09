"""SQL models: literal rows in, exact rows out."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from capwatch.transform import load_models, run_models

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _prices(con, rows):
    con.executemany(
        "insert into prices_daily values (?, ?, ?, ?, ?, ?, 0, 'test', ?, 'r')",
        [(t, d, c, c, c, c, NOW) for t, d, c in rows],
    )


def _shares(con, rows):
    con.executemany(
        "insert into shares_outstanding values (?, 'all', ?, ?, ?, 'test', ?, 'r')",
        [(t, as_of, n, reported, NOW) for t, as_of, n, reported in rows],
    )


def _splits(con, rows):
    con.executemany("insert into splits values (?, ?, ?, 'test', ?, 'r')", [(t, d, r, NOW) for t, d, r in rows])


def _caps(con, ticker):
    return con.execute(
        "select date, shares, market_cap, shares_as_of, split_factor from market_cap_daily where ticker=? order by date",
        [ticker],
    ).fetchall()


def test_models_run_in_dependency_order():
    names = [m.name for m in load_models()]
    assert names.index("stg_split_index") < names.index("market_cap_daily") < names.index("daily_moves") < names.index("largest_losses")


def test_split_day_has_no_jump(db):
    # A 10-for-1 split on 2024-06-10; the only count known is pre-split (as of 2024-05-24, filed 05-29).
    _prices(db, [("NVDA", date(2024, 6, 7), 1208.88), ("NVDA", date(2024, 6, 10), 121.79)])
    _shares(db, [("NVDA", date(2024, 5, 24), 2_460_000_000, date(2024, 5, 29))])
    _splits(db, [("NVDA", date(2024, 6, 10), 10.0)])
    run_models(db)
    assert _caps(db, "NVDA") == [
        (date(2024, 6, 7), 2_460_000_000, 1208.88 * 2_460_000_000, date(2024, 5, 24), 1.0),
        (date(2024, 6, 10), 24_600_000_000, 121.79 * 24_600_000_000, date(2024, 5, 24), 10.0),
    ]
    (pct,) = db.execute("select change_pct from daily_moves where ticker='NVDA'").fetchone()
    assert pct == pytest.approx(100 * (121.79 * 10 / 1208.88 - 1))  # +0.75 %, the price move only


def test_shares_are_point_in_time(db):
    # Count as of 01-10 filed 01-15: not usable on 01-15 itself, usable from 01-16.
    # A late filing (02-20) for an older as-of (01-05) never replaces the newer count.
    _prices(db, [("X", date(2025, 1, d), 10.0) for d in (14, 15, 16)] + [("X", date(2025, 2, 21), 10.0)])
    _shares(db, [
        ("X", date(2024, 12, 1), 1_000_000, date(2024, 12, 5)),
        ("X", date(2025, 1, 10), 1_100_000, date(2025, 1, 15)),
        ("X", date(2025, 1, 5), 1_050_000, date(2025, 2, 20)),
    ])
    run_models(db)
    assert [(d, s, a) for d, s, _, a, _ in _caps(db, "X")] == [
        (date(2025, 1, 14), 1_000_000, date(2024, 12, 1)),
        (date(2025, 1, 15), 1_000_000, date(2024, 12, 1)),
        (date(2025, 1, 16), 1_100_000, date(2025, 1, 10)),
        (date(2025, 2, 21), 1_100_000, date(2025, 1, 10)),
    ]


def test_no_count_known_means_no_cap_and_no_ranking(db):
    _prices(db, [("Y", date(2025, 1, 2), 5.0), ("Y", date(2025, 1, 3), 4.0)])
    run_models(db)
    assert db.execute("select market_cap, cap_status from market_cap_daily where ticker='Y'").fetchall() == [
        (None, "no_share_count"), (None, "no_share_count")]
    assert db.execute("select count(*) from largest_losses where ticker='Y'").fetchone() == (0,)


def test_largest_losses_ranked_in_usd_and_pct(db):
    _prices(db, [("A", date(2025, 1, 24), 100.0), ("A", date(2025, 1, 27), 90.0),
                 ("B", date(2025, 1, 24), 10.0), ("B", date(2025, 1, 27), 5.0)])
    _shares(db, [("A", date(2024, 12, 1), 100_000, date(2024, 12, 2)), ("B", date(2024, 12, 1), 100_000, date(2024, 12, 2))])
    run_models(db)
    rows = db.execute(
        "select ticker, change_usd, change_pct, rank_usd, rank_pct, company_rank_usd from largest_losses order by ticker"
    ).fetchall()
    assert rows == [("A", -1_000_000.0, -10.0, 1, 2, 1), ("B", -500_000.0, -50.0, 2, 1, 1)]


def test_failed_model_run_keeps_the_published_tables(db):
    _prices(db, [("A", date(2025, 1, 24), 100.0)])
    _shares(db, [("A", date(2024, 12, 1), 100_000, date(2024, 12, 2))])
    run_models(db)

    def gate(con, suffix):
        raise AssertionError("model gate failed")

    db.execute("update prices_daily set close = 1")
    with pytest.raises(AssertionError):
        run_models(db, check=gate)
    assert db.execute("select close from market_cap_daily").fetchall() == [(100.0,)]
