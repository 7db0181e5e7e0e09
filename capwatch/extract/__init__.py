"""Extract: sources that deliver prices, splits, dividends and share counts for tickers and dates.

Every source returns the same ``Extracted`` frames, already on the warehouse's basis:
prices and dividends *as traded* (Yahoo's split adjustment undone), share counts as reported.
Per-ticker failures become ``Problem`` entries naming the ticker; they never sink the batch.

Sources: ``yahoo`` (``capwatch.extract.yahoo``), ``csv:DIR`` (``capwatch.extract.csv``), and
``replay:...``, the yahoo source fed Yahoo-shaped responses built offline (``capwatch.replay``).
Share counts may come from a second source beside the price source: ``sec``
(``capwatch.extract.sec``, SEC EDGAR filings) joined to it by ``WithCounts``. Every share-count
row names its own source, so counts from several sources land side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

from capwatch.schema import DIVIDENDS, PRICES, SHARES, SPLITS
from capwatch.settings import check_source
from capwatch.symbols import InvalidSymbol, check_symbol

if TYPE_CHECKING:
    from capwatch.settings import Settings

REFUSED_COLUMNS = ["ticker", "date", "dataset", "reason", "value"]

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


@dataclass
class Extracted:
    """What a source delivered for a batch of tickers (columns: ``capwatch.schema``)."""

    prices: pd.DataFrame = field(default_factory=PRICES.empty)
    splits: pd.DataFrame = field(default_factory=SPLITS.empty)
    dividends: pd.DataFrame = field(default_factory=DIVIDENDS.empty)
    shares: pd.DataFrame = field(default_factory=SHARES.empty)
    problems: list[Problem] = field(default_factory=list)
    # Rows the source itself could not read (a cell that is not a date or a number), as quarantine
    # rows: ticker, date, dataset, reason, value. The raw gate adds them to the quarantine.
    refused: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REFUSED_COLUMNS))

    @classmethod
    def concat(cls, parts: list[Extracted]) -> Extracted:
        def cat(name: str, table) -> pd.DataFrame:
            frames = [getattr(p, name) for p in parts if len(getattr(p, name))]
            return pd.concat(frames, ignore_index=True) if frames else table.empty()

        return cls(
            prices=cat("prices", PRICES),
            splits=cat("splits", SPLITS),
            dividends=cat("dividends", DIVIDENDS),
            shares=cat("shares", SHARES),
            problems=[p for part in parts for p in part.problems],
            refused=pd.concat(
                [p.refused for p in parts if len(p.refused)]
                or [pd.DataFrame(columns=REFUSED_COLUMNS)],
                ignore_index=True,
            ),
        )


class SourceUnreachable(RuntimeError):
    """The source cannot be reached at all (no network, DNS failure): nothing can be fetched."""


class Source(Protocol):
    name: str  # stored as the rows' `source`

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
                dividends.loc[md, "dividend"] = np.round(
                    dividends.loc[md, "dividend"].to_numpy(dtype=float) * f, 8
                )
    return prices, dividends


class WithCounts:
    """A price source plus a share-count source: prices, splits and dividends from the first,
    share counts from both (each row keeps its own source), problems from both."""

    def __init__(self, prices: Source, counts: Source):
        self.prices, self.counts = prices, counts
        self.name = prices.name  # the source of the prices, splits and dividends

    def tickers_outside(self, requested: list[str]) -> list[str]:
        """What the price source holds beyond ``requested`` (a file's other tickers), if it can say."""
        outside = getattr(self.prices, "tickers_outside", None)
        return outside(requested) if outside else []

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        out = self.prices.fetch(tickers, start, end)
        try:
            counted = self.counts.fetch(tickers, start, end)
        except (
            RuntimeError
        ) as exc:  # SEC down (SourceUnreachable) or refusing: the prices still land
            counted = Extracted(
                problems=[
                    Problem(t, "shares_outstanding", f"{self.counts.name}: {exc}") for t in tickers
                ]
            )
        frames = [f for f in (out.shares, counted.shares) if len(f)]
        if frames:
            out.shares = pd.concat(frames, ignore_index=True)
        out.problems += counted.problems
        return out


def make_source(
    settings: Settings, spec: str | None = None, session=None, sec_session=None
) -> Source:
    """The source ``spec`` names (default ``settings.source``), joined to the share-count source
    ``settings.counts_source()`` names (SEC EDGAR) if any. ``session`` replaces yfinance's HTTP
    session and ``sec_session`` the SEC client's (tests)."""
    prices = _price_source(settings, spec, session)
    counts = settings.counts_source()
    if counts is None:
        return prices
    return WithCounts(prices, make_counts_source(settings, counts, sec_session))


def make_counts_source(settings: Settings, spec: str, session=None):
    """The SEC source: ``sec`` (live; needs CAPWATCH_SEC_USER_AGENT) or ``replay:demo`` /
    ``replay:csv:DIR`` (the same client answered offline, stored as source ``sec-replay``)."""
    from capwatch.extract.sec import SecClient, SecSource

    settings.check_counts_source()
    replay = spec.startswith("replay:")
    if replay and session is None:
        from capwatch.replay.sec import replay_sec_session

        session = replay_sec_session(spec[len("replay:") :])
    client = SecClient(
        settings.sec_user_agent or ("capwatch replay offline@capwatch.invalid" if replay else ""),
        cache_dir=None if replay else settings.sec_cache(),
        rate=settings.sec_rate or (0.0 if replay else 8.0),
        retries=settings.yahoo_retries,
        backoff_seconds=settings.yahoo_backoff_seconds,
        session=session,
        prefect_rate_limit=settings.sec_prefect_rate_limit,
    )
    source = SecSource(client)
    if replay:
        source.name = "sec-replay"  # replayed filings are never stored as SEC's
    return source


def _price_source(settings: Settings, spec: str | None = None, session=None) -> Source:
    spec = check_source(spec or settings.source)
    if spec.startswith("csv:"):
        from capwatch.extract.csv import CsvSource

        return CsvSource(spec[4:])
    from capwatch.extract.yahoo import YahooSource

    options = dict(
        concurrency=settings.yahoo_concurrency,
        retries=settings.yahoo_retries,
        backoff_seconds=settings.yahoo_backoff_seconds,
        rate=settings.yahoo_rate,
        prefect_rate_limit=settings.yahoo_prefect_rate_limit,
    )
    if spec.startswith("replay:"):
        from capwatch.replay import replay_session

        source = YahooSource(
            session=session or replay_session(spec[7:], settings.replay_latency), **options
        )
        source.name = "yahoo-replay"  # replayed data is never stored as Yahoo's
        return source
    return YahooSource(session=session, **options)


def split_valid_symbols(tickers: list[str]) -> tuple[list[str], list[Problem]]:
    """Symbols that pass the rule, and a Problem for each that does not (no I/O is done for those)."""
    good, bad = {}, []  # a dict keeps the order; a list's `in` was quadratic (0.27 s at 6,000)
    for t in tickers:
        try:
            good[check_symbol(t)] = None
        except InvalidSymbol as exc:
            bad.append(Problem(str(t), "symbol", str(exc)))
    return list(good), bad
