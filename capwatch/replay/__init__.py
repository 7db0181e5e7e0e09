"""Replay: the real yfinance code path fed Yahoo-shaped responses built offline, no network.

``capwatch.replay.yahoo`` answers yfinance's HTTP requests from in-memory frames (faults can be
injected per ticker); ``capwatch.replay.market`` generates a seeded market shaped like real data.
Used by the ``replay:demo`` / ``replay:csv:DIR`` sources (``capwatch demo``), the tests and the
benchmark. Production code reaches it only when a user names a ``replay:`` source.
"""

from __future__ import annotations

import requests
from requests.adapters import BaseAdapter


def offline_session(adapter: BaseAdapter) -> requests.Session:
    """A requests Session whose traffic is answered by ``adapter`` (OfflineYahoo, OfflineSec)."""
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def replay_session(spec: str, latency: float = 0.0) -> requests.Session:
    """A yfinance session answered offline: ``demo`` (the generated market) or ``csv:DIR``."""
    from capwatch.replay.yahoo import OfflineYahoo, frames_from_csv

    if spec == "demo":
        from capwatch.replay.market import generate_market

        frames = generate_market().yahoo_frames()
    elif spec.startswith("csv:"):
        frames = frames_from_csv(spec[4:])
    else:
        raise ValueError(f"replay source {spec!r}: use replay:demo or replay:csv:DIR")
    return offline_session(OfflineYahoo(frames, latency=latency))
