"""The ``capwatch`` command line.

Each command builds one ``Settings`` (options over ``CAPWATCH_*`` variables) and passes it down.
Commands that load data run the Prefect flows, loaded from their entrypoint the way a Prefect worker
loads them (``capwatch.resources.flows_file``): the library never imports the orchestration layer.
Read-only commands import neither Prefect nor Great Expectations.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path

import click

from capwatch.settings import Settings, SettingsError


def _db_option(f):
    return click.option(
        "--db",
        type=click.Path(dir_okay=False),
        default=None,
        help="DuckDB warehouse file (default ./capwatch.duckdb, or CAPWATCH_DB).",
    )(f)


def _source_option(f):
    return click.option(
        "--source",
        default=None,
        help="yahoo (default, or CAPWATCH_SOURCE), csv:DIR, replay:demo or replay:csv:DIR.",
    )(f)


def _shares_source_option(f):
    return click.option(
        "--shares-source",
        default=None,
        help="Share counts besides the price source's: auto (default, or CAPWATCH_SHARES_SOURCE: "
        "SEC EDGAR with live Yahoo), sec, none, replay:demo or replay:csv:DIR (SEC answered offline).",
    )(f)


def _format_option(f):
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        show_default=True,
        help="table for people; json (an array of objects) or csv for scripts.",
    )(f)


def _accept_corrections_option(f):
    return click.option(
        "--accept-corrections",
        is_flag=True,
        help="Apply corrections that rewrite many stored rows of a ticker by one factor (held by default; "
        "what they replace is kept in `revisions` either way).",
    )(f)


def _tickers(value: str | None) -> list[str] | None:
    return [t.strip() for t in value.split(",") if t.strip()] if value else None


# Exit codes (README, "Exit codes"): scripts can tell a partial run from a broken one.
EXIT_OK = 0
EXIT_PARTIAL = (
    1  # the run completed, but some requested tickers failed or rows were held or quarantined
)
EXIT_USAGE = 2  # a command line click refuses (unknown option, bad value)
EXIT_CONFIG = 3  # a setting, the alert configuration, a source, a symbol
EXIT_WAREHOUSE = 4  # the warehouse file: missing, busy, corrupt, not DuckDB, disk full
EXIT_FAILED = (
    5  # nothing landed: every requested ticker failed, the source is unreachable, a model fault
)
EXIT_INTERNAL = 6  # anything else (a bug): run again with --debug for the traceback


def _fail(message: str, code: int = EXIT_CONFIG) -> None:
    click.echo(f"capwatch: {message}", err=True)
    sys.exit(code)


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of a failure."""
    import duckdb

    from capwatch.alerts import AlertConfigError
    from capwatch.extract import SourceUnreachable
    from capwatch.symbols import InvalidSymbol
    from capwatch.validate.audits import ModelGateFailed
    from capwatch.warehouse import WarehouseError

    if isinstance(exc, duckdb.OutOfMemoryException):
        return EXIT_CONFIG
    if isinstance(exc, WarehouseError | duckdb.IOException):
        return EXIT_WAREHOUSE
    if isinstance(exc, SourceUnreachable | ModelGateFailed):
        return EXIT_FAILED
    if isinstance(
        exc, SettingsError | AlertConfigError | InvalidSymbol | FileNotFoundError | ValueError
    ):
        return EXIT_CONFIG
    if isinstance(exc, OSError):
        return EXIT_WAREHOUSE
    return EXIT_INTERNAL


def one_line(exc: BaseException) -> str:
    """An error as one line: no traceback, no multi-line engine messages."""
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"disk full writing {exc.filename or 'the warehouse'}: free some space and run again"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "Out of Memory" in text:
        return (
            "DuckDB ran out of memory under its cap (CAPWATCH_DUCKDB_MEMORY_LIMIT): raise the cap or unset it "
            f"({text[:120]})"
        )
    if "Corrupt database file" in text or "checksum" in text:
        return f"the warehouse is damaged ({text[:160]}): run `capwatch check`, then restore it from a backup"
    if "No space left on device" in text:
        return "disk full while writing the warehouse: free some space and run again (nothing half-written was kept)"
    return text


def _settings(**overrides) -> Settings:
    """The command's settings; a bad CAPWATCH_* value is one clear line."""
    try:
        return Settings.from_env(**overrides)
    except SettingsError as exc:
        _fail(str(exc))


def _check_counts_source(settings: Settings) -> None:
    """A run that would ask SEC without its User-Agent stops here, in one line (exit 3)."""
    try:
        settings.check_counts_source()
    except SettingsError as exc:
        _fail(str(exc))


@contextmanager
def _read_only(settings: Settings) -> Iterator:
    """The warehouse opened for reading; a missing or unusable file is one clear line."""
    from capwatch.warehouse import WarehouseError, open_warehouse

    try:
        with open_warehouse(settings, read_only=True) as con:
            yield con
    except WarehouseError as exc:
        _fail(str(exc), EXIT_WAREHOUSE)


@cache
def _flow(name: str):
    """A flow of flows/pipeline.py, loaded from its entrypoint (as a Prefect worker does)."""
    from prefect.flows import load_flow_from_entrypoint

    from capwatch.resources import flows_file

    return load_flow_from_entrypoint(f"{flows_file()}:{name}", use_placeholder_flow=False)


def _report_run(summary, warehouse: str) -> None:
    """Print what the run did, then exit with its code (0, or 1 when anything failed or was held,
    5 when nothing landed at all)."""
    if summary.skipped:
        click.echo(summary.skipped)
    click.echo(
        f"loaded {summary.tickers} tickers into {warehouse}: {summary.rows_inserted} rows new, "
        f"{summary.rows_updated} corrected, {summary.rows_quarantined} quarantined"
        + (f" ({summary.rows_held} of them corrections held)" if summary.rows_held else "")
    )
    for result in summary.load:
        for reason in result.held_reasons:
            click.echo(f"  held: {reason}")
    for p in summary.problems:
        click.echo(f"  problem: {p}", err=True)
    from capwatch.report import format_held

    for line in format_held(summary.held):
        click.echo(f"  {line}")
    for line in format_held(summary.refused, label="refused"):
        click.echo(f"  {line}")
    for note in summary.notes:
        click.echo(f"  note: {note}")
    for m in summary.models:
        click.echo(f"  model {m.name}: {m.rows} rows ({m.seconds:.2f}s)")
    if summary.alerts:
        a = summary.alerts
        click.echo(
            f"alerts: {a.new_events} new events, {a.sent} deliveries sent, {a.failed} failed (retried next run)"
        )
    failed = {p.ticker for p in summary.problems if p.dataset in ("prices", "symbol")}
    if summary.requested and failed >= set(summary.requested) and not summary.skipped:
        click.echo(
            f"capwatch: nothing landed: every requested ticker failed ({len(failed)})", err=True
        )
        sys.exit(EXIT_FAILED)
    if summary.problems or summary.held or summary.rows_quarantined or summary.rows_held:
        sys.exit(EXIT_PARTIAL)


def _run_flow(name: str, **kwargs):
    """Run a flow (failures become one line and an exit code, in ``_Cli.invoke``). A watchdog
    ends Prefect's temporary server if this command is killed (``capwatch.orphans``)."""
    from capwatch.orphans import start_watchdog

    start_watchdog()
    flow = _flow(name)  # imports Prefect, which sets up its logging
    if not click.get_current_context().meta.get("capwatch.verbose"):
        _quiet_prefect_console()
    return flow(**kwargs)


def _quiet_prefect_console() -> None:
    """Prefect's console lines (temporary server, task states, tracebacks) only with --verbose:
    the command prints its own summary and one line per failure. Logs still reach a Prefect API."""
    import logging

    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict)),
    ]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if "Console" in type(handler).__name__:
                handler.setLevel(logging.CRITICAL + 1)


class _Cli(click.Group):
    """Every failure is one line on stderr and a documented exit code; --debug shows the traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - turned into one line and an exit code
            if ctx.meta.get("capwatch.debug"):
                raise
            click.echo(f"capwatch: {one_line(exc)}", err=True)
            sys.exit(exit_code_for(exc))


@click.group(cls=_Cli)
@click.option("--debug", is_flag=True, help="Show the full traceback of a failure.")
@click.option("--verbose", is_flag=True, help="Show Prefect's own log lines while a flow runs.")
@click.pass_context
def main(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """capwatch: market-cap history and largest one-day losses, in a DuckDB file.

    Exit codes: 0 ok; 1 completed, but some tickers failed or rows were held; 2 usage; 3
    configuration; 4 warehouse file (busy, corrupt, disk full); 5 nothing landed; 6 internal error.

    Example: capwatch backfill --source csv:../shared/marketdata --start 2010-01-01 --end 2026-05-29
    """
    ctx.meta["capwatch.debug"] = debug
    ctx.meta["capwatch.verbose"] = verbose
    # Files capwatch creates (the warehouse, its WAL) are the user's alone.
    os.umask(0o077)
    # Prefect's local server: no telemetry (offline it only logs errors, and it can lock SQLite at start).
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Its temporary server gets 90 s to start (Prefect's default 20 s fails on a busy machine).
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")


@main.command()
@_db_option
@click.option(
    "--tickers", default=None, help="Comma-separated tickers (default: the configured universe)."
)
@_source_option
@_shares_source_option
@_accept_corrections_option
def run(
    db: str | None,
    tickers: str | None,
    source: str | None,
    shares_source: str | None,
    accept_corrections: bool,
) -> None:
    """Run the daily flow: recent days for the universe, then the models.

    On an empty warehouse it first backfills the default history (5 years).

    Example: capwatch run --db capwatch.duckdb
    """
    settings = _settings(db_path=db, source=source, shares_source=shares_source)
    _check_counts_source(settings)
    summary = _run_flow(
        "daily",
        tickers=_tickers(tickers),
        source=settings.source,
        shares_source=settings.shares_source,
        db=str(settings.db_path),
        accept_corrections=accept_corrections,
    )
    _report_run(summary, settings.warehouse_name())


@main.command()
@_db_option
@click.option(
    "--start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First date, YYYY-MM-DD."
)
@click.option(
    "--end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last date, YYYY-MM-DD."
)
@click.option(
    "--tickers", default=None, help="Comma-separated tickers (default: the configured universe)."
)
@_source_option
@_shares_source_option
@click.option(
    "--alert-history",
    is_flag=True,
    help="Also send alerts for events in the range (default: record only).",
)
@click.option(
    "--refresh", is_flag=True, help="Fetch the whole range again, even the parts already loaded."
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=None,
    help="Tickers per chunk (default CAPWATCH_CHUNK_SIZE, 25).",
)
@click.option(
    "--chunk-years",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Years per chunk: fewer, larger chunks mean fewer requests.",
)
@_accept_corrections_option
def backfill(
    db: str | None,
    start,
    end,
    tickers: str | None,
    source: str | None,
    shares_source: str | None,
    alert_history: bool,
    refresh: bool,
    chunk_size: int | None,
    chunk_years: int,
    accept_corrections: bool,
) -> None:
    """Load a date range (only what is not loaded yet), then rebuild the models.

    Example: capwatch backfill --start 2024-01-01 --end 2024-12-31 --tickers NVDA,AAPL
    """
    settings = _settings(db_path=db, source=source, shares_source=shares_source)
    _check_counts_source(settings)
    summary = _run_flow(
        "backfill",
        start=start.date(),
        end=end.date(),
        tickers=_tickers(tickers),
        source=settings.source,
        shares_source=settings.shares_source,
        db=str(settings.db_path),
        alert_history=alert_history,
        refresh=refresh,
        chunk_size=chunk_size,
        chunk_years=chunk_years,
        accept_corrections=accept_corrections,
    )
    _report_run(summary, settings.warehouse_name())


@main.command()
@_db_option
@click.option(
    "--full",
    is_flag=True,
    help="Rebuild every model over the whole history (default: what changed).",
)
def build(db: str | None, full: bool) -> None:
    """Rebuild the models without loading anything: what loads changed since the last build (with
    the last weeks restated), everything when a model's SQL changed, or everything with --full.

    Example: capwatch build --full
    """
    import uuid

    from capwatch.report import format_held, quarantined_in_run
    from capwatch.transform import build_and_gate
    from capwatch.validate.audits import ModelGateFailed
    from capwatch.warehouse import WarehouseError, open_warehouse

    settings = _settings(db_path=db)
    run_id = f"build-{uuid.uuid4().hex[:12]}"
    try:
        with open_warehouse(settings) as con:
            runs = build_and_gate(con, run_id, full=full)
            held = quarantined_in_run(con, run_id)
    except (WarehouseError, ModelGateFailed) as exc:
        _fail(one_line(exc), exit_code_for(exc))
    if not runs:
        click.echo(
            f"{settings.db_path}: nothing loaded since the last build and no model changed: nothing to do"
        )
    for m in runs:
        click.echo(f"  model {m.name}: {m.rows} rows ({m.seconds:.2f}s)")
    for line in format_held(held):
        click.echo(f"  {line}")


@main.command()
@_db_option
def check(db: str | None) -> None:
    """Check the warehouse file (every block's checksum, schema version, a stray WAL) and its data
    (keys, model audits), and say what to do. Never writes the file. Exit 0 when sound, 4 when not.

    Example: capwatch check --db capwatch.duckdb
    """
    from capwatch.check import check_file

    findings = check_file(_settings(db_path=db).db_path)
    for f in findings:
        click.echo(str(f))
    sys.exit(EXIT_OK if all(f.ok for f in findings) else EXIT_WAREHOUSE)


@main.command()
@_db_option
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=1), help="How many rows."
)
@click.option(
    "--by",
    type=click.Choice(["usd", "pct"]),
    default="usd",
    show_default=True,
    help="Rank by dollars or percent.",
)
@click.option(
    "--ticker",
    default=None,
    help="Only this company: any of its listings (GOOGL or GOOG) or its name (Alphabet).",
)
@click.option(
    "--on", "on", default=None, type=click.DateTime(["%Y-%m-%d"]), help="Only this trading day."
)
@_format_option
def losses(db: str | None, top: int, by: str, ticker: str | None, on, fmt: str) -> None:
    """Show the largest one-day market-cap losses.

    Example: capwatch losses --on 2025-01-27 --top 5 --format json
    """
    from capwatch.output import render
    from capwatch.report import LOSS_COLUMNS, format_losses, largest_losses

    if ticker is not None and not COMPANY_OR_SYMBOL.fullmatch(ticker.strip()):
        _fail(
            f"--ticker {ticker!r} is not a valid symbol or company name: give a ticker (GOOGL) "
            "or a company name (Alphabet)"
        )
    settings = _settings(db_path=db)
    with _read_only(settings) as con:
        _require_models(con, settings)
        rows = largest_losses(con, top=top, by=by, ticker=ticker, on=on.date() if on else None)
    click.echo(render(LOSS_COLUMNS, rows, fmt, format_losses))


# A ticker (BRK-B, BF.B) or a company name (Berkshire Hathaway, AT&T): letters, digits, spaces and
# a few marks; the value reaches SQL only as an escaped literal.
COMPANY_OR_SYMBOL = re.compile(r"[\w .,&'^=-]{1,60}")


def _require_models(con, settings: Settings) -> None:
    """A warehouse that has never been built says so in one line (exit 4)."""
    (n,) = con.execute(
        "select count(*) from duckdb_views() where view_name = 'largest_losses'"
    ).fetchone()
    if not n:
        _fail(
            f"{settings.db_path} has no models yet: run `capwatch backfill` or `capwatch run` first",
            EXIT_WAREHOUSE,
        )


@main.command()
@_db_option
@click.option(
    "--limit",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Quarantine reasons to list.",
)
@_format_option
def quality(db: str | None, limit: int, fmt: str) -> None:
    """Show the latest validation result of every suite, what sits in quarantine, and the share
    counts sources disagree on. json: one object with the three tables; csv: the quarantine.

    Example: capwatch quality --db capwatch.duckdb
    """
    import json

    from capwatch.output import to_csv, to_json
    from capwatch.report import QUALITY_COLUMNS, format_quality, quality_tables

    with _read_only(_settings(db_path=db)) as con:
        if fmt == "table":
            click.echo(format_quality(con, limit))
            return
        tables = quality_tables(con, limit)
    if fmt == "csv":
        click.echo(to_csv(QUALITY_COLUMNS["quarantine"], tables["quarantine"]))
    else:
        click.echo(
            json.dumps(
                {k: json.loads(to_json(QUALITY_COLUMNS[k], v)) for k, v in tables.items()}, indent=1
            )
        )


@main.command()
@_db_option
@click.option(
    "--on",
    "on",
    default=None,
    type=click.DateTime(["%Y-%m-%d"]),
    help="The trading day (default: the newest).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="reports",
    show_default=True,
    help="Where the HTML page and the charts (PNG, SVG) go.",
)
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=1), help="Losses listed."
)
@_format_option
def report(db: str | None, on, out: str, top: int, fmt: str) -> None:
    """Write a trading day's report: a self-contained HTML page with charts (largest losses, market
    value around the day, the ranking of the most valuable companies, groups, alerts), and each
    chart as PNG and SVG. Prints where it went and the day's losses.

    Example: capwatch report --on 2025-01-27 --out reports
    """
    from capwatch.dayreport import ReportError, build_report
    from capwatch.output import render

    settings = _settings(db_path=db)
    with _read_only(settings) as con:
        _require_models(con, settings)
        try:
            rep = build_report(con, on.date() if on else None, Path(out), top=top)
        except ReportError as exc:
            _fail(str(exc), EXIT_USAGE)
    cols, rows = rep.tables["day_losses"]
    if fmt == "table":
        click.echo(rep.headline)
        click.echo(
            f"report: {rep.html_path} ({rep.size_bytes / 1e3:,.0f} kB, {len(rep.charts)} charts)"
        )
        click.echo(render(cols, rows[:top], fmt))
    else:
        click.echo(render(cols, rows[:top], fmt))


@main.command()
@_db_option
def doctor(db: str | None) -> None:
    """Check the environment: package versions, the DuckDB file and the official CLI (one storage
    version), the Prefect API, alert channels and their secrets, the SEC User-Agent where SEC is
    asked. Says what to fix; exit 0 when nothing fails, 3 when something does.

    Example: capwatch doctor
    """
    from capwatch.doctor import run_checks

    findings = run_checks(_settings(db_path=db))
    for f in findings:
        click.echo(str(f))
    failed = [f for f in findings if f.level == "FAIL"]
    click.echo(f"\n{len(findings)} checks: {len(failed)} failed")
    sys.exit(EXIT_CONFIG if failed else EXIT_OK)


@main.command()
@_db_option
@click.argument("query")
@_format_option
def sql(db: str | None, query: str, fmt: str) -> None:
    """Run one SQL query on the warehouse, read-only (nothing can be changed through it).

    Example: capwatch sql "select * from largest_losses order by rank_usd limit 5" --format csv
    """
    import duckdb

    from capwatch.output import render

    with _read_only(_settings(db_path=db)) as con:
        try:
            cur = con.execute(query)
            columns = [d[0] for d in cur.description or []]
            rows = cur.fetchall() if columns else []
        except duckdb.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _fail(f"sql: {first}", EXIT_USAGE)
    click.echo(render(columns, rows, fmt))


@main.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default="capwatch-demo.duckdb",
    show_default=True,
    help="Where the demo warehouse goes (never CAPWATCH_DB: the demo does not write generated "
    "companies into your warehouse).",
)
@click.option("--tickers", default=30, show_default=True, help="How many generated tickers.")
def demo(db: str, tickers: int) -> None:
    """Run the whole pipeline offline on a generated market, through the real yfinance code path.

    The market (seeded, a few dozen tickers, 2019-2025, splits, quarterly share counts, a crash on
    2025-01-27) is served to yfinance as Yahoo-shaped responses, and its share counts also as SEC
    filings to the SEC client; nothing leaves the machine.

    Example: capwatch demo --db demo.duckdb
    """
    from capwatch.replay.market import generate_market, tickers_for
    from capwatch.report import format_losses, largest_losses

    path = Path(db)
    settings = _settings(db_path=path)
    if settings.warehouse == "ducklake":
        # Generated companies never go into a shared lake either: the demo keeps to its own file.
        click.echo(
            f"demo: writes its own file {path}, not the lake in CAPWATCH_LAKE_CATALOG "
            f"({settings.lake_catalog})"
        )
        settings = _settings(db_path=path, warehouse="duckdb")
    market = generate_market(n_tickers=tickers)
    csv_dir = Path(tempfile.mkdtemp(prefix="capwatch-demo-"))
    market.write_csv(csv_dir)
    start, end = market.prices["date"].min().date(), market.prices["date"].max().date()
    click.echo(
        f"demo: {tickers} generated tickers, {start}..{end}, served offline through yfinance -> {path}"
    )
    summary = _run_flow(
        "backfill",
        start=start,
        end=end,
        tickers=tickers_for(tickers),
        source=f"replay:csv:{csv_dir}",
        # share counts also from the market's filings, through the real SEC client, offline
        shares_source=f"replay:csv:{csv_dir}",
        db=str(path),
        warehouse="duckdb",
    )
    _report_run(summary, settings.warehouse_name())
    with _read_only(settings) as con:
        click.echo(f"\nLargest one-day losses on {market.crash_day}:")
        click.echo(format_losses(largest_losses(con, top=5, on=market.crash_day)))
        click.echo("\nLargest one-day losses in history:")
        click.echo(format_losses(largest_losses(con, top=5)))
    click.echo(
        f'\nQuery it yourself: duckdb {path} "select * from largest_losses order by rank_usd limit 10"'
    )


@main.group(invoke_without_command=True)
@_db_option
@click.option("--all", "everyone", is_flag=True, help="Also the tickers that left, with why.")
@_format_option
@click.pass_context
def universe(ctx, db: str | None, everyone: bool, fmt: str) -> None:
    """The tickers capwatch tracks, point in time (list, add, remove, sync from SEC's file).

    Without a synced universe, runs use capwatch/universe.toml (or CAPWATCH_TICKERS).

    Example: capwatch universe --all --format csv
    """
    ctx.obj = db
    if ctx.invoked_subcommand is not None:
        return
    from capwatch.output import render
    from capwatch.universe import MEMBER_COLUMNS, members

    settings = _settings(db_path=db)
    with _read_only(settings) as con:
        rows = members(con, everyone)
    if not rows and fmt == "table":
        click.echo(
            f"no synced universe in {settings.db_path}: runs use the default universe "
            f"({len(settings.tickers)} tickers, capwatch/universe.toml); `capwatch universe sync` builds one"
        )
        return
    click.echo(render(MEMBER_COLUMNS, rows, fmt))


def _universe_write(ctx):
    from capwatch.warehouse import open_warehouse

    settings = _settings(db_path=ctx.obj)
    return settings, open_warehouse(settings)


@universe.command("sync")
@click.option(
    "--source",
    "sec_source",
    default="sec",
    show_default=True,
    help="sec (SEC's company_tickers_exchange.json; needs CAPWATCH_SEC_USER_AGENT), or "
    "replay:demo / replay:csv:DIR (offline).",
)
@click.pass_context
def universe_sync(ctx, sec_source: str) -> None:
    """Build the US common-stock universe from SEC's company tickers/exchange file: new listings
    join, listings no longer there leave (with why), funds, warrants, units, rights, preferreds and
    OTC names are left out (README, "Universe").

    Example: capwatch universe sync
    """
    from capwatch.extract import make_counts_source
    from capwatch.universe import EXCHANGE_URL, parse_exchange_file, sync

    settings = _settings(db_path=ctx.obj, shares_source=sec_source)
    try:
        source = make_counts_source(settings, sec_source)
        listings = parse_exchange_file(source.client.get_json(EXCHANGE_URL))
    except (SettingsError, ValueError) as exc:
        _fail(str(exc))
    settings, opened = _universe_write(ctx)
    with opened as con:
        result = sync(con, listings, date.today())
    click.echo(str(result))
    for ticker, why in result.left:
        click.echo(f"  left: {ticker}: {why}")


@universe.command("add")
@click.argument("tickers", nargs=-1, required=True)
@click.pass_context
def universe_add(ctx, tickers: tuple[str, ...]) -> None:
    """Add tickers to the universe by hand.

    Example: capwatch universe add NVDA AVGO
    """
    from capwatch.symbols import InvalidSymbol, check_symbol
    from capwatch.universe import add

    try:
        symbols = [check_symbol(t) for t in tickers]
    except InvalidSymbol as exc:
        _fail(str(exc))
    _, opened = _universe_write(ctx)
    with opened as con:
        new = add(con, symbols, date.today())
    click.echo(f"added {len(new)}: {', '.join(new) or 'none (all were members)'}")


@universe.command("remove")
@click.argument("tickers", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why it leaves (kept with the ticker).")
@click.pass_context
def universe_remove(ctx, tickers: tuple[str, ...], reason: str) -> None:
    """Take tickers out of the universe (their history stays, and backfills still cover them).

    Example: capwatch universe remove XYZ --reason "acquired by ABC"
    """
    from capwatch.universe import remove

    _, opened = _universe_write(ctx)
    with opened as con:
        gone = remove(con, [t.strip().upper() for t in tickers], date.today(), reason)
    click.echo(f"removed {len(gone)}: {', '.join(gone) or 'none (none were members)'}")


@main.group()
def alerts() -> None:
    """Alert events and their deliveries (rules and channels: capwatch/alerts/alerts.toml)."""


@alerts.command("list")
@_db_option
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@_format_option
def alerts_list(db: str | None, limit: int, fmt: str) -> None:
    """What fired and what was delivered, newest first.

    Example: capwatch alerts list --limit 5
    """
    from capwatch.output import render

    columns = ["date", "rule", "company", "notify", "message", "sent", "failed"]
    with _read_only(_settings(db_path=db)) as con:
        rows = con.execute(
            f"""
            select e.date, e.rule, e.company, e.notify, e.message,
                   count(*) filter (where d.status = 'sent') as sent,
                   count(*) filter (where d.status in ('failed', 'uncertain')) as failed
            from alert_events e
            left join alert_deliveries d on d.rule = e.rule and d.company = e.company and d.date = e.date
            group by e.date, e.rule, e.company, e.notify, e.message, e.change_usd order by e.date desc, e.change_usd limit {int(limit)}
        """
        ).fetchall()

    def table(rows):
        lines = []
        for d, rule, _company, notify, message, sent, failed in rows:
            state = f"sent {sent}, failed {failed}" if notify else "recorded only (backfill)"
            lines.append(f"{d}  {rule:<14} {message}  [{state}]")
        return "\n".join(lines) or "(no alert events yet)"

    click.echo(render(columns, rows, fmt, table))


@alerts.command("test")
def alerts_test() -> None:
    """Send a test message to every configured channel and say which accepted it.

    Example: CAPWATCH_ALERT_URLS=json://127.0.0.1:8080/hook capwatch alerts test
    """
    from capwatch.alerts import AlertConfigError, Event, load_config, send
    from capwatch.alerts.config import scrub

    try:
        config = load_config(_settings())
    except AlertConfigError as exc:
        _fail(str(exc))
    if not config.channels:
        _fail(
            "no alert channels configured (capwatch/alerts/alerts.toml [channels] urls, or CAPWATCH_ALERT_URLS)"
        )
    ev = Event(
        "test",
        "TEST",
        date.today(),
        "TEST",
        -12.34,
        -1.5e9,
        1.2e10,
        1,
        "capwatch test alert: TEST -12.34% — market cap -$1.5B",
    )
    bad = 0
    for ch in config.channels:
        try:
            send(ch, ev, config.timeout_seconds)
            click.echo(f"ok      {ch.label}")
        except Exception as exc:  # noqa: BLE001 - reported per channel
            bad += 1
            click.echo(f"FAILED  {ch.label}: {scrub(f'{type(exc).__name__}: {exc}', ch)}")
    sys.exit(1 if bad else 0)


@alerts.command("resend")
@_db_option
@click.option("--rule", required=True)
@click.option("--company", required=True)
@click.option("--on", "on", required=True, type=click.DateTime(["%Y-%m-%d"]))
def alerts_resend(db: str | None, rule: str, company: str, on) -> None:
    """Send one recorded event again to every channel (e.g. one a backfill only recorded).

    Example: capwatch alerts resend --rule pct_drop --company NVDA --on 2025-01-27
    """
    from capwatch.alerts import AlertConfigError, deliver, find_event, load_config
    from capwatch.warehouse import WarehouseError, open_warehouse

    settings = _settings(db_path=db)
    try:
        config = load_config(settings)
        with open_warehouse(settings) as con:
            ev = find_event(con, rule, company, on.date())
            if ev is None:
                _fail(f"no alert event {rule}:{company}:{on.date()} (see `capwatch alerts list`)")
            report = deliver(con, config, run_id="resend", only=ev)
    except (AlertConfigError, WarehouseError) as exc:
        _fail(one_line(exc), exit_code_for(exc))
    click.echo(f"resent: {report.sent} delivered, {report.failed} failed")
    for e in report.errors:
        click.echo(f"  {e}", err=True)


@main.group()
def lake() -> None:
    """A DuckLake warehouse (CAPWATCH_WAREHOUSE=ducklake): import a file, open the SQL shell, maintain.

    Example: capwatch lake import capwatch.duckdb
    """


def _lake_settings() -> Settings:
    settings = _settings()
    if settings.warehouse != "ducklake":
        _fail(
            "the warehouse is one DuckDB file: set CAPWATCH_WAREHOUSE=ducklake and "
            "CAPWATCH_LAKE_CATALOG (and CAPWATCH_LAKE_DATA_PATH) to use a lake"
        )
    return settings


@lake.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def lake_import(file: str) -> None:
    """Copy a one-file warehouse into the (empty) lake, then build the models there.

    The file is only read (it is migrated to this capwatch's schema first). Example:
    CAPWATCH_WAREHOUSE=ducklake CAPWATCH_LAKE_CATALOG='postgres:dbname=capwatch host=db'
    CAPWATCH_LAKE_DATA_PATH=/srv/lake capwatch lake import capwatch.duckdb
    """
    from capwatch import lake as lake_mod
    from capwatch.transform import build_and_gate
    from capwatch.warehouse import WarehouseError, connection, open_warehouse

    settings = _lake_settings()
    try:
        with connection(file):  # brings the file to this schema version (its own lock)
            pass
        with open_warehouse(settings) as con:
            copied = lake_mod.import_file(con, str(Path(file).resolve()))
            runs = build_and_gate(con, "lake-import", full=True)
    except (WarehouseError, lake_mod.LakeError) as exc:
        _fail(one_line(exc), EXIT_WAREHOUSE)
    for table, n in copied.items():
        click.echo(f"{table:28} {n:>12,} rows")
    click.echo(f"models built in the lake: {len(runs)}")


@lake.command("maintain")
@click.option("--keep-days", default=7, show_default=True, help="Snapshots younger are kept.")
def lake_maintain(keep_days: int) -> None:
    """Merge small files, expire old snapshots, delete unneeded files (the weekly flow's work)."""
    from capwatch import lake as lake_mod
    from capwatch.warehouse import WarehouseError, open_warehouse

    settings = _lake_settings()
    try:
        with open_warehouse(settings) as con:
            done = lake_mod.retry_conflicts(
                lambda: lake_mod.maintain(con, keep_days), "maintenance"
            )
    except (WarehouseError, lake_mod.LakeError) as exc:
        _fail(one_line(exc), EXIT_WAREHOUSE)
    click.echo(
        f"data files {done['files_before']} -> {done['files_after']}, "
        f"snapshots {done['snapshots_before']} -> {done['snapshots_after']}"
    )


@lake.command("cli", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def lake_cli(args: tuple[str, ...]) -> None:
    """Open the official DuckDB CLI (the same version as capwatch's engine) on the lake, read-only.

    Extra arguments go to duckdb. Example: capwatch lake cli -c "select count(*) from prices_daily"
    """
    import shutil

    from capwatch import lake as lake_mod

    settings = _lake_settings()
    cli = Path(sys.executable).with_name("duckdb")
    binary = str(cli) if cli.exists() else shutil.which("duckdb")
    if not binary:
        _fail("no duckdb CLI found: `uv sync --all-groups` installs duckdb-cli beside capwatch")
    import duckdb

    with duckdb.connect() as con:  # installs the extensions where the CLI finds them
        lake_mod.install_extensions(con)
    setup = (
        f"set extension_directory = '{lake_mod.extension_dir()}'; "
        + lake_mod.attach_sql(settings.lake_catalog or "", settings.lake_data_path, read_only=True)
        + f"; use {lake_mod.LAKE};"
    )
    os.execv(binary, [binary, "-cmd", setup, *args])


if __name__ == "__main__":
    main()
