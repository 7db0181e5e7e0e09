"""The universe: which tickers capwatch tracks, kept point in time in ``universe_members``.

``sync`` builds the US common-stock universe from SEC's company tickers/exchange file
(``company_tickers_exchange.json``: cik, name, ticker, exchange). What is not a common stock on a
US national exchange is left out by ``excluded`` (the rule, documented in the README):

- exchange: only Nasdaq, NYSE and Cboe listings (OTC and unlisted registrants are left out);
- symbol: preferreds (``BAC-PL``, ``-P`` classes), warrants (``-WT``, ``-WS``), units (``-U``,
  ``-UN``), rights (``-R``, ``-RT``), and Nasdaq's five-letter symbols whose fifth letter marks a
  warrant (W), unit (U), right (R), preferred (P) or a company in bankruptcy (Q);
- name: funds and exchange-traded products (ETF, ETN, Fund, Index, Portfolio, iShares, SPDR,
  ProShares, "Trust" together with one of those words).

A listing that a later sync no longer names leaves (``left_on``, with why: not in SEC's file any
more, or renamed when its CIK now trades under another ticker); ``add`` / ``remove`` do the same by
hand. Members are never deleted: a backfill covers every ticker that was ever a member
(``backfill_tickers``); the daily run covers the current ones (``current_tickers``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import duckdb

from capwatch.output import lit

EXCHANGE_URL = "https://www.sec.gov/files/company_tickers_exchange.json"
US_EXCHANGES = frozenset({"nasdaq", "nyse", "cboe"})
FUND_WORDS = re.compile(
    r"\b(ETF|ETFS|ETN|ETNS|FUND|FUNDS|INDEX|PORTFOLIO|ISHARES|SPDR|PROSHARES)\b", re.I
)
SYMBOL_SUFFIX = re.compile(r"-(P[A-Z]*|WT|WS|W|U|UN|R|RT)$")


@dataclass(frozen=True)
class Listing:
    ticker: str
    cik: int | None
    name: str
    exchange: str | None


def parse_exchange_file(data: dict) -> list[Listing]:
    """SEC's ``{"fields": [...], "data": [[cik, name, ticker, exchange], ...]}``."""
    fields_ = [f.lower() for f in data.get("fields", [])]
    try:
        at = {k: fields_.index(k) for k in ("cik", "name", "ticker", "exchange")}
    except ValueError:
        raise ValueError(
            f"SEC exchange file: fields {fields_} lack cik, name, ticker or exchange"
        ) from None
    out = []
    for row in data.get("data", []):
        ticker = str(row[at["ticker"]] or "").strip().upper().replace(".", "-")
        if ticker:
            cik = row[at["cik"]]
            out.append(
                Listing(
                    ticker,
                    int(cik) if cik is not None else None,
                    str(row[at["name"]] or ""),
                    row[at["exchange"]],
                )
            )
    return out


def excluded(listing: Listing) -> str | None:
    """Why a listing is not a US common stock capwatch tracks, or None if it is one."""
    if not listing.exchange or listing.exchange.lower() not in US_EXCHANGES:
        return f"not on a US national exchange ({listing.exchange or 'none'})"
    t = listing.ticker
    m = SYMBOL_SUFFIX.search(t)
    if m:
        kind = {"P": "preferred", "W": "warrant", "U": "unit", "R": "right"}[m.group(1)[0]]
        return f"a {kind}, not a common stock ({t})"
    if listing.exchange.lower() == "nasdaq" and len(t) == 5 and t[-1] in "WURPQ":
        kind = {
            "W": "warrant",
            "U": "unit",
            "R": "right",
            "P": "preferred",
            "Q": "company in bankruptcy",
        }[t[-1]]
        return f"Nasdaq fifth letter {t[-1]}: a {kind} ({t})"
    if FUND_WORDS.search(listing.name):
        return f"a fund or exchange-traded product ({listing.name})"
    return None


@dataclass
class SyncResult:
    listed: int = 0  # listings in the file
    members: int = 0  # current members after the sync
    added: list[str] = field(default_factory=list)
    left: list[tuple[str, str]] = field(default_factory=list)  # (ticker, why)
    excluded: dict[str, int] = field(default_factory=dict)  # reason kind -> listings

    def __str__(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.excluded.items(), key=lambda x: -x[1]))
        return (
            f"{self.listed} listings in SEC's file: {self.members} members "
            f"({len(self.added)} new, {len(self.left)} left); left out: {kinds or 'none'}"
        )


def _current(con: duckdb.DuckDBPyConnection) -> dict[str, tuple]:
    rows = con.execute(
        "select ticker, first_seen, cik from universe_members where left_on is null"
    ).fetchall()
    return {t: (first, cik) for t, first, cik in rows}


def sync(con: duckdb.DuckDBPyConnection, listings: list[Listing], today: date) -> SyncResult:
    """Bring ``universe_members`` up to SEC's file as of ``today`` (one transaction)."""
    result = SyncResult(listed=len(listings))
    keep: dict[str, Listing] = {}
    for listing in listings:
        why = excluded(listing)
        if why:
            kind = why.split(" (")[0].split(":")[0]
            result.excluded[kind] = result.excluded.get(kind, 0) + 1
        elif listing.ticker not in keep:
            keep[listing.ticker] = listing
    con.execute("begin")
    try:
        current = _current(con)
        by_cik = {listing.cik: t for t, listing in keep.items() if listing.cik is not None}
        for ticker, (first, cik) in current.items():
            if ticker in keep:
                continue
            successor = by_cik.get(cik)
            why = (
                f"renamed: CIK {cik} now trades as {successor}"
                if successor
                else "not in SEC's company tickers file any more (delisted, merged or renamed)"
            )
            con.execute(
                f"update universe_members set left_on = {lit(today)}, left_reason = {lit(why)} "
                f"where ticker = {lit(ticker)} and first_seen = {lit(first)}"
            )
            result.left.append((ticker, why))
        for ticker, listing in keep.items():
            if ticker in current:
                con.execute(
                    f"update universe_members set last_seen = {lit(today)}, cik = {lit(listing.cik)}, "
                    f"name = {lit(listing.name)}, exchange = {lit(listing.exchange)} "
                    f"where ticker = {lit(ticker)} and left_on is null"
                )
            else:
                _insert(con, listing, today, "sec sync")
                result.added.append(ticker)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    result.members = len(keep)
    return result


def _insert(con, listing: Listing, today: date, by: str) -> None:
    # A ticker that left and returns on the same day keeps its one row for that day.
    # Delete, then insert: a lake has no key to `insert or replace` by (capwatch/lake.py).
    con.execute(
        f"delete from universe_members where ticker = {lit(listing.ticker)} and first_seen = {lit(today)}"
    )
    con.execute(
        "insert into universe_members (ticker, first_seen, last_seen, cik, name, exchange, added_by) "
        f"values ({lit(listing.ticker)}, {lit(today)}, {lit(today)}, {lit(listing.cik)}, "
        f"{lit(listing.name)}, {lit(listing.exchange)}, {lit(by)})"
    )


def add(con: duckdb.DuckDBPyConnection, tickers: list[str], today: date) -> list[str]:
    """Add tickers by hand (members already in are left as they are); returns the new ones."""
    current = _current(con)
    new = [t for t in dict.fromkeys(tickers) if t not in current]
    for t in new:
        _insert(con, Listing(t, None, "", None), today, "manual")
    return new


def remove(
    con: duckdb.DuckDBPyConnection, tickers: list[str], today: date, reason: str
) -> list[str]:
    """Take tickers out (they stay in history, with why); returns those that were members."""
    current = _current(con)
    gone = [t for t in dict.fromkeys(tickers) if t in current]
    for t in gone:
        con.execute(
            f"update universe_members set left_on = {lit(today)}, left_reason = {lit('removed by hand: ' + reason)} "
            f"where ticker = {lit(t)} and left_on is null"
        )
    return gone


def current_tickers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Today's members (the daily run's universe); empty when the table was never filled."""
    return [
        t
        for (t,) in con.execute(
            "select ticker from universe_members where left_on is null order by ticker"
        ).fetchall()
    ]


def backfill_tickers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every ticker that was ever a member: a backfill keeps the ones that left."""
    return [
        t
        for (t,) in con.execute(
            "select distinct ticker from universe_members order by ticker"
        ).fetchall()
    ]


MEMBER_COLUMNS = [
    "ticker",
    "name",
    "exchange",
    "cik",
    "first_seen",
    "last_seen",
    "left_on",
    "left_reason",
    "added_by",
]


def members(con: duckdb.DuckDBPyConnection, everyone: bool = False) -> list[tuple]:
    where = "" if everyone else "where left_on is null"
    return con.execute(
        f"select {', '.join(MEMBER_COLUMNS)} from universe_members {where} order by ticker, first_seen"
    ).fetchall()
