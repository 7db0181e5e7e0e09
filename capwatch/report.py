"""Readable tables of what the models hold, for the CLI."""

from __future__ import annotations

from datetime import date

import duckdb

from capwatch.output import lit


def fmt_usd(v: float | None) -> str:
    if v is None:
        return "-"
    sign = "-" if v < 0 else "+"
    a = abs(v)
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6)):
        if a >= div:
            return f"{sign}${a / div:,.1f}{unit}"
    return f"{sign}${a:,.0f}"


LOSS_COLUMNS = [
    "rank_usd",
    "rank_pct",
    "ticker",
    "date",
    "prev_close",
    "close",
    "change_pct",
    "change_usd",
    "prev_market_cap",
    "market_cap",
    "company",
]


def company_filter(name: str) -> str:
    """SQL matching the company a user names: any of its listings (GOOGL and GOOG both find
    Alphabet), the ticker its counts are filed under, or its name, in any case."""
    n = lit(name.strip().upper())
    return (
        f"(upper(company) = {n} or upper(ticker) = {n} or company in ("
        f"select company from stg_count_series where upper(price_ticker) = {n} or upper(count_ticker) = {n}))"
    )


def largest_losses(
    con: duckdb.DuckDBPyConnection,
    top: int = 10,
    by: str = "usd",
    ticker: str | None = None,
    on: date | None = None,
) -> list[tuple]:
    """Rows of ``largest_losses`` (``LOSS_COLUMNS``): ranked by dollars or percent, optionally for
    one company (any listing or its name, ``company_filter``) or day."""
    if by not in ("usd", "pct"):
        raise ValueError("--by takes usd or pct")
    order = "change_usd" if by == "usd" else "change_pct"
    where = []
    if ticker:
        where.append(company_filter(ticker))
    if on:
        where.append(f"date = {lit(on)}")
    sql = (
        f"select {', '.join(LOSS_COLUMNS)} "
        f"from largest_losses {'where ' + ' and '.join(where) if where else ''} "
        f"order by {order}, ticker limit {int(top)}"
    )
    return con.execute(sql).fetchall()


def format_losses(rows: list[tuple]) -> str:
    header = (
        f"{'#usd':>5} {'#pct':>5}  {'ticker':<7} {'date':<10} {'close':>10} {'change':>8} "
        f"{'market cap change':>18} {'market cap':>11}  company"
    )
    lines = [header, "-" * len(header)]
    for (
        rank_usd,
        rank_pct,
        ticker,
        d,
        _prev_close,
        close,
        pct,
        usd,
        _prev_cap,
        cap,
        company,
    ) in rows:
        lines.append(
            f"{rank_usd:>5} {rank_pct:>5}  {ticker:<7} {d.isoformat():<10} {close:>10,.2f} {pct:>7.2f}% "
            f"{fmt_usd(usd):>18} {fmt_usd(cap).lstrip('+'):>11}  {company if company != ticker else ''}"
        )
    if not rows:
        lines.append("(no losses match)")
    return "\n".join(lines)


QUALITY_COLUMNS = {
    "validation": [
        "suite",
        "passed",
        "rows_checked",
        "rows_failed",
        "expectations",
        "failed",
        "validated_at",
    ],
    "quarantine": ["dataset", "reason", "rows", "tickers", "last_quarantined_at"],
    "share_count_conflicts": [
        "ticker",
        "share_class",
        "as_of",
        "sources",
        "max_ratio",
        "used_source",
    ],
}


def quality_tables(con: duckdb.DuckDBPyConnection, limit: int = 10) -> dict[str, list[tuple]]:
    """The latest run of each validation suite, quarantine counts by dataset and reason, and the
    share counts sources disagree on (``QUALITY_COLUMNS`` names the columns)."""
    runs = con.execute("""
        select suite, passed, rows_checked, rows_failed, expectations, failed, validated_at
        from validation_runs
        qualify row_number() over (partition by suite order by validated_at desc) = 1
        order by suite
    """).fetchall()
    q = con.execute(f"""
        select dataset, reason, count(*) as n, count(distinct ticker) as tickers, max(quarantined_at) as last
        from quarantine group by dataset, reason order by n desc, dataset, reason limit {int(limit)}
    """).fetchall()
    has_conflicts = con.execute(
        "select count(*) from duckdb_tables() where table_name = 'share_count_conflicts'"
    ).fetchone()[0]
    conflicts = (
        con.execute(f"""
            select ticker, share_class, as_of, sources, max_ratio, used_source
            from share_count_conflicts order by max_ratio desc, ticker, as_of limit {int(limit)}
        """).fetchall()
        if has_conflicts
        else []
    )
    return {"validation": runs, "quarantine": q, "share_count_conflicts": conflicts}


def format_quality(con: duckdb.DuckDBPyConnection, limit: int = 10) -> str:
    """``quality_tables`` as text."""
    t = quality_tables(con, limit)
    lines = [
        f"{'suite':<34} {'result':<6} {'rows':>10} {'failed':>8}  {'when':<19}  failed expectations"
    ]
    for suite, passed, rows, failed_rows, _n, failed, at in t["validation"]:
        lines.append(
            f"{suite:<34} {'pass' if passed else 'FAIL':<6} {rows:>10,} {failed_rows:>8,}  "
            f"{at.strftime('%Y-%m-%d %H:%M:%S'):<19}  {'; '.join(failed)}"
        )
    if not t["validation"]:
        lines.append("(no validation runs yet)")
    lines += ["", f"{'quarantine: dataset':<22} {'rows':>6} {'tickers':>7}  reason"]
    lines += [f"{d:<22} {n:>6} {tk:>7}  {r}" for d, r, n, tk, _ in t["quarantine"]] or [
        "(nothing quarantined)"
    ]
    if t["share_count_conflicts"]:
        lines += ["", "share counts the sources disagree on (share_count_conflicts):"]
        lines += [
            f"  {tk} {cls} as of {a}: {n} sources, up to {r:.4f}x apart; used {used}"
            for tk, cls, a, n, r, used in t["share_count_conflicts"]
        ]
    return "\n".join(lines)


def quarantined_in_run(
    con: duckdb.DuckDBPyConnection, run_id: str, by_models: bool = True
) -> list[tuple]:
    """What one run set aside, (ticker, date, dataset, reason): by the models (held out of moves,
    refused counts), or with ``by_models=False`` by the raw gate (rows that were not loaded)."""
    kind = "like" if by_models else "not like"
    return con.execute(
        f"select ticker, date, dataset, reason from quarantine where run_id = {lit(run_id)} "
        f"and coalesce(source, '') {kind} 'model:%' order by dataset, ticker, date"
    ).fetchall()


def format_held(held: list[tuple], limit: int = 10, label: str = "held") -> list[str]:
    """One line per held (or refused) row, grouped per (ticker, reason kind) when there are many."""
    if len(held) <= limit:
        return [f"{label}: {t} {d} ({ds}): {r}" for t, d, ds, r in held]
    groups: dict[tuple[str, str, str], list] = {}
    for t, d, ds, r in held:
        groups.setdefault((t, ds, r.split(":", 1)[0]), []).append(d)
    return [
        f"{label}: {t} ({ds}) {kind}: {len(ds_)} rows, "
        + (f"{min(x for x in ds_ if x)}..{max(x for x in ds_ if x)}" if any(ds_) else "no date")
        for (t, ds, kind), ds_ in groups.items()
    ]


def daily_markdown(con: duckdb.DuckDBPyConnection, summary) -> str:
    """The daily run's Prefect artifact: the latest day's largest moves, then the validation summary."""
    (day,) = con.execute("select max(date) from company_daily_moves").fetchone()
    lines = [f"# capwatch daily: {day}", ""]
    if day is not None:
        rows = con.execute(
            """
            select company, ticker, change_pct, change_usd, market_cap from company_daily_moves
            where date = ? and change_usd is not null order by abs(change_usd) desc limit 10
        """,
            [day],
        ).fetchall()
        lines += [
            "## Largest moves",
            "",
            "| company | ticker | change | market cap change | market cap |",
            "|---|---|---:|---:|---:|",
        ]
        lines += [
            f"| {c} | {t} | {p:+.2f}% | {fmt_usd(u)} | {fmt_usd(m).lstrip('+')} |"
            for c, t, p, u, m in rows
        ]
    runs = con.execute(
        """
        select suite, bool_and(passed), sum(rows_checked), sum(rows_failed), list(distinct f) filter (where f is not null)
        from (select *, unnest(case when len(failed) = 0 then [null] else failed end) as f from validation_runs where run_id = ?)
        group by suite order by suite
    """,
        [summary.run_id],
    ).fetchall()
    lines += [
        "",
        "## Validation",
        "",
        "| suite | result | rows | failed rows | failed expectations |",
        "|---|---|---:|---:|---|",
    ]
    lines += [
        f"| {s} | {'pass' if ok else 'FAIL'} | {n:,} | {bad:,} | {'; '.join(f or [])} |"
        for s, ok, n, bad, f in runs
    ]
    lines += [
        "",
        f"Loaded {summary.rows_inserted:,} new rows, {summary.rows_updated:,} corrected, "
        f"{summary.rows_quarantined:,} quarantined; {len(summary.problems)} problems.",
    ]
    lines += [f"- {p}" for p in summary.problems[:20]]
    return "\n".join(lines)
