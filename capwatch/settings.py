"""capwatch settings: one frozen object, defaults in code, ``CAPWATCH_*`` environment overrides.

This is the only module that reads the environment. Each entry point (the CLI, a Prefect flow run,
the benchmark) builds one ``Settings`` with ``Settings.from_env()`` and passes it down; nothing
below reads ``os.environ``. Secrets referenced from alert channel URLs as ``${NAME}`` are looked up
at send time through ``env_value`` (here too), so they never sit in a file or an object.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path


class SettingsError(ValueError):
    """A setting (usually a ``CAPWATCH_*`` variable) that cannot be used, named with what to fix."""


def default_universe() -> list[str]:
    """Tickers of the default universe, from ``capwatch/universe.toml``."""
    text = resources.files("capwatch").joinpath("universe.toml").read_text()
    return list(tomllib.loads(text)["universe"]["tickers"])


@dataclass(frozen=True)
class Settings:
    db_path: Path = Path("capwatch.duckdb")
    # Where prices, splits and share counts come from: "yahoo", "csv:DIR", or "replay:demo" /
    # "replay:csv:DIR" (the real yfinance code fed Yahoo-shaped responses built offline: demo, tests).
    source: str = "yahoo"
    tickers: tuple[str, ...] = field(default_factory=lambda: tuple(default_universe()))
    # True when the tickers were named (CAPWATCH_TICKERS, --tickers): then they are the run's
    # universe; else the warehouse's synced universe (capwatch universe), if it has one.
    tickers_explicit: bool = False
    # On an empty warehouse the daily flow first backfills this many years.
    history_years: int = 5
    # The daily flow re-fetches this many calendar days before the newest stored date, so late
    # corrections from the source replace what was stored.
    daily_lookback_days: int = 7
    # Tickers per extract/load chunk: one transaction per chunk.
    chunk_size: int = 25
    # Tickers per chunk in the daily run for tickers already loaded (a week each, ~10k rows per
    # chunk): a chunk's fixed cost (~0.5 s: gates, a transaction, two task runs) is then paid three
    # times for the whole market, and a crash refetches at most one chunk's few minutes of requests.
    daily_chunk_size: int = 2000
    # Extract tasks running at once (each stages its chunk as Parquet); the one writer loads them
    # in plan order while later chunks are still being fetched. Two keep the writer busy: a
    # source's requests are paced by its rate limit whatever the number of tasks (each task sends
    # its tickers' requests concurrently), and each chunk in flight is memory (measured at 1,500
    # tickers x 25 years on 2 cores: two tasks load in 43 s where four took 52 s).
    extract_tasks: int = 2
    # Where extract tasks stage what they fetched until the writer has loaded it; None =
    # `<warehouse file>.staging` beside the file.
    staging_dir: Path | None = None
    # The name of a Prefect global concurrency limit of one slot that every capwatch writer
    # takes while it loads or builds (`prefect gcl create capwatch-warehouse --limit 1`): flow
    # runs on several workers then queue for the warehouse in Prefect instead of at its file lock.
    writer_limit: str | None = None
    # Parallel Yahoo requests; each ticker is retried with exponential backoff on timeouts and
    # rate limits (the one retry layer: see capwatch/extract/yahoo.py).
    yahoo_concurrency: int = 4
    yahoo_retries: int = 4
    yahoo_backoff_seconds: float = 1.0
    # Requests per second to Yahoo for the whole process (None: no limit beyond the concurrency;
    # the offline replay is never limited unless this is set), and optionally the name of a
    # Prefect global rate limit every worker shares (`prefect gcl create yahoo-requests --limit 4
    # --slot-decay-per-second 4`).
    yahoo_rate: float | None = None
    yahoo_prefect_rate_limit: str | None = None
    # Seconds the replay source waits per request: a slow network, for resume and kill tests.
    replay_latency: float = 0.0
    # DuckDB's memory cap for capwatch's connections, e.g. "1GB"; None = DuckDB's default (80 % of
    # RAM). Above it DuckDB spills joins, sorts and windows to disk; primary-key indexes must still fit.
    duckdb_memory_limit: str | None = None
    # The warehouse backend: "duckdb" (one file, `db_path`: one writing process at a time) or
    # "ducklake" (capwatch/lake.py: tables as Parquet files under `lake_data_path`, the catalog in
    # PostgreSQL, SQLite or a DuckDB file named by `lake_catalog`, e.g. "postgres:dbname=capwatch
    # host=db.internal" or "sqlite:/srv/capwatch/catalog.sqlite"; many writers and readers).
    warehouse: str = "duckdb"
    lake_catalog: str | None = None
    lake_data_path: str | None = None
    # How long opening the warehouse waits while another process holds it (a writer, or a reader
    # that keeps it open), before failing with a message naming that process.
    lock_wait_seconds: float = 120.0
    # Alert rules and channels: a TOML file (None = the packaged capwatch/alerts/alerts.toml), and
    # channel URLs that replace the file's channels.
    alerts_config: Path | None = None
    alert_urls: tuple[str, ...] | None = None
    # Where share counts come from besides the price source (capwatch/extract/sec.py): "auto" (SEC
    # EDGAR with live Yahoo prices, none otherwise), "sec", "none", or "replay:demo" /
    # "replay:csv:DIR" (the real SEC client fed SEC-shaped responses built offline).
    shares_source: str = "auto"
    # SEC's fair-access rules: a User-Agent naming you and a contact e-mail (required for "sec"),
    # at most this many requests per second per process (SEC allows 10; None = 8 for SEC, no
    # limit for the offline replay), and optionally the name of a Prefect global rate limit shared
    # by every worker (`prefect gcl create sec-edgar --limit 8 --slot-decay-per-second 8`).
    sec_user_agent: str | None = None
    sec_rate: float | None = None
    sec_prefect_rate_limit: str | None = None
    # SEC answers cached on disk and revalidated (ETag / Last-Modified); None = $XDG_CACHE_HOME
    # (or ~/.cache)/capwatch/sec.
    sec_cache_dir: Path | None = None
    # Where the daily flow writes the day's report (capwatch report); None = reports/ beside the
    # warehouse file.
    reports_dir: Path | None = None

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Defaults, then ``CAPWATCH_*`` environment variables, then explicit ``overrides``
        (``None`` values are ignored). A value that does not parse raises ``SettingsError``."""
        env: dict[str, object] = {}
        for name, parse in _ENV.items():
            raw = os.environ.get(_env_name(name))
            if raw is None or raw.strip() == "":
                continue
            try:
                env[name] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{_env_name(name)}={raw!r}: {exc}") from exc
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        if "db_path" in clean:
            clean["db_path"] = Path(str(clean["db_path"]))
        if "tickers" in clean:
            clean["tickers"] = tuple(clean["tickers"])  # type: ignore[arg-type]
        if "tickers" in clean or "tickers" in env:
            clean["tickers_explicit"] = True
        settings = replace(cls(), **{**env, **clean})  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values no run could use (each named by its variable)."""
        positive = (
            "history_years",
            "daily_lookback_days",
            "chunk_size",
            "daily_chunk_size",
            "yahoo_concurrency",
            "extract_tasks",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise SettingsError(f"{_env_name(name)}={getattr(self, name)}: must be at least 1")
        if self.lock_wait_seconds < 0:
            raise SettingsError(
                f"CAPWATCH_LOCK_WAIT_SECONDS={self.lock_wait_seconds}: cannot be negative"
            )
        if self.yahoo_retries < 0 or self.yahoo_backoff_seconds < 0 or self.replay_latency < 0:
            raise SettingsError(
                "CAPWATCH_YAHOO_RETRIES, _BACKOFF_SECONDS and CAPWATCH_REPLAY_LATENCY cannot be negative"
            )
        if self.warehouse not in ("duckdb", "ducklake"):
            raise SettingsError(
                f"CAPWATCH_WAREHOUSE={self.warehouse!r}: use 'duckdb' (one file) or 'ducklake'"
            )
        if self.warehouse == "ducklake" and not self.lake_catalog:
            raise SettingsError(
                "CAPWATCH_WAREHOUSE=ducklake needs CAPWATCH_LAKE_CATALOG: 'postgres:dbname=... host=...', "
                "'sqlite:/path/catalog.sqlite' or a DuckDB catalog file path"
            )
        check_source(self.source)
        check_shares_source(self.shares_source)
        if self.yahoo_rate is not None and self.yahoo_rate <= 0:
            raise SettingsError(f"CAPWATCH_YAHOO_RATE={self.yahoo_rate}: must be more than 0")
        if self.sec_rate is not None and not 0 < self.sec_rate <= 10:
            raise SettingsError(
                f"CAPWATCH_SEC_RATE={self.sec_rate}: SEC allows at most 10 requests per second "
                "(capwatch's default is 8)"
            )

    def counts_source(self) -> str | None:
        """The share-count source beside the price source: ``sec``, ``replay:...`` or None."""
        if self.shares_source == "auto":
            return "sec" if self.source == "yahoo" else None
        return None if self.shares_source == "none" else self.shares_source

    def check_counts_source(self) -> None:
        """Refuse to start a run that would ask SEC without the User-Agent SEC requires."""
        if self.counts_source() == "sec":
            check_user_agent(self.sec_user_agent)

    def warehouse_name(self) -> str:
        """What a message calls the warehouse: the file, or the lake's catalog."""
        if self.warehouse == "ducklake":
            return f"the lake {self.lake_catalog}"
        return str(self.db_path)

    def reports(self) -> Path:
        return self.reports_dir or self.db_path.resolve().parent / "reports"

    def staging(self) -> Path:
        return self.staging_dir or self.db_path.resolve().with_name(self.db_path.name + ".staging")

    def sec_cache(self) -> Path:
        if self.sec_cache_dir:
            return self.sec_cache_dir
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "capwatch" / "sec"


# SEC's fair-access rule: a User-Agent that names the user and gives a contact e-mail.
USER_AGENT_RULE = re.compile(r"\S+@\S+\.\w+")
USER_AGENT_HELP = (
    "SEC EDGAR refuses requests without a User-Agent that names you and gives a contact e-mail "
    "(its fair-access rule); set CAPWATCH_SEC_USER_AGENT, e.g. 'Jane Doe jane@example.com', "
    "or CAPWATCH_SHARES_SOURCE=none to use only the price source's share counts"
)


def check_user_agent(user_agent: str | None) -> str:
    """The User-Agent SEC requires, or ``SettingsError`` saying why and what to set."""
    if not user_agent or not USER_AGENT_RULE.search(user_agent):
        given = f" (got {user_agent!r})" if user_agent else ""
        raise SettingsError(
            f"CAPWATCH_SEC_USER_AGENT is not set to a name and e-mail{given}: {USER_AGENT_HELP}"
        )
    return user_agent.strip()


SHARES_SOURCES_HELP = "use 'auto', 'sec', 'none', 'replay:demo' or 'replay:csv:DIR'"


def check_shares_source(spec: str) -> str:
    """A share-count source spec, or ``SettingsError``."""
    ok = spec in ("auto", "sec", "none", "replay:demo") or (
        spec.startswith("replay:csv:") and len(spec) > len("replay:csv:")
    )
    if not ok:
        raise SettingsError(f"shares source {spec!r}: {SHARES_SOURCES_HELP}")
    return spec


SOURCES_HELP = "use 'yahoo', 'csv:DIR', 'replay:demo' or 'replay:csv:DIR'"


def check_source(spec: str) -> str:
    """A source spec as ``capwatch.extract.make_source`` takes it, or ``SettingsError``."""
    body = spec[len("replay:") :] if spec.startswith("replay:") else spec
    ok = (
        (body == "yahoo" and body == spec)
        or (body == "demo" and body != spec)
        or (body.startswith("csv:") and len(body) > 4)
    )
    if not ok:
        raise SettingsError(f"source {spec!r}: {SOURCES_HELP}")
    return spec


def _env_name(field_name: str) -> str:
    return {"db_path": "CAPWATCH_DB"}.get(field_name, f"CAPWATCH_{field_name.upper()}")


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("not a whole number") from None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("not a number") from None


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


# Every setting the environment may override, with its parser (variable: CAPWATCH_<NAME>).
_ENV = {
    "db_path": Path,
    "source": str.strip,
    "tickers": _list,
    "history_years": _int,
    "daily_lookback_days": _int,
    "chunk_size": _int,
    "daily_chunk_size": _int,
    "extract_tasks": _int,
    "staging_dir": Path,
    "writer_limit": str.strip,
    "yahoo_concurrency": _int,
    "yahoo_retries": _int,
    "yahoo_backoff_seconds": _float,
    "yahoo_rate": _float,
    "yahoo_prefect_rate_limit": str.strip,
    "replay_latency": _float,
    "duckdb_memory_limit": str.strip,
    "lock_wait_seconds": _float,
    "warehouse": lambda raw: raw.strip().lower(),
    "lake_catalog": str.strip,
    "lake_data_path": str.strip,
    "alerts_config": Path,
    "alert_urls": _list,
    "shares_source": str.strip,
    "sec_user_agent": str.strip,
    "sec_rate": _float,
    "sec_prefect_rate_limit": str.strip,
    "sec_cache_dir": Path,
    "reports_dir": Path,
}


def env_value(name: str) -> str | None:
    """A ``${NAME}`` placeholder's value (alert channel secrets), read at the moment of use."""
    return os.environ.get(name)
