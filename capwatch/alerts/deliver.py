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
        where e.notify and e.withdrawn_at is null and not exists (
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


@dataclass
class Notice:
    """One message to one channel: every rule a company passed on a day that this channel has not
    been told about yet. The move's figures are the company-day's (the same for every rule); a
    notice for a company-day the channel already heard about is a follow-up naming the new rules."""

    events: list[Event]
    follow_up: bool = False
    kind: str = "notice"

    def __getattr__(
        self, name: str
    ):  # company, date, ticker, change_pct, ...: the events share them
        if name.startswith("__") or name in ("events", "reasons"):
            raise AttributeError(name)
        return getattr(self.events[0], name)

    @property
    def rules(self) -> list[str]:
        return sorted(e.rule for e in self.events)

    @property
    def rule(self) -> str:
        return "+".join(self.rules)

    @property
    def key(self) -> str:
        """Idempotency key: the same notice always has the same key (a retry is recognisable)."""
        return f"{self.company}:{self.date.isoformat()}:{self.rule}"

    @property
    def message(self) -> str:
        rules = f"rule{'s' if len(self.rules) > 1 else ''} " + ", ".join(self.rules)
        if self.follow_up:
            return f"follow-up for {self.date}: {self.events[0].message}; now also {rules}"
        return f"{self.events[0].message}; {rules}"


def plan_deliveries(
    con: duckdb.DuckDBPyConnection, config: AlertConfig, only: Event | None = None
) -> list[tuple[Channel, Notice]]:
    """Every (channel, notice) still to send, one notice per company-day and channel: read from
    the warehouse before any network call."""
    planned = []
    for channel in config.channels:
        groups: dict[tuple, list[Event]] = {}
        for ev in [only] if only else pending(con, channel):
            groups.setdefault((ev.company, ev.date), []).append(ev)
        for (company, day), evs in groups.items():
            (told,) = con.execute(
                "select count(*) > 0 from alert_deliveries where company = ? and date = ? "
                "and channel in (?, ?) and status = 'sent'",
                [company, day, channel.name, channel.legacy_key],
            ).fetchone()
            planned.append((channel, Notice(evs, follow_up=bool(told) and only is None)))
        if only is None:
            planned += [(channel, c) for c in _corrections(con, channel)]
    return planned


@dataclass
class Correction(Notice):
    """A channel was told about events that were later withdrawn: one message per company-day."""

    reasons: list[str] = field(default_factory=list)
    kind: str = "correction"

    @property
    def key(self) -> str:
        return f"correction:{self.company}:{self.date.isoformat()}:{self.rule}"

    @property
    def message(self) -> str:
        return f"correction for {self.date}: {self.company} " + "; ".join(self.reasons)


def _corrections(con: duckdb.DuckDBPyConnection, channel: Channel) -> list[Correction]:
    rows = con.execute(
        f"""
        select {EVENT_COLUMNS}, e.withdrawn_reason
        from alert_events e
        where e.withdrawn_at is not null
          and exists (select 1 from alert_deliveries d where d.rule = e.rule and d.company = e.company
                      and d.date = e.date and d.channel in (?, ?) and d.status = 'sent' and d.kind = 'notice')
          and not exists (select 1 from alert_deliveries d where d.rule = e.rule and d.company = e.company
                          and d.date = e.date and d.channel = ? and d.status = 'sent' and d.kind = 'correction')
        order by e.date, e.company, e.rule
        """,
        [channel.name, channel.legacy_key, channel.name],
    ).fetchall()
    groups: dict[tuple, tuple[list, list]] = {}
    for *fields, reason in rows:
        ev = Event(*fields)
        evs, reasons = groups.setdefault((ev.company, ev.date), ([], []))
        evs.append(ev)
        reasons.append(reason)
    return [Correction(evs, reasons=reasons) for evs, reasons in groups.values()]


def send_planned(
    config: AlertConfig, planned: list[tuple[Channel, Notice]], run_id: str, sleep=time.sleep
) -> tuple[list[list], DeliveryReport]:
    """Send each planned notice, retrying with backoff; touches no warehouse (so a slow endpoint
    never keeps anyone out of it). Returns the attempts as ``alert_deliveries`` rows (one per event
    of the notice), and a report (counted in notices)."""
    report, attempts = DeliveryReport(), []
    for channel, ev in planned:
        delay = config.backoff_seconds
        for attempt in range(1, config.attempts + 1):
            error, status = None, "sent"
            try:
                send(channel, ev, config.timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                # The error text can hold the expanded URL (a token, a password): never kept as is.
                error = scrub(f"{type(exc).__name__}: {exc}", channel)[:500]
                # A timeout may have been delivered all the same: "uncertain", and every retry
                # carries the same Idempotency-Key so the receiver can drop the copy.
                status = "uncertain" if _timed_out(exc) else "failed"
            now = datetime.now(UTC)
            attempts += [
                [
                    e.rule,
                    e.company,
                    e.date,
                    channel.name,
                    attempt,
                    now,
                    status,
                    error,
                    run_id,
                    ev.kind,
                ]
                for e in ev.events
            ]
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


def _timed_out(exc: BaseException) -> bool:
    import socket

    import requests

    return (
        isinstance(exc, requests.Timeout | socket.timeout | TimeoutError)
        or "timed out" in str(exc).lower()
    )


def record_attempts(con: duckdb.DuckDBPyConnection, attempts: list[list]) -> None:
    if attempts:
        con.executemany(
            "insert into alert_deliveries (rule, company, date, channel, attempt, attempted_at, status, error, "
            "run_id, kind) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            attempts,
        )


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
