"""The ``csv:DIR`` source: files laid out as ``../shared/marketdata`` (vendor exports, replays, tests).

prices.csv (date,ticker,open,high,low,close,volume) is on Yahoo's basis: split-adjusted for every
split in splits.csv; shares_outstanding.csv holds reported counts with filing dates. The layout
(file names, column names) is ``capwatch.schema.CSV_LAYOUT``.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from capwatch.extract import SHARES_LOOKBACK, Extracted, Problem, to_as_traded
from capwatch.schema import CSV_DIVIDENDS, CSV_PRICES, CSV_SHARES, CSV_SPLITS, CsvFile


def _date_col(values) -> pd.Series:
    return pd.to_datetime(pd.Series(values)).astype("datetime64[ns]").dt.normalize()


class CsvSource:
    """Reads each file once and serves any (tickers, range) from it."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.name = f"csv:{self.directory}"
        if not (self.directory / CSV_PRICES.name).is_file():
            raise FileNotFoundError(f"csv source {self.directory}: no {CSV_PRICES.name} there")
        self._cache: dict[str, pd.DataFrame] = {}

    def _read(self, file: CsvFile) -> pd.DataFrame:
        if file.name not in self._cache:
            self._cache[file.name] = file.read(self.directory)
        return self._cache[file.name]

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        wanted = set(tickers)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        prices = self._read(CSV_PRICES)
        p = prices[prices["ticker"].isin(wanted)].copy()
        p["date"] = _date_col(p["date"]).to_numpy()
        known = set(p["ticker"])
        p = p[(p["date"] >= lo) & (p["date"] <= hi)]
        splits = self._read(CSV_SPLITS)
        s = splits[splits["ticker"].isin(wanted)][CSV_SPLITS.table.batch_columns].copy()
        s["date"] = _date_col(s["date"]).to_numpy()
        divs = self._read(CSV_DIVIDENDS)
        d = divs[divs["ticker"].isin(wanted)][CSV_DIVIDENDS.table.batch_columns].copy()
        d["date"] = _date_col(d["date"]).to_numpy()
        d = d[(d["date"] >= lo) & (d["date"] <= hi)]
        p, d = to_as_traded(p[CSV_PRICES.table.batch_columns], s, d)
        out = Extracted(prices=p, splits=s, dividends=d)
        shares = self._read(CSV_SHARES)
        if len(shares):
            sh = shares[shares["ticker"].isin(wanted)]
            sh = sh.assign(
                as_of=_date_col(sh["as_of"]).to_numpy(),
                reported_date=_date_col(sh["reported_date"]).to_numpy(),
                share_class=sh["share_class"].fillna("all"),
            )
            in_range = (sh["as_of"] >= lo - SHARES_LOOKBACK) & (sh["as_of"] <= hi)
            out.shares = sh[in_range][CSV_SHARES.table.batch_columns]
        for t in tickers:
            if t not in known:
                out.problems.append(
                    Problem(
                        t,
                        "prices",
                        f"unknown ticker: no rows in {self.directory / CSV_PRICES.name}",
                    )
                )
        return out
