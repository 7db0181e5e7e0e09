"""SEC EDGAR answered offline: the real ``SecClient`` / ``SecSource`` code fed SEC-shaped responses
built at run time from a generator (no SEC file is copied or stored).

``SecArchive`` holds companies and their periodic filings; ``OfflineSec`` is a requests transport
that answers the URLs the client asks for, the way EDGAR does:

- ``www.sec.gov/files/company_tickers.json`` ({"0": {"cik_str", "ticker", "title"}, ...});
- ``data.sec.gov/submissions/CIK##########.json`` (columnar ``filings.recent`` plus older pages in
  ``filings.files``), with non-periodic noise (8-K, Form 4) as on the real feed;
- ``data.sec.gov/api/xbrl/companyfacts/CIK##########.json`` carrying only class-free facts (EDGAR
  drops dimensional ones, which is why per-class counts must be read from the filing);
- filing documents: inline XBRL cover pages (``ix:nonFraction`` in contexts with a
  ``us-gaap:StatementClassOfStockAxis`` member, optionally scaled), and for older filings an
  ``index.json`` naming an XBRL instance document;
- SEC's manners: 403 for a request without a User-Agent naming a contact, 429 past a rate limit
  (when one is enforced), ETag / Last-Modified with 304 answers, and injectable faults.

Archives: ``archive_for_market`` (the generated demo market: single-class companies) and
``archive_from_csv`` (a ``../shared/marketdata``-style directory: its filed counts as companyfacts,
plus *generated* per-class filings for the multi-class companies and 20-F cover pages for the ADRs,
whose real counts the directory does not hold; the levels are plausible, not real).
"""

from __future__ import annotations

import collections
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import requests
from requests.adapters import BaseAdapter

from capwatch.settings import USER_AGENT_RULE

LAST_MODIFIED = "Mon, 30 Nov 2026 06:00:00 GMT"

UNDECLARED_TOOL_PAGE = (
    "<html><head><title>SEC.gov | Request Rate Threshold Exceeded</title></head><body>"
    "<h1>Your Request Originates from an Undeclared Automated Tool</h1>"
    "<p>To allow for equitable access to all users, SEC reserves the right to limit requests "
    "originating from undeclared automated tools. Your request has been identified as part of a "
    "network of automated tools outside of the acceptable policy...</p>"
    "<p>Please declare your traffic by updating your user agent to include company specific "
    "information.</p></body></html>"
)


# Listings of SEC's exchange file that are not common stocks (shapes of the real file's rows).
OTHER_LISTINGS = [
    (1_064_642, "SPDR S&P 500 ETF TRUST", "SPY", "NYSE"),
    (1_100_663, "iShares Trust", "IVV", "NYSE"),
    (1_500_001, "Acme Acquisition Corp", "ACMEW", "Nasdaq"),
    (1_500_001, "Acme Acquisition Corp", "ACMEU", "Nasdaq"),
    (1_500_002, "Big Bank Corp", "BIGB-PA", "NYSE"),
    (1_500_003, "Over The Counter Holdings Inc", "OTCH", "OTC"),
    (1_500_004, "Unlisted Registrant LLC", "UNLS", None),
    (1_500_005, "Closed End Income Fund", "CEIF", "NYSE"),
]


@dataclass
class ReplayFiling:
    """A periodic filing and the cover counts it states."""

    accession: str
    form: str
    filed: date
    period: date  # the period the report covers (reportDate)
    as_of: date  # the date the cover count is stated for
    counts: list[tuple[str | None, float]]  # (class-of-stock member or None, shares)
    layout: str = "inline"  # "facts": class-free count in companyfacts; "inline"; "instance"
    scale: int = 0  # inline counts written in units of 10**scale (scale="6": millions)
    prefix: str = "co"

    @property
    def document(self) -> str:
        stem = f"{self.prefix}-{self.period:%Y%m%d}"
        return f"{stem}.htm" if self.layout != "instance" else f"{stem}x10q.htm"


@dataclass
class ReplayCompany:
    cik: int
    name: str
    tickers: list[str]
    filings: list[ReplayFiling] = field(default_factory=list)


class SecArchive:
    """What EDGAR holds for some companies, answered as EDGAR answers it."""

    def __init__(
        self,
        companies: list[ReplayCompany],
        recent_since: date | None = None,
        other_listings: list[tuple[int, str, str, str | None]] | None = None,
    ):
        self.companies = {c.cik: c for c in companies}
        # Filings before this date are on an older submissions page, not in "recent".
        self.recent_since = recent_since
        # Listings in the exchange file that are not companies' common stock: (cik, name,
        # ticker, exchange) -- funds, warrants, preferreds, OTC names, as on SEC's real file.
        self.other_listings = other_listings if other_listings is not None else OTHER_LISTINGS

    # -- JSON documents
    def company_tickers(self) -> dict:
        rows, i = {}, 0
        for c in self.companies.values():
            for t in c.tickers:
                rows[str(i)] = {"cik_str": c.cik, "ticker": t, "title": c.name}
                i += 1
        return rows

    def company_tickers_exchange(self) -> dict:
        rows = [
            [c.cik, c.name, t, "Nasdaq" if (c.cik + i) % 2 else "NYSE"]
            for c in self.companies.values()
            for i, t in enumerate(c.tickers)
        ]
        rows += [list(r) for r in self.other_listings]
        return {"fields": ["cik", "name", "ticker", "exchange"], "data": rows}

    def _columns(self, c: ReplayCompany, filings: list[ReplayFiling]) -> dict:
        # Noise the client must skip: current reports and insider forms between the reports.
        rows = []
        for f in filings:
            rows.append(
                (f.accession, f.filed, f.period, f.form, f.document, 1, int(f.layout != "instance"))
            )
            rows.append(
                (
                    _accession(c.cik, f.filed, 900),
                    f.filed + timedelta(days=3),
                    None,
                    "4",
                    "xslF345X05/doc4.xml",
                    0,
                    0,
                )
            )
            rows.append(
                (
                    _accession(c.cik, f.filed, 901),
                    f.filed + timedelta(days=20),
                    None,
                    "8-K",
                    "ex8k.htm",
                    0,
                    0,
                )
            )
        rows.sort(key=lambda r: r[1], reverse=True)
        return {
            "accessionNumber": [r[0] for r in rows],
            "filingDate": [r[1].isoformat() for r in rows],
            "reportDate": [r[2].isoformat() if r[2] else "" for r in rows],
            "acceptanceDateTime": [f"{r[1].isoformat()}T16:05:00.000Z" for r in rows],
            "form": [r[3] for r in rows],
            "primaryDocument": [r[4] for r in rows],
            "isXBRL": [r[5] for r in rows],
            "isInlineXBRL": [r[6] for r in rows],
        }

    def submissions(self, cik: int) -> dict:
        c = self.companies[cik]
        recent = [f for f in c.filings if not self.recent_since or f.filed >= self.recent_since]
        older = [f for f in c.filings if self.recent_since and f.filed < self.recent_since]
        files = []
        if older:
            files.append(
                {
                    "name": f"CIK{cik:010d}-submissions-001.json",
                    "filingCount": len(older) * 3,
                    "filingFrom": min(f.filed for f in older).isoformat(),
                    "filingTo": (max(f.filed for f in older) + timedelta(days=20)).isoformat(),
                }
            )
        return {
            "cik": f"{cik:010d}",
            "entityType": "operating",
            "name": c.name,
            "tickers": c.tickers,
            "filings": {"recent": self._columns(c, recent), "files": files},
        }

    def submissions_page(self, cik: int) -> dict:
        c = self.companies[cik]
        return self._columns(c, [f for f in c.filings if f.filed < self.recent_since])

    def companyfacts(self, cik: int) -> dict:
        c = self.companies[cik]
        cover = [
            {
                "end": f.as_of.isoformat(),
                "val": int(shares),
                "accn": f.accession,
                "fy": f.period.year,
                "fp": "FY"
                if f.form.startswith(("10-K", "20-F"))
                else f"Q{(f.period.month - 1) // 3 + 1}",
                "form": f.form,
                "filed": f.filed.isoformat(),
            }
            for f in c.filings
            if f.layout == "facts"
            for member, shares in f.counts
            if member is None
        ]
        # Every filing has some class-free financial facts, as on EDGAR.
        revenue = [
            {
                "start": (f.period - timedelta(days=90)).isoformat(),
                "end": f.period.isoformat(),
                "val": 1_000_000_000 + i,
                "accn": f.accession,
                "form": f.form,
                "filed": f.filed.isoformat(),
            }
            for i, f in enumerate(c.filings)
        ]
        facts = {"us-gaap": {"Revenues": {"label": "Revenues", "units": {"USD": revenue}}}}
        if cover:
            facts["dei"] = {
                "EntityCommonStockSharesOutstanding": {
                    "label": "Entity Common Stock, Shares Outstanding",
                    "description": "Indicate number of shares or other units outstanding of each of registrant's classes of capital or common stock or other ownership interests, if and as stated on cover of related periodic report.",
                    "units": {"shares": cover},
                }
            }
        return {"cik": cik, "entityName": c.name, "facts": facts}

    # -- filing documents
    def find(self, cik: int, folder: str) -> ReplayFiling | None:
        c = self.companies.get(cik)
        for f in c.filings if c else []:
            if f.accession.replace("-", "") == folder:
                return f
        return None

    def inline_document(self, cik: int, f: ReplayFiling) -> str:
        contexts, facts = [], []
        for i, (member, shares) in enumerate(f.counts):
            segment = (
                '<xbrli:segment><xbrldi:explicitMember dimension="us-gaap:StatementClassOfStockAxis">'
                f"{member}</xbrldi:explicitMember></xbrli:segment>"
                if member
                else ""
            )
            contexts.append(
                f'<xbrli:context id="c-{i + 10}"><xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">'
                f"{cik:010d}</xbrli:identifier>{segment}</xbrli:entity><xbrli:period><xbrli:instant>"
                f"{f.as_of.isoformat()}</xbrli:instant></xbrli:period></xbrli:context>"
            )
            shown = shares / 10**f.scale
            text = f"{shown:,.0f}" if f.scale == 0 else f"{shown:,.1f}".rstrip("0").rstrip(".")
            label = member.split(":")[-1] if member else "common stock"
            facts.append(
                f'<tr><td>{label}</td><td><span style="font-weight:bold"><ix:nonFraction unitRef="shares" '
                f'contextRef="c-{i + 10}" decimals="INF" name="dei:EntityCommonStockSharesOutstanding" '
                f'format="ixt:num-dot-decimal" scale="{f.scale}" id="f-{i + 40}">{text}</ix:nonFraction>'
                "</span></td></tr>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:ix="http://www.xbrl.org/2013/inlineXBRL" '
            'xmlns:xbrli="http://www.xbrl.org/2003/instance" xmlns:xbrldi="http://xbrl.org/2006/xbrldi" '
            'xmlns:dei="http://xbrl.sec.gov/dei/2024" xmlns:us-gaap="http://fasb.org/us-gaap/2024">'
            f"<head><title>{f.prefix}-{f.period:%Y%m%d}</title></head><body>"
            '<div style="display:none"><ix:header><ix:hidden>'
            f'<ix:nonNumeric name="dei:DocumentType" contextRef="c-1">{f.form}</ix:nonNumeric>'
            "</ix:hidden><ix:resources>"
            '<xbrli:context id="c-1"><xbrli:entity><xbrli:identifier scheme="http://www.sec.gov/CIK">'
            f"{cik:010d}</xbrli:identifier></xbrli:entity><xbrli:period><xbrli:startDate>"
            f"{(f.period - timedelta(days=90)).isoformat()}</xbrli:startDate><xbrli:endDate>{f.period.isoformat()}"
            "</xbrli:endDate></xbrli:period></xbrli:context>"
            + "".join(contexts)
            + "</ix:resources></ix:header></div>"
            "<p>UNITED STATES SECURITIES AND EXCHANGE COMMISSION</p>"
            f"<p>FORM {f.form}</p><p>Indicate the number of shares outstanding of each of the "
            f"issuer's classes of common stock, as of {f.as_of:%B %d, %Y}:</p><table>"
            + "".join(facts)
            + "</table><p>PART I. FINANCIAL INFORMATION</p>"
            + "<p>"
            + "Lorem ipsum financial statements. " * 200
            + "</p>"
            + "</body></html>"
        )

    def instance_document(self, cik: int, f: ReplayFiling) -> str:
        contexts, facts = [], []
        for i, (member, shares) in enumerate(f.counts):
            segment = (
                f'<segment><xbrldi:explicitMember dimension="us-gaap:StatementClassOfStockAxis">{member}'
                "</xbrldi:explicitMember></segment>"
                if member
                else ""
            )
            contexts.append(
                f'<context id="I{f.as_of:%Y%m%d}_{i}"><entity><identifier scheme="http://www.sec.gov/CIK">'
                f"{cik:010d}</identifier>{segment}</entity><period><instant>{f.as_of.isoformat()}</instant>"
                "</period></context>"
            )
            facts.append(
                f'<dei:EntityCommonStockSharesOutstanding contextRef="I{f.as_of:%Y%m%d}_{i}" unitRef="shares" '
                f'decimals="INF">{int(shares)}</dei:EntityCommonStockSharesOutstanding>'
            )
        return (
            '<?xml version="1.0" encoding="US-ASCII"?>\n'
            '<xbrl xmlns="http://www.xbrl.org/2003/instance" xmlns:xbrldi="http://xbrl.org/2006/xbrldi" '
            'xmlns:dei="http://xbrl.sec.gov/dei/2014-01-31" xmlns:us-gaap="http://fasb.org/us-gaap/2014-01-31">'
            + "".join(contexts)
            + "".join(facts)
            + "</xbrl>"
        )

    def instance_name(self, f: ReplayFiling) -> str:
        return f"{f.prefix}-{f.period:%Y%m%d}.xml"

    def index(self, f: ReplayFiling) -> dict:
        stem = f"{f.prefix}-{f.period:%Y%m%d}"
        names = [
            f.document,
            f"{stem}.xml",
            f"{stem}_cal.xml",
            f"{stem}_def.xml",
            f"{stem}_lab.xml",
            "FilingSummary.xml",
            "R1.htm",
        ]
        return {
            "directory": {
                "name": f"/Archives/edgar/data/{f.accession}",
                "item": [{"name": n, "type": "text"} for n in names],
            }
        }


class OfflineSec(BaseAdapter):
    """A requests transport that answers EDGAR's URLs from a ``SecArchive`` (see the module doc).

    ``max_per_second``: answer 429 (Retry-After: 1) to requests beyond this many in any second.
    ``faults``: URL substring -> statuses to answer first (consumed one per request).
    ``requests`` records (url, status) of every request answered.
    """

    def __init__(
        self,
        archive: SecArchive,
        max_per_second: float | None = None,
        faults: dict[str, list[int]] | None = None,
        latency: float = 0.0,
    ):
        super().__init__()
        self.archive = archive
        self.max_per_second = max_per_second
        self.faults = {k: list(v) for k, v in (faults or {}).items()}
        self.latency = latency
        self.requests: list[tuple[str, int]] = []
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def _answer(self, request, status: int, body: bytes = b"", headers: dict | None = None):
        r = requests.Response()
        r.status_code = status
        r._content = body
        r.url = request.url
        r.request = request
        r.headers.update(headers or {})
        with self._lock:
            self.requests.append((request.url, status))
        return r

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        if self.latency:
            time.sleep(self.latency)
        url = request.url or ""
        agent = request.headers.get("User-Agent", "")
        if not USER_AGENT_RULE.search(agent):
            return self._answer(
                request, 403, UNDECLARED_TOOL_PAGE.encode(), {"Content-Type": "text/html"}
            )
        with self._lock:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 1.0:
                self._recent.popleft()
            self._recent.append(now)
            too_fast = self.max_per_second is not None and len(self._recent) > self.max_per_second
            fault = next((k for k in self.faults if k in url and self.faults[k]), None)
            status = self.faults[fault].pop(0) if fault else None
        if too_fast:
            return self._answer(request, 429, b"Too Many Requests", {"Retry-After": "1"})
        if status:
            return self._answer(
                request, status, b"<html>Service Unavailable</html>", {"Retry-After": "0"}
            )
        body, ctype = self._body(url)
        if body is None:
            return self._answer(
                request, 404, b"<html>Not Found</html>", {"Content-Type": "text/html"}
            )
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        headers = {"Content-Type": ctype, "ETag": etag, "Last-Modified": LAST_MODIFIED}
        if request.headers.get("If-None-Match") == etag:
            return self._answer(request, 304, b"", headers)
        return self._answer(request, 200, body, headers)

    def _body(self, url: str) -> tuple[bytes | None, str]:
        a = self.archive
        js = "application/json"
        if url == "https://www.sec.gov/files/company_tickers.json":
            return json.dumps(a.company_tickers()).encode(), js
        if url == "https://www.sec.gov/files/company_tickers_exchange.json":
            return json.dumps(a.company_tickers_exchange()).encode(), js
        m = re.fullmatch(r"https://data\.sec\.gov/submissions/CIK(\d{10})\.json", url)
        if m and int(m.group(1)) in a.companies:
            return json.dumps(a.submissions(int(m.group(1)))).encode(), js
        m = re.fullmatch(
            r"https://data\.sec\.gov/submissions/CIK(\d{10})-submissions-001\.json", url
        )
        if m and int(m.group(1)) in a.companies and a.recent_since:
            return json.dumps(a.submissions_page(int(m.group(1)))).encode(), js
        m = re.fullmatch(r"https://data\.sec\.gov/api/xbrl/companyfacts/CIK(\d{10})\.json", url)
        if m and int(m.group(1)) in a.companies:
            return json.dumps(a.companyfacts(int(m.group(1)))).encode(), js
        m = re.fullmatch(r"https://www\.sec\.gov/Archives/edgar/data/(\d+)/(\d{18})/(.+)", url)
        if m:
            cik, f = int(m.group(1)), a.find(int(m.group(1)), m.group(2))
            if f is None:
                return None, ""
            name = m.group(3)
            if name == "index.json":
                return json.dumps(a.index(f)).encode(), js
            if name == f.document and f.layout == "inline":
                return a.inline_document(cik, f).encode(), "text/html"
            if f.layout == "instance" and name == a.instance_name(f):
                return a.instance_document(cik, f).encode(), "application/xml"
            if name == f.document:
                return (
                    b"<html><body>FORM " + f.form.encode() + b" (no inline XBRL)</body></html>",
                    "text/html",
                )
        return None, ""

    def close(self) -> None:
        pass


def replay_sec_session(spec: str) -> requests.Session:
    """The SEC client's session for ``replay:demo`` or ``replay:csv:DIR``."""
    if spec == "demo":
        from capwatch.replay.market import generate_market

        archive = archive_for_market(generate_market().shares)
    elif spec.startswith("csv:"):
        archive = archive_from_csv(spec[4:])
    else:
        raise ValueError(f"replay SEC source {spec!r}: use replay:demo or replay:csv:DIR")
    from capwatch.replay import offline_session

    return offline_session(OfflineSec(archive))


# -- archives -------------------------------------------------------------------------------------


def _accession(cik: int, filed: date, seq: int) -> str:
    return f"{cik:010d}-{filed.year % 100:02d}-{seq:06d}"


def _form(as_of: date, annual_month: int = 1) -> str:
    return "10-K" if as_of.month in (annual_month, annual_month + 1) else "10-Q"


def archive_for_market(shares: pd.DataFrame, first_cik: int = 1_900_001) -> SecArchive:
    """One single-class company per ticker of a generated market's share counts (ticker, as_of,
    shares, reported_date): each count a filing whose class-free count companyfacts carries."""
    companies = []
    for n, (ticker, rows) in enumerate(shares.groupby("ticker", sort=True)):
        cik = first_cik + n
        c = ReplayCompany(cik, f"{ticker.title()} Corp", [ticker])
        for i, r in enumerate(rows.sort_values("as_of").itertuples(index=False)):
            as_of, filed = pd.Timestamp(r.as_of).date(), pd.Timestamp(r.reported_date).date()
            c.filings.append(
                ReplayFiling(
                    _accession(cik, filed, i + 1),
                    _form(as_of),
                    filed,
                    as_of - timedelta(days=25),
                    as_of,
                    [(None, float(r.shares))],
                    layout="facts",
                    prefix=ticker.lower(),
                )
            )
        companies.append(c)
    return SecArchive(companies)


@dataclass(frozen=True)
class ClassPlan:
    """A generated multi-class (or foreign) filer: counts per member on the latest split basis."""

    name: str
    tickers: tuple[str, ...]
    first: date
    members: tuple[tuple[str, float], ...]  # (class-of-stock member, count today)
    form: str = "10-Q"  # "20-F": one annual report, filed about four months after the year end
    yearly_change: float = -0.015  # buybacks shrink the count over time


# Levels are plausible magnitudes for a generated test archive, not the companies' real counts.
CLASS_PLANS = (
    ClassPlan(
        "Alphabet Inc.",
        ("GOOGL", "GOOG"),
        date(2014, 5, 1),
        (
            ("us-gaap:CommonClassAMember", 5.80e9),
            ("us-gaap:CommonClassBMember", 0.86e9),
            ("goog:CapitalClassCMember", 5.45e9),
        ),
    ),
    ClassPlan(
        "Meta Platforms, Inc.",
        ("META",),
        date(2012, 8, 1),
        (("us-gaap:CommonClassAMember", 2.18e9), ("us-gaap:CommonClassBMember", 0.344e9)),
    ),
    ClassPlan(
        "Berkshire Hathaway Inc.",
        ("BRK-B",),
        date(2010, 3, 1),
        (("us-gaap:CommonClassAMember", 5.7e5), ("us-gaap:CommonClassBMember", 1.44e9)),
    ),
    ClassPlan(
        "Mastercard Incorporated",
        ("MA",),
        date(2010, 2, 1),
        (("us-gaap:CommonClassAMember", 0.91e9), ("us-gaap:CommonClassBMember", 7.0e6)),
    ),
    ClassPlan(
        "Palantir Technologies Inc.",
        ("PLTR",),
        date(2020, 11, 1),
        (
            ("us-gaap:CommonClassAMember", 2.25e9),
            ("us-gaap:CommonClassBMember", 0.10e9),
            ("pltr:CommonClassFMember", 1.005e6),
        ),
        yearly_change=0.02,
    ),
    ClassPlan(
        "Visa Inc.",
        ("V",),
        date(2010, 2, 1),
        (
            ("us-gaap:CommonClassAMember", 1.70e9),
            ("v:ClassB1CommonStockMember", 0.245e9),
            ("us-gaap:CommonClassCMember", 0.010e9),
        ),
    ),
    ClassPlan(
        "Taiwan Semiconductor Manufacturing Co Ltd",
        ("TSM",),
        date(2010, 1, 1),
        (
            ("ifrs-full:OrdinarySharesMember", 25.93e9),
            ("tsm:AmericanDepositarySharesMember", 1.05e9),
        ),
        form="20-F",
        yearly_change=0.0,
    ),
    ClassPlan(
        "Arm Holdings plc",
        ("ARM",),
        date(2023, 9, 14),
        (
            ("ifrs-full:OrdinarySharesMember", 1.06e9),
            ("arm:AmericanDepositarySharesMember", 0.10e9),
        ),
        form="20-F",
        yearly_change=0.005,
    ),
)


def _plan_filings(
    plan: ClassPlan, cik: int, splits: pd.DataFrame, until: date
) -> list[ReplayFiling]:
    """Quarterly (or annual 20-F) filings from plan.first to ``until``, counts on each as-of
    date's split basis (the splits of the plan's first ticker after plan.first)."""
    sp = splits[(splits["ticker"] == plan.tickers[0]) & (splits["ratio"] >= 1.5)]
    sp = sp[sp["date"] > pd.Timestamp(plan.first)]
    out, seq = [], 1
    if plan.form == "20-F":
        periods = [date(y, 12, 31) for y in range(plan.first.year - 1, until.year + 1)]
    else:
        periods = [
            d.date() for d in pd.date_range(plan.first - timedelta(days=92), until, freq="QE")
        ]
    prefix = plan.tickers[0].lower().replace("-", "")
    for period in periods:
        if plan.form == "20-F":
            as_of, filed, form = period, period + timedelta(days=110), "20-F"
        else:
            as_of = period + timedelta(days=22)
            filed = as_of + timedelta(days=6)
            form = "10-K" if period.month == 12 else "10-Q"
        if filed > until or filed < plan.first:
            continue
        years = (until - as_of).days / 365.25
        later = (
            float(np.prod(sp.loc[sp["date"] > pd.Timestamp(as_of), "ratio"].to_numpy()))
            if len(sp)
            else 1.0
        )
        counts = [
            (m, float(round(level * (1 + plan.yearly_change) ** (-years) / later)))
            for m, level in plan.members
        ]
        out.append(
            ReplayFiling(
                _accession(cik, filed, seq),
                form,
                filed,
                period,
                as_of,
                counts,
                layout="inline" if filed >= date(2019, 6, 15) else "instance",
                prefix=prefix,
            )
        )
        seq += 1
    return out


def archive_from_csv(directory: str | Path, until: date | None = None) -> SecArchive:
    """EDGAR for the tickers of a marketdata directory (see the module doc): its filed class-free
    counts as companyfacts facts; generated class filings for ``CLASS_PLANS`` companies."""
    d = Path(directory)
    tickers = sorted(pd.read_csv(d / "prices.csv", usecols=["ticker"])["ticker"].dropna().unique())
    last_day = pd.read_csv(d / "prices.csv", usecols=["date"])["date"].max()
    until = until or date.fromisoformat(str(last_day))
    splits = (
        pd.read_csv(d / "splits.csv", parse_dates=["date"])
        if (d / "splits.csv").is_file()
        else pd.DataFrame({"ticker": [], "date": pd.to_datetime([]), "ratio": []})
    )
    shares = (
        pd.read_csv(d / "shares_outstanding.csv", dtype={"share_class": str})
        if (d / "shares_outstanding.csv").is_file()
        else pd.DataFrame()
    )
    planned = {t: p for p in CLASS_PLANS for t in p.tickers}
    companies, cik = [], 1_800_001
    done: set[str] = set()
    for t in tickers:
        if t in done:
            continue
        plan = planned.get(t)
        if plan:
            names = [x for x in plan.tickers if x in tickers]
            c = ReplayCompany(cik, plan.name, names, _plan_filings(plan, cik, splits, until))
            done |= set(names)
        else:
            c = ReplayCompany(cik, f"{t} (replay)", [t])
            rows = (
                shares[
                    (shares["ticker"] == t)
                    & (shares.get("share_class", "all").fillna("all") == "all")
                ]
                if len(shares)
                else shares
            )
            for i, r in enumerate(rows.sort_values("as_of_date").itertuples(index=False)):
                if pd.isna(r.filing_date):
                    continue
                as_of, filed = date.fromisoformat(r.as_of_date), date.fromisoformat(r.filing_date)
                form = str(r.form) if isinstance(getattr(r, "form", None), str) else _form(as_of)
                c.filings.append(
                    ReplayFiling(
                        _accession(cik, filed, i + 1),
                        form,
                        filed,
                        as_of - timedelta(days=25),
                        as_of,
                        [(None, float(r.shares_outstanding))],
                        layout="facts",
                        prefix=t.lower(),
                    )
                )
            done.add(t)
        companies.append(c)
        cik += 1
    return SecArchive(companies, recent_since=date(2021, 1, 1))
