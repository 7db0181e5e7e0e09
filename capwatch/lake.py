"""The DuckLake backend: tables as Parquet files, the catalog in PostgreSQL, SQLite or a DuckDB file.

One DuckDB file admits one writing process. A lake admits many: each process opens an in-memory
DuckDB, attaches the lake as ``lake`` and works in it with the same SQL as on the file. What differs:

- **No primary keys.** DuckLake has no constraints but NOT NULL, so migrations are applied without
  their keys (``for_lake``) and the loads keep their own idempotency: they insert only keys not
  stored yet, and two writers never load the same ticker at once (``leases``).
- **Commits can conflict.** Inserts into one table by two transactions never conflict, but a delete
  or update conflicts with any other transaction that wrote the same table since it began. A
  conflicting commit is rolled back whole, and the work is done again from the new snapshot
  (``retry_conflicts``): nothing half-written, nothing lost.
- **Extensions come from Python packages** pinned to the engine (duckdb-extension-ducklake,
  -postgres, -sqlite, -httpfs, all built for duckdb 1.5.5), installed into an extension directory
  of this environment, so nothing is downloaded at run time. The official CLI of the same version loads
  them from there too (``capwatch lake cli``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import random
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

log = logging.getLogger("capwatch.lake")

LAKE = "lake"  # the name the lake is attached under

# DuckDB's name for each extension -> the Python package that carries it, and the file in it.
EXTENSIONS = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "postgres_scanner": ("duckdb_extension_postgres", "postgres"),
    "sqlite_scanner": ("duckdb_extension_sqlite", "sqlite"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs"),  # a data path in object storage
}


class LakeError(RuntimeError):
    """A lake that cannot be opened or used, with what to do about it."""


def extension_dir() -> Path:
    """Where this environment's DuckDB extensions live: inside the virtualenv when it is writable
    (one set per engine version), else in the user's cache."""
    venv = Path(sys.prefix) / "share" / "capwatch" / "duckdb-extensions"
    try:
        venv.mkdir(parents=True, exist_ok=True)
        if os.access(venv, os.W_OK):
            return venv
    except OSError:
        pass
    return Path.home() / ".cache" / "capwatch" / "duckdb-extensions"


def _package_file(package: str, stem: str) -> Path:
    import importlib

    try:
        mod = importlib.import_module(package)
    except ImportError as exc:
        raise LakeError(
            f"the {package} package is missing: install capwatch's dependencies (`make install`)"
        ) from exc
    path = (
        Path(mod.__file__).parent
        / "extensions"
        / f"v{duckdb.__version__}"
        / f"{stem}.duckdb_extension"
    )
    if not path.exists():
        raise LakeError(
            f"{package} carries no extension for duckdb {duckdb.__version__} ({path} is missing): "
            "the engine and the extension packages must be the same version (see pyproject.toml)"
        )
    return path


def install_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """Install the lake's extensions from their packages into ``extension_dir()`` (once per
    environment; a file lock keeps parallel processes from writing the same files), then load
    DuckLake. The others load on demand: a catalog's when a lake names it, httpfs for a data path
    in object storage (s3://, https://)."""
    ext_dir = extension_dir()
    ext_dir.mkdir(parents=True, exist_ok=True)
    con.execute(f"set extension_directory = '{ext_dir}'")
    if ext_dir in _installed:  # checked by this process already: only load
        con.execute("load ducklake")
        return
    installed = {
        name
        for (name,) in con.execute(
            "select extension_name from duckdb_extensions() where installed"
        ).fetchall()
    }
    missing = [name for name in EXTENSIONS if name not in installed]
    if missing:
        with (ext_dir / ".install.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with tempfile.TemporaryDirectory() as tmp:
                for name in missing:
                    package, stem = EXTENSIONS[name]
                    # DuckDB takes an extension's name from its file name: ducklake,
                    # postgres_scanner, sqlite_scanner (the packages name the last two otherwise).
                    named = Path(tmp) / f"{name}.duckdb_extension"
                    shutil.copyfile(_package_file(package, stem), named)
                    con.execute(f"force install '{named}'")
    con.execute("load ducklake")
    _installed.add(ext_dir)


_installed: set[Path] = set()  # extension directories this process found complete


def catalog_uri(catalog: str) -> str:
    """``postgres:...`` and ``sqlite:PATH`` as given; anything else is a DuckDB catalog file."""
    if catalog.startswith(("postgres:", "sqlite:")):
        return catalog
    return str(Path(catalog).expanduser().resolve())


def default_data_path(catalog: str) -> str:
    """Beside a file catalog: ``<catalog>.files/``. A PostgreSQL catalog has no such place."""
    if catalog.startswith("postgres:"):
        raise LakeError(
            "a lake with a PostgreSQL catalog needs CAPWATCH_LAKE_DATA_PATH: a directory every "
            "writer and reader can reach (a shared volume), or object storage (s3://...)"
        )
    file = catalog.removeprefix("sqlite:")
    return str(Path(file).expanduser().resolve()) + ".files"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def attach_sql(catalog: str, data_path: str | None, read_only: bool = False) -> str:
    """The ATTACH statement for the lake (also what ``capwatch lake cli`` hands the DuckDB CLI)."""
    options = [f"data_path {_quote(data_path or default_data_path(catalog))}"]
    if read_only:
        options.append("read_only")
    return f"attach {_quote('ducklake:' + catalog_uri(catalog))} as {LAKE} ({', '.join(options)})"


def connect(
    catalog: str,
    data_path: str | None,
    read_only: bool = False,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the lake attached as ``lake`` and in use: the same SQL as on a file."""
    config = {"memory_limit": memory_limit} if memory_limit else {}
    try:
        con = duckdb.connect(":memory:", config=config)
    except (duckdb.InvalidInputException, duckdb.ParserException) as exc:
        raise LakeError(
            f"CAPWATCH_DUCKDB_MEMORY_LIMIT={memory_limit!r} is not a memory size DuckDB accepts "
            f"(e.g. 1GB, 800MB): {exc}"
        ) from exc
    try:
        install_extensions(con)
        data = data_path or default_data_path(catalog)
        if "://" not in data:
            Path(data).mkdir(parents=True, exist_ok=True)
        # Writers that start together on a new catalog all try to create its tables: those that
        # lose that race attach again to the catalog the winner made.
        for attempt in range(10):
            try:
                con.execute(attach_sql(catalog, data, read_only))
                break
            except duckdb.Error as exc:
                if attempt == 9 or not _INIT_RACE.search(str(exc)):
                    raise
                time.sleep(0.2 * (1 + random.random()))
        con.execute(f"use {LAKE}")
        # DuckLake itself retries a commit that only raced for the next snapshot id.
        con.execute("set ducklake_max_retry_count = 100")
    except duckdb.Error as exc:
        con.close()
        msg = " ".join(str(exc).split())[:400]
        if read_only and re.search(
            r"not initialized|does not exist|no such table|cannot open", msg, re.I
        ):
            raise LakeError(
                f"no warehouse in the lake yet (catalog {catalog!r}): run `capwatch backfill` or "
                f"`capwatch demo` first ({msg[:200]})"
            ) from exc
        raise LakeError(f"cannot open the lake (catalog {catalog!r}): {msg}") from exc
    return con


_INIT_RACE = re.compile(r"Failed to initialize DuckLake|already exists|duplicate key", re.I)

# DDL that a lake does not take: keys (the loads keep their own idempotency).
_TABLE_KEY = re.compile(r",\s*primary key\s*\([^)]*\)", re.I)
_COLUMN_KEY = re.compile(r"\s+primary key\b", re.I)


def for_lake(sql: str) -> str:
    """A migration as a lake takes it: the same tables and columns without primary keys (a key
    column stays NOT NULL); '' for a migration that begins ``-- file only`` (it changes what a lake
    does not have, such as a key)."""
    if sql.lstrip().lower().startswith("-- file only"):
        return ""
    return _COLUMN_KEY.sub(" not null", _TABLE_KEY.sub("", sql))


_CONFLICT = re.compile(
    r"Transaction conflict|Failed to commit DuckLake transaction|database is locked|"
    r"could not serialize access|deadlock detected",
    re.I,
)


def is_conflict(exc: BaseException) -> bool:
    """A commit that lost a race with another writer: safe to do again from the new snapshot."""
    return isinstance(exc, duckdb.Error) and bool(_CONFLICT.search(str(exc)))


T = TypeVar("T")

# Conflicts retried by this process, by what was retried (the closing figures of a concurrent run).
retried: dict[str, int] = {}


def retry_conflicts(
    work: Callable[[], T],
    what: str,
    attempts: int = 30,
    backoff: float = 0.05,
    also: str | None = None,
) -> T:
    """Run ``work`` (one transaction) until it commits without a conflict, at most ``attempts``
    times, waiting a little longer (with jitter) after each conflict. ``also``: a pattern of
    other errors that mean another writer got there first (e.g. a table it just created)."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except duckdb.Error as exc:
            raced = also is not None and re.search(also, str(exc), re.I)
            if not (is_conflict(exc) or raced) or attempt == attempts:
                raise
            retried[what] = retried.get(what, 0) + 1
            log.info(
                "commit conflict in %s (attempt %d), doing it again: %s",
                what,
                attempt,
                str(exc).splitlines()[-1][:200],
            )
            time.sleep(min(backoff * 2 ** min(attempt, 6), 3.0) * (0.5 + random.random()))
    raise AssertionError("unreachable")


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _dead_here(owner: str) -> bool:
    """A lease of a process on this host that no longer runs (killed): it can be taken over."""
    host, pid, _ = (owner.split(":") + ["", ""])[:3]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    return not Path(f"/proc/{pid}").exists()


@contextmanager
def leases(
    con: duckdb.DuckDBPyConnection,
    names: list[str],
    ttl_seconds: float = 300.0,
    wait_seconds: float = 3600.0,
) -> Iterator[str]:
    """Hold ``names`` (tickers, or "models" / "alerts") against every other writer of the lake.

    DuckLake has no locks, so a lease is a row: a writer commits its rows, then looks for live
    rows of others on the same names. If there are any it withdraws and tries again later; else
    the names are its own. Two writers that both proceed would each have looked before the other
    committed, which cannot be, as each commits before it looks. While the block runs, however
    long (a slow alert channel), a thread renews the lease every ``ttl_seconds / 5``; it lapses
    ``ttl_seconds`` after its writer stops renewing (killed on another host), or at once when its
    process on this host is gone.
    """
    names = sorted(set(names))
    owner = _owner()
    deadline = time.monotonic() + wait_seconds
    delay = 0.05

    def take() -> None:
        with _txn(con):
            con.execute(
                "insert into lake_leases select unnest(?::varchar[]), ?, now(), "
                "now() + to_seconds(?::double)",
                [names, owner, ttl_seconds],
            )

    def withdraw() -> None:
        with _txn(con):
            con.execute("delete from lake_leases where owner = ? or expires_at < now()", [owner])

    while True:
        retry_conflicts(take, "lease")
        others = con.execute(
            "select distinct owner from lake_leases where name in (select unnest(?::varchar[])) "
            "and owner <> ? and expires_at > now()",
            [names, owner],
        ).fetchall()
        live = [o for (o,) in others if not _dead_here(o)]
        dead = [o for (o,) in others if o not in live]
        if dead:  # taken over: their rows go (a killed writer never withdraws its own)
            retry_conflicts(lambda: _drop(con, dead), "lease")
        if not live:
            break
        retry_conflicts(withdraw, "lease")
        if time.monotonic() >= deadline:
            raise LakeError(
                f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''} held by another writer "
                f"({live[0]}) for over {wait_seconds:.0f}s"
            )
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 2.0)
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(con.cursor(), owner, ttl_seconds, stop), daemon=True
    )
    renewer.start()
    try:
        yield owner
    finally:
        stop.set()
        renewer.join()
        retry_conflicts(withdraw, "lease")


def _renew(
    cur: duckdb.DuckDBPyConnection, owner: str, ttl_seconds: float, stop: threading.Event
) -> None:
    """Push ``owner``'s leases ``ttl_seconds`` ahead every ``ttl_seconds / 5`` until ``stop``
    (on its own cursor: a connection serves one thread at a time)."""

    def extend() -> None:
        with _txn(cur):
            cur.execute(
                f"update {LAKE}.lake_leases set expires_at = now() + to_seconds(?::double) "
                "where owner = ?",
                [ttl_seconds, owner],
            )

    try:
        while not stop.wait(ttl_seconds / 5):
            retry_conflicts(extend, "lease")
    except duckdb.Error as exc:  # the lease lapses then: say so, the block's work goes on
        log.warning("could not renew the lease of %s: %s", owner, exc)
    finally:
        cur.close()


def _drop(con: duckdb.DuckDBPyConnection, owners: list[str]) -> None:
    with _txn(con):
        con.execute(
            "delete from lake_leases where owner in (select unnest(?::varchar[]))", [owners]
        )


@contextmanager
def _txn(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass
        raise
    con.execute("commit")


def maintain(con: duckdb.DuckDBPyConnection, keep_days: int = 7) -> dict[str, int]:
    """Write rows held inline in the catalog out to Parquet, merge small files, expire snapshots
    older than ``keep_days`` and delete the files no snapshot needs any more. Returns the data
    files (after the flush) and snapshots before and after."""
    con.execute(f"call ducklake_flush_inlined_data('{LAKE}')")
    before = _counts(con)
    con.execute(f"call ducklake_merge_adjacent_files('{LAKE}')")
    con.execute(
        f"call ducklake_expire_snapshots('{LAKE}', older_than => now() - interval '{int(keep_days)} days')"
    )
    con.execute(f"call ducklake_cleanup_old_files('{LAKE}', cleanup_all => true)")
    after = _counts(con)
    return {
        "files_before": before[0],
        "files_after": after[0],
        "snapshots_before": before[1],
        "snapshots_after": after[1],
    }


def _counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    files = con.execute(
        f"select count(*) from __ducklake_metadata_{LAKE}.ducklake_data_file where end_snapshot is null"
    ).fetchone()[0]
    snapshots = con.execute(f"select count(*) from ducklake_snapshots('{LAKE}')").fetchone()[0]
    return int(files), int(snapshots)


# What `import_file` does not copy: the lake's own bookkeeping, and the models' build records
# (the models are built afresh in the lake, so a lake never claims models it does not hold).
NOT_IMPORTED = {"schema_migrations", "lake_leases", "model_builds", "model_fingerprints"}


def import_file(con: duckdb.DuckDBPyConnection, file: str) -> dict[str, int]:
    """Copy a one-file warehouse's stored tables into this (empty) lake in one transaction;
    returns the rows copied per table. The file must be at the lake's schema version (open it
    with capwatch once) and is only read."""
    con.execute(f"attach {_quote(file)} as _import (read_only)")
    try:
        versions = {
            db: con.execute(f"select max(version) from {db}.schema_migrations").fetchone()[0]
            for db in ("_import", LAKE)
        }
        if versions["_import"] != versions[LAKE]:
            raise LakeError(
                f"{file} is at schema version {versions['_import']}, the lake at {versions[LAKE]}: "
                "import it with the capwatch that wrote it last, or a newer one"
            )
        tables = [
            t
            for (t,) in con.execute(
                "select table_name from duckdb_tables() where database_name = ? order by 1", [LAKE]
            ).fetchall()
            if t not in NOT_IMPORTED
        ]
        held = [t for t in tables if con.execute(f"select count(*) from {LAKE}.{t}").fetchone()[0]]
        if held:
            raise LakeError(
                f"the lake already holds rows ({', '.join(held[:5])}): import into an empty lake"
            )
        copied = {}
        con.execute("begin transaction")
        try:
            for t in tables:
                cols = ", ".join(
                    f'"{c}"'
                    for (c,) in con.execute(
                        "select column_name from duckdb_columns() where database_name = ? "
                        "and table_name = ? order by column_index",
                        [LAKE, t],
                    ).fetchall()
                )
                con.execute(f"insert into {LAKE}.{t} ({cols}) select {cols} from _import.{t}")
                copied[t] = con.execute(f"select count(*) from {LAKE}.{t}").fetchone()[0]
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        return copied
    finally:
        con.execute("detach _import")
