"""Transform: run the SQL models in ``transforms/`` in dependency order.

Each ``transforms/<name>.sql`` is one SELECT; the runner materialises it as table ``<name>``.
Dependencies are the other model names a file mentions. All models are rebuilt inside one
transaction, so readers see either the previous tables or the new ones, never a mix; a failure
(or a failed gate passed as ``check``) rolls back and leaves the published tables in place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

from capwatch.settings import TRANSFORMS_DIR

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Model:
    name: str
    sql: str
    depends_on: frozenset[str]


def load_models(directory: Path = TRANSFORMS_DIR) -> list[Model]:
    """The models, topologically ordered."""
    texts = {f.stem: f.read_text() for f in sorted(directory.glob("*.sql"))}
    models = {}
    for name, sql in texts.items():
        body = _COMMENT.sub(" ", sql)
        deps = {other for other in texts if other != name and re.search(rf"\b{re.escape(other)}\b", body)}
        models[name] = Model(name, sql, frozenset(deps))
    order = TopologicalSorter({m.name: m.depends_on for m in models.values()}).static_order()
    return [models[n] for n in order]


@dataclass
class ModelRun:
    name: str
    rows: int
    seconds: float


# Counts the share-count model refuses are listed in the shared quarantine table, under this source.
MODEL_QUARANTINE_SOURCE = "model:stg_shares_checked"


def publish_model_quarantine(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Make ``quarantine`` list exactly the counts stg_shares_checked refuses (rows already listed keep their run)."""
    con.execute("""
        delete from quarantine q where q.source = ? and not exists (
            select 1 from stg_shares_checked c
            where c.quarantine_reason = q.reason and c.ticker = q.ticker and c.as_of = q.date)
    """, [MODEL_QUARANTINE_SOURCE])
    con.execute("""
        insert into quarantine
        select c.ticker, c.as_of, 'shares_outstanding', c.quarantine_reason, c.shares::varchar, ?, ?, current_timestamp
        from stg_shares_checked c
        where c.quarantine_reason is not null and not exists (
            select 1 from quarantine q
            where q.source = ? and q.ticker = c.ticker and q.date = c.as_of and q.reason = c.quarantine_reason)
    """, [MODEL_QUARANTINE_SOURCE, run_id, MODEL_QUARANTINE_SOURCE])


def run_models(con: duckdb.DuckDBPyConnection, check: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
               models: list[Model] | None = None, run_id: str = "manual") -> list[ModelRun]:
    """Rebuild every model in one transaction; ``check`` runs before commit and may raise."""
    runs = []
    con.execute("begin transaction")
    try:
        for model in models or load_models():
            t0 = time.perf_counter()
            con.execute(f"create or replace table {model.name} as\n{model.sql}")
            (rows,) = con.execute(f"select count(*) from {model.name}").fetchone()
            runs.append(ModelRun(model.name, rows, time.perf_counter() - t0))
        if models is None:
            publish_model_quarantine(con, run_id)
        if check is not None:
            check(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return runs


def build_and_gate(con: duckdb.DuckDBPyConnection, run_id: str) -> list[ModelRun]:
    """Rebuild the models and pass them through the model gate before publishing.

    A failed gate rolls the rebuild back (the previously published models stay) and raises
    ``ModelGateFailed`` naming each failed expectation. Gate results are kept in validation_runs.
    """
    from capwatch.gates import ModelGateFailed, describe_failures, model_gate
    from capwatch.load import record_validation

    results = []

    def check(c: duckdb.DuckDBPyConnection) -> None:
        results.extend(model_gate(c))
        if not all(r.passed for r in results):
            raise ModelGateFailed("model gate failed, previous models kept:\n" + describe_failures(results))

    try:
        return run_models(con, check=check, run_id=run_id)
    finally:
        if results:
            record_validation(con, results, run_id)
