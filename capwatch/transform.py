"""Transform: run the SQL models in ``transforms/`` in dependency order.

Each ``transforms/<name>.sql`` is one SELECT; the runner materialises it as table ``<name>``.
Dependencies are the other model names a file mentions. All models are rebuilt inside one
transaction, so readers see either the previous tables or the new ones, never a mix; a failure
(or a failed gate passed as ``check``) rolls back and leaves the published tables in place.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Callable

import duckdb

from capwatch.settings import TRANSFORMS_DIR

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


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


def run_models(con: duckdb.DuckDBPyConnection, check: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
               models: list[Model] | None = None) -> list[ModelRun]:
    """Rebuild every model in one transaction; ``check`` runs before commit and may raise."""
    runs = []
    con.execute("begin transaction")
    try:
        for model in models or load_models():
            t0 = time.perf_counter()
            con.execute(f"create or replace table {model.name} as\n{model.sql}")
            (rows,) = con.execute(f"select count(*) from {model.name}").fetchone()
            runs.append(ModelRun(model.name, rows, time.perf_counter() - t0))
        if check is not None:
            check(con)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return runs
