"""Issue 16: share counts from SEC EDGAR filings, through the real client on a fake transport.

Every SEC answer here is built at test time by ``capwatch.replay.sec`` (company tickers,
submissions, companyfacts, inline XBRL cover pages, XBRL instances); nothing leaves the machine.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest
import requests
from click.testing import CliRunner

from capwatch.cli import main
from capwatch.extract import WithCounts
from capwatch.extract.csv import CsvSource
from capwatch.extract.sec import (
    SKIP,
    RateLimiter,
    SecClient,
    SecRefused,
    SecSource,
    parse_ix_number,
    read_cover,
    share_class_of,
)
from capwatch.load import load_batch
from capwatch.replay import offline_session
from capwatch.replay.sec import (
    OfflineSec,
    ReplayCompany,
    ReplayFiling,
    SecArchive,
    archive_from_csv,
)
from capwatch.settings import Settings, SettingsError
from capwatch.transform import run_models
from capwatch.validate import gate_raw
from tests.conftest import insert_prices, market_slice, open_db

UA = "capwatch tests tests@example.com"
CIK = 1_234_567


def _client(adapter: OfflineSec, **kw) -> SecClient:
    kw.setdefault("rate", 0)
    return SecClient(UA, session=offline_session(adapter), **kw)


def _filing(seq, form, filed, as_of, counts, layout="inline", scale=0):
    return ReplayFiling(
        f"{CIK:010d}-{filed.year % 100:02d}-{seq:06d}",
        form,
        filed,
        as_of - timedelta(days=20),
        as_of,
        counts,
        layout=layout,
        scale=scale,
        prefix="dual",
    )


A, B = "us-gaap:CommonClassAMember", "us-gaap:CommonClassBMember"


# -- reading cover pages ---------------------------------------------------------------------------


def test_cover_page_counts_per_class_with_scale_and_both_document_kinds():
    inline = _filing(
        1, "10-Q", date(2024, 5, 1), date(2024, 4, 20), [(A, 5.8e9), (B, 0.86e9)], scale=6
    )
    old = _filing(
        2, "10-Q", date(2016, 5, 1), date(2016, 4, 20), [(A, 2.9e8), (B, 5.1e7)], layout="instance"
    )
    archive = SecArchive([ReplayCompany(CIK, "Dual Class Inc.", ["DUAL"], [inline, old])])
    facts = read_cover(archive.inline_document(CIK, inline).encode())
    assert [(f.as_of, f.member, f.shares) for f in facts] == [
        (date(2024, 4, 20), A, 5.8e9),
        (date(2024, 4, 20), B, 0.86e9),
    ]
    facts = read_cover(archive.instance_document(CIK, old).encode())
    assert [(f.member, f.shares) for f in facts] == [(A, 2.9e8), (B, 5.1e7)]


def test_ix_numbers_read_with_their_format_scale_and_sign():
    assert parse_ix_number("5,833", {"scale": "6", "format": "ixt:num-dot-decimal"}) == 5.833e9
    assert parse_ix_number("1.234.567,0", {"format": "ixt:num-comma-decimal"}) == 1234567.0
    assert parse_ix_number("-", {"format": "ixt:fixed-zero"}) == 0.0
    assert parse_ix_number("none", {"format": "ixt-sec:numwordsen"}) == 0.0
    assert parse_ix_number("12", {"sign": "-"}) == -12.0
    with pytest.raises(ValueError):
        parse_ix_number("twelve", {"format": "ixt-sec:numwordsen"})


def test_class_members_map_to_share_classes():
    assert share_class_of(None) == "all"
    assert share_class_of("us-gaap:CommonClassAMember") == "A"
    assert share_class_of("goog:CapitalClassCMember") == "C"
    assert share_class_of("v:ClassB1CommonStockMember") == "B1"
    assert share_class_of("us-gaap:CommonStockMember") == "all"
    assert share_class_of("ifrs-full:OrdinarySharesMember") == "all"
    assert share_class_of("tsm:AmericanDepositarySharesMember") == SKIP
    assert share_class_of("xyz:SeriesSeedPreferredMember") is None


def test_a_context_for_a_subsidiary_is_not_a_count_of_the_company():
    doc = (
        '<html><ix:resources><xbrli:context id="c1"><xbrli:entity><xbrli:segment>'
        '<xbrldi:explicitMember dimension="dei:LegalEntityAxis">x:SubsidiaryMember</xbrldi:explicitMember>'
        "</xbrli:segment></xbrli:entity><xbrli:period><xbrli:instant>2024-04-20</xbrli:instant>"
        '</xbrli:period></xbrli:context></ix:resources><ix:nonFraction name="dei:EntityCommonStockSharesOutstanding" '
        'contextRef="c1" scale="0">1,000</ix:nonFraction></html>'
    )
    assert read_cover(doc.encode()) == []


# -- SEC's manners: User-Agent, rate, retries, cache -----------------------------------------------


def test_sec_refuses_to_start_without_a_user_agent(monkeypatch, tmp_path):
    monkeypatch.delenv("CAPWATCH_SEC_USER_AGENT", raising=False)
    settings = Settings.from_env(source="yahoo")  # live Yahoo: SEC counts by default
    assert settings.counts_source() == "sec"
    with pytest.raises(SettingsError, match="CAPWATCH_SEC_USER_AGENT .*contact e-mail"):
        settings.check_counts_source()
    with pytest.raises(SettingsError, match="got 'capwatch'"):
        SecClient("capwatch")
    res = CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            str(tmp_path / "w.duckdb"),
            "--start",
            "2024-01-02",
            "--end",
            "2024-01-05",
        ],
    )
    assert res.exit_code == 3
    assert "CAPWATCH_SEC_USER_AGENT is not set" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "w.duckdb").exists()  # refused before any work
    assert Settings.from_env(source="yahoo", shares_source="none").counts_source() is None
    assert Settings.from_env(source="csv:x").counts_source() is None


def test_sec_answers_403_to_an_undeclared_tool_and_the_client_says_why():
    adapter = OfflineSec(SecArchive([]))
    plain = offline_session(adapter)
    assert plain.get("https://www.sec.gov/files/company_tickers.json").status_code == 403
    adapter.faults = {"company_tickers": [403]}
    with pytest.raises(SecRefused, match="403.*User-Agent"):
        _client(adapter).get("https://www.sec.gov/files/company_tickers.json")


def test_rate_limiter_never_allows_more_than_the_rate_in_any_second():
    now = [0.0]
    limiter = RateLimiter(8, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    stamps = []
    for _ in range(50):
        limiter.acquire()
        stamps.append(now[0])
        now[0] += 0.01  # the request itself
    assert max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps) == 8
    assert stamps[-1] == pytest.approx(49 / 8)


def test_client_keeps_under_a_rate_limit_the_server_enforces():
    adapter = OfflineSec(SecArchive([]), max_per_second=8)
    client = _client(adapter, limiter=RateLimiter(7.5))
    for _ in range(12):
        client.get("https://www.sec.gov/files/company_tickers.json")
    assert [s for _, s in adapter.requests].count(429) == 0


def test_429_and_5xx_are_retried_with_backoff_honouring_retry_after():
    adapter = OfflineSec(SecArchive([]), faults={"company_tickers": [429, 503, 500]})
    slept = []
    client = _client(adapter, retries=4, backoff_seconds=0.5, sleep=slept.append)
    assert client.get_json("https://www.sec.gov/files/company_tickers.json") == {}
    assert client.stats.retried == 3 and client.stats.requests == 4
    assert slept == [0.0, 0.0, 0.0]  # the fake answers Retry-After: 0 for faults
    adapter.faults = {"company_tickers": [503] * 5}
    with pytest.raises(Exception, match="still failing"):
        _client(adapter, retries=2, sleep=slept.append).get(
            "https://www.sec.gov/files/company_tickers.json"
        )


def _dual_archive(extra=()):
    filings = [
        _filing(1, "10-K", date(2024, 2, 5), date(2024, 1, 25), [(A, 5.0e9), (B, 0.9e9)]),
        _filing(
            2,
            "10-Q",
            date(2024, 5, 3),
            date(2024, 4, 25),
            [(A, 4.9e9), (B, 0.9e9)],
            layout="instance",
        ),
        *extra,
    ]
    single = ReplayCompany(
        CIK + 1,
        "Single Inc.",
        ["SNGL"],
        [_filing(3, "10-Q", date(2024, 5, 2), date(2024, 4, 26), [(None, 1.5e9)], layout="facts")],
    )
    return SecArchive([ReplayCompany(CIK, "Dual Class Inc.", ["DUAL", "DUALB"], filings), single])


def test_daily_runs_revalidate_and_fetch_only_what_changed(tmp_path):
    archive = _dual_archive()
    adapter = OfflineSec(archive)
    first = SecSource(_client(adapter, cache_dir=tmp_path / "cache"))
    out = first.fetch(["DUAL", "SNGL"], date(2024, 3, 1), date(2024, 6, 30))
    # tickers + 2 x (companyfacts + submissions) + DUAL's inline cover + (index + instance)
    assert first.client.stats.requests == 8 and first.client.stats.downloaded == 8
    assert len(out.shares) == 5

    again = SecSource(_client(adapter, cache_dir=tmp_path / "cache"))
    out2 = again.fetch(["DUAL", "SNGL"], date(2024, 3, 1), date(2024, 6, 30))
    s = again.client.stats
    # the JSON feeds are revalidated (304); a filing's documents never change: read from disk
    assert (s.downloaded, s.not_modified, s.from_cache) == (0, 5, 3)
    pd.testing.assert_frame_equal(out.shares, out2.shares)

    archive.companies[CIK].filings.append(
        _filing(4, "10-Q", date(2024, 8, 2), date(2024, 7, 25), [(A, 4.8e9), (B, 0.9e9)])
    )
    third = SecSource(_client(adapter, cache_dir=tmp_path / "cache"))
    third.fetch(["DUAL", "SNGL"], date(2024, 3, 1), date(2024, 8, 30))
    # DUAL's companyfacts and submissions changed, and one new cover page
    assert third.client.stats.downloaded == 2 + 1


# -- what lands: classes, amendments, late and erroneous filings, ADRs -----------------------------


def _load_and_build(con, source, tickers, start, end, prices):
    insert_prices(con, prices)
    batch = source.fetch(tickers, start, end)
    clean, q, _ = gate_raw(batch, date(2026, 11, 30))
    load_batch(
        con,
        clean,
        q,
        source="test",
        run_id="r1",
        flow="test",
        start=start,
        end=end,
        tickers=tickers,
    )
    run_models(con)
    return batch


def test_amended_late_and_erroneous_filings_stay_point_in_time(db):
    """A 10-Q/A restating a count replaces it from the amendment's filing date only; a count filed
    late for an older date changes nothing; a count filed in thousands is quarantined."""
    archive = SecArchive(
        [
            ReplayCompany(
                CIK,
                "Single Inc.",
                ["SNGL"],
                [
                    _filing(1, "10-K", date(2024, 2, 5), date(2024, 1, 25), [(None, 1.00e9)]),
                    _filing(2, "10-Q", date(2024, 5, 3), date(2024, 4, 25), [(None, 1.02e9)]),
                    _filing(3, "10-Q/A", date(2024, 5, 20), date(2024, 4, 25), [(None, 1.01e9)]),
                    _filing(
                        4,
                        "10-K/A",
                        date(2024, 6, 3),
                        date(2024, 1, 25),
                        [(None, 0.99e9)],
                        layout="facts",
                    ),
                    _filing(
                        5,
                        "10-Q",
                        date(2024, 8, 2),
                        date(2024, 7, 25),
                        [(None, 1.01e6)],
                        layout="facts",
                    ),
                ],
            )
        ]
    )
    source = SecSource(_client(OfflineSec(archive)))
    days = pd.bdate_range("2024-04-29", "2024-08-30")
    batch = _load_and_build(
        db,
        source,
        ["SNGL"],
        date(2024, 5, 1),
        date(2024, 8, 30),
        [("SNGL", d.date(), 10.0) for d in days],
    )
    assert not batch.problems
    stored = db.execute(
        "select as_of, shares, reported_date, form, accession from shares_outstanding order by reported_date"
    ).fetchall()
    assert [(r[0], r[1], r[3]) for r in stored] == [
        (date(2024, 1, 25), 1_000_000_000, "10-K"),
        (date(2024, 4, 25), 1_020_000_000, "10-Q"),
        (date(2024, 4, 25), 1_010_000_000, "10-Q/A"),
        (date(2024, 1, 25), 990_000_000, "10-K/A"),
        (date(2024, 7, 25), 1_010_000, "10-Q"),
    ]

    def used(day):
        return db.execute(
            "select shares, shares_as_of, shares_reported_date, shares_accession from market_cap_daily "
            "where ticker = 'SNGL' and date = ?",
            [day],
        ).fetchone()

    assert used(date(2024, 5, 3))[:3] == (1_000_000_000, date(2024, 1, 25), date(2024, 2, 5))
    assert used(date(2024, 5, 6))[:3] == (1_020_000_000, date(2024, 4, 25), date(2024, 5, 3))
    assert used(date(2024, 5, 21)) == (
        1_010_000_000,
        date(2024, 4, 25),
        date(2024, 5, 20),
        stored[2][4],
    )
    assert used(date(2024, 6, 4))[0] == 1_010_000_000  # the late 10-K/A for January changes nothing
    assert used(date(2024, 8, 30))[0] == 1_010_000_000  # the count in thousands is not used
    reason = db.execute(
        "select quarantine_reason from stg_shares_checked where as_of = DATE '2024-07-25'"
    ).fetchone()[0]
    assert "the median of the previous counts" in reason


def test_multi_class_company_sums_classes_at_their_prices_and_names_the_unmapped(db):
    unknown = _filing(
        3, "10-Q", date(2024, 5, 20), date(2024, 5, 10), [("x:FounderSeriesMember", 1e6)]
    )
    archive = _dual_archive([unknown])
    source = SecSource(_client(OfflineSec(archive)))
    batch = source.fetch(["DUAL"], date(2024, 3, 1), date(2024, 6, 30))
    assert set(batch.shares["share_class"]) == {"A", "B"}
    assert [p.message for p in batch.problems] == [
        f"10-Q {unknown.accession} filed 2024-05-20: a count for class member x:FounderSeriesMember "
        "that capwatch cannot map to a share class (see capwatch.extract.sec.share_class_of): not loaded"
    ]
    assert (batch.shares["source"] == "sec").all()
    assert (
        batch.shares["filing_url"]
        .str.startswith("https://www.sec.gov/Archives/edgar/data/1234567/")
        .all()
    )


def test_unknown_ticker_and_unreadable_filings_are_named_and_the_rest_lands():
    no_xbrl = _filing(
        3, "10-Q", date(2024, 5, 20), date(2024, 5, 10), [(A, 1.0)], layout="instance"
    )
    archive = _dual_archive([no_xbrl])
    adapter = OfflineSec(archive)
    # the index of that filing is gone (404): named, and the other filings still land
    adapter.archive.index = lambda f, _orig=archive.index: (
        {"directory": {"item": []}} if f is no_xbrl else _orig(f)
    )
    out = SecSource(_client(adapter)).fetch(["DUAL", "NOPE"], date(2024, 3, 1), date(2024, 6, 30))
    msgs = sorted(str(p) for p in out.problems)
    assert msgs == [
        f"DUAL (shares_outstanding): 10-Q {no_xbrl.accession} filed 2024-05-20: its index names no XBRL instance document",
        "NOPE (shares_outstanding): not in SEC's company tickers file: no SEC filings to read",
    ]
    assert len(out.shares) == 4


def test_yahoo_and_sec_counts_land_side_by_side_and_conflicts_are_reported(
    db, shared_dir, tmp_path
):
    """Counts from the csv file and from SEC for the same as-of dates: both stored; the filed SEC
    count is used; a disagreement is listed in share_count_conflicts, never averaged."""
    archive = archive_from_csv(shared_dir, until=date(2025, 3, 31))
    nvda = next(c for c in archive.companies.values() if c.tickers == ["NVDA"])
    wrong = next(f for f in nvda.filings if f.as_of == date(2024, 11, 15))
    wrong.counts = [(None, 24_690_000_000.0)]  # SEC's copy disagrees with the file by 0.8 %
    source = WithCounts(CsvSource(shared_dir), SecSource(_client(OfflineSec(archive))))
    batch = source.fetch(["NVDA"], date(2024, 12, 1), date(2025, 1, 31))
    assert set(batch.shares["source"]) == {f"csv:{shared_dir}", "sec"}
    clean, q, _ = gate_raw(batch, date(2026, 11, 30))
    load_batch(
        db,
        clean,
        q,
        source=source.name,
        run_id="r",
        flow="t",
        start=date(2024, 12, 1),
        end=date(2025, 1, 31),
        tickers=["NVDA"],
    )
    run_models(db)
    conflict = db.execute(
        "select ticker, as_of, sources, used_source, max_ratio from share_count_conflicts"
    ).fetchall()
    assert conflict == [("NVDA", date(2024, 11, 15), 2, "sec", pytest.approx(24.69 / 24.49))]
    row = db.execute(
        "select shares, shares_source from market_cap_daily where ticker='NVDA' and date = DATE '2025-01-27'"
    ).fetchone()
    assert row == (24_690_000_000, "sec")


def test_backfill_with_yahoo_prices_and_sec_counts_values_classes_and_adrs(
    prefect_harness, shared_dir, tmp_path
):
    """Done-when of issue 16: a backfill with Yahoo prices and SEC counts, both offline, values
    Alphabet as A + B at GOOGL's price + C at GOOG's, Berkshire's A as 1,500 B, TSMC's ordinary
    shares at one fifth of an ADS, each class traced to its filing."""
    tickers = ["GOOGL", "GOOG", "BRK-B", "TSM", "NVDA"]
    market = market_slice(shared_dir, tmp_path, tickers, "2023-01-01", "2025-03-31")
    db = tmp_path / "w.duckdb"
    res = CliRunner().invoke(
        main,
        [
            "backfill",
            "--db",
            str(db),
            "--source",
            f"replay:csv:{market}",
            "--shares-source",
            f"replay:csv:{market}",
            "--start",
            "2024-06-01",
            "--end",
            "2025-03-31",
            "--tickers",
            ",".join(tickers),
        ],
    )
    assert res.exit_code in (0, 1), res.output
    archive = archive_from_csv(market)
    accessions = {f.accession: f for c in archive.companies.values() for f in c.filings}

    con = open_db(db)
    classes = con.execute(
        """
        with c as (
            select company, date, market_cap, method, unnest(classes, recursive := true)
            from company_market_cap_daily where date = DATE '2025-01-27'
        )
        select company, market_cap, method, share_class, price_ticker, close, price_multiplier, shares,
               shares_reported_date, shares_accession, shares_filing_url, shares_source
        from c where share_class <> 'all' order by company, share_class
        """
    ).df()
    for company, expected in (("Alphabet", ["A", "B", "C"]), ("Berkshire Hathaway", ["A", "B"])):
        rows = classes[classes.company == company]
        assert rows["share_class"].tolist() == expected
        assert rows["method"].iloc[0] == "classes"
        value = (rows["shares"] * rows["close"] * rows["price_multiplier"]).sum()
        assert rows["market_cap"].iloc[0] == pytest.approx(value, rel=1e-12)
        assert (rows["shares_source"] == "sec-replay").all()
        assert (rows["shares_reported_date"] < pd.Timestamp("2025-01-27")).all()
        for r in rows.itertuples():
            filing = accessions[r.shares_accession]  # a real filing of the archive
            member = dict((k.split(":")[-1], v) for k, v in filing.counts)
            assert r.shares == round(
                next(v for k, v in member.items() if share_class_of(k) == r.share_class)
            )
            assert r.shares_filing_url.endswith(
                filing.document if filing.layout == "inline" else ".xml"
            )
    alphabet = classes[classes.company == "Alphabet"].set_index("share_class")
    assert (
        alphabet.loc["C", "price_ticker"] == "GOOG" and alphabet.loc["A", "price_ticker"] == "GOOGL"
    )
    assert (
        classes[(classes.company == "Berkshire Hathaway") & (classes.share_class == "A")][
            "price_multiplier"
        ].item()
        == 1500.0
    )
    tsm = con.execute(
        "select market_cap, close, shares, price_multiplier, shares_accession from market_cap_daily "
        "where ticker = 'TSM' and date = DATE '2025-01-27'"
    ).fetchone()
    assert tsm[3] == pytest.approx(0.2) and accessions[tsm[4]].form == "20-F"
    assert tsm[0] == pytest.approx(tsm[1] * tsm[2] / 5)
    # the ADS member of the 20-F cover is not added to the ordinary shares
    assert tsm[2] == round(dict(accessions[tsm[4]].counts)["ifrs-full:OrdinarySharesMember"])
    # no spurious jump on any day of the range for the multi-class company
    moves = con.execute(
        "select max(abs(cap_change_usd - change_usd) / prev_market_cap) from company_daily_moves "
        "where company = 'Alphabet' and not shares_changed"
    ).fetchone()[0]
    assert moves < 1e-9
    con.close()


def test_sec_source_refuses_requests_without_network_clearly(monkeypatch):
    """A machine without a network: the source says SEC is unreachable (the run reports it)."""

    class Down(requests.adapters.BaseAdapter):
        def send(self, request, **kw):
            raise requests.ConnectionError("Name or service not known")

        def close(self):
            pass

    session = requests.Session()
    session.mount("https://", Down())
    client = SecClient(UA, session=session, rate=0, retries=1, sleep=lambda s: None)
    from capwatch.extract import SourceUnreachable

    with pytest.raises(SourceUnreachable, match="SEC EDGAR is unreachable"):
        SecSource(client).fetch(["NVDA"], date(2024, 1, 1), date(2024, 1, 31))


def test_workers_share_sec_budget_through_a_prefect_global_rate_limit(prefect_harness):
    """CAPWATCH_SEC_PREFECT_RATE_LIMIT names a Prefect global concurrency limit with slot decay
    that every request takes a slot of; a name that does not exist fails loudly, not silently."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="sec-test", limit=8, slot_decay_per_second=8.0)
        )
    adapter = OfflineSec(SecArchive([]))
    sec = _client(adapter, prefect_rate_limit="sec-test")
    for _ in range(3):
        sec.get("https://www.sec.gov/files/company_tickers.json")
    assert len(adapter.requests) == 3
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name("sec-test")
    assert limit.slot_decay_per_second == 8.0
    with pytest.raises(Exception, match="sec-missing"):
        _client(adapter, prefect_rate_limit="sec-missing").get(
            "https://www.sec.gov/files/company_tickers.json"
        )


def test_sec_down_or_refusing_never_stops_the_prices(shared_dir):
    """SEC unreachable (or answering 403) is a problem per ticker; the price source's rows land."""
    adapter = OfflineSec(SecArchive([]), faults={"company_tickers": [403]})
    source = WithCounts(CsvSource(shared_dir), SecSource(_client(adapter)))
    out = source.fetch(["NVDA", "ORCL"], date(2025, 1, 2), date(2025, 1, 31))
    assert set(out.prices["ticker"]) == {"NVDA", "ORCL"} and len(out.prices) == 40
    assert [p.ticker for p in out.problems] == ["NVDA", "ORCL"]
    assert out.problems[0].dataset == "shares_outstanding"
    assert "sec: SEC refused https://www.sec.gov/files/company_tickers.json (HTTP 403)" in str(
        out.problems[0]
    )


def test_yahoo_requests_share_one_paced_budget(shared_frames, offline_yahoo, prefect_harness):
    """CAPWATCH_YAHOO_RATE paces every Yahoo request (history and share series) through the
    process's limiter; CAPWATCH_YAHOO_PREFECT_RATE_LIMIT names a Prefect limit shared by workers."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    source, adapter = offline_yahoo(shared_frames, rate=4)
    assert source.limiter.interval == 0.25
    now = [0.0]
    source.limiter = RateLimiter(
        4, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    import yfinance as yf

    tickers = ["NVDA", "ORCL", "AAPL"]
    # the session's timezone cache holds the tickers earlier tests fetched, whichever ran first
    unseen = sum(yf.cache.get_tz_cache().lookup(t) is None for t in tickers)
    out = source.fetch(tickers, date(2025, 1, 2), date(2025, 1, 31))
    # Per ticker a history, the splits around this past range and a share series, and yfinance's
    # timezone lookup the first time a ticker is seen on this machine: every request Yahoo saw
    # took a slot, evenly spaced.
    seen = sum(adapter.requests_seen.values())
    assert len(out.prices) == 60 and source.requests == seen and seen == 9 + unseen
    assert now[0] == pytest.approx((seen - 1) * 0.25)
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="yahoo-test", limit=4, slot_decay_per_second=4.0)
        )
    shared, _ = offline_yahoo(shared_frames, prefect_rate_limit="yahoo-test")
    assert len(shared.fetch(["NVDA"], date(2025, 1, 2), date(2025, 1, 31)).prices) == 20
    missing, _ = offline_yahoo(shared_frames, prefect_rate_limit="no-such-limit", retries=0)
    out = missing.fetch(["NVDA"], date(2025, 1, 2), date(2025, 1, 31))
    assert out.prices.empty and "no-such-limit" in str(out.problems[0])
