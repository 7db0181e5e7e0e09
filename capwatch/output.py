"""What query commands print: a readable table, JSON or CSV of the same rows (``--format``).

Kept free of pandas, Prefect and Great Expectations so read-only commands start fast. Values in
SQL are written as literals by ``lit``: DuckDB's Python parameter binding imports pandas (~2 s
cold) to check each parameter's type, which a command printing five rows should not pay.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date, datetime
from decimal import Decimal

FORMATS = ("table", "json", "csv")


def lit(value) -> str:
    """A SQL literal for a Python value (strings quoted with '' escaping: safe for any text)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMPTZ '{value.isoformat()}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _plain(value):
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def to_json(columns: list[str], rows: list[tuple]) -> str:
    """One JSON array of objects, dates as ISO strings, numbers as numbers."""
    return json.dumps(
        [{c: _plain(v) for c, v in zip(columns, r, strict=True)} for r in rows], indent=1
    )


def to_csv(columns: list[str], rows: list[tuple]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow(
            [
                ""
                if v is None
                else json.dumps(_plain(v))
                if isinstance(v, (list, dict))
                else _plain(v)
                for v in r
            ]
        )
    return buf.getvalue().rstrip("\n")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1e5 else f"{v:,.2f}" if abs(v) >= 1 else f"{v:.4g}"
    return str(_plain(v))


def to_table(columns: list[str], rows: list[tuple]) -> str:
    """A plain aligned table (numbers right-aligned)."""
    text = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(t[i]) for t in text]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]

    def line(cells):
        return "  ".join(
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(t) for t in text]
    if not rows:
        out.append("(no rows)")
    return "\n".join(out)


def render(columns: list[str], rows: list[tuple], fmt: str, table=None) -> str:
    """``rows`` in ``fmt``; ``table`` formats the human table where a command has its own."""
    if fmt == "json":
        return to_json(columns, rows)
    if fmt == "csv":
        return to_csv(columns, rows)
    return table(rows) if table else to_table(columns, rows)
