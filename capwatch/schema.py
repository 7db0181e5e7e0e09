"""The raw tables' shape, in one place: keys, value columns and types (for extract, validate and
load), and the CSV layout of the ``csv:DIR`` source (``../shared/marketdata``).

The DDL in ``warehouse/migrations/`` creates these tables; a test checks that the migrated
warehouse has exactly these keys and columns, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Table:
    """A raw table as a batch carries it (provenance columns are added at load)."""

    name: str
    keys: tuple[str, ...]  # one row per key (a primary key in the file where `keyed`)
    values: tuple[str, ...]  # the other columns a batch delivers
    types: dict[str, str]  # DuckDB type per column of keys + values
    date_column: str  # the date a row is about
    # Key columns the load fills from the batch's source where a row does not name one (share
    # counts: each row names its own source, so one batch can carry counts from several).
    load_keys: tuple[str, ...] = ()
    # The value a mass correction (many rows changed by one factor) is judged on; None: not judged.
    correction_value: str | None = None
    # False: the file keeps the key without a primary-key index (the loader and `capwatch check`
    # keep it, as in a lake): the index of a table this long costs every open (migration 013).
    keyed: bool = True

    @property
    def columns(self) -> tuple[str, ...]:
        return self.keys + self.values

    @property
    def batch_keys(self) -> tuple[str, ...]:
        """The key of a row within one batch."""
        return self.keys

    @property
    def batch_columns(self) -> list[str]:
        return list(self.columns)

    @property
    def numeric(self) -> tuple[str, ...]:
        """Value columns that hold numbers (checked and coerced as such)."""
        return tuple(c for c in self.values if self.types[c] in ("double", "bigint"))

    def empty(self) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in self.batch_columns})


PRICES = Table(
    "prices_daily",
    ("ticker", "date"),
    ("open", "high", "low", "close", "volume"),
    {
        "ticker": "varchar",
        "date": "date",
        "open": "double",
        "high": "double",
        "low": "double",
        "close": "double",
        "volume": "bigint",
    },
    "date",
    correction_value="close",
    keyed=False,
)
SPLITS = Table(
    "splits",
    ("ticker", "date"),
    ("ratio",),
    {"ticker": "varchar", "date": "date", "ratio": "double"},
    "date",
)
DIVIDENDS = Table(
    "dividends",
    ("ticker", "date"),
    ("dividend",),
    {"ticker": "varchar", "date": "date", "dividend": "double"},
    "date",
    correction_value="dividend",
)
SHARES = Table(
    "shares_outstanding",
    # Counts from several sources, and a filing and its amendment for one as-of date, live side by
    # side: each row names its source, and its accession ('' where the source has none).
    ("ticker", "share_class", "as_of", "source", "accession"),
    ("shares", "reported_date", "form", "filing_url"),
    {
        "ticker": "varchar",
        "share_class": "varchar",
        "as_of": "date",
        "source": "varchar",
        "accession": "varchar",
        "shares": "bigint",
        "reported_date": "date",
        "form": "varchar",
        "filing_url": "varchar",
    },
    "as_of",
    load_keys=("source",),
)

RAW_TABLES = (PRICES, SPLITS, DIVIDENDS, SHARES)


@dataclass(frozen=True)
class CsvFile:
    """One file of a ``csv:DIR`` source and how its columns map onto a raw table."""

    name: str
    table: Table
    renames: dict[str, str] = field(default_factory=dict)  # file column -> table column
    required: bool = False

    def read(self, directory: Path) -> pd.DataFrame:
        """The file's rows with the table's column names (an absent optional file: no rows).
        A cell that does not parse stays text; the raw gate names it."""
        path = directory / self.name
        if not path.is_file():
            if self.required:
                raise FileNotFoundError(f"csv source {directory}: no {self.name} there")
            return self.table.empty()
        frame = pd.read_csv(path, dtype={"ticker": str, "share_class": str})
        frame = frame.rename(columns=self.renames)
        for c in self.table.batch_columns:
            if c not in frame:
                frame[c] = pd.NA
        return frame

    def write(self, frame: pd.DataFrame, directory: Path) -> Path:
        back = {v: k for k, v in self.renames.items()}
        cols = [c for c in self.table.batch_columns if c in frame]
        path = directory / self.name
        frame[cols].rename(columns=back).to_csv(path, index=False, date_format="%Y-%m-%d")
        return path


# The layout of ../shared/marketdata (prices on Yahoo's split-adjusted basis; see its README).
CSV_PRICES = CsvFile("prices.csv", PRICES, required=True)
CSV_SPLITS = CsvFile("splits.csv", SPLITS)
CSV_DIVIDENDS = CsvFile("dividends.csv", DIVIDENDS, {"ex_date": "date"})
CSV_SHARES = CsvFile(
    "shares_outstanding.csv",
    SHARES,
    {"as_of_date": "as_of", "shares_outstanding": "shares", "filing_date": "reported_date"},
)
# Columns a csv file may leave out (filled: share_class 'all', accession '', the rest missing;
# source: the csv source's own name).
CSV_OPTIONAL = ("share_class", "reported_date", "source", "accession", "form", "filing_url")
CSV_LAYOUT = (CSV_PRICES, CSV_SPLITS, CSV_DIVIDENDS, CSV_SHARES)
