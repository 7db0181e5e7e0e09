"""The ``yahoo`` source: Yahoo Finance through yfinance.

Retries live here, and only here: each ticker's request is retried with exponential backoff and
jitter on timeouts, rate limits and server errors, inside the extract task. A per-ticker retry
refetches one ticker, not a whole chunk, and a ticker that still fails becomes a ``Problem`` while
the rest of the batch lands; Prefect task retries on top would refetch every ticker of the chunk.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from capwatch.extract import SHARES_LOOKBACK, Extracted, Problem, SourceUnreachable, to_as_traded
from capwatch.ratelimit import backoff_delay, pace, process_limiter

log = logging.getLogger("capwatch.extract")


class WrongSymbol(RuntimeError):
    """Yahoo's response is about another symbol than the one asked for."""


def _yfinance():
    """Import yfinance once and make it raise instead of logging and returning empty frames."""
    import warnings

    import yfinance as yf

    # yfinance 1.7 uses pandas APIs that pandas 3.1 deprecates; the warnings are its, not ours.
    warnings.filterwarnings("ignore", module=r"yfinance(\.|$)")
    yf.config.debug.hide_exceptions = False
    return yf


def _is_unreachable(exc: BaseException) -> bool:
    name = type(exc).__name__
    text = str(exc)
    return name in ("DNSError", "ConnectionError", "ProxyError") and (
        "resolve" in text.lower() or "refused" in text.lower() or name == "DNSError"
    )


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: timeouts, rate limits, server errors."""
    name = type(exc).__name__
    text = str(exc)
    if name in (
        "YFRateLimitError",
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "ChunkedEncodingError",
    ):
        return True
    if name == "JSONDecodeError":  # an HTML error page ("Will be right back") instead of JSON
        return True
    if "Too Many Requests" in text or "timed out" in text.lower():
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if isinstance(exc, WrongSymbol):
        return str(exc)
    if name in ("YFTzMissingError", "YFTickerMissingError"):
        return "unknown or delisted ticker (Yahoo has no such symbol)"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:
        return "unknown or delisted ticker (Yahoo answered 404)"
    if name == "JSONDecodeError" or "Expecting" in str(exc):
        # The text that did not parse tells an error page (an HTTP 500's "Internal Server Error",
        # an HTML "Will be right back") from cut-off JSON.
        doc = " ".join(str(getattr(exc, "doc", "") or "").split())
        if doc and not doc.startswith(("{", "[")):
            return f"Yahoo answered with an error page instead of data (HTTP error, e.g. 500): {doc[:80]!r}"
        return f"malformed response from Yahoo, not JSON ({exc})"
    return f"{name}: {exc}"


class YahooSource:
    """Yahoo Finance through yfinance: daily OHLCV (auto_adjust=False), splits, dividends, and
    the shares-outstanding series (``get_shares_full``).

    Tickers are fetched in parallel (``concurrency``) with retries and exponential backoff with
    jitter on timeouts and rate limits. ``session`` may be any requests/curl_cffi session; tests
    and the demo pass one whose transport answers offline (``capwatch.replay``).
    """

    name = "yahoo"

    def __init__(
        self,
        session=None,
        concurrency: int = 4,
        retries: int = 4,
        backoff_seconds: float = 1.0,
        today: Callable[[], date] | None = None,
        rate: float | None = None,
        prefect_rate_limit: str | None = None,
    ):
        self.session = session
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        # Every request to Yahoo (a history, a share series) takes a slot of one budget: the
        # process's (``rate`` per second, all threads) and, when named, a Prefect global rate
        # limit shared by every worker (capwatch.ratelimit).
        self.limiter = process_limiter("yahoo", rate) if rate else None
        self.prefect_rate_limit = prefect_rate_limit
        self.requests = 0
        self.today = today or (lambda: datetime.now(UTC).date())
        self._yf = _yfinance()
        # Per ticker: (from, split rows from then to today), learnt once per process and day.
        self._splits_known: dict[str, tuple[date, pd.DataFrame]] = {}
        self._splits_lock = threading.Lock()
        self._splits_day: date | None = None

    def _with_retries(self, ticker: str, what: str, fn):
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:
                if _is_unreachable(exc):
                    raise SourceUnreachable(
                        f"Yahoo Finance is unreachable ({type(exc).__name__}: {exc}). Check the network, "
                        "or run `capwatch demo` for the same pipeline offline."
                    ) from exc
                if not _is_transient(exc) or attempt >= self.retries:
                    raise
                delay = backoff_delay(self.backoff_seconds, attempt)
                log.warning(
                    "%s (%s): %s; retry %d/%d in %.1fs",
                    ticker,
                    what,
                    type(exc).__name__,
                    attempt + 1,
                    self.retries,
                    delay,
                )
                # yfinance memoises responses of past ranges, failures included: forget them.
                self._yf.data.YfData.cache_get.cache_clear()
                time.sleep(delay)
                attempt += 1

    def _ticker(self, ticker: str):
        """yfinance's Ticker. yfinance first asks Yahoo for a ticker's timezone (once per ticker and
        machine, then cached on disk): that request takes its own slot of the budget too."""
        if self.limiter or self.prefect_rate_limit:
            try:
                known = self._yf.cache.get_tz_cache().lookup(ticker)
            except Exception:  # noqa: BLE001 - an unreadable cache: assume the request happens
                known = None
            if known is None:
                self._pace()
        return self._yf.Ticker(ticker, session=self.session)

    def _pace(self) -> None:
        pace(self.limiter, self.prefect_rate_limit)
        self.requests += 1  # (a race between threads can only undercount this statistic)

    def _history(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """Daily bars. A range that reaches today asks from ``SHARES_LOOKBACK`` before ``start``
        (one request: the response's split events then cover every split the adjustment used and
        those between an older share count and ``start``). A past range asks only for itself;
        the splits around it come from ``_splits_around`` (monthly bars: one small request per
        ticker, shared by all its chunks)."""
        t = self._ticker(ticker)
        self._pace()
        first = start - SHARES_LOOKBACK if self._reaches_today(end) else start
        last = self.today() if self._reaches_today(end) else end
        hist = t.history(
            start=first.isoformat(),
            end=(last + timedelta(days=1)).isoformat(),
            interval="1d",
            auto_adjust=False,
            actions=True,
            repair=False,
        )
        # A response for another symbol (a vendor mix-up) must never be stored under this one.
        answered = str((t.history_metadata or {}).get("symbol") or ticker).upper()
        if hist is not None and not hist.empty and answered != ticker.upper():
            raise WrongSymbol(
                f"Yahoo answered for {answered}, not {ticker}: nothing of it was used"
            )
        return hist

    def _reaches_today(self, end: date) -> bool:
        # Within a week of today: one request with the lookback costs less than two.
        return end >= self.today() - timedelta(days=7)

    def _splits_around(self, ticker: str, start: date) -> pd.DataFrame:
        """Every split from ``SHARES_LOOKBACK`` before ``start`` to today (ticker, date, ratio):
        Yahoo adjusted the daily bars for all splits up to today. Asked once per ticker as monthly
        bars (events keep their own dates) from the earliest start any of its chunks needs."""
        first = start - SHARES_LOOKBACK
        with self._splits_lock:
            known = self._splits_known.get(ticker)
        if known is not None and known[0] <= first:
            return known[1]
        # yfinance's history() moves an event to the start of its monthly bar; the chart
        # endpoint's own events carry the exact day, so they are read through yfinance's data
        # layer (its cookie, crumb and rate-limit errors) and parsed here.
        t = self._ticker(ticker)
        self._pace()
        response = t._data.get(
            url=f"https://query2.finance.yahoo.com/v8/finance/chart/{ticker}",
            params={
                "period1": int(datetime.combine(first, datetime.min.time(), UTC).timestamp()),
                "period2": int(
                    datetime.combine(
                        self.today() + timedelta(days=1), datetime.min.time(), UTC
                    ).timestamp()
                ),
                "interval": "1mo",
                "events": "splits",
            },
        )
        if response.status_code == 429:
            raise self._yf.exceptions.YFRateLimitError()
        response.raise_for_status()
        result = ((response.json().get("chart") or {}).get("result") or [{}])[0] or {}
        events = ((result.get("events") or {}).get("splits") or {}).values()
        tz = ZoneInfo((result.get("meta") or {}).get("exchangeTimezoneName") or "America/New_York")
        rows = pd.DataFrame(
            [
                (
                    ticker,
                    pd.Timestamp(datetime.fromtimestamp(int(e["date"]), tz).date()),
                    float(e["numerator"]) / float(e["denominator"]),
                )
                for e in events
                if float(e.get("denominator") or 0) > 0 and float(e.get("numerator") or 0) > 0
            ],
            columns=["ticker", "date", "ratio"],
        )
        rows["date"] = rows["date"].astype("datetime64[ns]")
        with self._splits_lock:
            self._splits_known[ticker] = (first, rows)
        return rows

    def _shares(self, ticker: str, start: date, end: date):
        t = self._ticker(ticker)
        self._pace()
        return t.get_shares_full(
            start=(start - SHARES_LOOKBACK).isoformat(), end=(end + timedelta(days=1)).isoformat()
        )

    def _fetch_one(self, ticker: str, start: date, end: date) -> Extracted:
        out = Extracted()
        try:
            hist = self._with_retries(ticker, "prices", lambda: self._history(ticker, start, end))
        except SourceUnreachable:
            raise
        except Exception as exc:
            if type(exc).__name__ != "YFPricesMissingError":
                out.problems.append(Problem(ticker, "prices", _describe(exc)))
                return out
            hist = pd.DataFrame()  # an empty download: reported below
        if hist is None or hist.empty:
            out.problems.append(
                Problem(
                    ticker,
                    "prices",
                    f"Yahoo returned no prices for {start}..{end} (empty download)",
                )
            )
        else:
            idx = pd.DatetimeIndex(hist.index)
            days = (
                pd.Series(idx.tz_localize(None) if idx.tz is not None else idx)
                .dt.normalize()
                .astype("datetime64[ns]")
            )
            frame = pd.DataFrame(
                {
                    "ticker": ticker,
                    "date": days.to_numpy(),
                    "open": hist["Open"].to_numpy(dtype=float),
                    "high": hist["High"].to_numpy(dtype=float),
                    "low": hist["Low"].to_numpy(dtype=float),
                    "close": hist["Close"].to_numpy(dtype=float),
                    "volume": hist["Volume"].to_numpy(dtype=float),
                }
            )
            split_rows = frame.loc[hist["Stock Splits"].to_numpy() > 0, ["ticker", "date"]].assign(
                ratio=hist["Stock Splits"].to_numpy()[hist["Stock Splits"].to_numpy() > 0]
            )
            if not self._reaches_today(end):
                around = self._with_retries(
                    ticker, "splits", lambda: self._splits_around(ticker, start)
                )
                split_rows = (
                    pd.concat([split_rows, around], ignore_index=True)
                    .drop_duplicates(["ticker", "date"])
                    .sort_values("date", ignore_index=True)
                )
            div_mask = (
                hist["Dividends"].to_numpy() > 0
                if "Dividends" in hist
                else np.zeros(len(hist), bool)
            )
            divs = frame.loc[div_mask, ["ticker", "date"]].assign(
                dividend=hist["Dividends"].to_numpy()[div_mask]
            )
            prices, divs = to_as_traded(frame, split_rows, divs)
            in_range = (prices["date"] >= pd.Timestamp(start)) & (
                prices["date"] <= pd.Timestamp(end)
            )
            out.prices = prices[in_range].reset_index(drop=True)
            out.splits = split_rows.reset_index(drop=True)
            dr = (divs["date"] >= pd.Timestamp(start)) & (divs["date"] <= pd.Timestamp(end))
            out.dividends = divs[dr].reset_index(drop=True)
            if out.prices.empty:
                out.problems.append(Problem(ticker, "prices", f"no trading days in {start}..{end}"))
        try:
            series = self._with_retries(ticker, "shares", lambda: self._shares(ticker, start, end))
        except SourceUnreachable:
            raise
        except Exception as exc:
            out.problems.append(Problem(ticker, "shares_outstanding", _describe(exc)))
            series = None
        if series is None or len(series) == 0:
            out.problems.append(
                Problem(ticker, "shares_outstanding", "Yahoo returned no share counts")
            )
        else:
            idx = pd.DatetimeIndex(series.index)
            as_of = pd.Series(idx.tz_localize(None) if idx.tz is not None else idx).dt.normalize()
            out.shares = pd.DataFrame(
                {
                    "ticker": ticker,
                    "share_class": "all",
                    "as_of": as_of.astype("datetime64[ns]").to_numpy(),
                    "shares": pd.to_numeric(series, errors="coerce").to_numpy(dtype=float),
                    # Yahoo's series carries no filing date: the count counts as known on its as-of date.
                    "reported_date": pd.NaT,
                    "source": self.name,
                    "accession": "",
                }
            )
        return out

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        if not tickers:
            return Extracted()
        # yfinance memoises responses for past ranges for the life of the process; a long-lived
        # worker must see corrections, so every fetch starts from Yahoo, not from that memo.
        self._yf.data.YfData.cache_get.cache_clear()
        with self._splits_lock:  # split events learnt on an earlier day may be out of date
            if self._splits_day != self.today():
                self._splits_known.clear()
                self._splits_day = self.today()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(tickers))) as pool:
            parts = list(pool.map(lambda t: self._fetch_one(t, start, end), tickers))
        return Extracted.concat(parts)
