"""Transform: run the SQL models in ``transforms/`` in dependency order, then audit them.

Each ``transforms/{staging,marts}/<name>.sql`` is one SELECT; the runner materialises it as table
``<name>``. (``transforms/audits/`` holds the model audits, ``transforms/alerts/`` the alert rules'
query: neither is a model.)
Dependencies are the other model names a file mentions. All models are built inside one
transaction, so readers see either the previous tables or the new ones, never a mix; a failure
(or a failed gate passed as ``check``) rolls back and leaves the published tables in place.

A model whose first line is ``-- view`` is a view (a ranking over everything, cheap to query,
costly to keep up to date). A model whose first line is ``-- incremental: date[, lookback N days]``
filters its inputs with ``__since__``: on an incremental build only its rows from ``since`` on are
replaced (inputs are read from ``since - N days``, for window functions that look back). A model
whose first line is ``-- incremental: ticker`` (the share-count models: a count is judged against
its own ticker's counts and splits only) reads only the tickers in ``_changed_tickers``; on an
incremental build only those tickers' rows are replaced. Other models are rebuilt whole.
``-- incremental: date, lookback N days, full build by year`` (the yearly summaries) also builds a
full build one calendar year of inputs at a time: its inputs are read from ``__since__`` to
``__until__`` (the end of time, except in those yearly slices).
A date-incremental model is stored in date order, so that an incremental build deletes and appends
only its last row groups; ``, stored by <columns>`` at the end of its first line orders a full
build by those columns instead (the losses one row per loss, by company: a query of a few
companies then reads only their row groups, whatever the years stored), and an incremental build's
rows, appended after them, too.

``since`` is the earliest date a load changed, less ``RESTATE_DAYS``: a later day can change the
judgement of an earlier one (the vendor-error guard sees a price come back), so the last weeks are
always recomputed. Each build records every model's SQL fingerprint; when any model's SQL changed
since the last build, the next build is a full one, so no history stays on the old SQL.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from graphlib import TopologicalSorter
from pathlib import Path

import duckdb

from capwatch.lake import LAKE
from capwatch.resources import transforms_dir
from capwatch.validate.audits import (
    ModelGateFailed,
    audit_models,
    describe_failures,
    publish_model_quarantine,
)
from capwatch.validate.suites import record_validation

_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


_INCREMENTAL = re.compile(
    r"^-- incremental: (date|ticker)(?:, lookback (\d+) days)?(, full build by year)?"
    r"(?:, stored by ([\w, ]+?))?\s*$",
    re.M,
)
_EPOCH = date(1, 1, 1)

# How far before the earliest changed date an incremental build recomputes (calendar days): longer
# than the vendor-error guard's window (15 sessions), within which a later day decides an earlier one.
RESTATE_DAYS = 31


@dataclass(frozen=True)
class Model:
    name: str
    sql: str
    depends_on: frozenset[str]
    incremental: bool = False
    lookback_days: int = 0
    view: bool = False
    by_ticker: bool = False  # incremental by ticker: a changed ticker's rows are rebuilt whole
    by_year: bool = False  # a full build runs year by year (its inputs read [__since__, __until__))
    stored_by: str | None = None  # the order of its rows, if not by date (``, stored by ...``)

    @property
    def order(self) -> str:
        """What a full build orders the model's rows by: its ``stored by`` columns, else date."""
        return self.stored_by or "date"

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]

    def select(self, since: date) -> str:
        """The model's SELECT reading inputs from ``since`` minus its lookback."""
        lower = (
            since - timedelta(days=self.lookback_days)
            if since > _EPOCH + timedelta(days=self.lookback_days)
            else _EPOCH
        )
        return self.sql.replace("__since__", f"DATE '{lower.isoformat()}'").replace(
            "__until__", "DATE '9999-12-31'"
        )

    def select_year(self, year: int) -> str:
        """The model's SELECT over one calendar year of its inputs (a full build by year)."""
        return self.sql.replace("__since__", f"DATE '{year:04d}-01-01'").replace(
            "__until__", f"DATE '{year + 1:04d}-01-01'"
        )


MODEL_FOLDERS = ("staging", "marts")


def load_models(directory: Path | None = None) -> list[Model]:
    """The models, topologically ordered."""
    directory = directory or transforms_dir()
    files = sorted(f for folder in MODEL_FOLDERS for f in (directory / folder).glob("*.sql"))
    texts = {f.stem: f.read_text() for f in files}
    if len(texts) != len(files):
        raise ValueError(
            f"two models in {directory} share a name: every model file name must be unique"
        )
    models = {}
    for name, sql in texts.items():
        body = _COMMENT.sub(" ", sql)
        deps = {
            other
            for other in texts
            if other != name and re.search(rf"\b{re.escape(other)}\b", body)
        }
        first = sql.split("\n", 1)[0].strip()
        inc = _INCREMENTAL.search(first + "\n")
        models[name] = Model(
            name,
            sql,
            frozenset(deps),
            inc is not None,
            int(inc.group(2) or 0) if inc else 0,
            view=first == "-- view",
            by_ticker=inc is not None and inc.group(1) == "ticker",
            by_year=inc is not None and inc.group(3) is not None,
            stored_by=inc.group(4) if inc else None,
        )
    order = TopologicalSorter({m.name: m.depends_on for m in models.values()}).static_order()
    return [models[n] for n in order]


@dataclass
class ModelRun:
    name: str
    rows: int
    seconds: float


def rename_models(sql: str, names: list[str], suffix: str) -> str:
    """Point a model's SQL at the staged (``suffix``) versions of the other models."""
    if not suffix:
        return sql
    return re.sub(r"\b(" + "|".join(map(re.escape, names)) + r")\b", rf"\1{suffix}", sql)


def run_models(
    con: duckdb.DuckDBPyConnection,
    check: Callable[[duckdb.DuckDBPyConnection, str], None] | None = None,
    models: list[Model] | None = None,
    run_id: str = "manual",
    since: date | None = None,
    record: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> list[ModelRun]:
    """Build every model and publish them all at once; ``check(con, suffix)`` runs on the built,
    unpublished models and may raise, which leaves the published models as they were.

    An incremental build (``since`` given, the tables there) replaces the rows from ``since`` on in
    one transaction. A full build creates ``<model>__staged`` tables outside any transaction (DuckDB
    writes millions of rows far faster so), checks them, then swaps them in in one transaction.
    Views (``-- view`` models) are recreated at publication. ``record`` runs in the publishing
    transaction.
    """
    models = models or load_models()
    names = [m.name for m in models]
    existing = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
    incremental = since is not None and all(m.name in existing for m in models if m.incremental)
    suffix = "" if incremental else "__staged"
    runs = []
    # Model tables carry no meaning in their row order: letting DuckDB write them in any order
    # lowers the memory a full build of millions of rows needs.
    con.execute("set preserve_insertion_order = false")
    _changed_tickers(con, since if incremental else None)
    in_transaction = incremental
    if incremental:
        con.execute("begin transaction")
    try:
        for model in models:
            t0 = time.perf_counter()
            if model.view:
                runs.append(ModelRun(model.name, 0, 0.0))
                continue
            target = model.name + suffix
            if incremental and model.by_ticker:
                con.execute(
                    f"delete from {target} where ticker in (select ticker from {CHANGED_TICKERS})"
                )
                con.execute(f"insert into {target} {model.select(since)}")
                rows = con.execute(
                    f"select count(*) from {target} where ticker in (select ticker from {CHANGED_TICKERS})"
                ).fetchone()[0]
            elif incremental and model.incremental:
                con.execute(f"delete from {target} where date >= ?", [since])
                order = f" order by {model.stored_by}" if model.stored_by else ""
                con.execute(
                    f"insert into {target} select * from (\n{model.select(since)}\n) "
                    f"where date >= ?{order}",
                    [since],
                )
                rows = con.execute(
                    f"select count(*) from {target} where date >= ?", [since]
                ).fetchone()[0]
            elif model.by_year:
                rows = _build_by_year(con, model, names, suffix, target)
            else:
                select = rename_models(model.select(_EPOCH), names, suffix)
                if model.incremental and not model.by_ticker:
                    # Stored in date order: an incremental build then deletes and appends only the
                    # last row groups, and its commit (checkpoint) costs the days changed, not the
                    # whole history (measured: 1.05 s -> 0.3 s at 25 years x 500 tickers).
                    select = f"select * from (\n{select}\n) order by {model.order}"
                con.execute(f"create or replace table {target} as\n{select}")
                (rows,) = con.execute(f"select count(*) from {target}").fetchone()
            runs.append(ModelRun(model.name, rows, time.perf_counter() - t0))
        if check is not None:
            check(con, suffix)
        if not incremental:
            con.execute("begin transaction")
            in_transaction = True
        for model in models:
            if model.view:
                con.execute(f"create or replace view {model.name} as\n{model.select(_EPOCH)}")
            elif suffix:
                con.execute(f"drop table if exists {model.name}")
                con.execute(f"alter table {model.name}{suffix} rename to {model.name}")
        publish_model_quarantine(con, run_id)
        if record is not None:
            record(con)
        con.execute("commit")
    except BaseException:
        if in_transaction:
            try:
                con.execute("rollback")
            except duckdb.Error:
                pass  # the connection itself failed: nothing was committed
        for model in models:
            if suffix and not model.view:
                con.execute(f"drop table if exists {model.name}{suffix}")
        raise
    return runs


def _build_by_year(
    con: duckdb.DuckDBPyConnection, model: Model, names: list[str], suffix: str, target: str
) -> int:
    """A full build of a yearly model, one year of its inputs at a time: its aggregates (lists of
    a year's losses) then never hold decades at once, which a whole market's 38M rows would make
    weigh hundreds of MB beyond DuckDB's memory limit. The years are those of its inputs."""
    spans = [
        f"select min(date) as lo, max(date) as hi from {dep}{suffix}"
        for dep in sorted(model.depends_on)
    ]
    lo, hi = con.execute(f"select min(lo), max(hi) from ({' union all '.join(spans)})").fetchone()
    years = range(lo.year, hi.year + 1) if lo is not None else range(0)
    first = rename_models(model.select_year(years[0] if years else 1), names, suffix)
    con.execute(
        f"create or replace table {target} as select * from (\n{first}\n) order by {model.order}"
    )
    for year in years[1:]:
        select = rename_models(model.select_year(year), names, suffix)
        con.execute(f"insert into {target} select * from (\n{select}\n) order by {model.order}")
    return con.execute(f"select count(*) from {target}").fetchone()[0]


# The tickers a ticker-incremental model rebuilds (``ticker in (select ticker from ...)`` in its
# SQL): every ticker with counts on a full build.
CHANGED_TICKERS = "_changed_tickers"


def _changed_tickers(con: duckdb.DuckDBPyConnection, since: date | None) -> None:
    """Fill the temp table of tickers whose share-count models must be rebuilt.

    On an incremental build: tickers with a count or a split stored (or replaced) since the last
    build, and tickers with a split on or after ``since`` less 10 days (the split's judgement,
    applied or not, is rebuilt with the prices around it). A count's checks and the series it
    joins only ever look at its own ticker's counts and splits, so no other ticker can change.
    On a lake "since the last build" is after the snapshot it read, not its clock (a writer may
    commit a count it loaded before that build started, after the build read the lake).
    """
    if since is None:
        con.execute(
            f"create or replace temp table {CHANGED_TICKERS} as "
            "select distinct ticker from shares_outstanding"
        )
        return
    now = lake_snapshot(con)
    if now is not None:
        (last,) = con.execute("select max(lake_snapshot) from model_builds").fetchone()
        if last is None:  # no build recorded its snapshot: every ticker
            return _changed_tickers(con, None)
        try:
            con.execute(
                f"""
                create or replace temp table {CHANGED_TICKERS} as
                select ticker from ducklake_table_insertions('{LAKE}', 'main', 'shares_outstanding', $1, $2)
                union
                select ticker from ducklake_table_insertions('{LAKE}', 'main', 'splits', $1, $2)
                union
                select ticker from splits where date >= $3::date - interval 10 days
                """,
                [last + 1, now, since],
            )
            return
        except duckdb.Error:  # those snapshots have expired (lake maintenance): every ticker
            return _changed_tickers(con, None)
    con.execute(
        f"""
        create or replace temp table {CHANGED_TICKERS} as
        with last as (select max(built_at) as built_at from model_builds)
        select ticker from shares_outstanding where loaded_at > (select built_at from last)
        union
        select ticker from splits
        where loaded_at > (select built_at from last) or date >= ?::date - interval 10 days
        """,
        [since],
    )


def changed_models(con: duckdb.DuckDBPyConnection, models: list[Model]) -> list[str]:
    """Models whose SQL differs from the SQL of the last build (or that were never built)."""
    built = dict(con.execute("select model, fingerprint from model_fingerprints").fetchall())
    return [m.name for m in models if built.get(m.name) != m.fingerprint]


def lake_snapshot(con: duckdb.DuckDBPyConnection) -> int | None:
    """The lake snapshot ``con`` reads (None on a DuckDB file)."""
    if con.execute("select current_database()").fetchone()[0] != LAKE:
        return None
    return con.execute(f"select * from {LAKE}.current_snapshot()").fetchone()[0]


def pending_since(
    con: duckdb.DuckDBPyConnection, models: list[Model] | None = None
) -> tuple[bool, date | None]:
    """(anything to build, since): since is None for a full rebuild (no build yet, or a model's
    SQL changed since the last build)."""
    last, last_snapshot = con.execute(
        "select max(built_at), max(lake_snapshot) from model_builds"
    ).fetchone()
    if last is None or changed_models(con, models or load_models()):
        return True, None
    now = lake_snapshot(con)
    if now is not None:
        # A lake's writers commit in any order: pending are the load runs committed after the
        # snapshot the last build read (the lake's change feed), whatever their clocks say.
        if last_snapshot is None:
            return True, None
        try:
            changed, since = con.execute(
                "select count(*) > 0, min(earliest_change) from ducklake_table_insertions("
                "?, 'main', 'load_runs', ?, ?) where earliest_change is not null",
                [LAKE, last_snapshot + 1, now],
            ).fetchone()
        except duckdb.Error:  # those snapshots have expired (lake maintenance): build it all
            return True, None
        return bool(changed), (since - timedelta(days=RESTATE_DAYS) if since else None)
    changed, since = con.execute(
        "select count(*) > 0, min(earliest_change) from load_runs where loaded_at > ? and earliest_change is not null",
        [last],
    ).fetchone()
    return bool(changed), (since - timedelta(days=RESTATE_DAYS) if since else None)


def build_and_gate(
    con: duckdb.DuckDBPyConnection, run_id: str, full: bool = False
) -> list[ModelRun]:
    """Build the models (incrementally from the earliest change loaded since the last build, or in
    full) and pass them through the model gate before publishing.

    A failed gate rolls the build back (the previously published models stay, and the changes stay
    pending for the next build) and raises ``ModelGateFailed`` naming each failed expectation. Gate
    results are kept in validation_runs. With no change loaded since the last build it does nothing.
    """
    models = load_models()
    results = []
    audit_limit = AUDIT_MEMORY_LIMIT

    def check(c: duckdb.DuckDBPyConnection, suffix: str) -> None:
        names = [m.name for m in models]
        with _build_memory(c, audit_limit):
            results.append(
                audit_models(
                    c, lambda sql: rename_models(sql, names, suffix), since if not suffix else None
                )
            )
        if not all(r.passed for r in results):
            raise ModelGateFailed(
                "model gate failed, previous models kept:\n" + describe_failures(results)
            )

    snapshot = lake_snapshot(con)  # what this build reads, on a lake (see pending_since)
    todo, since = (True, None) if full else pending_since(con, models)
    if not todo:
        return []
    started = datetime.now(UTC)

    def record(c: duckdb.DuckDBPyConnection) -> None:
        c.execute(
            "insert into model_builds values (?, ?, ?, ?)", [run_id, since, started, snapshot]
        )
        names = [m.name for m in models]
        c.execute(
            "delete from model_fingerprints where model in (select unnest(?::varchar[]))", [names]
        )
        c.executemany(
            "insert into model_fingerprints values (?, ?, ?)",
            [(m.name, m.fingerprint, started) for m in models],
        )

    try:
        with _build_memory(con, None if since else BUILD_MEMORY_LIMIT):
            return run_models(
                con, check=check, models=models, run_id=run_id, since=since, record=record
            )
    except duckdb.OutOfMemoryException:
        if since is not None:
            raise
        # Pinned memory (primary-key indexes of a very large warehouse) left too little under the
        # build cap: build again with DuckDB's own limit.
        results.clear()
        audit_limit = None
        return run_models(
            con, check=check, models=models, run_id=run_id, since=since, record=record
        )
    finally:
        if results:
            record_validation(con, results, run_id)


# A full build spills to disk beyond this rather than keep every page it touched cached (DuckDB's
# default is 80 % of RAM): the models have no primary keys that must stay in memory, and measured
# at 3.1M rows the build is no slower (bench/RESULTS.md). A lower cap set by the user wins.
BUILD_MEMORY_LIMIT = "1GB"
# The model audits (scans and joins of the built models, once per build) spill beyond this. Measured
# on 6,000 tickers x 25 years (bench/WHOLE_MARKET_NOTES.md): 59 s under 1 GB and 53 s under 512 MB,
# with 1,125 MB and 589 MB of memory above the process; the audits were the backfill's peak.
AUDIT_MEMORY_LIMIT = "512MB"


@contextmanager
def _build_memory(con: duckdb.DuckDBPyConnection, limit: str | None):
    """Lower DuckDB's memory limit for the block (never raise it), then put it back."""
    if limit is None:
        yield
        return
    (before,) = con.execute("select current_setting('memory_limit')").fetchone()
    lower = _limit_bytes(limit) < _bytes(before)
    if lower:  # else the setting is left as it is, never touched
        try:
            con.execute(f"set memory_limit = '{limit}'")
        except duckdb.Error:
            lower = False
    try:
        yield
    finally:
        if lower:
            con.execute(f"set memory_limit = '{_as_set(before)}'")


def _limit_bytes(limit: str) -> float:
    """'512MB' -> bytes (the build's own limits, in DuckDB's decimal units)."""
    number, unit = re.fullmatch(r"([\d.]+)\s*([KMGT]B)", limit).groups()
    return float(number) * 1000 ** ("KMGT".index(unit[0]) + 1)


_UNITS = {"bytes": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def _bytes(text: str) -> float:
    """'1.8 GiB' -> bytes (DuckDB's display of a memory setting)."""
    number, unit = text.split()
    return float(number) * _UNITS[unit]


def _as_set(shown: str) -> str:
    """The value to set to get a memory setting back from its display. DuckDB shows one decimal,
    cut (2GB shows as '1.8 GiB'): setting '1.8 GiB' back would show '1.7 GiB', and each full build
    would lower the limit by a tenth of a unit. Half a tenth more shows as it was, build after
    build (within 0.05 of a unit of the original)."""
    number, unit = shown.split()
    if unit == "bytes":
        return shown
    return f"{int((float(number) + 0.05) * _UNITS[unit])} bytes"
