"""The DuckDB warehouse: opening the file safely and applying versioned migrations."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

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


def connect(
    path: Path | str,
    read_only: bool = False,
    wait_seconds: float = 30.0,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file, waiting up to ``wait_seconds`` while another process writes it.

    DuckDB lets one process at a time hold a file for writing. A second writer waits here, then
    fails with a clear message instead of a raw lock error. A file that is not a DuckDB database
    is never touched.
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
    deadline = time.monotonic() + wait_seconds
    delay = 0.1
    while True:
        try:
            con = _open(path, read_only, memory_limit)
            break
        except duckdb.IOException as exc:
            msg = str(exc)
            if "not a valid DuckDB database file" in msg:
                raise WarehouseError(
                    f"{path} is not a DuckDB database file (left untouched)"
                ) from exc
            if "lock" not in msg.lower() or time.monotonic() >= deadline:
                if "lock" in msg.lower():
                    raise WarehouseError(
                        f"{path} is being written by another capwatch process (waited {wait_seconds:.0f}s); "
                        "try again when it finishes"
                    ) from exc
                raise WarehouseError(f"cannot open {path}: {msg}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    if not read_only:
        migrate(con)
    return con


@contextmanager
def connection(
    path: Path | str, read_only: bool = False, memory_limit: str | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """``connect`` as a context manager that always closes the file."""
    con = connect(path, read_only=read_only, memory_limit=memory_limit)
    try:
        yield con
    finally:
        con.close()


def open_warehouse(settings: Settings, read_only: bool = False):
    """The warehouse of ``settings`` (its path and memory cap) as a context manager that closes it."""
    return connection(
        settings.db_path, read_only=read_only, memory_limit=settings.duckdb_memory_limit
    )


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


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the migrations this file has not seen yet, each in its own transaction."""
    con.execute(
        "create table if not exists schema_migrations (version integer primary key, name varchar not null, "
        "applied_at timestamptz not null default current_timestamp)"
    )
    done = {v for (v,) in con.execute("select version from schema_migrations").fetchall()}
    applied = []
    for version, name, path in migrations():
        if version in done:
            continue
        with transaction(con):
            con.execute(path.read_text())
            con.execute(
                "insert into schema_migrations (version, name) values (?, ?)", [version, name]
            )
        applied.append(name)
    return applied
