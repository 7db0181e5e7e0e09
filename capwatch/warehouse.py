"""The DuckDB warehouse: opening the file safely and applying versioned migrations."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from capwatch import lake
from capwatch.resources import migrations_dir
from capwatch.settings import Settings


class WarehouseError(RuntimeError):
    """A warehouse file that cannot be used, with what to do about it."""


def _open(path: Path, read_only: bool, memory_limit: str | None) -> duckdb.DuckDBPyConnection:
    if not memory_limit:
        return duckdb.connect(str(path), read_only=read_only)
    try:
        return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": memory_limit})
    except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
        raise WarehouseError(
            f"CAPWATCH_DUCKDB_MEMORY_LIMIT={memory_limit!r} is not a memory size DuckDB accepts "
            f"(e.g. 1GB, 800MB): {exc}"
        ) from exc


_LOCK = re.compile(r"Could not set lock on file|Conflicting lock is held")
_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")
_DAMAGED = re.compile(
    r"checksum|corrupt|truncated|unexpected end|invalid block|not a valid|could not read", re.I
)


def _holder(message: str) -> str:
    """Who holds the file, from DuckDB's lock error: the holder's command line and PID."""
    m = _HOLDER.search(message)
    if not m:
        return "another process"
    exe, pid = m.groups()
    try:
        cmd = (
            Path(f"/proc/{pid}/cmdline")
            .read_bytes()
            .replace(b"\0", b" ")
            .decode(errors="replace")
            .strip()
        )
    except OSError:
        cmd = ""
    return f"{(cmd or exe)[:160]} (PID {pid})"


def connect(
    path: Path | str,
    read_only: bool = False,
    wait_seconds: float = 120.0,
    memory_limit: str | None = None,
    checkpoint_on_close: bool = True,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, waiting up to ``wait_seconds`` while another process holds it.

    DuckDB lets one process at a time hold a file for writing, and a reader's shared lock keeps
    writers out. capwatch holds the file only for short transactions (never across network
    calls), so a waiting open gets in between them; after ``wait_seconds`` it fails with a message
    naming the process that holds the file and whether it reads or writes. A file that is not a
    DuckDB database, or is damaged, is never written.

    ``checkpoint_on_close=False`` (a flow's writers, see flows/pipeline.py ``checkpoint_at_end``):
    closing leaves what was committed in the file's write-ahead log instead of checkpointing it
    into the file. It is as durable there (DuckDB replays the log at the next open); a checkpoint
    costs a base amount that grows with the file, whatever changed.
    """
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(
            f"no warehouse at {path}: run `capwatch backfill` or `capwatch demo` first"
        )
    if path.exists() and path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            head = fh.read(16)
        # DuckDB files carry the magic bytes 'DUCK' at offset 8.
        if len(head) < 12 or head[8:12] != b"DUCK":
            raise WarehouseError(
                f"{path} is not a DuckDB database file (left untouched); point --db or CAPWATCH_DB at another path"
            )
    created = not path.exists()
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            con = _open(path, read_only, memory_limit)
            break
        except duckdb.Error as exc:
            msg = " ".join(str(exc).split())
            if not _LOCK.search(msg):
                if _DAMAGED.search(msg):
                    raise WarehouseError(
                        f"{path} is damaged and was not written ({msg[:200]}); restore it from a backup, "
                        "or run `capwatch check` for details"
                    ) from exc
                raise WarehouseError(f"cannot open {path}: {msg[:300]}") from exc
            if time.monotonic() >= deadline:
                holder = _holder(msg)
                if "read-only mode" in msg:  # DuckDB's hint: the holder only reads
                    raise WarehouseError(
                        f"{path} is held open for reading by {holder}; capwatch waited {wait_seconds:.0f}s "
                        "for it to close. Close that session (a reader that opens, queries and closes never "
                        "blocks a run), or raise CAPWATCH_LOCK_WAIT_SECONDS"
                    ) from exc
                raise WarehouseError(
                    f"{path} is being written by {holder} (waited {wait_seconds:.0f}s); "
                    "try again when it finishes"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    if created:
        os.chmod(path, 0o600)  # the warehouse is the user's alone (its WAL follows the umask)
    if not read_only:
        if not checkpoint_on_close:
            con.execute("pragma disable_checkpoint_on_shutdown")
        migrate(con)
    return con


@contextmanager
def connection(
    path: Path | str,
    read_only: bool = False,
    memory_limit: str | None = None,
    wait_seconds: float = 120.0,
    checkpoint_on_close: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``connect`` as a context manager that always closes the file."""
    con = connect(
        path,
        read_only=read_only,
        memory_limit=memory_limit,
        wait_seconds=wait_seconds,
        checkpoint_on_close=checkpoint_on_close,
    )
    try:
        yield con
    finally:
        con.close()


def open_warehouse(settings: Settings, read_only: bool = False, checkpoint_on_close: bool = True):
    """The warehouse of ``settings`` (its file or lake, and memory cap) as a context manager that
    closes it. Either way the connection's current database holds capwatch's tables.
    ``checkpoint_on_close``: see ``connect`` (a lake has no write-ahead log of its own)."""
    if settings.warehouse == "ducklake":
        return lake_connection(settings, read_only=read_only)
    return connection(
        settings.db_path,
        read_only=read_only,
        memory_limit=settings.duckdb_memory_limit,
        wait_seconds=settings.lock_wait_seconds,
        checkpoint_on_close=checkpoint_on_close,
    )


def wal_path(path: Path | str) -> Path:
    """Where DuckDB keeps a file's write-ahead log: beside it, with ``.wal`` appended."""
    path = Path(path)
    return path.with_name(path.name + ".wal")


def checkpoint(settings: Settings) -> None:
    """Move what the file's write-ahead log holds into the file (a file warehouse only); with no
    log beside the file there is nothing to move, and the file is not opened; a lake has no log
    of its own."""
    if settings.warehouse == "ducklake" or not wal_path(settings.db_path).exists():
        return
    with open_warehouse(settings) as con:
        try:
            con.execute("checkpoint")
        except duckdb.Error as exc:
            raise WarehouseError(f"cannot checkpoint {settings.db_path}: {exc}") from exc


@contextmanager
def lake_connection(
    settings: Settings, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The lake of ``settings`` (capwatch/lake.py), migrated unless read-only, closed after use."""
    try:
        con = lake.connect(
            settings.lake_catalog or "",
            settings.lake_data_path,
            read_only=read_only,
            memory_limit=settings.duckdb_memory_limit,
        )
    except lake.LakeError as exc:
        raise WarehouseError(str(exc)) from exc
    try:
        if not read_only:
            # Writers starting together on a new lake race to apply each migration: the losers
            # find the winner's tables and look again at what is left to apply.
            lake.retry_conflicts(
                lambda: migrate(con, for_lake=True), "migrate", also="already exists"
            )
        yield con
    finally:
        con.close()


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """True when ``con`` works in a DuckLake (its writers then take leases, see capwatch/lake.py)."""
    return con.execute("select current_database()").fetchone()[0] == lake.LAKE


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction: committed when the block ends, rolled back if it raises (or is interrupted)."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass  # the connection is gone (e.g. the file failed): nothing was committed
        raise
    con.execute("commit")


def migrations() -> list[tuple[int, str, Path]]:
    """The migration files in order: ``warehouse/migrations/NNN_name.sql``."""
    out = []
    for f in sorted(migrations_dir().glob("*.sql")):
        version = int(f.name.split("_", 1)[0])
        out.append((version, f.stem, f))
    return out


def migrate(con: duckdb.DuckDBPyConnection, for_lake: bool = False) -> list[str]:
    """Apply the migrations this warehouse has not seen yet, each in its own transaction (in a
    lake without their primary keys: ``lake.for_lake``)."""
    adapt = lake.for_lake if for_lake else (lambda sql: sql)
    # Read first, create only when missing: every writer opens through here, and on a lake each
    # statement is a round trip to the catalog (a DDL statement more than one).
    try:
        done = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    except duckdb.CatalogException:
        con.execute(
            adapt(
                "create table if not exists schema_migrations (version integer primary key, name varchar not null, "
                "applied_at timestamptz not null default current_timestamp)"
            )
        )
        done = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        with transaction(con):
            if for_lake:
                # Two writers that both found this version missing would both apply it and both
                # insert it (inserts never conflict in a lake). Touching the applied rows makes
                # their commits conflict: the second is rolled back, looks again, finds it applied.
                con.execute("update schema_migrations set name = name")
                # A writer whose transaction began after another writer committed this version
                # does not conflict with it: it sees the version here, in its own snapshot (the
                # list read above is older). Migration 009 rebuilds a table and would run twice.
                if con.execute(
                    "select count(*) from schema_migrations where version = ?", [version]
                ).fetchone()[0]:
                    continue
            sql = adapt(path.read_text())
            if sql:  # a lake records a file-only migration as applied, with nothing to do
                con.execute(sql)
            con.execute(
                "insert into schema_migrations (version, name) values (?, ?)", [version, name]
            )
        applied.append(name)
    return applied
