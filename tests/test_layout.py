"""The house rules of the layout (issue 12): one way for data and imports, SQL shipped with the code."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _unit(module: str) -> str | None:
    """capwatch.extract.yahoo -> capwatch.extract: a top-level module or subpackage of capwatch."""
    parts = module.split(".")
    if parts[0] == "flows":
        return "flows"
    return ".".join(parts[:2]) if parts[0] == "capwatch" and len(parts) > 1 else None


def import_graph() -> dict[str, set[str]]:
    """unit -> units it imports (at module level or inside functions)."""
    graph: dict[str, set[str]] = {}
    for path in [*(ROOT / "capwatch").rglob("*.py"), *(ROOT / "flows").rglob("*.py")]:
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        me = _unit(name) or "capwatch"
        deps = graph.setdefault(me, set())
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                u = _unit(t)
                if (
                    u
                    and u != me
                    and (
                        u in graph
                        or (ROOT / Path(*u.split("."))).exists()
                        or (ROOT / Path(*u.split("."))).with_suffix(".py").exists()
                    )
                ):
                    deps.add(u)
    return graph


def test_no_import_cycles_between_packages_and_modules():
    graph = import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")
    assert "capwatch.cli" in order and "capwatch.extract" in order


def test_the_library_never_imports_the_orchestration_layer():
    graph = import_graph()
    assert all("flows" not in deps for unit, deps in graph.items() if unit != "flows")
    assert "capwatch.settings" in graph["flows"]


def test_replay_is_reached_only_by_the_source_factory_and_the_demo():
    graph = import_graph()
    users = sorted(unit for unit, deps in graph.items() if "capwatch.replay" in deps)
    assert users == ["capwatch.cli", "capwatch.extract"]


def test_only_settings_reads_the_environment():
    readers = []
    for path in (ROOT / "capwatch").rglob("*.py"):
        text = path.read_text()
        for needle in (
            "os.environ.get(",
            "os.getenv(",
            'os.environ["CAPWATCH',
            "os.environ['CAPWATCH",
        ):
            if needle in text:
                readers.append(f"{path.relative_to(ROOT)}: {needle}")
    assert readers == ["capwatch/settings.py: os.environ.get("]


@pytest.mark.file_only
def test_raw_table_specs_match_the_migrated_warehouse(db):
    from capwatch.schema import RAW_TABLES

    for table in RAW_TABLES:
        cols = {r[0]: r[1] for r in db.execute(f"describe {table.name}").fetchall()}
        for c in table.columns:
            assert (
                cols[c].lower()
                == {"varchar": "varchar", "date": "date", "double": "double", "bigint": "bigint"}[
                    table.types[c]
                ]
            ), (table.name, c)
        keys = db.execute(
            "select constraint_column_names from duckdb_constraints() "
            "where table_name = ? and constraint_type = 'PRIMARY KEY'",
            [table.name],
        ).fetchall()
        assert [tuple(k) for (k,) in keys] == ([table.keys] if table.keyed else []), table.name
        not_null = {
            c
            for (c,) in db.execute(
                "select column_name from duckdb_columns() where table_name = ? and not is_nullable",
                [table.name],
            ).fetchall()
        }
        assert set(table.keys) <= not_null, table.name
        assert set(cols) == set(table.columns) | {"source", "loaded_at", "run_id"}, table.name
