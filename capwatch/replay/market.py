"""A deterministic, seeded market shaped like real data: for the demo, benchmarks and scale tests.

NYSE trading days (exchange_calendars), log-normal daily returns with fat-tailed shocks, stock
splits on high-priced names, quarterly share counts with an as-of and a later report date, and a
crash day on which the largest names fall 10-20 %. The same arguments always give the same market.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from capwatch.calendar import trading_days
from capwatch.replay.yahoo import MarketFrames
from capwatch.schema import CSV_PRICES, CSV_SHARES, CSV_SPLITS

_NAMES = [
    "ALFA",
    "BRAV",
    "CHAR",
    "DELT",
    "ECHO",
    "FOXT",
    "GOLF",
    "HOTL",
    "INDI",
    "JULI",
    "KILO",
    "LIMA",
    "MIKE",
    "NOVB",
    "OSCR",
    "PAPA",
    "QUEB",
    "ROME",
    "SIER",
    "TANG",
    "UNIF",
    "VICT",
    "WHIS",
    "XRAY",
    "YANK",
    "ZULU",
]


def tickers_for(n: int) -> list[str]:
    """``n`` synthetic symbols: ALFA, BRAV, ... then ALFA2, BRAV2, ..."""
    return [_NAMES[i % 26] + ("" if i < 26 else str(i // 26 + 1)) for i in range(n)]


@dataclass
class GeneratedMarket:
    """As-traded prices, splits and reported share counts (with report dates)."""

    prices: pd.DataFrame  # ticker, date, open, high, low, close, volume (as traded)
    splits: pd.DataFrame  # ticker, date, ratio
    shares: pd.DataFrame  # ticker, share_class, as_of, shares, reported_date
    crash_day: date | None

    def yahoo_frames(self) -> MarketFrames:
        """The market as Yahoo serves it: prices and volumes adjusted for every split."""
        p = self.prices.copy()
        for ticker, sp in self.splits.groupby("ticker"):
            m = (p["ticker"] == ticker).to_numpy()
            d = p.loc[m, "date"].to_numpy()
            f = np.ones(m.sum())
            for sd, r in zip(sp["date"].to_numpy(), sp["ratio"].to_numpy(), strict=False):
                f = np.where(d < sd, f * r, f)
            for c in ("open", "high", "low", "close"):
                p.loc[m, c] = p.loc[m, c].to_numpy() / f
            p.loc[m, "volume"] = p.loc[m, "volume"].to_numpy() * f
        return MarketFrames(
            prices=p, splits=self.splits, shares=self.shares[["ticker", "as_of", "shares"]]
        )

    def write_csv(self, directory: Path) -> Path:
        """Lay the market out like ``../shared/marketdata`` (a ``csv:DIR`` source)."""
        directory.mkdir(parents=True, exist_ok=True)
        CSV_PRICES.write(self.yahoo_frames().prices, directory)
        CSV_SPLITS.write(self.splits, directory)
        CSV_SHARES.write(self.shares, directory)
        return directory


def _ticker_series(
    rng: np.random.Generator,
    ticker: str,
    days: pd.DatetimeIndex,
    start: date,
    end: date,
    crash: tuple[int, float | None] | None,
) -> tuple[pd.DataFrame, list[tuple], list[tuple]]:
    """One ticker's as-traded prices, split rows and share-count rows. ``crash`` = (day index,
    fall or None for a random 10-20 %)."""
    n_days = len(days)
    sigma = rng.uniform(0.012, 0.03)
    mu = rng.uniform(-0.0002, 0.0012)
    rets = rng.normal(mu, sigma, n_days)
    shocks = rng.random(n_days) < 0.004  # rare large moves, both ways
    rets[shocks] += rng.normal(0, 0.08, shocks.sum())
    if crash is not None:
        idx, fall = crash
        rets[idx] = np.log(1 - (fall if fall is not None else rng.uniform(0.10, 0.20)))
    first = rng.uniform(15, 400)
    adj_close = first * np.exp(np.cumsum(rets))  # economic path, on today's split basis later

    # Splits: when the as-traded price first passes 900, a 10-for-1 (or 4-for-1) the next session
    # (at most three). factor: as-traded = economic x factor (it shrinks after each split).
    factor = np.ones(n_days)
    splits_here = []
    level, look_from = 1.0, 0
    while len(splits_here) < 3 and look_from < n_days - 1:
        over = np.flatnonzero(adj_close[look_from : n_days - 1] * level > 900)
        if not len(over):
            break
        d = look_from + int(over[0]) + 1  # the session after the close above 900
        ratio = 10.0 if rng.random() < 0.7 else 4.0
        splits_here.append((days[d], ratio))
        level /= ratio
        factor[d:] = level
        look_from = d
    close = adj_close * factor
    open_ = close * np.exp(rng.normal(0, sigma / 3, n_days))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, sigma / 2, n_days)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, sigma / 2, n_days)))
    volume = np.round(rng.lognormal(16, 0.5, n_days) / factor)
    prices = pd.DataFrame(
        {
            "ticker": ticker,
            "date": days,
            "open": np.round(open_, 4),
            "high": np.round(high, 4),
            "low": np.round(low, 4),
            "close": np.round(close, 4),
            "volume": volume.astype("int64"),
        }
    )
    split_rows = [(ticker, d, r) for d, r in splits_here]

    # Quarterly counts: as-of ~4 weeks after quarter end, reported 2-6 days later, on the split
    # basis of the as-of date; slow buybacks or issuance.
    share_rows = []
    base = rng.uniform(0.2e9, 5e9)
    drift = rng.uniform(-0.008, 0.006)
    for q, qe in enumerate(pd.date_range(start, end, freq="QE")):
        as_of = qe + timedelta(days=int(rng.integers(20, 35)))
        reported = as_of + timedelta(days=int(rng.integers(2, 7)))
        econ = base * (1 + drift) ** q
        later = [r for d, r in splits_here if d > as_of]
        shares = econ / float(np.prod(later)) if later else econ
        share_rows.append((ticker, "all", as_of, int(round(shares, -3)), reported))
    # One count before the first session so day one is valued.
    share_rows.append(
        (
            ticker,
            "all",
            pd.Timestamp(start) - timedelta(days=40),
            int(round(base / float(np.prod([r for _, r in splits_here]) or 1.0), -3)),
            pd.Timestamp(start) - timedelta(days=35),
        )
    )
    return prices, split_rows, share_rows


def generate_market(
    n_tickers: int = 30,
    start: date = date(2019, 1, 2),
    end: date = date(2025, 12, 31),
    seed: int = 20250127,
    crash_day: date | None = date(2025, 1, 27),
) -> GeneratedMarket:
    """Generate a market. Every ticker trades every session from ``start`` to ``end``."""
    rng = np.random.default_rng(seed)
    days = trading_days(start, end)
    tickers = tickers_for(n_tickers)
    crash_idx = None
    if crash_day is not None and pd.Timestamp(crash_day) in days:
        crash_idx = int(days.get_loc(pd.Timestamp(crash_day)))

    price_frames, split_rows, share_rows = [], [], []
    for i, ticker in enumerate(tickers):
        crash = None
        if crash_idx is not None and i < max(3, n_tickers // 8):
            crash = (crash_idx, 0.17 if i == 0 else None)
        p, sp, sh = _ticker_series(rng, ticker, days, start, end, crash)
        price_frames.append(p)
        split_rows += sp
        share_rows += sh
    prices = pd.concat(price_frames, ignore_index=True)
    splits = pd.DataFrame(split_rows, columns=["ticker", "date", "ratio"])
    splits["date"] = pd.to_datetime(splits["date"]).astype("datetime64[ns]")
    shares = pd.DataFrame(
        share_rows, columns=["ticker", "share_class", "as_of", "shares", "reported_date"]
    )
    shares["as_of"] = pd.to_datetime(shares["as_of"]).astype("datetime64[ns]")
    shares["reported_date"] = pd.to_datetime(shares["reported_date"]).astype("datetime64[ns]")
    shares = shares.sort_values(["ticker", "as_of"], ignore_index=True)
    return GeneratedMarket(prices=prices, splits=splits, shares=shares, crash_day=crash_day)
