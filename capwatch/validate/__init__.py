"""Validate: the raw gate every extracted batch passes before it is loaded.

Each dataset of a batch goes through its Great Expectations suite (``capwatch.validate.suites``); a
row that fails any expectation goes to ``quarantine`` with every reason, and the rest lands in the
same run. The model gate (SQL audits over the built models) is ``capwatch.validate.audits``.

Several counts from one source for one (ticker, class, as-of) -- Yahoo's series has them -- are
resolved here, before load (``resolve_duplicate_counts``: the value closest to its neighbours).
Counts from different sources for one date are all stored; which one a market cap uses is the
share model's rule (``stg_shares_checked``: a filed count before an undated one).
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from capwatch.calendar import trading_days
from capwatch.extract import Extracted
from capwatch.schema import RAW_TABLES, Table
from capwatch.validate.suites import GateResult, raw_checks, run_checks

QUARANTINE_COLUMNS = ["ticker", "date", "dataset", "reason", "value"]

TABLES: dict[str, Table] = {t.name: t for t in RAW_TABLES}


def _dates(column: pd.Series) -> pd.Series:
    """Dates as datetime64[ns]; text that is not a date becomes missing (strings parsed one by one
    only when the column is not already dates)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.astype("datetime64[ns]")
    return pd.to_datetime(column, errors="coerce", format="mixed").astype("datetime64[ns]")


def _coerce(frame: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Give every column its type; anything that is not a number or a date becomes missing."""
    table = TABLES[dataset]
    out = frame.reset_index(
        drop=True
    )  # copy-on-write (pandas 3): columns replaced below are new arrays
    for c in table.batch_columns:
        if c not in out:
            out[c] = pd.NA
    if pd.api.types.infer_dtype(out["ticker"], skipna=False) != "string":  # rare: fix cell by cell
        out["ticker"] = (
            out["ticker"].map(lambda v: v if isinstance(v, str) else None).astype(object)
        )
    for c in table.batch_columns:
        if table.types[c] == "date":
            out[c] = _dates(out[c])
    if "share_class" in table.keys:
        out["share_class"] = (
            out["share_class"].map(lambda v: v if isinstance(v, str) else "all").astype(object)
        )
    if "accession" in table.keys:
        out["accession"] = (
            out["accession"].map(lambda v: v if isinstance(v, str) else "").astype(object)
        )
    for c in table.numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def _gate(
    frame: pd.DataFrame, dataset: str, today: date
) -> tuple[pd.DataFrame, pd.DataFrame, GateResult]:
    """One dataset through its GX suite: (rows fit to load, quarantined rows, the suite's result)."""
    table = TABLES[dataset]
    keys, values, date_col = list(table.batch_keys), list(table.numeric), table.date_column
    frame = _coerce(frame, dataset)
    if frame.empty:
        return frame, pd.DataFrame(columns=QUARANTINE_COLUMNS), GateResult(f"raw_{dataset}", 0, 0)
    # Identical copies of a row are one row; only conflicting copies are a problem. Only rows whose
    # key repeats can be copies: comparing every column of every row costs seconds at 3M rows.
    repeated = frame.duplicated(subset=keys, keep=False)
    if repeated.any():
        copies = frame[repeated].duplicated(subset=keys + values)
        frame = frame.drop(index=copies[copies].index).reset_index(drop=True)
    if dataset == "prices_daily":
        dates = frame["date"]
        sessions = (
            trading_days(dates.min().date(), dates.max().date()) if dates.notna().any() else []
        )
        frame["on_trading_day"] = (
            dates.isin(sessions) | dates.isna()
        )  # a missing date fails its own check
    result = run_checks(f"raw_{dataset}", frame, raw_checks(dataset, today))
    frame = frame.drop(columns=["on_trading_day"], errors="ignore")
    reasons: dict[int, list[str]] = {}
    for reason, idx in result.failures:
        for i in idx:
            reasons.setdefault(int(i), []).append(reason)
    if not reasons:  # the usual case: nothing to take out, no copy of the batch
        return frame, pd.DataFrame(columns=QUARANTINE_COLUMNS), result
    bad = np.zeros(len(frame), bool)
    bad[list(reasons)] = True
    q = frame[bad]
    quarantine = pd.DataFrame(
        {
            "ticker": q["ticker"].to_numpy(),
            "date": q[date_col].to_numpy(),
            "dataset": dataset,
            "reason": ["; ".join(reasons[i]) for i in q.index],
            "value": [
                ", ".join(f"{c}={v}" for c, v in zip(values, row, strict=False))
                for row in q[values].itertuples(index=False)
            ],
        }
    )
    return frame[~bad].reset_index(drop=True), quarantine, result


def resolve_duplicate_counts(shares: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several counts for one (ticker, share_class, as_of) -- Yahoo's shares_out series has them
    (yfinance issue 1954). Rule: keep the count closest, by ratio, to the nearest other date's count
    of the same series (the previous one, else the next); with no other date, keep the median
    (the lower middle one). The others go to quarantine naming the count kept."""
    keys = [k for k in TABLES["shares_outstanding"].batch_keys if k in shares]
    if shares.empty or not shares.duplicated(keys, keep=False).any():
        return shares, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    shares = shares.sort_values(keys, kind="stable").reset_index(drop=True)
    values = pd.to_numeric(shares["shares"], errors="coerce").to_numpy(dtype=float)
    drop, rows = [], []
    series_keys = [
        k for k in keys if k != "as_of"
    ]  # one series: (ticker, class, source, accession)
    for (ticker, cls, *_), series in shares.groupby(series_keys, sort=False, dropna=False):
        dates = series["as_of"].to_numpy()
        idx = series.index.to_numpy()
        distinct = pd.unique(dates)
        for d in distinct:
            group = idx[dates == d]
            if len(group) < 2:
                continue
            pos = int(np.flatnonzero(distinct == d)[0])
            others = [distinct[pos - 1]] if pos > 0 else []
            others += [distinct[pos + 1]] if pos + 1 < len(distinct) else []
            ref = np.nanmedian(values[idx[dates == others[0]]]) if others else np.nan
            cand = values[group]
            with np.errstate(divide="ignore", invalid="ignore"):
                if np.isfinite(ref) and ref > 0:
                    keep = group[int(np.nanargmin(np.abs(np.log(cand / ref))))]
                else:
                    keep = group[np.argsort(cand)[(len(cand) - 1) // 2]]
            for i in group:
                if i != keep:
                    drop.append(i)
                    rows.append(
                        (
                            ticker,
                            shares.at[i, "as_of"],
                            "shares_outstanding",
                            f"duplicate count for {cls} on this date: kept {values[keep]:.0f} (closest to the neighbouring count)",
                            f"{values[i]:.0f}",
                        )
                    )
    q = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    return shares.drop(index=drop).reset_index(drop=True), q


def gate_raw(batch: Extracted, today: date) -> tuple[Extracted, pd.DataFrame, list[GateResult]]:
    """The raw gate: the rows fit to load, the quarantined rows with reasons, and each suite's result."""
    shares, qdup = resolve_duplicate_counts(
        _coerce(batch.shares, "shares_outstanding") if len(batch.shares) else batch.shares
    )
    parts, results, clean = [qdup, batch.refused], [], {}
    for dataset, frame in (
        ("prices_daily", batch.prices),
        ("splits", batch.splits),
        ("dividends", batch.dividends),
        ("shares_outstanding", shares),
    ):
        good, q, result = _gate(frame, dataset, today)
        clean[dataset] = good
        parts.append(q)
        results.append(result)
    parts = [q for q in parts if len(q)]
    quarantine = (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    )
    out = Extracted(
        prices=clean["prices_daily"],
        splits=clean["splits"],
        dividends=clean["dividends"],
        shares=clean["shares_outstanding"],
        problems=list(batch.problems),
    )
    return out, quarantine, results
