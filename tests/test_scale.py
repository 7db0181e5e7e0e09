"""Issue 8: incremental model builds give exactly the tables a full rebuild gives (generated market)."""

from __future__ import annotations

from datetime import date

import pandas as pd

from bench.compare import comparable
from capwatch.extract import Extracted, to_as_traded
from capwatch.load import load_batch
from capwatch.replay.market import generate_market
from capwatch.transform import build_and_gate, load_models
from capwatch.validate import gate_raw
from tests.conftest import open_db

TODAY = date(2026, 11, 23)


def _batch(market, lo, hi) -> Extracted:
    p = market.prices[
        (market.prices.date >= pd.Timestamp(lo)) & (market.prices.date <= pd.Timestamp(hi))
    ]
    sp = market.splits[market.splits.date <= pd.Timestamp(hi)]
    sh = market.shares[market.shares.reported_date <= pd.Timestamp(hi)]
    return Extracted(prices=p, splits=sp, shares=sh)


def _load(con, batch, run):
    clean, q, res = gate_raw(batch, TODAY)
    load_batch(
        con,
        clean,
        q,
        source="generated",
        run_id=run,
        flow="test",
        start=None,
        end=None,
        tickers=[],
        validation=res,
    )


def test_generated_market_is_deterministic_and_yahoo_shaped():
    a = generate_market(n_tickers=5, start=date(2020, 1, 2), end=date(2021, 12, 31), seed=7)
    b = generate_market(n_tickers=5, start=date(2020, 1, 2), end=date(2021, 12, 31), seed=7)
    pd.testing.assert_frame_equal(a.prices, b.prices)
    pd.testing.assert_frame_equal(a.shares, b.shares)
    y = a.yahoo_frames()
    back, _ = to_as_traded(y.prices, a.splits)
    assert (
        back["close"] - a.prices["close"]
    ).abs().max() < 1e-6  # Yahoo's adjustment undone exactly


def test_incremental_models_equal_a_full_rebuild(tmp_path):
    market = generate_market(n_tickers=12, start=date(2023, 1, 3), end=date(2024, 12, 31), seed=1)
    assert (
        market.splits.date > "2024-07-01"
    ).any()  # the increments cross a split and new share counts
    days = sorted(market.prices.date.unique())
    cut = [days[-120], days[-60], days[-20], days[-1]]
    inc = open_db(tmp_path / "incremental.duckdb", read_only=False)
    _load(inc, _batch(market, days[0], cut[0]), "r0")
    build_and_gate(inc, "b0")
    for i, (lo, hi) in enumerate(zip(cut, cut[1:], strict=False), 1):
        _load(inc, _batch(market, lo, hi), f"r{i}")
        runs = build_and_gate(inc, f"b{i}")
        assert runs, "something changed: the models were built"
    assert (
        inc.execute("select count(*) from model_builds where since is not null").fetchone()[0] == 3
    )
    assert build_and_gate(inc, "noop") == []  # nothing loaded since: nothing built

    full = open_db(tmp_path / "full.duckdb", read_only=False)
    _load(full, _batch(market, days[0], days[-1]), "all")
    build_and_gate(full, "full")
    _same_models(inc, full)


def _same_models(inc, full) -> None:
    for m in load_models():
        types = dict(
            full.execute(
                "select column_name, data_type from duckdb_columns() where table_name = ?", [m.name]
            ).fetchall()
        )
        grain = ("company", "ticker", "share_class", "count_ticker", "date", "as_of", "measure")
        order = ", ".join(c for c in (*grain, "size_key") if c in types)
        select = comparable(list(types.items()))
        a = inc.execute(f"select {select} from {m.name} order by {order}").df()
        b = full.execute(f"select {select} from {m.name} order by {order}").df()
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-12, obj=m.name)


def test_yearly_summaries_follow_increments_across_a_new_year(tmp_path):
    """company_moves_yearly and loss_sizes_yearly hold a row per year, replaced whole by an
    incremental build from its since's year on: loads that cross New Year, one of them correcting
    a December close after January was built, leave them as a full rebuild would."""
    market = generate_market(n_tickers=6, start=date(2023, 9, 1), end=date(2024, 2, 29), seed=5)
    days = sorted(market.prices.date.unique())
    dec = [d for d in days if d.month == 12 and d.year == 2023]
    jan = [d for d in days if d.month == 1 and d.year == 2024]
    inc = open_db(tmp_path / "incremental.duckdb", read_only=False)
    _load(inc, _batch(market, days[0], dec[5]), "r0")
    build_and_gate(inc, "b0")
    _load(inc, _batch(market, dec[6], jan[10]), "r1")
    assert build_and_gate(inc, "b1")
    # a December close corrected after January was built: December's rows and both years change
    ticker = market.prices.ticker.iloc[0]
    fix = market.prices[(market.prices.ticker == ticker) & (market.prices.date == dec[-3])]
    market.prices.loc[fix.index, "close"] = fix["close"] * 0.9
    market.prices.loc[fix.index, "low"] = fix["low"] * 0.9
    _load(inc, _batch(market, dec[-3], days[-1]), "r2")
    assert build_and_gate(inc, "b2")
    years = inc.execute("select distinct year from company_moves_yearly order by year").fetchall()
    assert years == [(2023,), (2024,)]

    full = open_db(tmp_path / "full.duckdb", read_only=False)
    _load(full, _batch(market, days[0], days[-1]), "all")
    build_and_gate(full, "full")
    _same_models(inc, full)
    days_stored, losses = full.execute(
        "select count(*), count(*) filter (where change_usd < 0) from company_daily_moves"
    ).fetchone()
    assert full.execute(
        "select sum(days), (select count(*) from company_losses) from company_moves_yearly"
    ).fetchone() == (days_stored, losses)
    assert full.execute(
        "select sum(n) from loss_sizes_yearly where measure = 'usd'"
    ).fetchone() == (losses,)


def test_a_split_judged_again_when_its_prices_arrive_rebuilds_its_tickers_counts(tmp_path):
    """The share-count models are rebuilt per ticker (only the tickers with a new count or split):
    a split announced ahead and stored before its ex-date is judged again when the ex-date's price
    arrives (here: the price did not split, so it is not applied); the ticker's counts are then
    rebuilt although no count or split of it was stored since the last build."""
    market = generate_market(n_tickers=4, start=date(2024, 1, 2), end=date(2024, 6, 28), seed=3)
    days = sorted(market.prices.date.unique())
    ex_date = pd.Timestamp(days[-10])
    ticker = market.prices.ticker.iloc[0]
    bogus = pd.DataFrame({"ticker": [ticker], "date": [ex_date], "ratio": [4.0]})
    market.splits = pd.concat([market.splits, bogus], ignore_index=True)

    def batch(lo, hi) -> Extracted:
        b = _batch(market, lo, hi)
        b.splits = market.splits[market.splits.date <= ex_date]  # announced ahead: stored early
        return b

    inc = open_db(tmp_path / "incremental.duckdb", read_only=False)
    _load(inc, batch(days[0], days[-20]), "r0")
    build_and_gate(inc, "b0")
    before = inc.execute(
        "select kind from stg_corporate_actions where ticker = ? and date = ?", [ticker, ex_date]
    ).fetchone()
    _load(inc, batch(days[-19], days[-1]), "r1")
    assert build_and_gate(inc, "b1")
    after = inc.execute(
        "select kind from stg_corporate_actions where ticker = ? and date = ?", [ticker, ex_date]
    ).fetchone()
    assert before == ("split",) and after == ("not_in_prices",)  # judged again on its prices

    full = open_db(tmp_path / "full.duckdb", read_only=False)
    _load(full, batch(days[0], days[-1]), "all")
    build_and_gate(full, "full")
    _same_models(inc, full)
