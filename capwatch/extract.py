"""Extract: sources that deliver prices, splits, dividends and share counts for tickers and dates.

Every source returns the same ``Extracted`` frames, already on the warehouse's basis:
prices and dividends *as traded* (Yahoo's split adjustment undone), share counts as reported.
Per-ticker failures become ``Problem`` entries naming the ticker; they never sink the batch.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from capwatch.symbols import InvalidSymbol, check_symbol

log = logging.getLogger("capwatch.extract")

PRICE_COLUMNS = ["ticker", "date", "open", "high", "low", "close", "volume"]
SPLIT_COLUMNS = ["ticker", "date", "ratio"]
DIVIDEND_COLUMNS = ["ticker", "date", "dividend"]
SHARE_COLUMNS = ["ticker", "share_class", "as_of", "shares", "reported_date"]

# A share count is looked for this far before the start of a range, so the first day has one.
SHARES_LOOKBACK = timedelta(days=550)


@dataclass(frozen=True)
class Problem:
    """One ticker's failure, said plainly: ``NVDA (prices): no data returned``."""

    ticker: str
    dataset: str
    message: str

    def __str__(self) -> str:
        return f"{self.ticker} ({self.dataset}): {self.message}"


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})


@dataclass
class Extracted:
    """What a source delivered for a batch of tickers."""

    prices: pd.DataFrame = field(default_factory=lambda: _empty(PRICE_COLUMNS))
    splits: pd.DataFrame = field(default_factory=lambda: _empty(SPLIT_COLUMNS))
    dividends: pd.DataFrame = field(default_factory=lambda: _empty(DIVIDEND_COLUMNS))
    shares: pd.DataFrame = field(default_factory=lambda: _empty(SHARE_COLUMNS))
    problems: list[Problem] = field(default_factory=list)

    @classmethod
    def concat(cls, parts: list[Extracted]) -> Extracted:
        def cat(name: str, cols: list[str]) -> pd.DataFrame:
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            return pd.concat(frames, ignore_index=True) if frames else _empty(cols)

        return cls(
            prices=cat("prices", PRICE_COLUMNS),
            splits=cat("splits", SPLIT_COLUMNS),
            dividends=cat("dividends", DIVIDEND_COLUMNS),
            shares=cat("shares", SHARE_COLUMNS),
            problems=[p for part in parts for p in part.problems],
        )


class SourceUnreachable(RuntimeError):
    """The source cannot be reached at all (no network, DNS failure): nothing can be fetched."""


class Source(Protocol):
    name: str

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        """Prices for trading days in [start, end]; splits and share counts needed to value them."""
        ...


def split_factor_after(dates: pd.Series, split_dates: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """For each date, the product of split ratios with ex-date strictly after it.

    Yahoo divides every price before a split by its ratio, for all splits known on the download
    day. Multiplying by this factor gives the price as traded.
    """
    if len(split_dates) == 0:
        return np.ones(len(dates))
    order = np.argsort(split_dates)
    split_dates, ratios = split_dates[order], ratios[order]
    # suffix[i] = product of ratios[i:]; position = number of splits on or before the date.
    suffix = np.append(np.cumprod(ratios[::-1])[::-1], 1.0)
    pos = np.searchsorted(split_dates, dates.to_numpy(dtype="datetime64[ns]"), side="right")
    return suffix[pos]


def to_as_traded(prices: pd.DataFrame, splits: pd.DataFrame, dividends: pd.DataFrame | None = None):
    """Undo Yahoo's split adjustment of prices, volumes and dividends using ``splits``."""
    prices = prices.copy()
    dividends = dividends.copy() if dividends is not None else None
    for ticker, sp in splits.groupby("ticker"):
        sd = sp["date"].to_numpy(dtype="datetime64[ns]")
        ratios = sp["ratio"].to_numpy(dtype=float)
        m = prices["ticker"] == ticker
        if m.any():
            f = split_factor_after(prices.loc[m, "date"], sd, ratios)
            for c in ("open", "high", "low", "close"):
                # Round away float noise from the source's adjustment; quotes have at most 6 decimals.
                prices.loc[m, c] = np.round(prices.loc[m, c].to_numpy(dtype=float) * f, 6)
            prices.loc[m, "volume"] = np.round(prices.loc[m, "volume"].to_numpy(dtype=float) / f)
        if dividends is not None and len(dividends):
            md = dividends["ticker"] == ticker
            if md.any():
                f = split_factor_after(dividends.loc[md, "date"], sd, ratios)
                dividends.loc[md, "dividend"] = np.round(dividends.loc[md, "dividend"].to_numpy(dtype=float) * f, 8)
    return prices, dividends


def _date_col(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).astype("datetime64[ns]").dt.normalize()


# --------------------------------------------------------------------------------------- csv


class CsvSource:
    """Files laid out as ``../shared/marketdata``: vendor exports, replays and tests.

    prices.csv (date,ticker,open,high,low,close,volume) is on Yahoo's basis: split-adjusted for
    every split in splits.csv. shares_outstanding.csv holds reported counts with filing dates.
    """

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.name = f"csv:{self.directory}"
        if not (self.directory / "prices.csv").is_file():
            raise FileNotFoundError(f"csv source {self.directory}: no prices.csv there")
        self._cache: dict[str, pd.DataFrame] = {}

    def _read(self, name: str, **kw) -> pd.DataFrame:
        if name not in self._cache:
            path = self.directory / name
            self._cache[name] = pd.read_csv(path, **kw) if path.is_file() else pd.DataFrame()
        return self._cache[name]

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        prices = self._read("prices.csv", dtype={"ticker": str})
        splits = self._read("splits.csv", dtype={"ticker": str})
        divs = self._read("dividends.csv", dtype={"ticker": str})
        shares = self._read("shares_outstanding.csv", dtype={"ticker": str, "share_class": str})
        out = Extracted()
        wanted = set(tickers)
        p = prices[prices["ticker"].isin(wanted)].copy()
        p["date"] = _date_col(p["date"]).to_numpy()
        known = set(p["ticker"])
        p = p[(p["date"] >= pd.Timestamp(start)) & (p["date"] <= pd.Timestamp(end))]
        s = _empty(SPLIT_COLUMNS)
        if len(splits):
            s = splits[splits["ticker"].isin(wanted)][SPLIT_COLUMNS].copy()
            s["date"] = _date_col(s["date"]).to_numpy()
        d = _empty(DIVIDEND_COLUMNS)
        if len(divs):
            d = divs[divs["ticker"].isin(wanted)].rename(columns={"ex_date": "date"})[DIVIDEND_COLUMNS].copy()
            d["date"] = _date_col(d["date"]).to_numpy()
            d = d[(d["date"] >= pd.Timestamp(start)) & (d["date"] <= pd.Timestamp(end))]
        p, d = to_as_traded(p[PRICE_COLUMNS], s, d)
        out.prices, out.splits, out.dividends = p, s, d
        if len(shares):
            sh = shares[shares["ticker"].isin(wanted)].rename(
                columns={"as_of_date": "as_of", "shares_outstanding": "shares", "filing_date": "reported_date"}
            )
            sh = sh.assign(
                as_of=_date_col(sh["as_of"]).to_numpy(),
                reported_date=_date_col(sh["reported_date"]).to_numpy(),
                share_class=sh["share_class"].fillna("all"),
            )
            lo = pd.Timestamp(start) - SHARES_LOOKBACK
            out.shares = sh[(sh["as_of"] >= lo) & (sh["as_of"] <= pd.Timestamp(end))][SHARE_COLUMNS]
        for t in tickers:
            if t not in known:
                out.problems.append(Problem(t, "prices", f"unknown ticker: no rows in {self.directory / 'prices.csv'}"))
        return out


# ------------------------------------------------------------------------------------- yahoo

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
    if name in ("YFRateLimitError", "Timeout", "ReadTimeout", "ConnectTimeout", "ChunkedEncodingError"):
        return True
    if name == "JSONDecodeError":  # an HTML error page ("Will be right back") instead of JSON
        return True
    if "Too Many Requests" in text or "timed out" in text.lower():
        return True
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _describe(exc: BaseException) -> str:
    name = type(exc).__name__
    if name in ("YFTzMissingError", "YFTickerMissingError"):
        return "unknown or delisted ticker (Yahoo has no such symbol)"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 404:
        return "unknown or delisted ticker (Yahoo answered 404)"
    if name == "JSONDecodeError" or "Expecting" in str(exc):
        return f"malformed response from Yahoo, not JSON ({exc})"
    return f"{name}: {exc}"


class YahooSource:
    """Yahoo Finance through yfinance: daily OHLCV (auto_adjust=False), splits, dividends, and
    the shares-outstanding series (``get_shares_full``).

    Tickers are fetched in parallel (``concurrency``) with retries and exponential backoff with
    jitter on timeouts and rate limits. ``session`` may be any requests/curl_cffi session; tests
    and the demo pass one whose transport answers offline (``capwatch.yahoo_wire``).
    """

    name = "yahoo"

    def __init__(
        self,
        session=None,
        concurrency: int = 4,
        retries: int = 4,
        backoff_seconds: float = 1.0,
        today: Callable[[], date] | None = None,
    ):
        self.session = session
        self.concurrency = max(1, concurrency)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self.today = today or (lambda: datetime.now(UTC).date())
        self._yf = _yfinance()

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
                delay = self.backoff_seconds * (2**attempt) * (1 + random.random() / 2)
                log.warning("%s (%s): %s; retry %d/%d in %.1fs", ticker, what, type(exc).__name__, attempt + 1, self.retries, delay)
                # yfinance memoises responses of past ranges, failures included: forget them.
                self._yf.data.YfData.cache_get.cache_clear()
                time.sleep(delay)
                attempt += 1

    def _history(self, ticker: str, start: date) -> pd.DataFrame:
        # Ask up to today, not just `end`: the response then carries every split after `start`,
        # which is what Yahoo's adjustment of the prices used. And ask from as far back as the
        # share counts reach, so a split between an older count and `start` is known too.
        t = self._yf.Ticker(ticker, session=self.session)
        return t.history(
            start=(start - SHARES_LOOKBACK).isoformat(),
            end=(self.today() + timedelta(days=1)).isoformat(),
            interval="1d",
            auto_adjust=False,
            actions=True,
            repair=False,
        )

    def _shares(self, ticker: str, start: date, end: date):
        t = self._yf.Ticker(ticker, session=self.session)
        return t.get_shares_full(start=(start - SHARES_LOOKBACK).isoformat(), end=(end + timedelta(days=1)).isoformat())

    def _fetch_one(self, ticker: str, start: date, end: date) -> Extracted:
        out = Extracted()
        try:
            hist = self._with_retries(ticker, "prices", lambda: self._history(ticker, start))
        except SourceUnreachable:
            raise
        except Exception as exc:
            if type(exc).__name__ != "YFPricesMissingError":
                out.problems.append(Problem(ticker, "prices", _describe(exc)))
                return out
            hist = pd.DataFrame()  # an empty download: reported below
        if hist is None or hist.empty:
            out.problems.append(Problem(ticker, "prices", f"Yahoo returned no prices for {start}..{end} (empty download)"))
        else:
            idx = pd.DatetimeIndex(hist.index)
            days = pd.Series(idx.tz_localize(None) if idx.tz is not None else idx).dt.normalize().astype("datetime64[ns]")
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
            div_mask = hist["Dividends"].to_numpy() > 0 if "Dividends" in hist else np.zeros(len(hist), bool)
            divs = frame.loc[div_mask, ["ticker", "date"]].assign(dividend=hist["Dividends"].to_numpy()[div_mask])
            prices, divs = to_as_traded(frame, split_rows, divs)
            in_range = (prices["date"] >= pd.Timestamp(start)) & (prices["date"] <= pd.Timestamp(end))
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
            out.problems.append(Problem(ticker, "shares_outstanding", "Yahoo returned no share counts"))
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
                }
            )
        return out

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        if not tickers:
            return Extracted()
        # yfinance memoises responses for past ranges for the life of the process; a long-lived
        # worker must see corrections, so every fetch starts from Yahoo, not from that memo.
        self._yf.data.YfData.cache_get.cache_clear()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(tickers))) as pool:
            parts = list(pool.map(lambda t: self._fetch_one(t, start, end), tickers))
        return Extracted.concat(parts)


# ------------------------------------------------------------------------------------ choice


def make_source(spec: str, session=None, **yahoo_options) -> Source:
    """``yahoo`` or ``csv:DIR``.

    With ``CAPWATCH_YAHOO_REPLAY`` set (``demo`` or ``csv:DIR``) and no session given, ``yahoo``
    runs the real yfinance path against Yahoo-shaped responses served offline (demo, tests).
    """
    if spec == "yahoo":
        import os

        from capwatch.yahoo_wire import REPLAY_ENV, replay_session

        if session is None and os.environ.get(REPLAY_ENV):
            session = replay_session(os.environ[REPLAY_ENV])
        return YahooSource(session=session, **yahoo_options)
    if spec.startswith("csv:"):  # options only concern Yahoo's network
        return CsvSource(spec[4:])
    raise ValueError(f"unknown source {spec!r}: use 'yahoo' or 'csv:DIR'")


def split_valid_symbols(tickers: list[str]) -> tuple[list[str], list[Problem]]:
    """Symbols that pass the rule, and a Problem for each that does not (no I/O is done for those)."""
    good, bad = [], []
    for t in tickers:
        try:
            s = check_symbol(t)
        except InvalidSymbol as exc:
            bad.append(Problem(str(t), "symbol", str(exc)))
            continue
        if s not in good:
            good.append(s)
    return good, bad
