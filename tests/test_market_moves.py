"""Issue 13: what capwatch ranks and alerts on is a market move.

Literal rows for the model rules (count step, spin-off, stock dividend into another class), and
Yahoo-shaped vendor errors replayed through the real yfinance path for the guard (a 100x day, a split
the vendor did not apply or applied on some days only, a level shift) beside a real crash that stays
down. The cases are written here after the shapes of the public examples (yfinance's tests/data);
nothing is copied.
"""

from __future__ import annotations

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest

from capwatch.alerts import evaluate, load_config
from capwatch.calendar import trading_days
from capwatch.load import load_batch
from capwatch.replay.yahoo import MarketFrames
from capwatch.transform import build_and_gate
from capwatch.validate import gate_raw
from tests.conftest import insert_prices, insert_shares, insert_splits

DAYS = [d.date() for d in trading_days(date(2024, 1, 2), date(2024, 6, 28))]
TODAY = date(2026, 1, 2)


def _moves(db, company):
    return db.execute(
        "select date, change_pct, change_usd, cap_change_usd, count_change_usd, shares_changed, held_reason "
        "from company_daily_moves where company = ? order by date",
        [company],
    ).fetchall()


# --------------------------------------------------------------------------- model rules (literal rows)


def test_a_new_share_count_is_a_count_step_not_a_market_move(db):
    # Price 100 -> 92 (-8 %); the same day a count 1.5x the old one becomes known (filed the day before).
    insert_prices(db, [("Q", date(2018, 11, 7), 100.0), ("Q", date(2018, 11, 8), 92.0)])
    insert_shares(
        db,
        [
            ("Q", "all", date(2018, 7, 1), 1_000_000_000, date(2018, 7, 30)),
            ("Q", "all", date(2018, 11, 1), 1_400_000_000, date(2018, 11, 7)),
        ],
    )
    build_and_gate(db, "r")
    ((day, pct, usd, cap_usd, count_usd, changed, held),) = _moves(db, "Q")
    assert day == date(2018, 11, 8) and held is None and changed is True
    assert pct == pytest.approx(-8.0)  # the price move, valued at today's count
    assert usd == pytest.approx(-8.0 * 1_400_000_000)
    assert cap_usd == pytest.approx(
        92.0 * 1_400_000_000 - 100.0 * 1_000_000_000
    )  # the whole step: +28.8B
    assert count_usd == pytest.approx(100.0 * 400_000_000)  # what the new count added
    assert usd + count_usd == pytest.approx(cap_usd)
    assert db.execute("select change_pct from largest_losses where company = 'Q'").fetchone()[
        0
    ] == pytest.approx(-8.0)


def test_a_spin_off_adjustment_changes_prices_not_the_count(db):
    # IBM-like: the vendor records a 1.046 "split" for a spin-off; the count stays as filed, and the
    # day's as-traded drop (the distribution leaving the price) is part of the move.
    insert_prices(
        db,
        [
            ("I", date(2021, 11, 3), 140.0),
            ("I", date(2021, 11, 4), 127.0),
            ("I", date(2021, 11, 5), 128.27),
        ],
    )
    insert_shares(db, [("I", "all", date(2021, 9, 30), 896_000_000, date(2021, 10, 25))])
    insert_splits(db, [("I", date(2021, 11, 4), 1.046)])
    build_and_gate(db, "r")
    assert db.execute("select kind, kind_source from stg_corporate_actions").fetchall() == [
        ("price_adjustment", "ratio rule")
    ]
    shares = db.execute(
        "select shares from market_cap_daily where ticker = 'I' order by date"
    ).fetchall()
    assert shares == [(896_000_000,)] * 3
    moves = _moves(db, "I")
    assert [round(m[1], 4) for m in moves] == [
        round(100 * (127 / 140 - 1), 4),
        round(100 * (128.27 / 127 - 1), 4),
    ]
    assert [m[5] for m in moves] == [False, False]


def test_a_stock_dividend_into_another_class_leaves_this_class_count_alone(db):
    # Alphabet 2014-04-03: the vendor's 1.998 "split" of GOOGL is the class C dividend (pinned in
    # ref_corporate_actions): class A's count is not scaled.
    insert_prices(db, [("GOOGL", date(2014, 4, 2), 1135.1), ("GOOGL", date(2014, 4, 3), 571.5)])
    insert_shares(db, [("GOOGL", "A", date(2014, 1, 31), 286_000_000, date(2014, 2, 10))])
    insert_splits(db, [("GOOGL", date(2014, 4, 3), 1.998)])
    build_and_gate(db, "r")
    assert db.execute("select kind, kind_source from stg_corporate_actions").fetchall() == [
        ("price_adjustment", "reference")
    ]
    rows = db.execute(
        "select date, shares, split_factor from market_cap_daily where ticker = 'GOOGL' order by date"
    )
    assert rows.fetchall() == [
        (date(2014, 4, 2), 286_000_000, 1.0),
        (date(2014, 4, 3), 286_000_000, 1.0),
    ]


def test_a_true_split_moves_neither_the_cap_nor_the_move(db):
    insert_prices(db, [("N", date(2024, 6, 7), 1208.88), ("N", date(2024, 6, 10), 121.79)])
    insert_shares(db, [("N", "all", date(2024, 5, 24), 2_460_000_000, date(2024, 5, 29))])
    insert_splits(db, [("N", date(2024, 6, 10), 10.0)])
    build_and_gate(db, "r")
    ((_, pct, _, _, count_usd, changed, held),) = _moves(db, "N")
    assert pct == pytest.approx(100 * (121.79 * 10 / 1208.88 - 1)) and held is None
    assert changed is False and abs(count_usd) < 1e-3


# --------------------------------------------------------------- vendor errors through the yfinance path


def _market(closes: dict[str, list[float]], splits: list[tuple] = ()) -> MarketFrames:
    """Yahoo's view: prices as served (already split-adjusted by the vendor), one count per ticker."""
    rows = []
    for ticker, values in closes.items():
        for d, c in zip(DAYS, values, strict=True):
            rows.append((ticker, pd.Timestamp(d), c, c * 1.01, c * 0.99, c, 1_000_000))
    prices = pd.DataFrame(
        rows, columns=["ticker", "date", "open", "high", "low", "close", "volume"]
    )
    return MarketFrames(
        prices=prices,
        splits=pd.DataFrame(list(splits), columns=["ticker", "date", "ratio"]),
        shares=pd.DataFrame(
            {"ticker": list(closes), "as_of": pd.Timestamp("2023-11-01"), "shares": 1_000_000_000}
        ),
    )


def _walk(seed: int, start: float = 100.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(np.round(start * np.exp(np.cumsum(rng.normal(0, 0.01, len(DAYS)))), 4))


def _ingest(db, offline_yahoo, frames, tickers, tmp_path):
    src, _ = offline_yahoo(frames, today=lambda: TODAY)
    batch = src.fetch(tickers, DAYS[0], DAYS[-1])
    assert batch.problems == []
    clean, q, results = gate_raw(batch, TODAY)
    load_batch(
        db,
        clean,
        q,
        source="yahoo-replay",
        run_id="r",
        flow="test",
        start=DAYS[0],
        end=DAYS[-1],
        tickers=tickers,
        validation=results,
    )
    build_and_gate(db, "r")
    (tmp_path / "alerts.toml").write_text(
        '[rules.pct_drop]\nkind = "pct_drop"\nthreshold = -10.0\n'
    )
    return evaluate(
        db, load_config(path=tmp_path / "alerts.toml"), since=DAYS[0], run_id="r", notify_since=None
    )


def _held(db, ticker):
    return db.execute(
        "select date, reason from stg_price_checks where ticker = ? order by date", [ticker]
    ).fetchall()


def test_a_hundredfold_day_is_held_and_a_real_crash_that_stays_down_alerts(
    db, offline_yahoo, tmp_path
):
    glitch, crash, calm = _walk(1), _walk(2), _walk(3)
    glitch[60] *= 100  # pence instead of pounds for one day (shape of yfinance's 100x cases)
    crash[60:] = [c * 0.11 for c in crash[60:]]  # -89 % and it stays down
    events = _ingest(
        db,
        offline_yahoo,
        _market({"GLCH": glitch, "CRSH": crash, "CALM": calm}),
        ["GLCH", "CRSH", "CALM"],
        tmp_path,
    )
    held = _held(db, "GLCH")
    assert [d for d, _ in held] == [DAYS[60], DAYS[61]]
    assert all(
        r.startswith("scale glitch: price jumped 100x on " + DAYS[60].isoformat()) for _, r in held
    )
    assert _held(db, "CRSH") == [] and _held(db, "CALM") == []
    assert [(e.rule, e.company, e.date) for e in events] == [("pct_drop", "CRSH", DAYS[60])]
    (crash_pct,) = db.execute(
        "select change_pct from company_daily_moves where company = 'CRSH' and date = ?", [DAYS[60]]
    ).fetchone()
    assert (
        crash_pct == pytest.approx(100 * (crash[60] / crash[59] - 1), abs=1e-6) and crash_pct < -88
    )
    # Held days are no moves, are never ranked, and are listed with their reason.
    assert db.execute(
        "select count(*) from company_daily_moves where company = 'GLCH' and held_reason is not null "
        "and change_usd is null"
    ).fetchone() == (2,)
    assert db.execute(
        "select count(*) from largest_losses where company = 'GLCH' and date in (?, ?)",
        [DAYS[60], DAYS[61]],
    ).fetchone() == (0,)
    q = db.execute(
        "select ticker, date, dataset from quarantine where source = 'model:stg_price_checks' "
        "order by date"
    ).fetchall()
    assert q == [("GLCH", DAYS[60], "prices_daily"), ("GLCH", DAYS[61], "prices_daily")]


def test_a_split_the_vendor_did_not_apply_and_one_applied_on_some_days_only(
    db, offline_yahoo, tmp_path
):
    split_day = DAYS[80]
    unapplied, partial = _walk(4, 400.0), _walk(5, 400.0)
    # Yahoo serves pre-split prices already divided by the ratio; here it did not divide at all ...
    for i in range(80, len(DAYS)):
        unapplied[i] /= 4
    # ... and here it divided all but three days (the shape of yfinance's "split applied partially").
    partial = [
        c / 4 if i < 80 and i not in (70, 71, 72) else (c / 4 if i >= 80 else c)
        for i, c in enumerate(partial)
    ]
    frames = _market(
        {"UNAP": unapplied, "PART": partial},
        splits=[("UNAP", pd.Timestamp(split_day), 4.0), ("PART", pd.Timestamp(split_day), 4.0)],
    )
    events = _ingest(db, offline_yahoo, frames, ["UNAP", "PART"], tmp_path)
    (unap,) = _held(db, "UNAP")
    assert unap[0] == split_day
    assert re.match(
        r"unapplied split: price fell 4(\.\d+)?x on the ex-date of a 4-for-1 split", unap[1]
    ), unap[1]
    assert [d for d, _ in _held(db, "PART")] == DAYS[70:74]
    assert events == []  # neither the -75 % "crash" nor the fourfold days page anyone


def test_a_level_shift_is_held_but_one_bad_ticker_never_stops_the_others(
    db, offline_yahoo, tmp_path
):
    shifted, other = _walk(6), _walk(7)
    shifted[100:] = [c / 100 for c in shifted[100:]]  # the vendor switches units for good
    _ingest(
        db, offline_yahoo, _market({"SHFT": shifted, "OTHR": other}), ["SHFT", "OTHR"], tmp_path
    )
    ((day, reason),) = _held(db, "SHFT")
    assert day == DAYS[100] and reason.startswith("level shift: price moved 0.01")
    # Everything else is published: the other company's every day, and SHFT's other days.
    assert db.execute(
        "select count(*) from company_daily_moves where company = 'OTHR' and change_usd is not null"
    ).fetchone() == (len(DAYS) - 1,)
    assert db.execute(
        "select count(*) from company_daily_moves where company = 'SHFT' and change_usd is not null"
    ).fetchone() == (len(DAYS) - 2,)


# ------------------------------------------------------------------------- model changes rebuild history


def test_changing_a_models_sql_rebuilds_its_whole_history(db, monkeypatch):
    import dataclasses

    from capwatch import transform

    insert_prices(db, [("M", d, 100.0 + i) for i, d in enumerate(DAYS[:40])])
    insert_shares(db, [("M", "all", date(2023, 11, 1), 1_000_000, date(2023, 11, 2))])
    build_and_gate(db, "first")
    # A later load of the last day: an incremental build would only replace the last weeks.
    db.execute(
        "insert into load_runs values ('second', 'test', 'x', ['M'], null, null, 0, 1, 0, 0, [], now(), ?)",
        [DAYS[39]],
    )
    real = transform.load_models()
    doubled = [
        m
        if m.name != "market_cap_daily"
        else dataclasses.replace(
            m,
            sql=m.sql.replace(
                "close * round(shares_reported * split_factor) * price_multiplier as market_cap",
                "2 * close * round(shares_reported * split_factor) * price_multiplier as market_cap",
            ),
        )
        for m in real
    ]
    assert doubled != real
    monkeypatch.setattr(transform, "load_models", lambda directory=None: doubled)
    assert transform.changed_models(db, doubled) == ["market_cap_daily"]
    build_and_gate(db, "second")
    caps = db.execute("select date, market_cap from market_cap_daily order by date").fetchall()
    assert caps == [
        (d, 2 * (100.0 + i) * 1_000_000) for i, (d, _) in enumerate(caps)
    ]  # every day, not the tail
    assert db.execute("select since from model_builds where run_id = 'second'").fetchone() == (
        None,
    )  # full
    assert db.execute("select max(abs(change_pct)) < 1.01 from company_daily_moves").fetchone() == (
        True,
    )
