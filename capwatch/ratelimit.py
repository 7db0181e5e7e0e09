"""One request budget per source, shared by every thread of a process and, through a Prefect
global concurrency limit with slot decay, by every worker on every machine.

SEC allows 10 requests per second per user (capwatch uses 8); Yahoo publishes no limit but answers
bursts with 429s (a few per second is safe). Each source paces every request through ``pace``:
the process-wide ``RateLimiter`` for its rate, then, when a limit name is set, Prefect's
``rate_limit`` (created once with ``prefect gcl create NAME --limit N --slot-decay-per-second N``).
"""

from __future__ import annotations

import random
import threading
import time


class RateLimiter:
    """At most ``per_second`` acquisitions per second, spaced evenly, shared by all threads."""

    def __init__(self, per_second: float, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for the next slot; returns the seconds waited."""
        with self._lock:
            now = self.clock()
            at = max(now, self._next)
            self._next = at + self.interval
        wait = at - now
        if wait > 0:
            self.sleep(wait)
        return wait


_LIMITERS: dict[tuple[str, float], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def process_limiter(source: str, per_second: float) -> RateLimiter:
    """The one limiter of this process for a source and rate: every client of that source in the
    process (all threads, all tasks) shares the budget."""
    with _LIMITERS_LOCK:
        key = (source, per_second)
        if key not in _LIMITERS:
            _LIMITERS[key] = RateLimiter(per_second)
        return _LIMITERS[key]


def pace(limiter: RateLimiter | None, prefect_limit: str | None = None) -> float:
    """Wait for one request's slot; returns the seconds waited in this process."""
    if prefect_limit:
        # A limit that does not exist fails loudly (strict): a silent no-op would let every
        # worker run at full speed against the source.
        from prefect.concurrency.sync import rate_limit

        rate_limit(prefect_limit, occupy=1, strict=True)
    return limiter.acquire() if limiter else 0.0


def backoff_delay(base_seconds: float, attempt: int) -> float:
    """Seconds before retry ``attempt`` (0-based): exponential, with jitter so that retrying
    clients do not come back all at once."""
    return base_seconds * (2**attempt) * (1 + random.random() / 2)
