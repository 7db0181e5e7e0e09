"""SQL models: literal rows in, exact rows out."""

from __future__ import annotations

from datetime import date

import pytest

from capwatch.alerts.rules import ALERT_RULES_TABLE
from capwatch.transform import load_models, run_models
from tests.conftest import insert_prices, insert_shares, insert_splits


def _prices(con, rows):
    insert_prices(con, rows)


def _shares(con, rows):
    insert_shares(con, [(t, "all", as_of, n, reported) for t, as_of, n, reported in rows])


def _splits(con, rows):
    insert_splits(con, rows)


def _caps(con, ticker):
    return con.execute(
        "select date, shares, market_cap, shares_as_of, split_factor from market_cap_daily where ticker=? order by date",
        [ticker],
    ).fetchall()


def test_models_run_in_dependency_order():
    names = [m.name for m in load_models()]
    assert (
        names.index("stg_split_index")
        < names.index("market_cap_daily")
        < names.index("daily_moves")
        < names.index("largest_losses")
    )


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
    _prices(
        db, [("X", date(2025, 1, d), 10.0) for d in (14, 15, 16)] + [("X", date(2025, 2, 21), 10.0)]
    )
    _shares(
        db,
        [
            ("X", date(2024, 12, 1), 1_000_000, date(2024, 12, 5)),
            ("X", date(2025, 1, 10), 1_100_000, date(2025, 1, 15)),
            ("X", date(2025, 1, 5), 1_050_000, date(2025, 2, 20)),
        ],
    )
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
    assert db.execute(
        "select market_cap, cap_status from market_cap_daily where ticker='Y'"
    ).fetchall() == [(None, "no_share_count"), (None, "no_share_count")]
    assert db.execute("select count(*) from largest_losses where ticker='Y'").fetchone() == (0,)


def test_largest_losses_ranked_in_usd_and_pct(db):
    _prices(
        db,
        [
            ("A", date(2025, 1, 24), 100.0),
            ("A", date(2025, 1, 27), 90.0),
            ("B", date(2025, 1, 24), 10.0),
            ("B", date(2025, 1, 27), 5.0),
        ],
    )
    _shares(
        db,
        [
            ("A", date(2024, 12, 1), 100_000, date(2024, 12, 2)),
            ("B", date(2024, 12, 1), 100_000, date(2024, 12, 2)),
        ],
    )
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


# ------------------------------------------------------------------ one literal-rows test per model


def test_stg_split_index_multiplies_ratios_in_date_order(db):
    _splits(db, [("T", date(2022, 8, 25), 3.0), ("T", date(2020, 8, 31), 5.0)])
    run_models(db)
    assert db.execute(
        "select ticker, date, ratio, cum_factor from stg_split_index order by date"
    ).fetchall() == [("T", date(2020, 8, 31), 5.0, 5.0), ("T", date(2022, 8, 25), 3.0, 15.0)]


def test_stg_prices_carries_the_split_basis_of_each_day(db):
    _prices(
        db,
        [
            ("T", date(2020, 8, 28), 2213.4),
            ("T", date(2020, 8, 31), 498.32),
            ("U", date(2020, 8, 31), 7.0),
        ],
    )
    _splits(db, [("T", date(2020, 8, 31), 5.0)])
    run_models(db)
    assert db.execute(
        "select ticker, date, close, price_split_factor from stg_prices order by all"
    ).fetchall() == [
        ("T", date(2020, 8, 28), 2213.4, 1.0),
        ("T", date(2020, 8, 31), 498.32, 5.0),
        ("U", date(2020, 8, 31), 7.0, 1.0),
    ]


def test_stg_count_series_adds_a_single_class_series_for_every_other_priced_ticker(db):
    _prices(db, [("NVDA", date(2025, 1, 2), 138.31), ("GOOG", date(2025, 1, 2), 191.49)])
    run_models(db)
    rows = db.execute(
        "select company, count_ticker, share_class, price_ticker, price_multiplier, is_listing "
        "from stg_count_series where company in ('NVDA', 'Alphabet') order by all"
    ).fetchall()
    assert rows == [
        ("Alphabet", "GOOGL", "A", "GOOGL", 1.0, True),
        ("Alphabet", "GOOGL", "B", "GOOGL", 1.0, False),
        ("Alphabet", "GOOGL", "C", "GOOG", 1.0, True),
        ("Alphabet", "GOOGL", "all", "GOOGL", 1.0, False),
        ("NVDA", "NVDA", "all", "NVDA", 1.0, True),
    ]
    # GOOG is a class of Alphabet (reference table), never a company of its own.
    assert db.execute(
        "select count(*) from stg_count_series where company = 'GOOG'"
    ).fetchone() == (0,)


def test_company_daily_moves_sums_classes_at_their_own_prices(db):
    # Meta: class A (listed) and B (unlisted, valued at A's price); two days.
    insert_prices(db, [("META", date(2025, 1, 24), 647.49), ("META", date(2025, 1, 27), 659.88)])
    insert_shares(
        db,
        [
            ("META", "A", date(2024, 10, 18), 2_180_000_000, date(2024, 10, 31)),
            ("META", "B", date(2024, 10, 18), 343_000_000, date(2024, 10, 31)),
        ],
    )
    run_models(db)
    rows = db.execute(
        "select company, ticker, date, prev_date, market_cap, prev_market_cap, change_usd, change_pct "
        "from company_daily_moves"
    ).fetchall()
    shares = 2_180_000_000 + 343_000_000
    assert rows == [
        (
            "Meta Platforms",
            "META",
            date(2025, 1, 27),
            date(2025, 1, 24),
            pytest.approx(659.88 * shares),
            pytest.approx(647.49 * shares),
            pytest.approx((659.88 - 647.49) * shares),
            pytest.approx(100 * (659.88 / 647.49 - 1)),
        )
    ]


def test_alert_candidates_query_applies_each_rule_kind(db):
    from capwatch.resources import transforms_dir

    # Three companies, two days: A falls 12 % (-$12B), B falls 5 % (-$150B), C rises.
    insert_prices(
        db,
        [
            ("A", date(2025, 1, 24), 100.0),
            ("A", date(2025, 1, 27), 88.0),
            ("B", date(2025, 1, 24), 100.0),
            ("B", date(2025, 1, 27), 95.0),
            ("C", date(2025, 1, 24), 10.0),
            ("C", date(2025, 1, 27), 11.0),
        ],
    )
    insert_shares(
        db,
        [
            ("A", "all", date(2024, 12, 1), 1_000_000_000, date(2024, 12, 2)),
            ("B", "all", date(2024, 12, 1), 30_000_000_000, date(2024, 12, 2)),
            ("C", "all", date(2024, 12, 1), 1_000_000_000, date(2024, 12, 2)),
        ],
    )
    run_models(db)
    db.execute(ALERT_RULES_TABLE)
    db.executemany(
        "insert into alert_rules values (?, ?, ?, ?, ?, ?, ?)",
        [
            ("pct_drop", "pct_drop", -10.0, None, 250, None, "down"),
            ("usd_loss", "usd_loss", -100e9, None, 250, None, "down"),
            ("top1_drop", "top_n_pct_drop", -4.0, 1, 250, None, "down"),
            (
                "pct_drop",
                None,
                -20.0,
                None,
                None,
                "C",
                None,
            ),  # an override that changes nothing here
            ("pct_rise", "pct_drop", -9.0, None, 250, None, "up"),  # C rises 10 %: a rising move
        ],
    )
    sql = (transforms_dir() / "alerts" / "candidates.sql").read_text()
    rows = db.execute(sql, {"since": date(2025, 1, 1)}).fetchall()
    cols = [d[0] for d in db.description]
    got = sorted(
        (r["rule"], r["company"], r["date"], round(r["change_pct"], 6), r["rank_in_history"])
        for r in (dict(zip(cols, row, strict=True)) for row in rows)
    )
    assert got == [
        ("pct_drop", "A", date(2025, 1, 27), -12.0, 1),
        ("pct_rise", "C", date(2025, 1, 27), 10.0, 1),
        ("top1_drop", "B", date(2025, 1, 27), -5.0, 1),
        ("usd_loss", "B", date(2025, 1, 27), -5.0, 1),
    ]


def test_market_daily_and_group_daily_moves_sum_the_market_moves(db):
    # NVDA and AMD (Semiconductors) and MSFT (Software); a day later each moves.
    _prices(
        db,
        [
            ("NVDA", date(2025, 1, 24), 100.0),
            ("NVDA", date(2025, 1, 27), 80.0),
            ("AMD", date(2025, 1, 24), 10.0),
            ("AMD", date(2025, 1, 27), 9.0),
            ("MSFT", date(2025, 1, 24), 50.0),
            ("MSFT", date(2025, 1, 27), 51.0),
        ],
    )
    _shares(
        db, [(t, date(2024, 12, 1), 1_000_000, date(2024, 12, 2)) for t in ("NVDA", "AMD", "MSFT")]
    )
    run_models(db)
    market = db.execute(
        "select date, total_market_cap, change_usd, change_pct, companies, companies_down, "
        "down_5_pct, down_10_pct from market_daily"
    ).fetchall()
    change = (-20.0 - 1.0 + 1.0) * 1_000_000
    assert market == [
        (
            date(2025, 1, 27),
            140.0 * 1_000_000,
            change,
            pytest.approx(100 * change / 160e6),
            3,
            2,
            2,
            2,
        )
    ]
    groups = db.execute(
        "select group_name, change_usd, companies from group_daily_moves order by 1"
    ).fetchall()
    assert groups == [("Semiconductors", -21.0 * 1_000_000, 2), ("Software", 1.0 * 1_000_000, 1)]


def _random_market(db, tickers: int = 8, days: int = 300, twins: bool = True):
    """A seeded random walk per ticker over ``days`` weekdays from 2024-01-01; with ``twins`` the
    last ticker trades exactly as the first (tied losses), counts known from before the start."""
    import random
    from datetime import timedelta

    rng = random.Random(18)
    names = [f"T{i:02d}" for i in range(tickers)]
    dates, d = [], date(2024, 1, 1)
    while len(dates) < days:
        if d.weekday() < 5:
            dates.append(d)
        d += timedelta(days=1)
    walks = names[:-1] if twins else names
    rows = []
    for i, t in enumerate(walks):
        price, shares = 50.0 + 10 * i, 1_000_000_000 * (1 + i % 3)
        _shares(db, [(t, date(2023, 12, 1), shares, date(2023, 12, 15))])
        for day in dates:
            price *= 1 + rng.gauss(0, 0.02) + (-0.15 if rng.random() < 0.01 else 0.0)
            rows.append((t, day, round(price, 2)))
    if twins:  # the same prices and count as the first ticker: every move ties with its moves
        _shares(db, [(names[-1], date(2023, 12, 1), 1_000_000_000, date(2023, 12, 15))])
        rows += [(names[-1], day, close) for t, day, close in rows if t == names[0]]
    _prices(db, rows)
    return names, dates


def test_day_report_ranks_every_loss_as_largest_losses_does(db):
    """The day report ranks a day's losses without sorting the history (per-key counts): the ranks
    must be exactly largest_losses' ranks, ties included, for every loss on every day."""
    from capwatch.resources import transforms_dir

    names, dates = _random_market(db, tickers=8, days=300)
    run_models(db)
    sql = (transforms_dir() / "reports" / "day_losses.sql").read_text()
    ranked_days = 0
    for day in dates[1::7]:
        db.execute(f"set variable report_day = DATE '{day}'")
        got = db.execute(
            f"select company, rank_usd, rank_pct, company_rank_usd, company_rank_pct from ({sql}) "
            "where change_usd < 0 order by company"
        ).fetchall()
        want = db.execute(
            "select company, rank_usd, rank_pct, company_rank_usd, company_rank_pct "
            "from largest_losses where date = ? order by company",
            [day],
        ).fetchall()
        assert got == want, day
        ranked_days += bool(got)
    assert ranked_days > 30
    twins = db.execute(
        "select count(*) from largest_losses a join largest_losses b on a.date = b.date "
        "and a.company = ? and b.company = ? and a.rank_usd = b.rank_usd",
        [names[0], names[-1]],
    ).fetchone()[0]
    assert twins > 50  # the twin's losses tie with the first ticker's: ties were ranked
    gains = db.execute(
        f"select count(*), count(rank_usd) from ({sql}) where change_usd >= 0"
    ).fetchone()
    assert gains[0] > 0 and gains[1] == 0  # gains have no ranks
    # The report ranks only the losses it shows (report_ranked): the day's N largest in dollars
    # get the same ranks as above, the others none.
    day = dates[-1]
    db.execute(f"set variable report_day = DATE '{day}'")
    query = (
        f"select company, rank_usd, rank_pct, company_rank_usd from ({sql}) where change_usd < 0 "
        "order by change_usd, company"
    )
    every = db.execute(query).fetchall()
    assert len(every) >= 3
    db.execute("set variable report_ranked = 2")
    shown = db.execute(query).fetchall()
    assert shown[:2] == every[:2]
    assert all(r[1:] == (None, None, None) for r in shown[2:]) and len(shown) == len(every)


def test_record_loss_candidates_are_new_worst_losses_after_enough_history(db):
    from capwatch.resources import transforms_dir

    names, dates = _random_market(db, tickers=3, days=300, twins=False)
    run_models(db)
    db.execute(ALERT_RULES_TABLE)
    db.execute(
        "insert into alert_rules values ('record_loss', 'record_loss', null, null, 100, null, 'down')"
    )
    want = db.execute(
        """
        select company, date from (
            select company, date, change_usd,
                   min(change_usd) over (partition by company order by date
                       rows between unbounded preceding and 1 preceding) as worst_before,
                   row_number() over (partition by company order by date) - 1 as prior_days
            from company_daily_moves)
        where change_usd < 0 and change_usd < worst_before and prior_days >= 100
        order by all
        """
    ).fetchall()
    assert want  # the random walks set new records after their first 100 days
    sql = (transforms_dir() / "alerts" / "candidates.sql").read_text()
    for since in (dates[0], dates[150], dates[250]):
        got = db.execute(
            f"select company, date from ({sql}) where rule = 'record_loss' order by all",
            {"since": since},
        ).fetchall()
        assert got == [r for r in want if r[1] >= since], since
    db.execute("delete from alert_rules")  # no record rule: no record candidates
    assert db.execute(sql, {"since": dates[0]}).fetchall() == []


def test_candidates_count_each_moves_earlier_days_whichever_way_they_count_them(db):
    """prior_days (what an alert's message and min_history read) is the company's days before the
    move: counted per candidate when few moves pass, by a window when many do, and from
    company_moves_yearly for the years before $since's. Both ways must give the plain count."""
    from capwatch.resources import transforms_dir

    names, dates = _random_market(db, tickers=3, days=300, twins=False)  # 2024 into 2025
    run_models(db)
    want = dict(
        ((c, d), n)
        for c, d, n in db.execute(
            "select company, date, row_number() over (partition by company order by date) - 1 "
            "from company_daily_moves"
        ).fetchall()
    )
    db.execute(ALERT_RULES_TABLE)
    sql = (transforms_dir() / "alerts" / "candidates.sql").read_text()
    for threshold, few in ((-4.0, True), (-0.5, False)):  # 4 % drops are rare, 0.5 % common
        db.execute("delete from alert_rules")
        db.execute(
            "insert into alert_rules values ('drop', 'pct_drop', ?, null, 0, null, 'down')",
            [threshold],
        )
        for since in (dates[0], dates[130], dates[270]):  # the first day, mid-2024, 2025
            got = db.execute(
                f"select company, date, prior_days from ({sql})", {"since": since}
            ).fetchall()
            # the way candidates.sql takes: joined while they are at most 1/20 of the days
            # from the start of $since's year
            days = db.execute(
                "select count(*) from company_daily_moves where year(date) >= ?", [since.year]
            ).fetchone()[0]
            assert (len(got) * 20 <= days) == few, (threshold, since, len(got), days)
            assert got and all(n == want[(c, d)] for c, d, n in got), (threshold, since)


def test_candidates_rank_each_move_among_the_companys_earlier_moves_as_a_plain_count_does(db):
    """rank_in_history is 1 + the company's earlier moves with a larger dollar loss: counted from
    company_losses for the years before $since's (a falling move), from company_daily_moves since
    then and for every day of a company with a rising move. Tied losses (twins) included, in
    either direction and from any $since, it must equal the plain count over every day."""
    from capwatch.resources import transforms_dir

    names, dates = _random_market(db, tickers=4, days=300, twins=True)  # 2024 into 2025
    run_models(db)
    db.execute(ALERT_RULES_TABLE)
    db.execute("insert into alert_rules values ('drop', 'pct_drop', -2.0, null, 0, null, 'down')")
    db.execute("insert into alert_rules values ('rise', 'pct_drop', -3.0, null, 0, null, 'up')")
    sql = (transforms_dir() / "alerts" / "candidates.sql").read_text()
    for since in (dates[0], dates[200], dates[280]):  # the first day, late 2024, 2025
        got = db.execute(
            f"""
            select c.rule, c.company, c.date, c.rank_in_history, 1 + (
                select count(*) from company_daily_moves as m
                where m.company = c.company and m.date < c.date and m.change_usd < c.change_usd
            )
            from ({sql}) as c
            """,
            {"since": since},
        ).fetchall()
        assert {r[0] for r in got} == {"drop", "rise"}, since
        assert all(rank == plain for _, _, _, rank, plain in got), (since, got)
    # the last $since is in 2025: its falling moves were ranked against 2024 through company_losses
    assert since.year == 2025 and all(r[2] >= since for r in got)


def test_company_losses_are_stored_by_company_and_an_incremental_build_appends_after_them(db):
    """`-- incremental: date, stored by company, date`: a full build writes the losses in company
    order (a query of a few companies then reads only their row groups); an incremental build
    replaces its days and appends them, in that order too, after the rows it kept."""
    names, dates = _random_market(db, tickers=4, days=120, twins=False)
    run_models(db)
    stored = db.execute("select company, date from company_losses order by rowid").fetchall()
    assert len(stored) > 100 and stored == sorted(stored)
    since = dates[100]
    run_models(db, since=since)
    after = db.execute("select company, date from company_losses order by rowid").fetchall()
    kept = [r for r in stored if r[1] < since]
    assert after[: len(kept)] == kept
    assert after[len(kept) :] == sorted(r for r in stored if r[1] >= since)


def test_candidates_are_the_moves_that_pass_each_rule_whatever_its_direction(db):
    """candidates.sql keeps only the moves beyond some rule's loosest threshold before it joins
    them to the rules: every direction ('down', 'up', 'both'), kind and override must still find
    exactly the moves that pass, checked here one move and one rule at a time. Each rule is tried
    alone (another rule's bound could hide a fault in its own), then all of them together."""
    from capwatch.resources import transforms_dir

    names, dates = _random_market(db, tickers=4, days=200, twins=False)
    run_models(db)
    db.execute(ALERT_RULES_TABLE)
    moves = db.execute(
        "select company, date, change_pct, change_usd, prev_size_rank from company_daily_moves "
        "where change_pct is not null"
    ).fetchall()
    sql = (transforms_dir() / "alerts" / "candidates.sql").read_text()

    def passes(value, threshold, direction):
        if direction == "up":
            return value >= -threshold
        if direction == "both":
            return abs(value) >= abs(threshold)
        return value <= threshold

    rules = [  # (rule, kind, threshold, top_n, direction)
        ("down", "pct_drop", -3.0, None, "down"),
        ("up", "pct_drop", -2.5, None, "up"),
        ("both", "pct_drop", -4.0, None, "both"),
        ("top2", "top_n_pct_drop", -5.0, 2, "both"),
        ("usd_down", "usd_loss", -2e9, None, "down"),
        ("usd_up", "usd_loss", -1.5e9, None, "up"),
        ("usd_both", "usd_loss", 3e9, None, "both"),  # positive: only its size counts
    ]
    overrides = {  # each looser than its rule, for one company
        ("down", names[2]): -1.5,
        ("up", names[1]): -1.0,
        ("both", names[3]): -3.0,
        ("usd_down", names[0]): -5e8,
        ("usd_up", names[3]): -5e8,
        ("usd_both", names[2]): -1e9,
    }
    rule_sets = [([r], {k: t for k, t in overrides.items() if k[0] == r[0]}) for r in rules] + [
        (rules, overrides)
    ]
    for chosen, looser in rule_sets:
        db.execute("delete from alert_rules")
        db.executemany(
            "insert into alert_rules values (?, ?, ?, ?, 0, null, ?)",
            [(r, k, t, n, d) for r, k, t, n, d in chosen],
        )
        for (r, c), t in looser.items():
            db.execute(
                "insert into alert_rules values (?, null, ?, null, null, ?, null)", [r, t, c]
            )
        want = set()
        for company, day, pct, usd, size_rank in moves:
            for rule, kind, threshold, top_n, direction in chosen:
                t = looser.get((rule, company), threshold)
                value = usd if kind == "usd_loss" else pct
                if passes(value, t, direction) and (top_n is None or size_rank <= top_n):
                    want.add((rule, company, day))
        # each override finds moves its rule alone would not
        for (rule, company), t in looser.items():
            kind, threshold, direction = next((k, th, d) for r, k, th, _, d in chosen if r == rule)
            col = 3 if kind == "usd_loss" else 2
            assert any(
                m[0] == company
                and passes(m[col], t, direction)
                and not passes(m[col], threshold, direction)
                for m in moves
            ), (rule, company)
        for since in (dates[0], dates[120]):
            got = db.execute(
                f"select rule, company, date from ({sql})", {"since": since}
            ).fetchall()
            assert len(got) == len(set(got))
            assert set(got) == {w for w in want if w[2] >= since}, since
        assert {r for r, _, _ in got} == {r for r, *_ in chosen}  # every rule found some


def test_the_price_move_audit_names_a_move_that_is_not_the_listings_price_move(db):
    from capwatch.validate.audits import audit_models

    names, dates = _random_market(db, tickers=3, days=40, twins=False)
    run_models(db)
    assert audit_models(db, since=dates[20]).passed
    db.execute(
        "update company_daily_moves set change_pct = change_pct + 0.5 where company = ? and date = ?",
        [names[1], dates[30]],
    )
    result = audit_models(db, since=dates[20])
    assert not result.passed
    assert result.failures == [
        (
            "a single-class company's move is not its listing's price move",
            [f"{names[1]} {dates[30]}"],
        )
    ]
    assert audit_models(db, since=dates[31]).passed  # an incremental audit reads only its days


def test_the_consistency_audit_names_each_move_whose_caps_or_parts_disagree(db):
    """A move's own cap, its previous day's cap and its parts are each checked against
    market_cap_daily: each tampered move is named once, whichever of the three is wrong."""
    from capwatch.validate.audits import audit_models

    names, dates = _random_market(db, tickers=3, days=40, twins=False)
    run_models(db)
    assert audit_models(db).passed
    reason = "daily_moves disagrees with market_cap_daily"
    db.execute(  # the day's cap moves: the move of that day and of the next now disagree
        "update market_cap_daily set market_cap = market_cap * 1.01 where ticker = ? and date = ?",
        [names[0], dates[10]],
    )
    db.execute(  # the parts no longer add up
        "update daily_moves set change_usd = change_usd + 1e9 where ticker = ? and date = ?",
        [names[1], dates[20]],
    )
    db.execute(  # both caps of one move wrong: still one offending move
        "update daily_moves set market_cap = market_cap + 1, prev_market_cap = prev_market_cap + 1 "
        "where ticker = ? and date = ?",
        [names[2], dates[30]],
    )
    result = audit_models(db)
    failed = dict(result.failures)
    assert sorted(failed[reason]) == sorted(
        [
            f"{names[0]} {dates[10]}",
            f"{names[0]} {dates[11]}",
            f"{names[1]} {dates[20]}",
            f"{names[2]} {dates[30]}",
        ]
    )
    assert sorted(dict(audit_models(db, since=dates[25]).failures)[reason]) == [
        f"{names[2]} {dates[30]}"
    ]
