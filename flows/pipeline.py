"""The Prefect flows: ``daily`` (after the US close) and ``backfill`` (any date range).

Data flows one way: extract (parallel task runs, each staging its chunk as Parquet:
``capwatch.staging``) -> validate -> load (the flow is the one writer: one transaction per chunk,
in plan order), then transform + audit once, then alert. Tasks are thin: the work lives in
``capwatch.extract``, ``capwatch.validate``, ``capwatch.load``, ``capwatch.transform`` and
``capwatch.alerts``. Each flow builds one ``Settings`` from its parameters and the environment and
passes it down. Network retries happen per ticker inside the source (``capwatch.extract.yahoo``),
not as Prefect task retries (which would refetch a whole chunk); requests are paced per source
(``capwatch.ratelimit``, shared by every worker through a Prefect global rate limit when one is
named). Tasks carry no tags: Prefect asks its server for a tag's concurrency slot at each task run
(a database write), which cost a daily run ~2 s of waiting, and a tag limit counts task runs, not
requests. Large task arguments (the settings, which hold the universe; a chunk's tickers) go in
``quote``d: Prefect otherwise walks every element of them at each task run, looking for futures.

This module is the orchestration layer: it imports ``capwatch``, never the other way round. The
CLI and Prefect workers both load it from its entrypoint (``flows/pipeline.py:daily``).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.utilities.annotations import quote

from capwatch import intervals, lake
from capwatch.alerts import AlertConfig, evaluate, load_config
from capwatch.alerts.deliver import plan_deliveries, record_attempts, send_planned
from capwatch.alerts.ops import mostly_empty, send_ops
from capwatch.calendar import is_trading_day, previous_trading_day
from capwatch.dayreport import build_report
from capwatch.extract import Problem, Source, make_source, split_valid_symbols
from capwatch.load import LoadResult, load_batch
from capwatch.report import daily_markdown, quarantined_in_run
from capwatch.settings import Settings
from capwatch.staging import StagedChunk, Staging, chunk_label
from capwatch.transform import ModelRun, build_and_gate
from capwatch.universe import backfill_tickers, current_tickers
from capwatch.validate import gate_raw
from capwatch.warehouse import WarehouseError, checkpoint, open_warehouse

NEW_YORK = ZoneInfo("America/New_York")
T = TypeVar("T")


def notify_operations(flow, flow_run, state) -> None:
    """Prefect hook (on_failure, on_crashed): a run that failed or crashed reaches the alert channels."""
    try:
        settings = Settings.from_env()
        config = load_config(settings)
    except Exception:  # noqa: BLE001 - a broken configuration cannot page anyone
        return
    reason = " ".join(str(state.message or "").split())[:300]
    message = f"capwatch {flow.name} run {flow_run.name} {state.name.lower()}: {reason}"
    send_ops(config, f"ops:{flow_run.id}", message, ny_today())


@task(name="extract", cache_policy=NO_CACHE)
def extract(
    source: Source,
    staging: Staging,
    run_id: str,
    tickers: list[str],
    start: date,
    end: date,
    today: date,
) -> StagedChunk:
    """Fetch one chunk and stage it as Parquet; never touches the warehouse (runs in parallel)."""
    batch = source.fetch(tickers, start, end)
    return staging.write(run_id, source.name, tickers, start, end, today, batch)


@contextmanager
def writing(settings: Settings, holding: list[str] | None = None) -> Iterator:
    """The warehouse opened for writing, inside the writer limit's one slot when one is named
    (``CAPWATCH_WRITER_LIMIT``): writers on every worker then wait their turn in Prefect, and the
    file lock is only ever contended by processes outside Prefect (a user's DuckDB CLI). On a
    lake, ``holding`` (tickers, "models") is leased on the same connection for the block (see
    ``holding``). What it commits is checkpointed into the file once, when the flow ends
    (``checkpoint_at_end``)."""
    slot = nullcontext()
    if settings.writer_limit:
        from prefect.concurrency.sync import concurrency

        # strict: a limit that does not exist fails the run instead of letting writers collide
        slot = concurrency(settings.writer_limit, occupy=1, strict=True)
    with (
        slot,
        open_warehouse(settings, checkpoint_on_close=False) as con,
        leased(settings, con, holding or []),
    ):
        yield con


@contextmanager
def leased(settings: Settings, con, names: list[str]) -> Iterator:
    """On a lake, ``names`` (tickers, "models", "alerts") leased on the connection ``con`` for the
    block (capwatch/lake.py); on a file, or with no names, nothing."""
    if settings.warehouse != "ducklake" or not names:
        yield
        return
    with lake.leases(con, names):
        yield


@contextmanager
def holding(settings: Settings, names: list[str]) -> Iterator:
    """On a lake, ``names`` ("alerts": across connections) held against every other writer for the
    block (capwatch/lake.py: a lake has no locks, and no keys to stop two writers loading the same
    rows); on a file, nothing: its lock already admits one writer at a time."""
    if settings.warehouse != "ducklake":
        yield
        return
    with open_warehouse(settings) as con, leased(settings, con, names):
        yield


@contextmanager
def checkpoint_at_end(settings: Settings) -> Iterator[None]:
    """A flow's body: its writers leave what they commit in the file's write-ahead log when they
    close (``writing``), and the block ends, whether it succeeded or failed, with one checkpoint
    that moves it into the file, so that the file at rest is whole on its own (a copy of it, or
    `capwatch check`, needs no log beside it). Why once: every checkpoint of a file costs a base
    amount that grows with the file, whatever changed (DuckDB reads every table's metadata to keep
    its blocks: 0.13 s at 7.8 GB, 0.04 s at 1.7 GB), and a daily run opens it for writing five
    times. A commit that leaves a log over DuckDB's threshold (16 MiB: a backfill's chunks, the
    models) is still checkpointed at once. A failed checkpoint is logged, never raised over the
    flow's own outcome: the log stays, and the next open replays it."""
    try:
        yield
    finally:
        try:
            checkpoint(settings)
        except WarehouseError as exc:
            get_run_logger().warning(
                "the warehouse's write-ahead log was not checkpointed into %s (the next open "
                "replays it): %s",
                settings.db_path,
                exc,
            )


def committed(settings: Settings, work: Callable[[], T], what: str) -> T:
    """``work`` (one or more transactions) run once; on a lake run again from the new snapshot
    when its commit conflicts with another writer's (nothing of the failed attempt is kept)."""
    if settings.warehouse != "ducklake":
        return work()
    return lake.retry_conflicts(work, what)


@task(name="validate-and-load", cache_policy=NO_CACHE)
def validate_and_load(
    settings: Settings,
    chunk: StagedChunk,
    *,
    run_id: str,
    flow_name: str,
    accept_corrections: bool = False,
    con=None,
) -> LoadResult:
    """The writer: gate a staged chunk, load what passed, then forget the staged copy; on the
    writer's open connection ``con`` when given (``_load_staged``), else on its own. The load
    state is honest: a ticker's range counts as loaded only when nothing of it failed or was
    refused, and never past the day before the fetch (that day's bar may still change), so
    anything missing is fetched again by the next run."""
    batch = chunk.read()
    clean, quarantine, validation = gate_raw(batch, chunk.fetched_on)
    incomplete = {p.ticker for p in batch.problems} | set(quarantine["ticker"].dropna())
    completed = [t for t in chunk.tickers if t not in incomplete]
    loaded_until = min(chunk.end, chunk.fetched_on - timedelta(days=1))
    opened = writing(settings) if con is None else nullcontext(con)
    with opened as con, leased(settings, con, chunk.tickers):
        result = committed(
            settings,
            lambda: load_batch(
                con,
                clean,
                quarantine,
                source=chunk.source,
                run_id=run_id,
                flow=flow_name,
                start=chunk.start,
                end=chunk.end,
                tickers=chunk.tickers,
                validation=validation,
                completed=completed if loaded_until >= chunk.start else [],
                complete_until=loaded_until,
                accept_corrections=accept_corrections,
            ),
            "load",
        )
    chunk.discard()  # committed: the staged copy is no longer needed
    return result


@task(name="build-models", cache_policy=NO_CACHE)
def build_models(settings: Settings, run_id: str) -> tuple[list[ModelRun], list[tuple]]:
    """Rebuild the models; publish them only if the model audits pass (else the flow run fails).
    Returns the model runs and what the models newly held out or refused in this build."""
    logger = get_run_logger()
    with writing(settings, holding=["models"]) as con:
        runs = committed(settings, lambda: build_and_gate(con, run_id), "models")
        held = quarantined_in_run(con, run_id)
    for ticker, day, dataset, reason in held:
        logger.warning("held out of moves: %s %s (%s): %s", ticker, day, dataset, reason)
    return runs, held


@dataclass
class AlertSummary:
    new_events: int = 0
    sent: int = 0
    failed: int = 0


# A run's log names at most this many new alert events one by one: a backfill over decades records
# tens of thousands (28,590 at 1,500 tickers x 25 years), and each log line is a call to Prefect's
# API (13 s of that backfill's 166 s). All of them are in alert_events.
LOGGED_EVENTS = 50


@task(name="alert", cache_policy=NO_CACHE)
def alert(
    settings: Settings, config: AlertConfig, run_id: str, since: date, notify_since: date | None
) -> AlertSummary:
    """Record new events and deliver pending ones. A channel that is down never fails the run.
    The warehouse is held only to record events and attempts, never while sending."""
    logger = get_run_logger()
    # On a lake the alerts are held from evaluation to the record of what was sent, so that two
    # flow runs never send one event twice.
    with holding(settings, ["alerts"]):
        with writing(settings) as con:
            new = committed(
                settings,
                lambda: evaluate(
                    con, config, since=since, run_id=run_id, notify_since=notify_since
                ),
                "alerts",
            )
            planned = plan_deliveries(con, config)
        attempts, report = send_planned(config, planned, run_id)
        with writing(settings) as con:
            committed(settings, lambda: record_attempts(con, attempts), "alerts")
    for ev in new[:LOGGED_EVENTS]:
        logger.info("alert event %s: %s", ev.key, ev.message)
    if len(new) > LOGGED_EVENTS:
        logger.info(
            "... and %d more alert events recorded (`capwatch alerts list`)",
            len(new) - LOGGED_EVENTS,
        )
    for err in report.errors:
        logger.warning("alert not delivered (will retry next run): %s", err)
    return AlertSummary(new_events=len(new), sent=report.sent, failed=report.failed)


@dataclass
class RunSummary:
    """What a flow run did, for the CLI and for tests."""

    run_id: str
    tickers: int = 0
    requested: list[str] = field(default_factory=list)  # every ticker asked for, valid or not
    chunks: list[tuple[list[str], date, date]] = field(default_factory=list)
    load: list[LoadResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    models: list[ModelRun] = field(default_factory=list)
    alerts: AlertSummary | None = None
    skipped: str | None = None  # why nothing was done (a holiday, a range already loaded)
    held: list[tuple] = field(
        default_factory=list
    )  # (ticker, date, dataset, reason) newly held by the models
    refused: list[tuple] = field(default_factory=list)  # the same, refused by the raw gate
    notes: list[str] = field(default_factory=list)  # what was left out on purpose, said plainly
    resumed_chunks: int = 0  # chunks an earlier run had staged, loaded without fetching again

    @property
    def rows_inserted(self) -> int:
        return sum(r.inserted for r in self.load)

    @property
    def rows_updated(self) -> int:
        return sum(r.updated for r in self.load)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.quarantined for r in self.load)

    @property
    def rows_held(self) -> int:
        return sum(r.held for r in self.load)


def _run_id() -> str:
    try:
        return str(get_run_context().flow_run.id)
    except Exception:  # noqa: BLE001 - outside a flow run
        return uuid.uuid4().hex


def ny_today() -> date:
    return datetime.now(NEW_YORK).date()


# The writer keeps its connection for the next chunk only when that chunk is already staged and
# fewer rows than this went through the connection: a daily run's chunks (~12,000 rows each) then
# share one open of the file (each open of a 25-year warehouse pays ~0.65 s to load the prices key
# at its first insert, and a checkpoint at its close), while a backfill's large chunks still each
# get their own, whose keys leave memory when it closes (see bench/WHOLE_MARKET_NOTES.md).
WRITER_ROWS_PER_OPEN = 250_000


def _load_staged(
    flow_name: str,
    settings: Settings,
    summary: RunSummary,
    accept_corrections: bool,
    first: StagedChunk,
    ready: Callable[[], StagedChunk | None],
    loaded: Callable[[StagedChunk], None] = lambda chunk: None,
) -> None:
    """Load ``first``, then on the same connection each chunk ``ready`` hands over without
    waiting (None: nothing staged yet), up to ``WRITER_ROWS_PER_OPEN`` rows; one transaction per
    chunk. The file is held only while there is a chunk to load, never while one is fetched."""
    with writing(settings) as con:
        chunk, rows = first, 0
        while chunk is not None:
            _load_chunk(flow_name, settings, chunk, summary, accept_corrections, con)
            loaded(chunk)
            rows += sum(chunk.rows.values())
            chunk = ready() if rows < WRITER_ROWS_PER_OPEN else None


def _load_chunk(
    flow_name: str,
    settings: Settings,
    chunk: StagedChunk,
    summary: RunSummary,
    accept_corrections: bool,
    con,
) -> None:
    logger = get_run_logger()
    span = f"{chunk.start}..{chunk.end}"
    result = validate_and_load.with_options(task_run_name=f"load {chunk.label} {span}")(
        quote(settings),
        quote(chunk),
        run_id=summary.run_id,
        flow_name=flow_name,
        accept_corrections=accept_corrections,
        con=quote(con),
    )
    summary.load.append(result)
    summary.problems += chunk.problems
    logger.info("%s %s: %s", span, chunk.label, result)
    for p in chunk.problems:
        logger.warning("%s", p)


def _load_leftovers(
    flow_name: str, settings: Settings, summary: RunSummary, accept_corrections: bool
) -> None:
    """Load what an earlier run fetched and staged but never loaded (it crashed after extracting):
    those chunks are not fetched again."""
    staging = Staging(settings.staging())
    staging.sweep()  # half-written chunks of a killed extract: fetched again if still missing
    leftovers = staging.pending()
    if not leftovers:
        return
    get_run_logger().info(
        "loading %d chunks staged by an earlier run that did not load them", len(leftovers)
    )
    rest = iter(leftovers)

    def resumed(chunk: StagedChunk) -> None:
        summary.resumed_chunks += 1

    for first in rest:
        _load_staged(
            flow_name,
            settings,
            summary,
            accept_corrections,
            first,
            lambda: next(rest, None),
            resumed,
        )


def _ingest(
    flow_name: str,
    settings: Settings,
    plan: list[tuple[list[str], date, date]],
    summary: RunSummary,
    accept_corrections: bool = False,
) -> None:
    """Extract the (tickers, start, end) chunks in parallel, each staged as Parquet; the flow
    itself is the one writer: it validates and loads the staged chunks in plan order, one
    transaction each, while up to ``extract_tasks`` later chunks are being fetched (chunks
    already staged when one is loaded go through the same open of the file: ``_load_staged``).
    Memory stays that of a few chunks whatever the universe."""
    source = make_source(settings)
    staging = Staging(settings.staging())
    today = ny_today()
    summary.chunks = plan
    summary.tickers = len({t for tickers, _, _ in plan for t in tickers})
    progress = (
        create_progress_artifact(progress=0.0, description=f"capwatch {flow_name}: chunks loaded")
        if plan
        else None
    )
    in_flight: deque = deque()
    todo = iter(plan)
    done = 0

    def submit_next() -> bool:
        nxt = next(todo, None)
        if nxt is None:
            return False
        tickers, start, end = nxt
        in_flight.append(
            extract.with_options(
                task_run_name=f"extract {chunk_label(tickers)} {start}..{end}"
            ).submit(quote(source), staging, summary.run_id, quote(tickers), start, end, today)
        )
        return True

    while len(in_flight) < settings.extract_tasks and submit_next():
        pass

    def take() -> StagedChunk:
        chunk = in_flight.popleft().result()
        submit_next()  # keep the extractors busy while this chunk loads
        return chunk

    def ready() -> StagedChunk | None:
        """The next chunk in plan order if its extract task has already finished."""
        return take() if in_flight and in_flight[0].wrapped_future.done() else None

    def loaded(chunk: StagedChunk) -> None:
        nonlocal done
        done += 1
        get_run_logger().info("[%d/%d] chunks loaded", done, len(plan))
        if progress:
            update_progress_artifact(progress, progress=100.0 * done / len(plan))

    while in_flight:
        _load_staged(flow_name, settings, summary, accept_corrections, take(), ready, loaded)
    if plan:
        with open_warehouse(settings, read_only=True) as con:
            summary.refused = quarantined_in_run(con, summary.run_id, by_models=False)
    outside = getattr(source, "tickers_outside", None)
    if outside and (extra := outside(summary.requested)):
        summary.notes.append(
            f"{source.name} holds {len(extra)} tickers not asked for; their rows were not loaded: "
            + ", ".join(extra[:10])
            + (", ..." if len(extra) > 10 else "")
        )


def _start_run(con, settings: Settings, ever: bool) -> tuple[RunSummary, list[str]]:
    """A run's summary and its valid tickers. The tickers: those named (--tickers,
    CAPWATCH_TICKERS); else the warehouse's synced universe (``capwatch universe``: every ticker
    ever a member for a backfill, today's members for the daily run); else the default universe
    (capwatch/universe.toml). Invalid symbols are the summary's first problems."""
    universe = list(settings.tickers)
    if not settings.tickers_explicit:
        universe = (backfill_tickers(con) if ever else current_tickers(con)) or universe
    good, bad = split_valid_symbols(universe)
    return RunSummary(run_id=_run_id(), problems=list(bad), requested=universe), good


@flow(
    name="capwatch-backfill",
    log_prints=True,
    timeout_seconds=12 * 3600,
    on_failure=[notify_operations],
    on_crashed=[notify_operations],
)
def backfill(
    start: date,
    end: date,
    tickers: list[str] | None = None,
    source: str | None = None,
    db: str | None = None,
    chunk_size: int | None = None,
    chunk_years: int = 5,
    shares_source: str | None = None,
    alert_history: bool = False,
    refresh: bool = False,
    accept_corrections: bool = False,
    warehouse: str | None = None,
) -> RunSummary:
    """Load [start, end] for the tickers (default: the configured universe), then rebuild the models.

    Only what ``load_intervals`` does not cover is fetched, in chunks of ``chunk_size`` tickers by
    ``chunk_years`` years, each recorded when it lands: a killed backfill resumes where it stopped,
    and a finished range fetches nothing (``refresh`` fetches it all again, e.g. after a vendor
    correction; loads stay idempotent). Alert events in the range are recorded but sent only with
    ``alert_history`` (nobody wants to be paged about 2022 by a backfill). ``warehouse``: the
    backend for this run ("duckdb" or "ducklake"; default CAPWATCH_WAREHOUSE).
    """
    settings = Settings.from_env(
        db_path=db,
        tickers=tickers,
        chunk_size=chunk_size,
        source=source,
        shares_source=shares_source,
        warehouse=warehouse,
    )
    settings.check_counts_source()  # SEC without its User-Agent: refused before any work
    if start > end:
        raise ValueError(f"backfill: start {start} is after end {end}")
    alert_config = load_config(settings)  # a bad channel URL fails here, before any data work
    logger = get_run_logger()
    with checkpoint_at_end(settings):
        with open_warehouse(settings, checkpoint_on_close=False) as con:
            summary, good = _start_run(con, settings, ever=True)
        _load_leftovers("backfill", settings, summary, accept_corrections)
        with open_warehouse(settings, read_only=True) as con:
            gaps = (
                {t: [(start, end)] for t in good}
                if refresh
                else intervals.missing(con, good, start, end)
            )
        for p in summary.problems:
            logger.error("%s", p)
        plan = intervals.plan_chunks(gaps, settings.chunk_size, chunk_years)
        if not plan:
            summary.skipped = (
                f"{start}..{end} is already loaded for {len(good)} tickers: nothing to fetch"
            )
            logger.info(summary.skipped)
        else:
            logger.info(
                "backfill %s..%s: %d chunks to load (%d of %d tickers have gaps)",
                start,
                end,
                len(plan),
                len(gaps),
                len(good),
            )
        _ingest("backfill", settings, plan, summary, accept_corrections=accept_corrections)
        summary.models, summary.held = build_models(quote(settings), summary.run_id)
        summary.alerts = alert(
            quote(settings),
            quote(alert_config),
            summary.run_id,
            since=start,
            notify_since=start if alert_history else None,
        )
        return summary


def newest_prices(con, tickers: list[str], today: date) -> dict[str, date]:
    """Each ticker's newest stored price day. The last two months are read first (a daily run's
    cost must not grow with the years stored); only tickers with nothing that recent are looked
    up in their whole history."""
    query = (
        "select ticker, max(date) from prices_daily where ticker in (select unnest(?::varchar[])) "
        "{} group by ticker"
    )
    recent = dict(
        con.execute(query.format("and date >= ?"), [tickers, today - timedelta(days=60)]).fetchall()
    )
    older = [t for t in tickers if t not in recent]
    if older:
        recent |= dict(con.execute(query.format(""), [older]).fetchall())
    return recent


@flow(
    name="capwatch-daily",
    log_prints=True,
    timeout_seconds=2 * 3600,
    on_failure=[notify_operations],
    on_crashed=[notify_operations],
)
def daily(
    tickers: list[str] | None = None,
    source: str | None = None,
    db: str | None = None,
    history_years: int | None = None,
    today: date | None = None,
    accept_corrections: bool = False,
    shares_source: str | None = None,
) -> RunSummary:
    """Fetch the recent days for the universe, rebuild the models, alert.

    Each ticker is fetched from a week before its newest stored day (so late corrections land);
    a ticker with nothing stored first gets ``history_years`` of history. On a day the NYSE does
    not trade, with the warehouse up to date, it does nothing and says so.
    """
    settings = Settings.from_env(
        db_path=db,
        tickers=tickers,
        history_years=history_years,
        source=source,
        shares_source=shares_source,
    )
    settings.check_counts_source()  # SEC without its User-Agent: refused before any work
    alert_config = load_config(settings)  # a bad channel URL fails here, before any data work
    logger = get_run_logger()
    today = today or ny_today()
    with checkpoint_at_end(settings):
        with open_warehouse(settings, checkpoint_on_close=False) as con:
            summary, good = _start_run(con, settings, ever=False)
        _load_leftovers("daily", settings, summary, accept_corrections)
        with open_warehouse(settings, read_only=True) as con:
            newest = newest_prices(con, good, today)
        if not is_trading_day(today):
            last_session = previous_trading_day(today)
            if good and all(newest.get(t) == last_session for t in good):
                summary.skipped = (
                    f"{today} is not an NYSE trading day and {last_session} is loaded: "
                    "nothing to do"
                )
                logger.info(summary.skipped)
                return summary
        default_start = today - timedelta(days=round(365.25 * settings.history_years))
        by_start: dict[date, list[str]] = {}
        for t in good:
            start = (
                newest[t] - timedelta(days=settings.daily_lookback_days)
                if t in newest
                else default_start
            )
            by_start.setdefault(start, []).append(t)
        plan = [
            (chunk, start, today)
            for start, ts in sorted(by_start.items())
            # a week per ticker: larger chunks; a first history: the backfill's chunk size
            for chunk in intervals.chunk_tickers(
                ts, settings.chunk_size if start == default_start else settings.daily_chunk_size
            )
        ]
        _ingest("daily", settings, plan, summary, accept_corrections=accept_corrections)
        failed = {p.ticker for p in summary.problems if p.dataset in ("prices", "symbol")}
        if mostly_empty(good, failed):
            examples = ", ".join(sorted(failed)[:8]) + (", ..." if len(failed) > 8 else "")
            message = (
                f"capwatch daily {today}: no prices from {settings.source} for {len(failed & set(good))} of "
                f"{len(good)} tickers ({examples}): a data outage, not a quiet day"
            )
            logger.error("%s", message)
            send_ops(alert_config, f"ops:empty:{today}", message, today)
        summary.models, summary.held = build_models(quote(settings), summary.run_id)
        # Events of the last week are sent; older ones (a first run's history) are only recorded.
        recent = today - timedelta(days=settings.daily_lookback_days)
        summary.alerts = alert(
            quote(settings),
            quote(alert_config),
            summary.run_id,
            since=min((p[1] for p in plan), default=recent),
            notify_since=recent,
        )
        with open_warehouse(settings, read_only=True) as con:
            markdown = daily_markdown(con, summary)
            try:  # the day's report page; a failure to draw it never fails the run
                report = build_report(con, None, settings.reports())
                markdown += "\n\n" + report.markdown()
                logger.info("report: %s", report.html_path)
            except Exception as exc:  # noqa: BLE001 - reported, the data run stands
                logger.warning("the day's report could not be written: %s", exc)
            create_markdown_artifact(
                key="capwatch-daily",
                markdown=markdown,
                description=f"capwatch daily run for {today}",
            )
        return summary


@flow(name="capwatch-freshness", log_prints=True, timeout_seconds=15 * 60)
def freshness(db: str | None = None, today: date | None = None) -> str | None:
    """After the last daily run's deadline (21:00 New York on trading days): has today's data
    landed? If not, every alert channel hears it -- on the day of a crash, silence must not look
    like calm. Returns the operations message sent, or None when all is well."""
    settings = Settings.from_env(db_path=db)
    alert_config = load_config(settings)
    logger = get_run_logger()
    today = today or ny_today()
    if not is_trading_day(today):
        logger.info("%s is not an NYSE trading day: nothing is due", today)
        return None
    try:
        with open_warehouse(settings, read_only=True) as con:
            newest, last_daily = con.execute(
                "select (select max(date) from prices_daily), "
                "(select max(loaded_at) from load_runs where flow = 'daily')"
            ).fetchone()
    except Exception as exc:  # noqa: BLE001 - the warehouse being unreadable is the news
        newest, last_daily = None, f"unknown (the warehouse cannot be read: {exc})"
    if newest is not None and newest >= today:
        logger.info("%s is loaded", today)
        return None
    message = (
        f"capwatch {today}, after the 21:00 New York deadline: no daily run has loaded {today} "
        f"(newest day stored: {newest}; last daily load: {last_daily})"
    )
    logger.error("%s", message)
    send_ops(alert_config, f"ops:stale:{today}", message, today)
    return message


@flow(name="capwatch-lake-maintenance", log_prints=True, timeout_seconds=4 * 3600)
def lake_maintenance(keep_days: int = 7) -> dict[str, int] | None:
    """Weekly, on a DuckLake warehouse: merge the small files that daily loads leave, write rows
    held inline in the catalog out to Parquet, expire snapshots older than ``keep_days`` and delete
    the files no snapshot needs. Readers and writers go on meanwhile; a commit that conflicts with
    theirs is done again. On a one-file warehouse there is nothing to do."""
    settings = Settings.from_env()
    logger = get_run_logger()
    if settings.warehouse != "ducklake":
        logger.info("the warehouse is one DuckDB file (CAPWATCH_WAREHOUSE=duckdb): nothing to do")
        return None
    with open_warehouse(settings) as con:
        done = lake.retry_conflicts(lambda: lake.maintain(con, keep_days), "maintenance")
    logger.info(
        "lake maintenance: %d -> %d data files, %d -> %d snapshots",
        done["files_before"],
        done["files_after"],
        done["snapshots_before"],
        done["snapshots_after"],
    )
    return done
