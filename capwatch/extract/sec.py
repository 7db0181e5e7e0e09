"""The ``sec`` share-count source: the shares outstanding each filing states on its cover page,
per share class, with the filing's date and accession: point in time, traceable to the filing.

What it reads, per company (the CIK comes from SEC's company tickers file):

- ``companyfacts`` (data.sec.gov/api/xbrl/companyfacts/CIK##########.json): the class-free cover
  count ``dei:EntityCommonStockSharesOutstanding`` of every filing that has one (value, as-of date,
  filing date, accession, form), amendments (10-K/A, 10-Q/A) included as their own rows;
- ``submissions`` (data.sec.gov/submissions/CIK##########.json, and its older pages when a range
  reaches back that far): the company's periodic filings (10-K, 10-Q, 20-F, 40-F and amendments);
- the filing itself, for each periodic filing whose count companyfacts does not carry: companyfacts
  drops every fact with a dimension, and multi-class filers (Alphabet, Meta, Berkshire, Mastercard,
  Palantir...) and many foreign filers state their cover count only per class of stock
  (``us-gaap:StatementClassOfStockAxis``). Read from the inline XBRL primary document, or before
  inline XBRL from the instance document the filing index names. Class members map to share
  classes by ``share_class_of`` (``CommonClassAMember`` -> ``A``; ordinary shares -> ``all``;
  depositary shares are ordinary shares already counted, so they are skipped).

SEC's fair-access rules (https://www.sec.gov/os/accessing-edgar-data) are kept by ``SecClient``:
a User-Agent naming the user and a contact (``CAPWATCH_SEC_USER_AGENT``, required), at most
``CAPWATCH_SEC_RATE`` (8) requests per second across every thread of the process (and, where
several workers run, a Prefect global rate limit), retries with backoff on 429 and 5xx. A disk
cache revalidated with ETag / Last-Modified makes a daily run fetch only what changed; a filing's
documents never change, so each is fetched once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import requests

from capwatch.extract import SHARES_LOOKBACK, Extracted, Problem, SourceUnreachable
from capwatch.ratelimit import RateLimiter, backoff_delay, pace, process_limiter
from capwatch.settings import check_user_agent

log = logging.getLogger(__name__)

TICKERS_URL = "https://www.sec.gov/files/company_tickers.json"
SUBMISSIONS_URL = "https://data.sec.gov/submissions/{name}"
COMPANYFACTS_URL = "https://data.sec.gov/api/xbrl/companyfacts/CIK{cik:010d}.json"
ARCHIVES_URL = "https://www.sec.gov/Archives/edgar/data/{cik}/{folder}/{document}"

COVER_CONCEPT = "EntityCommonStockSharesOutstanding"
# Forms whose cover page states the shares outstanding (annual and quarterly reports).
PERIODIC_FORMS = frozenset(
    {"10-K", "10-Q", "10-KT", "10-QT", "20-F", "40-F"}
    | {f + "/A" for f in ("10-K", "10-Q", "10-KT", "10-QT", "20-F", "40-F")}
)
CLASS_AXIS = "StatementClassOfStockAxis"
# A filing states its cover count a few weeks after the period; a count filed this long after the
# end of a range is no longer about it.
FILED_AFTER_RANGE = timedelta(days=120)


class SecError(RuntimeError):
    """SEC answered, but not with what was asked for (named with the URL and the status)."""


class SecRefused(SecError):
    """403: SEC refused the request (a missing or undeclared User-Agent, or too many requests)."""


class SecNotFound(SecError):
    """404: no such document (a CIK without XBRL facts, a filing without the named document)."""


@dataclass
class ClientStats:
    """What a client did: the request count is what SEC's rate limit counts."""

    requests: int = 0  # HTTP requests sent (retries included)
    downloaded: int = 0  # 200 answers
    not_modified: int = 0  # 304 answers: the cached copy was still current
    from_cache: int = 0  # documents served from the cache without a request (filings never change)
    retried: int = 0  # 429 / 5xx / timeouts retried
    bytes: int = 0
    waited_seconds: float = 0.0  # time spent waiting for the rate limit

    def __str__(self) -> str:
        return (
            f"{self.requests} requests ({self.downloaded} downloaded, {self.not_modified} not modified, "
            f"{self.retried} retried), {self.from_cache} from the cache, {self.bytes / 1e6:.1f} MB"
        )


class SecClient:
    """A thin HTTP client for SEC EDGAR that keeps SEC's fair-access rules (see the module doc).

    ``session`` is a ``requests.Session``; tests and the replay pass one whose transport answers
    offline (``capwatch.replay.sec``). ``cache_dir`` None: no disk cache.
    """

    def __init__(
        self,
        user_agent: str,
        *,
        cache_dir: Path | None = None,
        rate: float = 8.0,
        retries: int = 4,
        backoff_seconds: float = 1.0,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
        prefect_rate_limit: str | None = None,
        sleep=time.sleep,
    ):
        self.user_agent = check_user_agent(user_agent)
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.session = session or requests.Session()
        self.limiter = limiter or (process_limiter("sec", rate) if rate > 0 else None)
        self.prefect_rate_limit = prefect_rate_limit
        self.sleep = sleep
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()

    # -- cache: <dir>/<sha of url>.body and .meta (ETag, Last-Modified), written atomically
    def _cache_paths(self, url: str) -> tuple[Path, Path] | None:
        if not self.cache_dir:
            return None
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        return self.cache_dir / f"{key}.body", self.cache_dir / f"{key}.meta"

    def _cache_read(self, url: str) -> tuple[bytes, dict] | None:
        paths = self._cache_paths(url)
        if not paths or not paths[0].is_file() or not paths[1].is_file():
            return None
        try:
            meta = json.loads(paths[1].read_text())
            body = paths[0].read_bytes()
        except (OSError, ValueError):
            return None  # a damaged cache entry is fetched again
        if meta.get("url") != url or meta.get("size") != len(body):
            return None
        return body, meta

    def _cache_write(self, url: str, body: bytes, response: requests.Response) -> None:
        paths = self._cache_paths(url)
        if not paths:
            return
        paths[0].parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "url": url,
            "size": len(body),
            "etag": response.headers.get("ETag"),
            "last_modified": response.headers.get("Last-Modified"),
        }
        for path, data in ((paths[0], body), (paths[1], json.dumps(meta).encode())):
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _pace(self) -> None:
        waited = pace(self.limiter, self.prefect_rate_limit)
        with self._stats_lock:
            self.stats.waited_seconds += waited

    def _count(self, **kw: int) -> None:
        with self._stats_lock:
            for k, v in kw.items():
                setattr(self.stats, k, getattr(self.stats, k) + v)

    def get(self, url: str, *, immutable: bool = False) -> bytes:
        """The body at ``url``. ``immutable``: a filing's document, served from the cache when there."""
        cached = self._cache_read(url)
        if cached and immutable:
            self._count(from_cache=1)
            return cached[0]
        headers = {"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"}
        if cached:
            if cached[1].get("etag"):
                headers["If-None-Match"] = cached[1]["etag"]
            if cached[1].get("last_modified"):
                headers["If-Modified-Since"] = cached[1]["last_modified"]
        status = None
        for attempt in range(self.retries + 1):
            self._pace()
            try:
                response = self.session.get(url, headers=headers, timeout=30)
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._count(requests=1)
                if isinstance(exc, requests.ConnectionError) and attempt == self.retries:
                    raise SourceUnreachable(
                        f"SEC EDGAR is unreachable ({type(exc).__name__}: {exc}). Check the network, "
                        "or set CAPWATCH_SHARES_SOURCE=none to load the price source's counts only."
                    ) from exc
                status = type(exc).__name__
                if attempt < self.retries:
                    self._count(retried=1)
                    self.sleep(self._backoff(attempt, None))
                continue
            self._count(requests=1)
            status = response.status_code
            if status == 304 and cached:
                self._count(not_modified=1)
                return cached[0]
            if status == 200:
                body = response.content
                self._count(downloaded=1, bytes=len(body))
                self._cache_write(url, body, response)
                return body
            if status == 403:
                raise SecRefused(
                    f"SEC refused {url} (HTTP 403). SEC answers 403 to a request without a declared "
                    f"User-Agent (sent: {self.user_agent!r}) or beyond its rate limit; check "
                    "CAPWATCH_SEC_USER_AGENT and CAPWATCH_SEC_RATE"
                )
            if status == 404:
                raise SecNotFound(f"{url}: not found (HTTP 404)")
            if status in (429, 500, 502, 503, 504) and attempt < self.retries:
                self._count(retried=1)
                delay = self._backoff(attempt, response.headers.get("Retry-After"))
                log.warning(
                    "SEC %s: HTTP %s; retry %d/%d in %.1fs",
                    url,
                    status,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                self.sleep(delay)
                continue
            if status not in (429, 500, 502, 503, 504):
                raise SecError(f"{url}: unexpected HTTP {status}")
        raise SecError(f"{url}: still failing ({status}) after {self.retries} retries")

    def _backoff(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(60.0, max(0.0, float(retry_after)))
            except ValueError:
                try:
                    when = parsedate_to_datetime(retry_after).timestamp()
                    return min(60.0, max(0.0, when - time.time()))
                except (TypeError, ValueError):
                    pass
        return backoff_delay(self.backoff_seconds, attempt)

    def get_json(self, url: str, *, immutable: bool = False) -> dict:
        body = self.get(url, immutable=immutable)
        try:
            return json.loads(body)
        except ValueError as exc:
            raise SecError(f"{url}: answer is not JSON ({exc}): {body[:80]!r}") from None


# -- reading a cover page -------------------------------------------------------------------------


@dataclass
class CoverFact:
    """One ``dei:EntityCommonStockSharesOutstanding`` fact of a filing."""

    as_of: date
    shares: float
    member: str | None  # the StatementClassOfStockAxis member; None for the class-free count


class _CoverParser(HTMLParser):
    """Collects contexts and cover-count facts from an inline XBRL document (``ix:nonFraction``)
    or an XBRL instance (``dei:EntityCommonStockSharesOutstanding`` elements). Tag names are
    compared by local name: prefixes differ between filers."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.contexts: dict[str, dict] = {}
        self.facts: list[tuple[str, str, dict]] = []  # (context id, text, attributes)
        self._context: str | None = None
        self._capture: str | None = None  # what the text being read is: instant, member, fact
        self._text: list[str] = []
        self._attrs: dict = {}
        self._depth = 0  # tags open inside a fact (inline XBRL wraps numbers in spans)

    def handle_starttag(self, tag, attrs):
        local = tag.rsplit(":", 1)[-1]
        a = dict(attrs)
        if self._capture == "fact":
            self._depth += 1
            return
        if local == "context" and "id" in a:
            self._context = a["id"]
            self.contexts[self._context] = {"instant": None, "end": None, "members": []}
        elif self._context and local in ("instant", "enddate"):
            self._start("instant" if local == "instant" else "end", a)
        elif self._context and local == "explicitmember":
            self._start("member", a)
        elif local == "nonfraction" and (a.get("name") or "").endswith(":" + COVER_CONCEPT):
            self._start("fact", a)
        elif local == COVER_CONCEPT.lower() and "contextref" in a:
            self._start("fact", a)

    def _start(self, what: str, attrs: dict) -> None:
        self._capture, self._text, self._attrs, self._depth = what, [], attrs, 0

    def handle_data(self, data):
        if self._capture:
            self._text.append(data)

    def handle_endtag(self, tag):
        local = tag.rsplit(":", 1)[-1]
        if self._capture == "fact" and self._depth:
            self._depth -= 1
            return
        if self._capture:
            text = "".join(self._text).strip()
            ctx = self.contexts.get(self._context or "")
            if self._capture in ("instant", "end") and ctx is not None:
                ctx[self._capture] = text
            elif self._capture == "member" and ctx is not None:
                ctx["members"].append((self._attrs.get("dimension", ""), text))
            elif self._capture == "fact":
                self.facts.append((self._attrs.get("contextref", ""), text, self._attrs))
            self._capture = None
        if local == "context":
            self._context = None


_WORDS = {"no": 0, "none": 0, "zero": 0, "nil": 0}


def parse_ix_number(text: str, attrs: dict) -> float:
    """The number an ``ix:nonFraction`` states: its text read with its ``format``, times 10^scale,
    negated by ``sign="-"``. An XBRL instance's plain text reads the same way."""
    fmt = (attrs.get("format") or "").rsplit(":", 1)[-1].lower()
    raw = text.strip()
    if fmt in ("fixed-zero", "fixedzero", "zerodash") or raw in ("-", "—", "–"):
        value = 0.0
    elif fmt in ("numwordsen", "num-words-en") or raw.lower() in _WORDS:
        if raw.lower() not in _WORDS:
            raise ValueError(f"number in words {raw!r} is not read")
        value = float(_WORDS[raw.lower()])
    elif fmt in ("num-comma-decimal", "numcommadecimal", "numdotcomma", "numspacecomma"):
        value = float(raw.replace(".", "").replace(" ", "").replace("\xa0", "").replace(",", "."))
    else:
        value = float(raw.replace(",", "").replace(" ", "").replace("\xa0", ""))
    scale = int(attrs.get("scale") or 0)
    value *= 10.0**scale
    return -value if attrs.get("sign") == "-" else value


def read_cover(document: bytes) -> list[CoverFact]:
    """The cover-count facts of a filing document (inline XBRL or an XBRL instance)."""
    parser = _CoverParser()
    parser.feed(document.decode("utf-8", errors="replace"))
    parser.close()
    out = []
    for ctx_id, text, attrs in parser.facts:
        ctx = parser.contexts.get(ctx_id)
        if ctx is None:
            raise ValueError(
                f"fact refers to context {ctx_id!r}, which the document does not define"
            )
        when = ctx["instant"] or ctx["end"]
        if not when:
            raise ValueError(f"context {ctx_id!r} has no date")
        members = ctx["members"]
        if any(not dim.endswith(":" + CLASS_AXIS) and dim != CLASS_AXIS for dim, _ in members):
            continue  # a count for a subsidiary or a listing, not for a class of the company
        if len(members) > 1:
            continue
        out.append(
            CoverFact(
                as_of=date.fromisoformat(when[:10]),
                shares=parse_ix_number(text, attrs),
                member=members[0][1] if members else None,
            )
        )
    return out


SKIP = "skip"  # a member whose count is already counted elsewhere (depositary shares)
_WHOLE = {
    "commonstock",
    "commonshares",
    "ordinaryshares",
    "ordinarysharesnominal",
    "capitalstock",
    "commonstockordinaryshares",
}


def share_class_of(member: str | None) -> str | None:
    """The share class a class-of-stock member stands for: ``'all'`` for the company's single
    class (no member, common/ordinary shares), ``'A'``, ``'B'``, ``'B1'``... for a lettered class,
    ``SKIP`` for depositary shares (they represent ordinary shares already counted), None if unknown."""
    if member is None:
        return "all"
    local = member.rsplit(":", 1)[-1]
    name = re.sub(r"member$", "", local.lower())
    if "depositary" in name or name in ("ads", "adr", "americandepositaryshares"):
        return SKIP
    m = re.search(r"class([a-z])(\d*)", name)
    if m:
        return m.group(1).upper() + m.group(2)
    if name in _WHOLE:
        return "all"
    return None


# -- the source -----------------------------------------------------------------------------------


@dataclass
class Filing:
    accession: str
    form: str
    filed: date
    document: str
    inline: bool
    xbrl: bool


@dataclass
class CompanyCounts:
    rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class SecSource:
    """Share counts from SEC EDGAR for tickers and dates (``Extracted.shares`` only)."""

    name = "sec"

    def __init__(self, client: SecClient, concurrency: int = 4):
        self.client = client
        self.concurrency = max(1, concurrency)
        self._ciks: dict[str, tuple[int, str]] | None = None
        self._lock = threading.Lock()

    def ciks(self) -> dict[str, tuple[int, str]]:
        """Ticker -> (CIK, company name), from SEC's company tickers file (once per source)."""
        with self._lock:
            if self._ciks is None:
                data = self.client.get_json(TICKERS_URL)
                rows = data.values() if isinstance(data, dict) else data
                self._ciks = {
                    str(r["ticker"]).upper().replace(".", "-"): (
                        int(r["cik_str"]),
                        str(r.get("title", "")),
                    )
                    for r in rows
                }
            return self._ciks

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        out = Extracted()
        if not tickers:
            return out
        ciks = self.ciks()
        by_cik: dict[int, list[str]] = {}
        for t in tickers:
            if t not in ciks:
                out.problems.append(
                    Problem(
                        t,
                        "shares_outstanding",
                        "not in SEC's company tickers file: no SEC filings to read",
                    )
                )
                continue
            by_cik.setdefault(ciks[t][0], []).append(t)
        since = start - SHARES_LOOKBACK
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(by_cik)))) as pool:
            results = dict(
                zip(by_cik, pool.map(lambda c: self._company(c, since, end), by_cik), strict=True)
            )
        frames = []
        for cik, names in by_cik.items():
            counts = results[cik]
            for t in names:
                out.problems += [Problem(t, "shares_outstanding", p) for p in counts.problems]
                if counts.rows:
                    frames.append(pd.DataFrame(counts.rows).assign(ticker=t))
        if frames:
            shares = pd.concat(frames, ignore_index=True)
            for c in ("as_of", "reported_date"):
                shares[c] = pd.to_datetime(shares[c]).astype("datetime64[ns]")
            out.shares = shares.assign(source=self.name)[
                [
                    "ticker",
                    "share_class",
                    "as_of",
                    "source",
                    "accession",
                    "shares",
                    "reported_date",
                    "form",
                    "filing_url",
                ]
            ]
        return out

    def _company(self, cik: int, since: date, until: date) -> CompanyCounts:
        counts = CompanyCounts()
        try:
            self._read_company(cik, since, until, counts)
        except (SourceUnreachable, SecRefused):
            raise  # the whole source is out: the caller says so once per ticker
        except SecError as exc:
            counts.problems.append(str(exc))
        return counts

    def _read_company(self, cik: int, since: date, until: date, counts: CompanyCounts) -> None:
        # 1. class-free cover counts from companyfacts
        covered: set[str] = set()
        try:
            facts = self.client.get_json(COMPANYFACTS_URL.format(cik=cik))
        except SecNotFound:
            facts = {}  # no XBRL facts at all: every count comes from the filings
        entries = (
            facts.get("facts", {})
            .get("dei", {})
            .get(COVER_CONCEPT, {})
            .get("units", {})
            .get("shares", [])
        )
        for e in entries:
            accn = str(e.get("accn", ""))
            covered.add(accn)
            try:
                as_of = date.fromisoformat(str(e["end"]))
                filed = date.fromisoformat(str(e["filed"]))
                value = float(e["val"])
            except (KeyError, TypeError, ValueError):
                counts.problems.append(
                    f"companyfacts entry for accession {accn or '?'} cannot be read: {e!r}"[:300]
                )
                continue
            if since <= as_of <= until:
                counts.rows.append(
                    _row(
                        "all",
                        as_of,
                        value,
                        filed,
                        accn,
                        str(e.get("form", "")),
                        _index_url(cik, accn),
                    )
                )
        # 2. periodic filings whose count companyfacts does not carry: read their cover page
        for filing in self._periodic_filings(cik, since, until):
            if filing.accession in covered:
                continue
            self._read_filing(cik, filing, since, until, counts)
        if not counts.rows and not counts.problems:
            counts.problems.append(
                f"no filing of CIK {cik} states shares outstanding as of {since}..{until}"
            )

    def _periodic_filings(self, cik: int, since: date, until: date) -> list[Filing]:
        subs = self.client.get_json(SUBMISSIONS_URL.format(name=f"CIK{cik:010d}.json"))
        pages = [subs.get("filings", {}).get("recent", {})]
        for f in subs.get("filings", {}).get("files", []):
            # older pages only when the range reaches back into them
            if str(f.get("filingTo", "9999")) >= since.isoformat():
                pages.append(self.client.get_json(SUBMISSIONS_URL.format(name=f["name"])))
        last_filed = until + FILED_AFTER_RANGE
        filings = []
        for page in pages:
            n = len(page.get("accessionNumber", []))
            for i in range(n):
                form = page["form"][i]
                if form not in PERIODIC_FORMS:
                    continue
                filed = date.fromisoformat(page["filingDate"][i])
                if not since <= filed <= last_filed:
                    continue
                filings.append(
                    Filing(
                        accession=page["accessionNumber"][i],
                        form=form,
                        filed=filed,
                        document=page.get("primaryDocument", [""] * n)[i],
                        inline=bool(page.get("isInlineXBRL", [0] * n)[i]),
                        xbrl=bool(page.get("isXBRL", [0] * n)[i]),
                    )
                )
        return filings

    def _read_filing(
        self, cik: int, filing: Filing, since: date, until: date, counts: CompanyCounts
    ) -> None:
        folder = filing.accession.replace("-", "")
        what = f"{filing.form} {filing.accession} filed {filing.filed}"
        if not filing.xbrl and not filing.inline:
            counts.problems.append(f"{what} has no XBRL: its cover count cannot be read by machine")
            return
        try:
            if filing.inline:
                document = filing.document
            else:  # before inline XBRL: the instance document named in the filing index
                index = self.client.get_json(
                    ARCHIVES_URL.format(cik=cik, folder=folder, document="index.json"),
                    immutable=True,
                )
                items = [i.get("name", "") for i in index.get("directory", {}).get("item", [])]
                instances = [
                    n
                    for n in items
                    if n.endswith(".xml")
                    and not re.search(r"(_cal|_def|_lab|_pre|FilingSummary)", n)
                ]
                if not instances:
                    counts.problems.append(f"{what}: its index names no XBRL instance document")
                    return
                document = instances[0]
            url = ARCHIVES_URL.format(cik=cik, folder=folder, document=document)
            facts = read_cover(self.client.get(url, immutable=True))
        except SecNotFound as exc:
            counts.problems.append(f"{what}: {exc}")
            return
        except ValueError as exc:
            counts.problems.append(f"{what}: cover page cannot be read: {exc}")
            return
        if not facts:
            counts.problems.append(f"{what}: states no shares outstanding on its cover page")
            return
        for f in facts:
            share_class = share_class_of(f.member)
            if share_class == SKIP:
                continue
            if share_class is None:
                counts.problems.append(
                    f"{what}: a count for class member {f.member} that capwatch cannot map to a share "
                    "class (see capwatch.extract.sec.share_class_of): not loaded"
                )
                continue
            if since <= f.as_of <= until:
                counts.rows.append(
                    _row(
                        share_class,
                        f.as_of,
                        f.shares,
                        filing.filed,
                        filing.accession,
                        filing.form,
                        url,
                    )
                )


def _index_url(cik: int, accession: str) -> str:
    return ARCHIVES_URL.format(
        cik=cik, folder=accession.replace("-", ""), document=f"{accession}-index.htm"
    )


def _row(share_class, as_of, shares, filed, accession, form, url) -> dict:
    return {
        "share_class": share_class,
        "as_of": as_of,
        "shares": shares,
        "reported_date": filed,
        "accession": accession,
        "form": form,
        "filing_url": url,
    }
