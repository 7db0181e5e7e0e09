"""The ``generated`` source: a seeded market of any size, each ticker generated on its own when a
chunk asks for it (``capwatch.replay.market`` shapes the data). For the whole-market benchmark and
scale tests: 6,000 tickers over decades never have to be in memory at once."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from capwatch.calendar import trading_days
from capwatch.extract import SHARES_LOOKBACK, Extracted, Problem
from capwatch.replay.market import _NAMES, _ticker_series


def ticker_index(ticker: str) -> int | None:
    """The inverse of ``tickers_for``: ALFA -> 0, BRAV2 -> 27; None for any other symbol."""
    head, tail = ticker[:4], ticker[4:]
    if head not in _NAMES or (tail and (not tail.isdigit() or int(tail) < 2)):
        return None
    return _NAMES.index(head) + (26 * (int(tail) - 1) if tail else 0)


class GeneratedSource:
    """A source of any number of generated tickers (``tickers_for``), each generated on its own
    when asked for (its own seeded stream), so a market of 6,000 tickers over decades never has
    to be in memory at once. Prices are as traded, so no de-adjustment is done. Used by the
    whole-market benchmark (``bench/whole_market.py``) through the flows' real chunked path."""

    name = "generated"

    def __init__(self, start: date, end: date, seed: int = 18, crash_day: date | None = None):
        self.start, self.end, self.seed = start, end, seed
        self._kept: dict[str, tuple] = {}
        self._kept_since: pd.Timestamp | None = None
        self.days = trading_days(start, end)
        self.crash_idx = (
            int(self.days.get_loc(pd.Timestamp(crash_day)))
            if crash_day is not None and pd.Timestamp(crash_day) in self.days
            else None
        )

    def keep_from(self, tickers: list[str], since: date) -> None:
        """Generate these tickers once now and keep their rows from ``since`` on, so that fetches
        of them that start on or after it (a daily run's week) cost a lookup, as a vendor's answer
        would, not a regeneration of decades (the benchmark prepares its daily run so)."""
        self._kept_since = pd.Timestamp(since)
        parts = []
        for t in tickers:  # each ticker's decades cut to the window at once: memory stays small
            got = self.series(t)
            if got is not None:
                p, sp, sh = got
                parts.append((p[p["date"] >= self._kept_since], sp, sh))
        prices = pd.concat([p for p, _, _ in parts], ignore_index=True)
        splits = pd.concat(
            [sp for _, sp, _ in parts if len(sp)] or [parts[0][1]], ignore_index=True
        )
        shares = pd.concat([sh for _, _, sh in parts], ignore_index=True)
        frames = (prices, splits, shares)
        # Each frame's tickers as categories: a chunk's rows are then picked by integer codes
        # (pandas' isin on a string column tests each row in Python: 0.9 s per daily run).
        codes = tuple(pd.Categorical(f["ticker"]) for f in frames)
        self._kept = {"names": set(prices["ticker"]), "frames": frames, "codes": codes}

    def series(self, ticker: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
        """(prices, splits, shares) over the whole span, or None for a symbol not generated."""
        i = ticker_index(ticker)
        if i is None:
            return None
        crash = None
        if self.crash_idx is not None and i % 8 == 0:
            crash = (self.crash_idx, 0.17 if i == 0 else None)
        rng = np.random.default_rng([self.seed, i])
        prices, splits, shares = _ticker_series(rng, ticker, self.days, self.start, self.end, crash)
        splits = pd.DataFrame(splits, columns=["ticker", "date", "ratio"])
        shares = pd.DataFrame(
            shares, columns=["ticker", "share_class", "as_of", "shares", "reported_date"]
        )
        return prices, splits, shares

    def fetch(self, tickers: list[str], start: date, end: date):
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        since = pd.Timestamp(start - SHARES_LOOKBACK)
        prices, splits, shares, problems = [], [], [], []
        if (
            self._kept_since is not None
            and lo >= self._kept_since
            and set(tickers) <= self._kept["names"]
        ):
            p, sp, sh = self._kept["frames"]
            asked = [c.isin(tickers) for c in self._kept["codes"]]
            prices.append(p[asked[0] & (p["date"] >= lo) & (p["date"] <= hi)])
            splits.append(sp[asked[1] & (sp["date"] >= lo) & (sp["date"] <= hi)])
            sh = sh[asked[2] & (sh["as_of"] >= since) & (sh["as_of"] <= hi)]
            shares.append(sh.assign(source=self.name, accession=""))
            tickers = []  # all served
        for t in tickers:
            got = self.series(t)
            if got is None:
                problems.append(Problem(t, "prices", "not a generated ticker (unknown symbol)"))
                continue
            p, sp, sh = got
            prices.append(p[(p["date"] >= lo) & (p["date"] <= hi)])
            # a vendor answers the splits of the range asked for (prices are as traded here: no
            # later split is needed to undo an adjustment)
            splits.append(sp[(sp["date"] >= lo) & (sp["date"] <= hi)])
            sh = sh[(sh["as_of"] >= since) & (sh["as_of"] <= hi)]
            shares.append(sh.assign(source=self.name, accession=""))

        def cat(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
            frames = [f for f in frames if len(f)]
            return pd.concat(frames, ignore_index=True) if frames else None

        out = Extracted(problems=problems)
        for name, frames in (("prices", prices), ("splits", splits), ("shares", shares)):
            frame = cat(frames)
            if frame is not None:
                for c in ("date", "as_of", "reported_date"):
                    if c in frame:
                        frame[c] = pd.to_datetime(frame[c]).astype("datetime64[ns]")
                setattr(out, name, frame)
        return out
