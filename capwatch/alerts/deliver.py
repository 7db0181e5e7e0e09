"""Alert delivery: every pending event to every channel, each attempt recorded.

An event counts as delivered to a channel only when the endpoint accepted it; a failed channel is
retried with backoff within the run and again on the next run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from capwatch.alerts.channels import send
from capwatch.alerts.config import AlertConfig, Channel, scrub
from capwatch.alerts.rules import EVENT_COLUMNS, Event

log = logging.getLogger("capwatch.alerts")


def pending(con: duckdb.DuckDBPyConnection, channel: Channel) -> list[Event]:
    """Events to notify that this channel has not accepted yet."""
    rows = con.execute(
        f"""
        select {EVENT_COLUMNS}
        from alert_events e
        where e.notify and not exists (
            select 1 from alert_deliveries d
            where d.rule = e.rule and d.company = e.company and d.date = e.date
              and d.channel in (?, ?) and d.status = 'sent')
        order by e.date, e.change_usd
    """,
        [channel.name, channel.legacy_key],
    ).fetchall()
    return [ev for ev in (Event(*r) for r in rows) if channel.wants(ev.rule, ev.company)]


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def plan_deliveries(
    con: duckdb.DuckDBPyConnection, config: AlertConfig, only: Event | None = None
) -> list[tuple[Channel, Event]]:
    """Every (channel, event) still to send: read from the warehouse before any network call."""
    return [
        (channel, ev)
        for channel in config.channels
        for ev in ([only] if only else pending(con, channel))
    ]


def send_planned(
    config: AlertConfig, planned: list[tuple[Channel, Event]], run_id: str, sleep=time.sleep
) -> tuple[list[list], DeliveryReport]:
    """Send each planned delivery, retrying with backoff; touches no warehouse (so a slow endpoint
    never keeps anyone out of it). Returns the attempts as ``alert_deliveries`` rows, and a report."""
    report, attempts = DeliveryReport(), []
    for channel, ev in planned:
        delay = config.backoff_seconds
        for attempt in range(1, config.attempts + 1):
            error = None
            try:
                send(channel, ev, config.timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                # The error text can hold the expanded URL (a token, a password): never kept as is.
                error = scrub(f"{type(exc).__name__}: {exc}", channel)[:500]
            attempts.append(
                [
                    ev.rule,
                    ev.company,
                    ev.date,
                    channel.name,
                    attempt,
                    datetime.now(UTC),
                    "sent" if error is None else "failed",
                    error,
                    run_id,
                ]
            )
            if error is None:
                report.sent += 1
                log.info("alert %s sent to %s", ev.key, channel.label)
                break
            log.warning(
                "alert %s to %s failed (attempt %d/%d): %s",
                ev.key,
                channel.label,
                attempt,
                config.attempts,
                error,
            )
            if attempt < config.attempts:
                sleep(delay)
                delay *= 2
        else:
            report.failed += 1
            report.errors.append(f"{ev.key} -> {channel.label}: {error}")
    return attempts, report


def record_attempts(con: duckdb.DuckDBPyConnection, attempts: list[list]) -> None:
    if attempts:
        con.executemany("insert into alert_deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?)", attempts)


def deliver(
    con: duckdb.DuckDBPyConnection,
    config: AlertConfig,
    run_id: str,
    sleep=time.sleep,
    only: Event | None = None,
) -> DeliveryReport:
    """Send every pending event (or just ``only``, even if sent before) to every channel; record
    each attempt. Never raises for a send. (The flows use the three steps apart, so that no
    network call happens while they hold the warehouse.)"""
    attempts, report = send_planned(config, plan_deliveries(con, config, only), run_id, sleep)
    record_attempts(con, attempts)
    return report
