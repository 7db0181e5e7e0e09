"""The ``csv:DIR`` source: files laid out as ``../shared/marketdata`` (vendor exports, replays, tests).

prices.csv (date,ticker,open,high,low,close,volume) is on Yahoo's basis: split-adjusted for every
split in splits.csv; shares_outstanding.csv holds reported counts with filing dates. The layout
(file names, column names) is ``capwatch.schema.CSV_LAYOUT``.

Every cell is read as text and typed here, one by one: a cell that is not a YYYY-MM-DD date or a
number refuses its row, named by file, line, ticker and column, and the rest of the file is used.
Tickers are normalised (`` nvda`` is NVDA). A split row that cannot be used (ratio 0, not a number)
leaves its ticker's prices out of the batch: they could not be put on their as-traded basis.
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from capwatch.extract import REFUSED_COLUMNS, SHARES_LOOKBACK, Extracted, Problem, to_as_traded
from capwatch.schema import CSV_DIVIDENDS, CSV_OPTIONAL, CSV_PRICES, CSV_SHARES, CSV_SPLITS, CsvFile


class CsvSource:
    """Reads each file once and serves any (tickers, range) from it."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.name = f"csv:{self.directory}"
        if not (self.directory / CSV_PRICES.name).is_file():
            raise FileNotFoundError(f"csv source {self.directory}: no {CSV_PRICES.name} there")
        self._cache: dict[str, tuple[pd.DataFrame, pd.DataFrame, str | None]] = {}
        self._lock = threading.Lock()  # parallel extract tasks share the source: read once

    def _read(self, file: CsvFile) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
        """(typed rows, refused rows, what is wrong with the whole file or None)."""
        with self._lock:
            if file.name not in self._cache:
                self._cache[file.name] = _typed(file, self.directory)
            return self._cache[file.name]

    def tickers_outside(self, requested: list[str]) -> list[str]:
        """Tickers the files hold that ``requested`` does not name (left out, said by the run)."""
        rows, _, _ = self._read(CSV_PRICES)
        return sorted(set(rows["ticker"].dropna()) - {str(t).strip().upper() for t in requested})

    def fetch(self, tickers: list[str], start: date, end: date) -> Extracted:
        wanted = set(tickers)
        lo, hi = pd.Timestamp(start), pd.Timestamp(end)
        out = Extracted()
        refused, broken = [], {}
        frames = {}
        for file in (CSV_PRICES, CSV_SPLITS, CSV_DIVIDENDS, CSV_SHARES):
            rows, bad, file_problem = self._read(file)
            frames[file.name] = rows[rows["ticker"].isin(wanted)]
            refused.append(bad[bad["ticker"].isin(wanted)])
            if file_problem:
                broken[file.name] = file_problem
        prices, splits = frames[CSV_PRICES.name], frames[CSV_SPLITS.name]
        known = set(prices["ticker"])
        # A ticker whose split rows could not be read cannot be put on its as-traded basis.
        unsplittable = set(refused[1]["ticker"])
        p = prices[
            (prices["date"] >= lo) & (prices["date"] <= hi) & ~prices["ticker"].isin(unsplittable)
        ]
        d = frames[CSV_DIVIDENDS.name]
        d = d[(d["date"] >= lo) & (d["date"] <= hi) & ~d["ticker"].isin(unsplittable)]
        out.prices, out.dividends = to_as_traded(p[CSV_PRICES.table.batch_columns], splits, d)
        out.splits = splits[CSV_SPLITS.table.batch_columns]
        sh = frames[CSV_SHARES.name]
        sh = sh[(sh["as_of"] >= lo - SHARES_LOOKBACK) & (sh["as_of"] <= hi)]
        out.shares = sh[CSV_SHARES.table.batch_columns].assign(
            source=sh["source"].fillna(self.name) if len(sh) else self.name
        )
        out.refused = pd.concat(
            [r for r in refused if len(r)] or [pd.DataFrame(columns=REFUSED_COLUMNS)],
            ignore_index=True,
        )
        for t in tickers:
            for name, problem in broken.items():
                out.problems.append(Problem(t, CSV_LAYOUT_DATASET[name], problem))
            if t in unsplittable:
                out.problems.append(
                    Problem(
                        t,
                        "prices",
                        f"a row of {CSV_SPLITS.name} for {t} could not be read "
                        "(see quarantine): its prices were left out",
                    )
                )
            elif t not in known and CSV_PRICES.name not in broken:
                out.problems.append(
                    Problem(
                        t,
                        "prices",
                        f"unknown ticker: no rows in {self.directory / CSV_PRICES.name}",
                    )
                )
        return out


CSV_LAYOUT_DATASET = {
    f.name: ("prices" if f is CSV_PRICES else f.table.name)
    for f in (CSV_PRICES, CSV_SPLITS, CSV_DIVIDENDS, CSV_SHARES)
}


def _typed(file: CsvFile, directory: Path) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Read one file as text and type it cell by cell (see the module doc)."""
    table = file.table
    path = directory / file.name
    empty = pd.DataFrame({c: pd.Series(dtype="object") for c in table.batch_columns})
    if not path.is_file():
        return empty, pd.DataFrame(columns=REFUSED_COLUMNS), None
    raw = pd.read_csv(path, dtype=str, keep_default_na=False).rename(columns=file.renames)
    required = [c for c in table.batch_columns if c not in CSV_OPTIONAL]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        return (
            empty,
            pd.DataFrame(columns=REFUSED_COLUMNS),
            (f"{path} has no column {', '.join(repr(c) for c in missing)}: nothing of it was used"),
        )
    out = pd.DataFrame(index=raw.index)
    out["ticker"] = raw["ticker"].str.strip().str.upper()
    errors = [""] * len(raw)  # per row: what could not be read
    for c in table.batch_columns:
        if c == "ticker":
            continue
        text = raw[c].str.strip() if c in raw else pd.Series("", index=raw.index)
        blank = text.eq("")
        if table.types[c] == "date":
            typed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").astype(
                "datetime64[ns]"
            )
            what = "a YYYY-MM-DD date"
        elif table.types[c] in ("double", "bigint"):
            typed = pd.to_numeric(text, errors="coerce")
            what = "a number"
        else:
            typed = text.where(~blank, None)
            what = None
        if what:
            for i in np.flatnonzero((typed.isna() & ~blank).to_numpy()):
                errors[i] += f"{c} {text.iloc[i]!r} is not {what}; "
        out[c] = typed
    if "share_class" in out:
        out["share_class"] = out["share_class"].fillna("all")
    if "accession" in out:
        out["accession"] = out["accession"].fillna("")
    if table.name == "splits":  # a ratio that cannot scale prices is refused here, not used
        for i in np.flatnonzero((out["ratio"].notna() & ~(out["ratio"] > 0)).to_numpy()):
            errors[i] += f"ratio {raw['ratio'].iloc[i]!r} is not a split ratio > 0; "
    bad = np.array([e != "" for e in errors], dtype=bool)
    rows = np.flatnonzero(bad)
    refused = pd.DataFrame(
        {
            "ticker": out["ticker"].to_numpy()[rows],
            "date": out[table.date_column].to_numpy()[rows],
            "dataset": table.name,
            # line 1 is the header
            "reason": [f"{file.name} line {i + 2}: {errors[i].rstrip('; ')}" for i in rows],
            "value": [",".join(map(str, raw.iloc[i].tolist())) for i in rows],
        },
        columns=REFUSED_COLUMNS,
    )
    return out[~bad].reset_index(drop=True), refused, None
