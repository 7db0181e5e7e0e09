"""The Prefect flows: ``daily`` (after the US close) and ``backfill`` (any date range).

Both run extract -> validate -> load per chunk of tickers (one transaction each), then rebuild the
SQL models once. Tasks are thin: the work lives in ``capwatch.extract``, ``capwatch.validate``,
``capwatch.load`` and ``capwatch.transform``. Retries go on the extract task only, and only for
network failures (timeouts, rate limits).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.tasks import exponential_backoff

from capwatch.alerts import AlertConfig, deliver, evaluate, load_config
from capwatch.extract import (
    Extracted,
    Problem,
    Source,
    SourceUnreachable,
    make_source,
    split_valid_symbols,
)
from capwatch.load import LoadResult, load_batch
from capwatch.settings import Settings
from capwatch.transform import ModelRun, build_and_gate
from capwatch.validate import gate_raw
from capwatch.warehouse import connection

NEW_YORK = ZoneInfo("America/New_York")


def _retry_network_only(task, task_run, state) -> bool:
    """Retry the extract task for transient network failures, never for bad data or no network."""
    try:
        state.result()
    except SourceUnreachable:
        return False
    except Exception as exc:  # noqa: BLE001 - classification only
        name = type(exc).__name__
        return name in ("YFRateLimitError", "Timeout", "ReadTimeout", "ConnectTimeout", "ConnectionError")
    return False


@task(name="extract", retries=2, retry_delay_seconds=exponential_backoff(backoff_factor=5),
      retry_jitter_factor=0.5, retry_condition_fn=_retry_network_only, cache_policy=NO_CACHE)
def extract(source: Source, tickers: list[str], start: date, end: date) -> Extracted:
    return source.fetch(tickers, start, end)


@task(name="validate-and-load", cache_policy=NO_CACHE)
def validate_and_load(db_path: str, batch: Extracted, *, source: str, run_id: str, flow_name: str,
                      tickers: list[str], start: date, end: date, today: date) -> LoadResult:
    clean, quarantine, validation = gate_raw(batch, today)
    with connection(db_path) as con:
        return load_batch(con, clean, quarantine, source=source, run_id=run_id, flow=flow_name,
                          start=start, end=end, tickers=tickers, validation=validation)


@task(name="build-models", cache_policy=NO_CACHE)
def build_models(db_path: str, run_id: str) -> list[ModelRun]:
    """Rebuild the models; publish them only if the model gate passes (else the flow run fails)."""
    with connection(db_path) as con:
        return build_and_gate(con, run_id)


@dataclass
class AlertSummary:
    new_events: int = 0
    sent: int = 0
    failed: int = 0


@task(name="alert", cache_policy=NO_CACHE)
def alert(db_path: str, config: AlertConfig, run_id: str, since: date, notify_since: date | None) -> AlertSummary:
    """Record new events and deliver pending ones. A channel that is down never fails the run."""
    logger = get_run_logger()
    with connection(db_path) as con:
        new = evaluate(con, config, since=since, run_id=run_id, notify_since=notify_since)
        report = deliver(con, config, run_id)
    for ev in new:
        logger.info("alert event %s: %s", ev.key, ev.message)
    for err in report.errors:
        logger.warning("alert not delivered (will retry next run): %s", err)
    return AlertSummary(new_events=len(new), sent=report.sent, failed=report.failed)


@dataclass
class RunSummary:
    """What a flow run did, for the CLI and for tests."""

    run_id: str
    tickers: int = 0
    load: list[LoadResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    models: list[ModelRun] = field(default_factory=list)
    alerts: AlertSummary | None = None

    @property
    def rows_inserted(self) -> int:
        return sum(r.inserted for r in self.load)

    @property
    def rows_updated(self) -> int:
        return sum(r.updated for r in self.load)

    @property
    def rows_quarantined(self) -> int:
        return sum(r.quarantined for r in self.load)


def _run_id() -> str:
    try:
        return str(get_run_context().flow_run.id)
    except Exception:  # noqa: BLE001 - outside a flow run
        return uuid.uuid4().hex


def ny_today() -> date:
    return datetime.now(NEW_YORK).date()


def _ingest(flow_name: str, settings: Settings, source_spec: str, plan: list[tuple[list[str], date, date]],
            summary: RunSummary) -> None:
    """Extract, validate and load each (tickers, start, end) chunk; one transaction per chunk."""
    logger = get_run_logger()
    source = make_source(source_spec, concurrency=settings.yahoo_concurrency, retries=settings.yahoo_retries,
                         backoff_seconds=settings.yahoo_backoff_seconds)
    today = ny_today()
    for i, (tickers, start, end) in enumerate(plan, 1):
        batch = extract(source, tickers, start, end)
        result = validate_and_load(str(settings.db_path), batch, source=source.name, run_id=summary.run_id,
                                   flow_name=flow_name, tickers=tickers, start=start, end=end, today=today)
        summary.load.append(result)
        summary.problems += batch.problems
        summary.tickers += len(tickers)
        logger.info("[%d/%d] %s..%s %s: %s", i, len(plan), start, end, ",".join(tickers[:4]) + (
            f" +{len(tickers) - 4}" if len(tickers) > 4 else ""), result)
        for p in batch.problems:
            logger.warning("%s", p)


def _chunks(tickers: list[str], size: int) -> list[list[str]]:
    return [tickers[i:i + size] for i in range(0, len(tickers), size)]


@flow(name="capwatch-backfill", log_prints=True)
def backfill(start: date, end: date, tickers: list[str] | None = None, source: str = "yahoo",
             db: str | None = None, chunk_size: int | None = None, alert_history: bool = False) -> RunSummary:
    """Load [start, end] for the tickers (default: the configured universe), then rebuild the models.

    Alert events in the range are recorded but sent only with ``alert_history`` (nobody wants to be
    paged about 2022 by a backfill).
    """
    settings = Settings.from_env(db_path=db, tickers=tickers, chunk_size=chunk_size)
    if start > end:
        raise ValueError(f"backfill: start {start} is after end {end}")
    alert_config = load_config()
    good, bad = split_valid_symbols(list(settings.tickers))
    summary = RunSummary(run_id=_run_id(), problems=list(bad))
    for p in bad:
        get_run_logger().error("%s", p)
    plan = [(chunk, start, end) for chunk in _chunks(good, settings.chunk_size)]
    _ingest("backfill", settings, source, plan, summary)
    summary.models = build_models(str(settings.db_path), summary.run_id)
    summary.alerts = alert(str(settings.db_path), alert_config, summary.run_id, since=start,
                           notify_since=start if alert_history else None)
    return summary


@flow(name="capwatch-daily", log_prints=True)
def daily(tickers: list[str] | None = None, source: str = "yahoo", db: str | None = None,
          history_years: int | None = None, today: date | None = None) -> RunSummary:
    """Fetch the recent days for the universe and rebuild the models.

    Each ticker is fetched from a week before its newest stored day (so late corrections land);
    a ticker with nothing stored first gets ``history_years`` of history.
    """
    settings = Settings.from_env(db_path=db, tickers=tickers, history_years=history_years)
    alert_config = load_config()  # a bad channel URL fails here, before any data work
    today = today or ny_today()
    good, bad = split_valid_symbols(list(settings.tickers))
    summary = RunSummary(run_id=_run_id(), problems=list(bad))
    with connection(settings.db_path) as con:
        newest = dict(con.execute(
            "select ticker, max(date) from prices_daily where ticker in (select unnest(?::varchar[])) group by ticker",
            [good]).fetchall())
    default_start = today - timedelta(days=round(365.25 * settings.history_years))
    by_start: dict[date, list[str]] = {}
    for t in good:
        start = newest[t] - timedelta(days=settings.daily_lookback_days) if t in newest else default_start
        by_start.setdefault(start, []).append(t)
    plan = [(chunk, start, today) for start, ts in sorted(by_start.items()) for chunk in _chunks(ts, settings.chunk_size)]
    _ingest("daily", settings, source, plan, summary)
    summary.models = build_models(str(settings.db_path), summary.run_id)
    # Events of the last week are sent; older ones (a first run's history) are only recorded.
    recent = today - timedelta(days=settings.daily_lookback_days)
    summary.alerts = alert(str(settings.db_path), alert_config, summary.run_id,
                           since=min((p[1] for p in plan), default=recent), notify_since=recent)
    return summary
