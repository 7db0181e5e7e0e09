"""``capwatch check``: is the warehouse file sound, and is its data consistent? Says what to do.

Read-only: it never writes the file. Checks, in order: the file is a DuckDB database; no write-ahead
log is left next to it by an unfinished write (opening for writing would replay it, and a WAL
copied from another file would be replayed into this one); the file opens; its schema version is
one this capwatch knows; every block of every table reads back with a valid checksum (each row of
each table is read); the raw tables have no duplicate keys; the published models pass the model
audits (transforms/audits).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from capwatch.schema import RAW_TABLES


@dataclass
class Finding:
    ok: bool
    what: str
    todo: str = ""

    def __str__(self) -> str:
        return f"{'ok   ' if self.ok else 'FAIL '} {self.what}" + (
            f"\n      -> {self.todo}" if self.todo else ""
        )


def check_file(path: Path) -> list[Finding]:
    from capwatch.validate.audits import audit_models
    from capwatch.warehouse import WarehouseError, connect, migrations, wal_path

    out: list[Finding] = []
    if not path.is_file():
        return [
            Finding(
                False, f"no warehouse at {path}", "run `capwatch backfill` or `capwatch demo` first"
            )
        ]
    wal = wal_path(path)
    if wal.exists():
        out.append(
            Finding(
                False,
                f"a write-ahead log {wal.name} ({wal.stat().st_size:,} bytes) is next to the file",
                "a capwatch run that is still going or was stopped left it (it holds that run's "
                "committed writes, which the next open replays and the next run's end checkpoints "
                "into the file), or it was copied from elsewhere: move it away only if it is not "
                "this file's",
            )
        )
    try:
        con = connect(path, read_only=True, wait_seconds=5)
    except WarehouseError as exc:
        return [*out, Finding(False, str(exc), "restore the file from a backup")]
    try:
        known = max((v for v, _, _ in migrations()), default=0)
        (version,) = con.execute(
            "select coalesce(max(version), 0) from schema_migrations"
        ).fetchone()
        if version > known:
            out.append(
                Finding(
                    False,
                    f"schema version {version}: made by a newer capwatch (this one knows {known})",
                    "upgrade capwatch before writing to it",
                )
            )
        else:
            note = "" if version == known else f" (migrated to {known} on the next write)"
            out.append(Finding(True, f"schema version {version}{note}"))
        tables = [
            r[0]
            for r in con.execute("select table_name from duckdb_tables() order by 1").fetchall()
        ]
        bad = []
        for t in tables:
            try:
                con.execute(f'select count(*), sum(hash(t)) from "{t}" as t').fetchone()
            except duckdb.Error as exc:
                bad.append(f"{t}: {' '.join(str(exc).split())[:160]}")
        if bad:
            out.append(
                Finding(
                    False,
                    f"{len(bad)} of {len(tables)} tables do not read back: " + "; ".join(bad),
                    "the file is damaged: restore it from a backup (the sources can rebuild it: "
                    "`capwatch backfill --refresh` into a new file)",
                )
            )
            return out
        out.append(
            Finding(True, f"all {len(tables)} tables read back, every block's checksum valid")
        )
        for table in RAW_TABLES:
            keys = ", ".join(table.keys)
            (dups,) = con.execute(
                f"select count(*) from (select {keys} from {table.name} group by all "
                "having count(*) > 1)"
            ).fetchone()
            if dups:
                out.append(
                    Finding(False, f"{table.name}: {dups} duplicated keys", "restore from a backup")
                )
        if "market_cap_daily" in tables:
            result = audit_models(con)
            if result.passed:
                out.append(
                    Finding(
                        True,
                        f"model audits pass ({result.evaluated} audits, {result.rows:,} cap rows)",
                    )
                )
            else:
                out.append(
                    Finding(
                        False,
                        "model audits fail: " + "; ".join(r for r, _ in result.failures),
                        "run `capwatch build --full`",
                    )
                )
        else:
            out.append(Finding(True, "no models built yet"))
    finally:
        con.close()
    return out
