"""Compare two warehouses table by table, row for row (provenance columns left out).

    uv run python -m bench.compare BEFORE.duckdb AFTER.duckdb

Used to show that a refactoring keeps behaviour: the same data, loaded by the old and the new code,
must give the same tables. Prints one line per table and exits 1 if any differs.
"""

from __future__ import annotations

import sys

import duckdb

# Columns that record when and by which run a row was written: expected to differ between runs.
PROVENANCE = {
    "loaded_at",
    "run_id",
    "quarantined_at",
    "validated_at",
    "created_at",
    "built_at",
    "applied_at",
    "attempted_at",
}
# Tables that are logs of runs, not data.
LOGS = {"load_runs", "validation_runs", "model_builds", "schema_migrations", "alert_deliveries"}


def comparable(columns: list[tuple[str, str]]) -> str:
    """A select list of (name, DuckDB type) columns fit to compare rows of two tables: a list
    column holds its group's values in no particular order (the yearly models' lists), so it is
    compared sorted."""
    return ", ".join(f'list_sort("{c}")' if t.endswith("[]") else f'"{c}"' for c, t in columns)


def compare(before: str, after: str, skip: set[str] | frozenset[str] = frozenset()) -> bool:
    con = duckdb.connect()
    con.execute(f"attach '{before}' as b (read_only)")
    con.execute(f"attach '{after}' as a (read_only)")
    names = lambda db: {
        r[0]
        for r in con.execute(  # noqa: E731
            "select table_name from duckdb_tables() where database_name = ? union "
            "select view_name from duckdb_views() where database_name = ? and not internal",
            [db, db],
        ).fetchall()
    }
    tb, ta = names("b"), names("a")
    same = True
    for t in sorted(tb | ta):
        if t in LOGS or t in skip:
            continue
        if t not in tb or t not in ta:
            print(f"{t:<28} only in {'before' if t in tb else 'after'}")
            same = False
            continue
        types_b = dict(r[:2] for r in con.execute(f"describe b.{t}").fetchall())
        cols_b = list(types_b)
        cols_a = [r[0] for r in con.execute(f"describe a.{t}").fetchall()]
        cols = [c for c in cols_b if c in cols_a and c not in PROVENANCE]
        sel = comparable([(c, types_b[c]) for c in cols])
        n_b = con.execute(f"select count(*) from b.{t}").fetchone()[0]
        n_a = con.execute(f"select count(*) from a.{t}").fetchone()[0]
        only_b = con.execute(
            f"select count(*) from (select {sel} from b.{t} except all select {sel} from a.{t})"
        ).fetchone()[0]
        only_a = con.execute(
            f"select count(*) from (select {sel} from a.{t} except all select {sel} from b.{t})"
        ).fetchone()[0]
        extra = sorted(set(cols_a) ^ set(cols_b))
        ok = only_a == only_b == 0
        same &= ok
        print(
            f"{t:<28} {n_b:>8} -> {n_a:>8} rows  {'same' if ok else f'DIFFERENT ({only_b} only before, {only_a} only after)'}"
            + (f"  columns added/removed: {', '.join(extra)}" if extra else "")
        )
    return same


if __name__ == "__main__":
    sys.exit(0 if compare(sys.argv[1], sys.argv[2]) else 1)
