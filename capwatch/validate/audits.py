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

# The share-count model's refusals are listed in the shared quarantine table under this source.
MODEL_QUARANTINE_SOURCE = "model:stg_shares_checked"


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


def publish_model_quarantine(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Make ``quarantine`` list exactly the counts stg_shares_checked refuses (rows already listed keep their run)."""
    con.execute(
        """
        delete from quarantine q where q.source = ? and not exists (
            select 1 from stg_shares_checked c
            where c.quarantine_reason = q.reason and c.ticker = q.ticker and c.as_of = q.date)
    """,
        [MODEL_QUARANTINE_SOURCE],
    )
    con.execute(
        """
        insert into quarantine
        select c.ticker, c.as_of, 'shares_outstanding', c.quarantine_reason, c.shares::varchar, ?, ?, current_timestamp
        from stg_shares_checked c
        where c.quarantine_reason is not null and not exists (
            select 1 from quarantine q
            where q.source = ? and q.ticker = c.ticker and q.date = c.as_of and q.reason = c.quarantine_reason)
    """,
        [MODEL_QUARANTINE_SOURCE, run_id, MODEL_QUARANTINE_SOURCE],
    )
