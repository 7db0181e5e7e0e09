"""Operations alerts: when the pipeline itself is in trouble, the same channels hear about it.

Silence must never look like calm: a flow run that fails or crashes (Prefect flow hooks in
flows/pipeline.py), and a daily run in which the source returned nothing for most of the universe,
send one operations message to every channel. They do not go through the warehouse (which may be
the thing that broke): sent directly, retried with backoff like any delivery, logged, and keyed on
the flow run (or the day) so a receiver can drop a repeat.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date

from capwatch.alerts.channels import send
from capwatch.alerts.config import AlertConfig, scrub

log = logging.getLogger("capwatch.alerts")

# A daily run where at least this share of the requested tickers got no prices is an incident.
MOSTLY_EMPTY_SHARE = 0.5


@dataclass
class OpsNotice:
    key: str
    message: str
    date: date
    kind: str = "operations"


def send_ops(
    config: AlertConfig, key: str, message: str, day: date, sleep=time.sleep
) -> tuple[int, int]:
    """Send one operations message to every channel; returns (accepted, failed). Never raises."""
    notice = OpsNotice(key, message, day)
    ok = bad = 0
    for channel in config.channels:
        delay = config.backoff_seconds
        for attempt in range(1, config.attempts + 1):
            try:
                send(channel, notice, config.timeout_seconds)
            except Exception as exc:  # noqa: BLE001 - reported, never raised
                error = scrub(f"{type(exc).__name__}: {exc}", channel)[:300]
                log.warning(
                    "operations alert %s to %s failed (attempt %d): %s",
                    key,
                    channel.label,
                    attempt,
                    error,
                )
                if attempt < config.attempts:
                    sleep(delay)
                    delay *= 2
                continue
            ok += 1
            log.info("operations alert %s sent to %s", key, channel.label)
            break
        else:
            bad += 1
    return ok, bad


def mostly_empty(requested: list[str], failed: set[str]) -> bool:
    """True when the source gave nothing for most of a daily run's universe."""
    return len(requested) >= 4 and len(failed & set(requested)) >= MOSTLY_EMPTY_SHARE * len(
        requested
    )
