"""Load: idempotent upserts of a validated batch into the raw tables, one transaction per batch.

A staged frame is compared with what is stored: new keys are inserted, keys whose values changed
are replaced (a corrected value wins), identical rows are left alone -- so re-loading the same
range changes nothing, provenance included. Bulk work goes through DuckDB's DataFrame scans.

Nothing stored is lost: a row that a correction replaces is first copied to ``revisions``. A batch
that would rewrite many stored rows of a ticker at once by one common factor (a split missing from
or added to a vendor file, a unit change) is held, not applied: its rows go to ``quarantine`` with
the reason, unless the load is told to accept corrections.
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


# A correction is "mass" when at least this many stored rows of one ticker (and 80 % of its changed
# rows) change by one common factor of at least 1.5x either way, within 2 %.
MASS_CORRECTION_ROWS = 5


@dataclass
class LoadResult:
    run_id: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    held: int = 0  # corrected rows held back (mass corrections not accepted)
    earliest_change: date | None = None  # the first date the models must be rebuilt from
    by_table: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    held_tickers: set[str] = field(default_factory=set)
    held_reasons: list[str] = field(default_factory=list)  # one per held correction

    def __str__(self) -> str:
        text = (
            f"{self.inserted} rows inserted, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.quarantined} quarantined"
        )
        return text + (f", {self.held} corrections held" if self.held else "")


def _hold_mass_corrections(con: duckdb.DuckDBPyConnection, table: Table) -> pd.DataFrame:
    """Take the rows of a mass correction out of ``_changed``; return them as quarantine rows."""
    v = table.correction_value
    held = con.execute(f"""
        with changed as (
            select ticker, {table.date_column} as date, old_value, {v} as new_value, ln({v} / old_value) as lr
            from _changed where old_value > 0 and {v} > 0
        ),
        per_ticker as (
            select ticker, median(lr) as m, count(*) as n from changed group by ticker
        ),
        common as (
            select c.*, p.m, p.n from changed c join per_ticker p using (ticker) where abs(c.lr - p.m) < ln(1.02)
        ),
        mass as (
            select ticker, count(*) as k from common
            group by ticker
            having count(*) >= {MASS_CORRECTION_ROWS} and count(*) >= 0.8 * any_value(n) and abs(any_value(m)) >= ln(1.5)
        )
        select
            c.ticker,
            c.date,
            '{table.name}' as dataset,
            printf('correction held: %d stored %s rows of %s would change by %.4gx at once (a split missing from '
                   || 'or added to the source, or a unit change); run again with --accept-corrections to apply it',
                   m.k, '{table.name}', c.ticker, exp(c.m)) as reason,
            '{v} ' || c.old_value || ' -> ' || c.new_value as value
        from common c join mass m using (ticker)
        order by c.ticker, c.date
    """).df()
    if len(held):
        con.register("_held", held)
        con.execute(
            f"delete from _changed s using _held h where s.ticker = h.ticker and s.{table.date_column} = h.date"
        )
        con.unregister("_held")
    return held


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    frame: pd.DataFrame,
    source: str,
    loaded_at: datetime,
    run_id: str,
    accept_corrections: bool = False,
) -> tuple[int, int, int, date | None, pd.DataFrame]:
    """Insert new keys, replace changed rows (keeping what they replace in ``revisions``); return
    (inserted, updated, unchanged, earliest date changed, held rows as quarantine rows)."""
    if frame.empty:
        return 0, 0, 0, None, pd.DataFrame()
    con.register("_staged_raw", frame)
    batch = f"(select {_staged_select(table)} from _staged_raw)"
    on = " and ".join(f"t.{k} = s.{k}" for k in table.keys)
    differs = " or ".join(f"s.{v} is distinct from t.{v}" for v in table.values)
    old_value = f"t.{table.correction_value}" if table.correction_value else "null"
    # The stored rows with this batch's keys (none for a backfill's chunk), read once. The batch's
    # own rows are never copied: at 1.3M rows the copy cost as much as the insert itself.
    con.execute(
        f"create or replace temp table _stored as select t.* from {table.name} t semi join {batch} s on {on}"
    )
    con.execute(f"""
        create or replace temp table _changed as
        select s.*, {old_value} as old_value, to_json(t)::varchar as old_row
        from {batch} s join _stored t on {on}
        where {differs}
    """)
    held = pd.DataFrame()
    if table.correction_value and not accept_corrections:
        held = _hold_mass_corrections(con, table)
    # The first day whose market caps this change can move (a count counts from its report date).
    effective = "coalesce(reported_date, as_of)" if table is SHARES else "date"
    new_rows = f"select * from {batch} s anti join _stored t on {on}"
    n_new, earliest_new = con.execute(
        f"select count(*), min({effective}) from ({new_rows})"
    ).fetchone()
    n_changed, earliest_changed = con.execute(
        f"select count(*), min({effective}) from _changed"
    ).fetchone()
    earliest = min(filter(None, [earliest_new, earliest_changed]), default=None)
    cols = ", ".join(table.columns)
    # Provenance: `source` is a column of every raw table, and part of the key where rows from
    # several sources live side by side (share counts), in which case each row carries it.
    sourced = "source" in table.load_keys
    meta_cols = "loaded_at, run_id" if sourced else "source, loaded_at, run_id"
    meta_vals = "?, ?" if sourced else "?, ?, ?"
    params = [loaded_at, run_id] if sourced else [source, loaded_at, run_id]
    if n_new:
        order = ", ".join(dict.fromkeys((table.date_column, *table.keys)))  # as_of is a key too
        # Stored in date order within each load: a backfill chunk's years then lie in row groups
        # of their own, so what reads recent days (a daily load's check of the stored keys,
        # stg_prices' incremental build) skips the rest by the date's zone maps. Stored ticker by
        # ticker, every row group spans every year and a daily run scans all of history.
        con.execute(
            f"insert into {table.name} ({cols}, {meta_cols}) select {cols}, {meta_vals} "
            f"from ({new_rows}) order by {order}",
            params,
        )
    if n_changed:
        new_row = (
            "to_json(struct_pack(" + ", ".join(f"{c} := {c}" for c in table.columns) + "))::varchar"
        )
        con.execute(
            f"insert into revisions select ?, ticker, {table.date_column}, old_row, {new_row}, ?, ? "
            "from _changed",
            [table.name, run_id, loaded_at],
        )
        # An update, not `insert or replace`: a lake has no keys to replace by (capwatch/lake.py).
        meta = [c.strip() for c in meta_cols.split(",")]
        assign = ", ".join([f"{c} = s.{c}" for c in table.columns] + [f"{m} = ?" for m in meta])
        con.execute(f"update {table.name} t set {assign} from _changed s where {on}", params)
    con.execute("drop table _stored")
    con.execute("drop table _changed")
    con.unregister("_staged_raw")
    return n_new, n_changed, len(frame) - n_new - n_changed - len(held), earliest, held


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
    accept_corrections: bool = False,
    complete_until: date | None = None,
) -> LoadResult:
    """Load one validated batch in a single transaction: all of it lands, or none of it.

    ``completed`` names the tickers whose [start, end] is now fully loaded (recorded in
    ``load_intervals`` in the same transaction, so the load state never runs ahead of the data),
    up to ``complete_until`` when given; a ticker with a held correction is left pending.
    ``accept_corrections`` applies mass corrections.
    """
    loaded_at = datetime.now(UTC)
    result = LoadResult(run_id=run_id)
    shares = batch.shares
    if len(shares):  # each count names its source; one that does not is the batch's
        named = shares["source"] if "source" in shares else pd.Series(None, index=shares.index)
        shares = shares.assign(source=named.fillna(source))
    with transaction(con):
        for table, frame in (
            (PRICES, batch.prices),
            (SPLITS, batch.splits),
            (DIVIDENDS, batch.dividends),
            (SHARES, shares),
        ):
            *counts, earliest, held = _upsert(
                con, table, frame, source, loaded_at, run_id, accept_corrections
            )
            if len(held):
                quarantine = pd.concat([quarantine, held], ignore_index=True)
                result.held += len(held)
                result.held_tickers |= set(held["ticker"])
                result.held_reasons += list(dict.fromkeys(held["reason"]))
            result.by_table[table.name] = tuple(counts)
            result.inserted += counts[0]
            result.updated += counts[1]
            result.unchanged += counts[2]
            if earliest is not None and table is not DIVIDENDS:
                result.earliest_change = min(filter(None, [result.earliest_change, earliest]))
        result.quarantined = len(quarantine)
        if len(quarantine):
            con.register("_quarantine", quarantine)
            con.execute(
                "insert into quarantine select ticker::varchar, date::date, dataset, reason, value, ?, ?, ? from _quarantine",
                [source, run_id, loaded_at],
            )
            con.unregister("_quarantine")
        record_validation(con, validation or [], run_id)
        completed = [t for t in completed or [] if t not in result.held_tickers]
        if completed and start and end:
            intervals.record(con, completed, start, min(end, complete_until or end), run_id)
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
