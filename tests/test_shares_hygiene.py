"""Issue 4: share counts are cleaned before they are multiplied. Literal rows in, exact rows out."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from capwatch.transform import run_models
from capwatch.validate import gate_raw, resolve_duplicate_counts
from tests.conftest import insert_prices, insert_shares, insert_splits

_prices, _shares, _splits = insert_prices, insert_shares, insert_splits


def test_duplicated_count_keeps_the_one_closest_to_its_neighbour():
    shares = pd.DataFrame(
        {
            "ticker": ["X"] * 4,
            "share_class": ["all"] * 4,
            "as_of": pd.to_datetime(["2024-01-31", "2024-04-30", "2024-04-30", "2024-07-31"]),
            "shares": [1_000_000_000, 1_010_000_000, 98_000_000, 1_020_000_000],
            "reported_date": pd.NaT,
        }
    )
    kept, q = resolve_duplicate_counts(shares)
    assert kept["shares"].tolist() == [1_000_000_000, 1_010_000_000, 1_020_000_000]
    assert q[["ticker", "date", "dataset", "value"]].values.tolist() == [
        ["X", pd.Timestamp("2024-04-30"), "shares_outstanding", "98000000"]
    ]
    assert "kept 1010000000" in q["reason"].iloc[0]


def test_duplicated_counts_from_yahoo_are_resolved_at_the_gate(offline_yahoo):
    from capwatch.replay.yahoo import MarketFrames

    days = pd.bdate_range("2024-05-01", "2024-05-10")
    frames = MarketFrames(
        prices=pd.DataFrame(
            {
                "ticker": "X",
                "date": days,
                "open": 10.0,
                "high": 11.0,
                "low": 9.0,
                "close": 10.0,
                "volume": 100,
            }
        ),
        splits=pd.DataFrame(columns=["ticker", "date", "ratio"]),
        shares=pd.DataFrame(
            {
                "ticker": "X",
                "as_of": pd.to_datetime(["2024-03-01", "2024-04-01", "2024-04-01"]),
                "shares": [500_000_000, 505_000_000, 5_050_000],
            }
        ),
    )
    src, _ = offline_yahoo(frames)
    batch = src.fetch(["X"], date(2024, 5, 1), date(2024, 5, 10))
    assert len(batch.shares) == 3  # yfinance hands the duplicate date through as-is
    clean, q, _ = gate_raw(batch, date(2026, 1, 1))
    assert clean.shares["shares"].tolist() == [500_000_000, 505_000_000]
    assert q["value"].tolist() == ["5050000"]


def test_count_off_by_a_million_is_quarantined_and_never_used(db):
    _prices(db, [("ORCL", date(2012, 9, 25), 30.0), ("ORCL", date(2012, 9, 26), 30.0)])
    _shares(
        db,
        [
            ("ORCL", "all", date(2012, 3, 19), 4_975_106_000, date(2012, 3, 23)),
            ("ORCL", "all", date(2012, 6, 20), 4_882_506_000, date(2012, 6, 26)),
            ("ORCL", "all", date(2012, 9, 17), 4_819_056_000_000_000, date(2012, 9, 24)),
        ],
    )
    run_models(db, run_id="run-q")
    assert db.execute(
        "select date, shares, shares_as_of from market_cap_daily order by date"
    ).fetchall() == [
        (date(2012, 9, 25), 4_882_506_000, date(2012, 6, 20)),
        (date(2012, 9, 26), 4_882_506_000, date(2012, 6, 20)),
    ]
    rows = db.execute(
        "select ticker, date, dataset, value, run_id, reason from quarantine"
    ).fetchall()
    assert [r[:5] for r in rows] == [
        ("ORCL", date(2012, 9, 17), "shares_outstanding", "4819056000000000", "run-q")
    ]
    assert "outside any plausible range" in rows[0][5]
    run_models(db, run_id="run-again")  # the listing is kept, not duplicated
    assert db.execute("select run_id from quarantine").fetchall() == [("run-q",)]


def test_count_a_thousand_times_off_within_range_is_quarantined(db):
    _prices(db, [("Q", date(2011, 4, 21), 50.0)])
    _shares(
        db,
        [
            ("Q", "all", date(2010, 7, 19), 1_605_194, date(2010, 7, 21)),
            ("Q", "all", date(2010, 11, 1), 1_617_713, date(2010, 11, 3)),
            ("Q", "all", date(2011, 4, 18), 1_669_532_005, date(2011, 4, 20)),
        ],
    )
    run_models(db)
    assert db.execute("select shares, shares_as_of from market_cap_daily").fetchall() == [
        (1_617_713, date(2010, 11, 1))
    ]
    (reason,) = db.execute("select reason from quarantine").fetchone()
    assert "more than a split explains" in reason


def test_split_between_report_date_and_price_date(db):
    # Count as of 05-24 (filed 05-29) is pre-split; the price on 06-12 is after a 10-for-1 on 06-10.
    _prices(db, [("N", date(2024, 6, 12), 125.2)])
    _shares(db, [("N", "all", date(2024, 5, 24), 2_460_000_000, date(2024, 5, 29))])
    _splits(db, [("N", date(2024, 6, 10), 10.0)])
    run_models(db)
    assert db.execute(
        "select shares, split_factor, market_cap from market_cap_daily"
    ).fetchall() == [(24_600_000_000, 10.0, 125.2 * 24_600_000_000)]


def test_early_post_split_count_is_not_adjusted_twice(db):
    # NFLX: 7-for-1 on 2015-07-15; the count as of 2015-06-30 was filed on 07-17 already post-split.
    _prices(db, [("F", date(2015, 7, 20), 114.8)])
    _splits(db, [("F", date(2015, 7, 15), 7.0)])
    _shares(
        db,
        [
            ("F", "all", date(2015, 1, 28), 60_498_082, date(2015, 1, 29)),
            ("F", "all", date(2015, 3, 31), 60_620_721, date(2015, 4, 17)),
            ("F", "all", date(2015, 6, 30), 426_004_831, date(2015, 7, 17)),
        ],
    )
    run_models(db)
    assert db.execute(
        "select shares, split_factor, shares_as_of from market_cap_daily"
    ).fetchall() == [(426_004_831, 1.0, date(2015, 6, 30))]
    assert db.execute(
        "select early_post_split, quarantine_reason from stg_shares_checked where as_of = '2015-06-30'"
    ).fetchall() == [(True, None)]


def test_multi_class_company_sums_its_classes(db):
    _prices(db, [("META", date(2025, 1, 24), 647.49), ("META", date(2025, 1, 27), 659.88)])
    _shares(
        db,
        [
            ("META", "A", date(2024, 10, 25), 2_180_000_871, date(2024, 10, 31)),
            ("META", "B", date(2024, 10, 25), 344_487_662, date(2024, 10, 31)),
        ],
    )
    run_models(db)
    ((cap, method, status, classes),) = db.execute(
        "select market_cap, method, cap_status, classes from company_market_cap_daily where date = '2025-01-27'"
    ).fetchall()
    assert cap == pytest.approx(659.88 * 2_524_488_533) and (method, status) == ("classes", "ok")
    assert [(c["share_class"], c["shares"]) for c in classes] == [
        ("A", 2_180_000_871),
        ("B", 344_487_662),
        ("all", None),
    ]
    # The listing's own market cap is class A only.
    assert db.execute(
        "select shares from market_cap_daily where date = '2025-01-27'"
    ).fetchone() == (2_180_000_871,)
    assert db.execute("select company, ticker from largest_losses").fetchall() == []  # it rose
    assert db.execute("select company, ticker from company_daily_moves").fetchall() == [
        ("Meta Platforms", "META")
    ]


def test_multi_class_company_missing_a_class_is_absent_with_a_reason(db):
    _prices(db, [("META", date(2025, 1, 27), 659.88)])
    _shares(db, [("META", "A", date(2024, 10, 25), 2_180_000_871, date(2024, 10, 31))])
    run_models(db)
    assert db.execute("select market_cap, cap_status from company_market_cap_daily").fetchall() == [
        (None, "no count known for class B")
    ]


def test_adr_is_valued_through_its_ratio(db):
    # TSM: counts are ordinary shares; 1 ADS = 5 ordinary.
    _prices(db, [("TSM", date(2025, 1, 27), 192.31)])
    _shares(db, [("TSM", "all", date(2024, 12, 31), 25_930_000_000, date(2025, 1, 16))])
    run_models(db)
    ((cap,),) = db.execute(
        "select market_cap from company_market_cap_daily where company = 'TSMC'"
    ).fetchall()
    assert cap == pytest.approx(25_930_000_000 * 192.31 / 5)
    assert db.execute("select market_cap from market_cap_daily").fetchone()[0] == pytest.approx(cap)
