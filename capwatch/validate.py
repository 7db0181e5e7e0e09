"""Validate: the raw gate every extracted batch passes before it is loaded.

Each rule is a name and a vectorised check; a row that fails any rule goes to ``quarantine``
with the reasons, and the rest of the batch lands in the same run.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from capwatch.extract import Extracted

QUARANTINE_COLUMNS = ["ticker", "date", "dataset", "reason", "value"]

# Prices are rounded to 7 significant digits by some vendors: allow that much slack in OHLC order.
_REL_TOL = 1e-6


def _finite_positive(s: pd.Series) -> np.ndarray:
    v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (v > 0)


def _rules_prices(p: pd.DataFrame, today: date) -> list[tuple[str, np.ndarray]]:
    o, h, l, c = (pd.to_numeric(p[k], errors="coerce").to_numpy(dtype=float) for k in ("open", "high", "low", "close"))
    vol = pd.to_numeric(p["volume"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return [
            ("missing date", p["date"].notna().to_numpy()),
            ("close missing, not finite or <= 0", _finite_positive(p["close"])),
            ("open missing, not finite or <= 0", _finite_positive(p["open"])),
            ("high missing, not finite or <= 0", _finite_positive(p["high"])),
            ("low missing, not finite or <= 0", _finite_positive(p["low"])),
            ("high below open or close", ~(h < np.maximum(o, c) * (1 - _REL_TOL))),
            ("low above open or close", ~(l > np.minimum(o, c) * (1 + _REL_TOL))),
            ("volume missing or negative", np.isfinite(vol) & (vol >= 0)),
            ("date in the future", (pd.to_datetime(p["date"]) <= pd.Timestamp(today)).to_numpy()),
        ]


def _apply(frame: pd.DataFrame, dataset: str, rules, keys: list[str], value_cols: list[str], date_col: str = "date"):
    """Split ``frame`` into passing rows and quarantine rows (with every failed rule named)."""
    if frame.empty:
        return frame, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    frame = frame.reset_index(drop=True)
    reasons = pd.Series([""] * len(frame))
    for name, ok in rules:
        bad = ~np.asarray(ok, dtype=bool)
        reasons[bad] = reasons[bad] + name + "; "
    # Duplicate keys: identical copies collapse to one; conflicting copies are all refused.
    drop_copy = np.zeros(len(frame), bool)
    dup_all = frame.duplicated(keys, keep=False).to_numpy()
    if dup_all.any():
        dups = frame[dup_all]
        distinct = dups.groupby(keys, dropna=False)[value_cols].transform("nunique", dropna=False).max(axis=1)
        conflicting = np.zeros(len(frame), bool)
        conflicting[np.flatnonzero(dup_all)[(distinct > 1).to_numpy()]] = True
        reasons[conflicting] = reasons[conflicting] + f"duplicate ({', '.join(keys)}) with different values; "
        drop_copy = frame.duplicated(keys, keep="first").to_numpy() & ~conflicting
    bad = (reasons != "").to_numpy()
    q = frame[bad]
    quarantine = pd.DataFrame(
        {
            "ticker": q["ticker"].astype(str).to_numpy(),
            "date": pd.to_datetime(q[date_col], errors="coerce").to_numpy(),
            "dataset": dataset,
            "reason": reasons[bad].str.rstrip("; ").to_numpy(),
            "value": [", ".join(f"{c}={v}" for c, v in zip(value_cols, row)) for row in q[value_cols].itertuples(index=False)],
        }
    )
    return frame[~bad & ~drop_copy].reset_index(drop=True), quarantine


def resolve_duplicate_counts(shares: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several counts for one (ticker, share_class, as_of) -- Yahoo's shares_out series has them
    (yfinance issue 1954). Rule: keep the count closest, by ratio, to the nearest other date's count
    of the same series (the previous one, else the next); with no other date, keep the median
    (the lower middle one). The others go to quarantine naming the count kept."""
    keys = ["ticker", "share_class", "as_of"]
    if shares.empty or not shares.duplicated(keys, keep=False).any():
        return shares, pd.DataFrame(columns=QUARANTINE_COLUMNS)
    shares = shares.sort_values(keys, kind="stable").reset_index(drop=True)
    values = pd.to_numeric(shares["shares"], errors="coerce").to_numpy(dtype=float)
    drop, rows = [], []
    for (ticker, cls), series in shares.groupby(["ticker", "share_class"], sort=False):
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
                    rows.append((ticker, shares.at[i, "as_of"], "shares_outstanding",
                                 f"duplicate count for {cls} on this date: kept {values[keep]:.0f} (closest to the neighbouring count)",
                                 f"{values[i]:.0f}"))
    q = pd.DataFrame(rows, columns=QUARANTINE_COLUMNS)
    return shares.drop(index=drop).reset_index(drop=True), q


def gate_raw(batch: Extracted, today: date) -> tuple[Extracted, pd.DataFrame]:
    """The raw gate: returns the rows fit to load and the quarantined rows with reasons."""
    prices, qp = _apply(
        batch.prices, "prices_daily", _rules_prices(batch.prices, today) if len(batch.prices) else [],
        ["ticker", "date"], ["open", "high", "low", "close", "volume"],
    )
    splits, qs = _apply(
        batch.splits, "splits", [("ratio missing, not finite or <= 0", _finite_positive(batch.splits["ratio"]))],
        ["ticker", "date"], ["ratio"],
    )
    divs, qd = _apply(
        batch.dividends, "dividends", [("dividend missing, not finite or <= 0", _finite_positive(batch.dividends["dividend"]))],
        ["ticker", "date"], ["dividend"],
    )
    sh, qdup = resolve_duplicate_counts(batch.shares)
    shares, qsh = _apply(
        sh, "shares_outstanding",
        [("shares missing, not finite or <= 0", _finite_positive(sh["shares"])), ("missing as_of date", sh["as_of"].notna().to_numpy())],
        ["ticker", "share_class", "as_of"], ["shares"], date_col="as_of",
    )
    parts = [q for q in (qp, qs, qd, qdup, qsh) if len(q)]
    quarantine = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    clean = Extracted(prices=prices, splits=splits, dividends=divs, shares=shares, problems=list(batch.problems))
    return clean, quarantine
