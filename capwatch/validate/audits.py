"""The model gate: SQL audits over the built, unpublished models, before they are published.

Each ``transforms/audits/<name>.sql`` opens with ``-- audit: <reason>`` and returns the offending
rows as (key, detail): zero rows = pass (SQLMesh-style). Audits run in DuckDB on the staged models;
reading whole model tables into pandas for a suite would cost more than building them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from capwatch.resources import transforms_dir
from capwatch.validate.suites import GateResult

_HEADER = re.compile(r"^-- audit: (.+)$", re.M)
_EPOCH = date(1, 1, 1)


class ModelGateFailed(RuntimeError):
    """A model audit failed: the new models were not published."""


@dataclass(frozen=True)
class Audit:
    name: str
    reason: str
    sql: str


def load_audits(directory: Path | None = None) -> list[Audit]:
    audits = []
    for f in sorted((directory or transforms_dir() / "audits").glob("*.sql")):
        text = f.read_text()
        header = _HEADER.search(text.split("\n", 1)[0])
        if header is None:
            raise ValueError(f"{f}: an audit's first line must be '-- audit: <reason>'")
        audits.append(Audit(f.stem, header.group(1).strip(), text))
    return audits


def audit_models(
    con: duckdb.DuckDBPyConnection,
    staged: Callable[[str], str] = lambda sql: sql,
    since: date | None = None,
    audits: list[Audit] | None = None,
) -> GateResult:
    """Run every audit on the built models (``staged`` points an audit's SQL at the unpublished
    tables), from ``since`` on for an incremental build (the rest was audited when it was built)."""
    audits = audits if audits is not None else load_audits()
    result = GateResult("model_audits", rows=0, evaluated=len(audits))
    since_sql = f"DATE '{(since or _EPOCH).isoformat()}'"
    for audit in audits:
        sql = staged(audit.sql.replace("__since__", since_sql))
        rows = con.execute(sql).fetchall()
        if rows:
            result.failures.append((audit.reason, [key for key, _ in rows]))
            result.examples += [f"{key}: {detail}" for key, detail in rows[:3]]
    (result.rows,) = con.execute(staged("select count(*) from market_cap_daily")).fetchone()
    return result


def describe_failures(results: list[GateResult]) -> str:
    lines = []
    for r in results:
        for reason, keys in r.failures:
            examples = [e for e in r.examples if e.split(":", 1)[0] in keys[:3]]
            lines.append(
                f"{r.suite}: {reason}" + (f" (e.g. {'; '.join(examples)})" if examples else "")
            )
    return "\n".join(lines)


# What the models set aside, listed in `quarantine` under source "model:<name>": each query gives
# (ticker, date, dataset, reason, value) for every row the model refuses or holds right now.
MODEL_QUARANTINES = {
    "model:stg_shares_checked": """
        select ticker, as_of as date, 'shares_outstanding' as dataset, quarantine_reason as reason,
               shares::varchar as value
        from stg_shares_checked where quarantine_reason is not null""",
    "model:stg_corporate_actions": """
        select ticker, date, 'splits' as dataset, note as reason, printf('ratio %g', ratio) as value
        from stg_corporate_actions where kind = 'not_in_prices'""",
    "model:stg_price_checks": """
        select ticker, date, 'prices_daily' as dataset, reason,
               printf('close / previous close = %.4g', move_ratio) as value
        from stg_price_checks""",
    # Count steps held at company level (listing holds are already listed from stg_price_checks).
    "model:company_daily_moves": """
        select ticker, date, 'company_daily_moves' as dataset, held_reason as reason,
               printf('%s: cap change %.4g USD, count change %.4g USD', company, cap_change_usd, count_change_usd)
                   as value
        from company_daily_moves where held_reason like 'share count changed%'""",
}


def publish_model_quarantine(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Make ``quarantine`` list exactly what the models refuse or hold now (rows already listed keep
    their run; rows no longer refused are removed)."""
    for source, sql in MODEL_QUARANTINES.items():
        con.execute(f"create or replace temp table _model_quarantine as {sql}")
        con.execute(
            """
            delete from quarantine q where q.source = $source and not exists (
                select 1 from _model_quarantine c
                where c.ticker = q.ticker and c.date = q.date and c.reason = q.reason)
            """,
            {"source": source},
        )
        con.execute(
            """
            insert into quarantine
            select c.ticker, c.date, c.dataset, c.reason, c.value, $source, $run_id, current_timestamp
            from _model_quarantine c
            where not exists (
                select 1 from quarantine q
                where q.source = $source and q.ticker = c.ticker and q.date = c.date and q.reason = c.reason)
            """,
            {"source": source, "run_id": run_id},
        )
        con.execute("drop table _model_quarantine")
