"""Load: idempotent upserts of a validated batch into the raw tables, one transaction per batch.

A staged frame is compared with what is stored: new keys are inserted, keys whose values changed
are replaced (a corrected value wins), identical rows are left alone -- so re-loading the same
range changes nothing, provenance included. Bulk work goes through DuckDB's DataFrame scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import duckdb
import pandas as pd

from capwatch import intervals
from capwatch.extract import Extracted
from capwatch.schema import DIVIDENDS, PRICES, SHARES, SPLITS, Table
from capwatch.validate.suites import GateResult, record_validation
from capwatch.warehouse import transaction


def _staged_select(table: Table) -> str:
    return ", ".join(f"{c}::{table.types[c]} as {c}" for c in table.columns)


@dataclass
class LoadResult:
    run_id: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    earliest_change: date | None = None  # the first date the models must be rebuilt from
    by_table: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.inserted} rows inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.quarantined} quarantined"
        )


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pd.DataFrame,
    source: str,
    loaded_at: datetime,
    run_id: str,
) -> tuple[int, int, int, date | None]:
    """Insert new keys, replace changed rows; return (inserted, updated, unchanged, earliest date changed)."""
    if frame.empty:
        return 0, 0, 0, None
    con.register("_staged_raw", frame)
    on = " and ".join(f"t.{k} = s.{k}" for k in table.keys)
    differs = " or ".join(f"s.{v} is distinct from t.{v}" for v in table.values)
    con.execute(f"""
        create or replace temp table _staged as
        select s.*, t.{table.keys[0]} is null as is_new
        from (select {_staged_select(table)} from _staged_raw) s
        left join {table.name} t on {on}
        where t.{table.keys[0]} is null or {differs}
    """)
    con.unregister("_staged_raw")
    # The first day whose market caps this change can move (a count counts from its report date).
    effective = "coalesce(reported_date, as_of)" if table is SHARES else "date"
    n_new, n_changed, earliest = con.execute(
        f"select count(*) filter (is_new), count(*) filter (not is_new), min({effective}) from _staged"
    ).fetchone()
    cols = ", ".join(table.columns)
    # Provenance: `source` is a column of every raw table, and part of the key where rows from
    # several sources live side by side (share counts), in which case the batch already has it.
    sourced = "source" in table.load_keys
    meta_cols = "loaded_at, run_id" if sourced else "source, loaded_at, run_id"
    meta_vals = "?, ?" if sourced else "?, ?, ?"
    params = [loaded_at, run_id] if sourced else [source, loaded_at, run_id]
    if n_new:
        con.execute(
            f"insert into {table.name} ({cols}, {meta_cols}) select {cols}, {meta_vals} from _staged where is_new",
            params,
        )
    if n_changed:
        con.execute(
            f"insert or replace into {table.name} ({cols}, {meta_cols}) select {cols}, {meta_vals} from _staged where not is_new",
            params,
        )
    con.execute("drop table _staged")
    return n_new, n_changed, len(frame) - n_new - n_changed, earliest


def load_batch(
    con: duckdb.DuckDBPyConnection,
    batch: Extracted,
    quarantine: pd.DataFrame,
    *,
    source: str,
    run_id: str,
    flow: str,
    start: date | None,
    end: date | None,
    tickers: list[str],
    validation: list[GateResult] | None = None,
    completed: list[str] | None = None,
) -> LoadResult:
    """Load one validated batch in a single transaction: all of it lands, or none of it.

    ``completed`` names the tickers whose [start, end] is now fully loaded (recorded in
    ``load_intervals`` in the same transaction, so the load state never runs ahead of the data).
    """
    loaded_at = datetime.now(UTC)
    result = LoadResult(run_id=run_id, quarantined=len(quarantine))
    shares = batch.shares.assign(source=source) if len(batch.shares) else batch.shares
    with transaction(con):
        for table, frame in (
            (PRICES, batch.prices),
            (SPLITS, batch.splits),
            (DIVIDENDS, batch.dividends),
            (SHARES, shares),
        ):
            *counts, earliest = _upsert(con, table, frame, source, loaded_at, run_id)
            result.by_table[table.name] = tuple(counts)
            result.inserted += counts[0]
            result.updated += counts[1]
            result.unchanged += counts[2]
            if earliest is not None and table is not DIVIDENDS:
                result.earliest_change = min(filter(None, [result.earliest_change, earliest]))
        if len(quarantine):
            con.register("_quarantine", quarantine)
            con.execute(
                "insert into quarantine select ticker::varchar, date::date, dataset, reason, value, ?, ?, ? from _quarantine",
                [source, run_id, loaded_at],
            )
            con.unregister("_quarantine")
        record_validation(con, validation or [], run_id)
        if completed and start and end:
            intervals.record(con, completed, start, end, run_id)
        con.execute(
            "insert into load_runs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                run_id,
                flow,
                source,
                tickers,
                start,
                end,
                result.inserted,
                result.updated,
                result.unchanged,
                result.quarantined,
                [str(p) for p in batch.problems],
                loaded_at,
                result.earliest_change,
            ],
        )
    return result
