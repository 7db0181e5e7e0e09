"""Test helpers for the DuckLake backend: a real PostgreSQL on 127.0.0.1, lake settings, and a
row-for-row comparison of two warehouses."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import duckdb

from bench.compare import comparable

# Columns that say when or by which run a row was written: they differ between any two runs.
RUN_COLUMNS = {
    "loaded_at",
    "run_id",
    "created_at",
    "validated_at",
    "built_at",
    "applied_at",
    "quarantined_at",
    "revised_at",
    "attempted_at",
    "taken_at",
    "expires_at",
    "owner",
}
# Tables that record runs, not data (how many runs there were differs by design).
RUN_TABLES = {"load_runs", "validation_runs", "model_builds", "lake_leases", "load_intervals"}

# The lake lane's state (tests/conftest.py), here so that every import of conftest shares it.
SHARED_LAKES: dict[str, dict[str, str]] = {}  # warehouse path -> its lake's environment
_LAKE_OWNERS: dict[str, str] = {}  # a test's lake catalog -> the warehouse path that took it
_POSTGRES: list = []  # the session's server, for lakes made outside fixtures

RAW_KEYS = {
    "prices_daily": ("ticker", "date"),
    "splits": ("ticker", "date"),
    "dividends": ("ticker", "date"),
    "shares_outstanding": ("ticker", "share_class", "as_of", "source", "accession"),
}


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Postgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (started by the test session)."""

    bin: Path
    port: int
    base: Path
    as_user: list[str]

    def createdb(self, name: str) -> str:
        """A new, empty database; returns the lake catalog that names it."""
        subprocess.run(
            [
                *self.as_user,
                str(self.bin / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "capwatch",
                name,
            ],
            check=True,
            capture_output=True,
        )
        return f"postgres:dbname={name} host=127.0.0.1 port={self.port} user=capwatch"

    def stop(self) -> None:
        subprocess.run(
            [
                *self.as_user,
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.base / "data"),
                "-m",
                "fast",
                "stop",
            ],
            capture_output=True,
        )
        shutil.rmtree(self.base, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb + pg_ctl start on a free port. PostgreSQL refuses to run as root, so as root the
    cluster runs as the ``postgres`` user that Debian's package creates."""
    pg = _pg_bin()
    if pg is None:
        raise RuntimeError(
            "PostgreSQL is not installed (no initdb): `apt-get install postgresql` (.ci/run does)"
        )
    base = Path(tempfile.mkdtemp(prefix="capwatch-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [
            *as_user,
            str(pg / "initdb"),
            "-D",
            str(base / "data"),
            "-A",
            "trust",
            "-U",
            "capwatch",
            "-N",
        ],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(
        [
            *as_user,
            str(pg / "pg_ctl"),
            "-D",
            str(base / "data"),
            "-o",
            opts,
            "-l",
            str(base / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    return Postgres(pg, port, base, as_user)


def lake_env(catalog: str, data_path: Path) -> dict[str, str]:
    """The environment that points capwatch (CLI, flows) at a lake."""
    return {
        "CAPWATCH_WAREHOUSE": "ducklake",
        "CAPWATCH_LAKE_CATALOG": catalog,
        "CAPWATCH_LAKE_DATA_PATH": str(data_path),
    }


def attach_both(file_db: Path, catalog: str, data_path: Path) -> duckdb.DuckDBPyConnection:
    """One connection with the file as ``f`` and the lake as ``l``, both read-only."""
    from capwatch.lake import catalog_uri, install_extensions

    con = duckdb.connect()
    install_extensions(con)
    con.execute(f"attach '{file_db}' as f (read_only)")
    con.execute(
        f"attach 'ducklake:{catalog_uri(catalog)}' as l (data_path '{data_path}', read_only)"
    )
    return con


def differences(con: duckdb.DuckDBPyConnection, skip_tables: set[str] = RUN_TABLES) -> dict:
    """Tables and views of ``f`` whose rows differ from ``l``'s (run columns left out), as
    {name: (rows only in the file, rows only in the lake)}; also the row counts compared."""
    names = [
        n
        for (n,) in con.execute(
            "select table_name from duckdb_tables() where database_name = 'f' union "
            "select view_name from duckdb_views() where database_name = 'f' and not internal"
        ).fetchall()
        if n not in skip_tables
    ]
    out, counts = {}, {}
    for name in sorted(names):
        cols = [
            (c, t)
            for (c, t) in con.execute(
                "select column_name, data_type from duckdb_columns() "
                "where database_name = 'f' and table_name = ?",
                [name],
            ).fetchall()
            if c not in RUN_COLUMNS
        ]
        sel = comparable(cols)
        only_f = con.execute(
            f"select count(*) from (select {sel} from f.{name} except all select {sel} from l.{name})"
        ).fetchone()[0]
        only_l = con.execute(
            f"select count(*) from (select {sel} from l.{name} except all select {sel} from f.{name})"
        ).fetchone()[0]
        counts[name] = con.execute(f"select count(*) from f.{name}").fetchone()[0]
        if only_f or only_l:
            out[name] = (only_f, only_l)
    return {"differ": out, "rows": counts}


def duplicate_keys(con: duckdb.DuckDBPyConnection, db: str) -> dict[str, int]:
    """Keys stored more than once in the raw tables of ``db`` (a lake has no key to refuse them)."""
    out = {}
    for table, keys in RAW_KEYS.items():
        k = ", ".join(keys)
        n = con.execute(
            f"select count(*) from (select {k} from {db}.{table} group by {k} having count(*) > 1)"
        ).fetchone()[0]
        if n:
            out[table] = n
    return out
