"""capwatch settings: one frozen object, defaults in code, ``CAPWATCH_*`` environment overrides."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

# Repository root: SQL models (transforms/) and migrations (warehouse/) live beside the package.
ROOT = Path(__file__).resolve().parent.parent
TRANSFORMS_DIR = ROOT / "transforms"
MIGRATIONS_DIR = ROOT / "warehouse" / "migrations"


def default_universe() -> list[str]:
    """Tickers of the default universe, from ``capwatch/universe.toml``."""
    text = resources.files("capwatch").joinpath("universe.toml").read_text()
    return list(tomllib.loads(text)["universe"]["tickers"])


@dataclass(frozen=True)
class Settings:
    db_path: Path = Path("capwatch.duckdb")
    source: str = "yahoo"
    tickers: tuple[str, ...] = field(default_factory=lambda: tuple(default_universe()))
    # On an empty warehouse the daily flow first backfills this many years.
    history_years: int = 5
    # The daily flow re-fetches this many calendar days before the newest stored date, so late
    # corrections from the source replace what was stored.
    daily_lookback_days: int = 7
    # Tickers per extract/load chunk: one transaction per chunk.
    chunk_size: int = 25
    # Parallel Yahoo requests, and retries with exponential backoff on timeouts / rate limits.
    yahoo_concurrency: int = 4
    yahoo_retries: int = 4
    yahoo_backoff_seconds: float = 1.0
    # DuckDB's memory cap for capwatch's connections, e.g. "1GB"; None = DuckDB's default (80 % of
    # RAM). Above it DuckDB spills joins, sorts and windows to disk; primary-key indexes must still fit.
    duckdb_memory_limit: str | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``CAPWATCH_*`` environment variables, then explicit ``overrides``."""
        env: dict[str, object] = {}
        if v := os.environ.get("CAPWATCH_DB"):
            env["db_path"] = Path(v)
        if v := os.environ.get("CAPWATCH_SOURCE"):
            env["source"] = v
        if v := os.environ.get("CAPWATCH_TICKERS"):
            env["tickers"] = tuple(t.strip() for t in v.split(",") if t.strip())
        if v := os.environ.get("CAPWATCH_HISTORY_YEARS"):
            env["history_years"] = int(v)
        if v := os.environ.get("CAPWATCH_YAHOO_CONCURRENCY"):
            env["yahoo_concurrency"] = int(v)
        if v := os.environ.get("CAPWATCH_DUCKDB_MEMORY_LIMIT"):
            env["duckdb_memory_limit"] = v
        settings = replace(cls(), **env)
        clean = {k: v for k, v in overrides.items() if v is not None}
        if "db_path" in clean:
            clean["db_path"] = Path(str(clean["db_path"]))
        if "tickers" in clean:
            clean["tickers"] = tuple(clean["tickers"])  # type: ignore[arg-type]
        return replace(settings, **clean)  # type: ignore[arg-type]
