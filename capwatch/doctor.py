"""``capwatch doctor``: is this environment fit to run capwatch, and if not, what to fix.

Each check is one ``Finding`` (ok / warn / FAIL, what was found, how to fix it). Nothing here
writes anything: the warehouse is opened read-only, the Prefect API is asked for its health, the
official DuckDB CLI is run against the file read-only.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from capwatch.settings import Settings, SettingsError, env_value

PACKAGES = ("duckdb", "prefect", "great-expectations", "yfinance", "pandas", "vl-convert-python")


@dataclass
class Finding:
    level: str  # ok, warn, FAIL
    what: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{self.level:<4}  {self.what}" + (f"\n      fix: {self.fix}" if self.fix else "")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def check_packages() -> list[Finding]:
    found = [Finding("ok", f"Python {sys.version.split()[0]}")]
    missing = [p for p in PACKAGES if _version(p) is None]
    have = ", ".join(f"{p} {_version(p)}" for p in PACKAGES if p not in missing)
    found.append(
        Finding(
            "ok" if not missing else "FAIL",
            f"packages: {have}" + (f"; missing: {', '.join(missing)}" if missing else ""),
            "uv sync (the lock has them all)" if missing else "",
        )
    )
    # The traps measured in ../shared/DEPENDENCIES.md: these versions break Prefect's server.
    for package, bad, why in (
        ("fastapi", (0, 151), "fastapi >= 0.151 breaks `prefect server start`"),
        ("sqlalchemy", (2, 1), "SQLAlchemy 2.1 makes Prefect's scheduler create no runs"),
    ):
        v = _version(package)
        if v and tuple(int(x) for x in re.findall(r"\d+", v)[:2]) >= bad:
            found.append(
                Finding(
                    "FAIL",
                    f"{package} {v}: {why}",
                    "uv sync --frozen (the lock pins a working version)",
                )
            )
    return found


def _official_cli() -> str | None:
    beside = Path(sys.executable).parent / "duckdb"
    return str(beside) if beside.is_file() else shutil.which("duckdb")


def check_warehouse(settings: Settings) -> list[Finding]:
    path = settings.db_path
    engine = _version("duckdb")
    out = []
    cli = _official_cli()
    if cli is None:
        out.append(
            Finding(
                "warn",
                "the official DuckDB CLI is not installed",
                f"uv sync --all-groups (installs duckdb-cli=={engine}) to query the file with `duckdb`",
            )
        )
    else:
        shown = subprocess.run(
            [cli, "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
        cli_version = (re.findall(r"v?(\d+\.\d+\.\d+)", shown) or ["?"])[0]
        same = cli_version.split(".")[:2] == (engine or "").split(".")[:2]
        out.append(
            Finding(
                "ok" if same else "FAIL",
                f"DuckDB engine {engine}, official CLI {cli_version} ({cli})",
                "" if same else f"install duckdb-cli=={engine}: one storage version for both",
            )
        )
    if settings.warehouse == "ducklake":
        return out + _check_lake(settings, cli)
    if not path.exists():
        out.append(
            Finding(
                "warn",
                f"warehouse {path} does not exist yet",
                "capwatch backfill (or capwatch demo) creates it",
            )
        )
        return out
    from capwatch.warehouse import WarehouseError, open_warehouse

    try:
        with open_warehouse(settings, read_only=True) as con:
            version = con.execute("select max(version) from schema_migrations").fetchone()[0]
            models = con.execute(
                "select count(*) from duckdb_views() where view_name = 'largest_losses'"
            ).fetchone()[0]
        out.append(
            Finding(
                "ok", f"warehouse {path}: {path.stat().st_size / 1e6:,.1f} MB, migration {version}"
            )
        )
        if not models:
            out.append(
                Finding("warn", "no models built yet", "capwatch build (or a backfill) builds them")
            )
    except WarehouseError as exc:
        out.append(
            Finding(
                "FAIL",
                f"warehouse {path}: {exc}",
                "see `capwatch check` for what is wrong with the file",
            )
        )
        return out
    if cli:
        opened = subprocess.run(
            [cli, "-readonly", str(path), "-c", "select 1"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if opened.returncode == 0:
            out.append(Finding("ok", "the official CLI opens the file"))
        else:
            err = (opened.stderr or opened.stdout).strip().splitlines()
            out.append(
                Finding(
                    "FAIL",
                    f"the official CLI cannot open the file: {err[0] if err else opened.returncode}",
                    "engine and CLI must share one storage version (see README, The warehouse)",
                )
            )
    return out


def _check_lake(settings: Settings, cli: str | None) -> list[Finding]:
    """A DuckLake warehouse: it opens (catalog and files reachable), and so does the official CLI."""
    from capwatch import lake
    from capwatch.warehouse import WarehouseError, open_warehouse

    where = f"DuckLake {settings.lake_catalog} (files: {settings.lake_data_path or 'beside the catalog'})"
    try:
        with open_warehouse(settings, read_only=True) as con:
            version = con.execute("select max(version) from schema_migrations").fetchone()[0]
            snapshots = con.execute(
                f"select count(*) from ducklake_snapshots('{lake.LAKE}')"
            ).fetchone()[0]
            models = con.execute(
                "select count(*) from duckdb_views() where view_name = 'largest_losses'"
            ).fetchone()[0]
    except WarehouseError as exc:
        return [
            Finding(
                "FAIL",
                f"warehouse {where}: {exc}",
                "capwatch backfill (or capwatch lake import FILE) fills it",
            )
        ]
    out = [Finding("ok", f"warehouse {where}: migration {version}, {snapshots} snapshots")]
    if not models:
        out.append(
            Finding("warn", "no models built yet", "capwatch build (or a backfill) builds them")
        )
    if cli:
        setup = (
            f"set extension_directory = '{lake.extension_dir()}'; "
            + lake.attach_sql(settings.lake_catalog or "", settings.lake_data_path, read_only=True)
            + f"; select count(*) from {lake.LAKE}.schema_migrations;"
        )
        opened = subprocess.run([cli, "-c", setup], capture_output=True, text=True, timeout=60)
        if opened.returncode == 0:
            out.append(Finding("ok", "the official CLI opens the lake (capwatch lake cli)"))
        else:
            err = (opened.stderr or opened.stdout).strip().splitlines()
            out.append(
                Finding(
                    "FAIL",
                    f"the official CLI cannot open the lake: {err[0] if err else opened.returncode}",
                    "engine, CLI and extension packages must be one DuckDB version (pyproject.toml)",
                )
            )
    return out


def check_prefect() -> list[Finding]:
    url = env_value("PREFECT_API_URL")
    if not url:
        return [
            Finding(
                "ok",
                "PREFECT_API_URL not set: the CLI runs flows on a temporary local Prefect server",
                "",
            )
        ]
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=3) as r:
            healthy = r.status == 200
    except OSError as exc:
        return [
            Finding(
                "FAIL",
                f"Prefect API {url} is not reachable ({exc})",
                "start it (`prefect server start`) or unset PREFECT_API_URL to use a temporary server",
            )
        ]
    return [Finding("ok" if healthy else "FAIL", f"Prefect API {url} answers its health check")]


def check_alerts(settings: Settings) -> list[Finding]:
    from capwatch.alerts.config import AlertConfigError, load_config

    try:
        config = load_config(settings)
    except AlertConfigError as exc:
        return [Finding("FAIL", f"alert configuration: {exc}", "fix the channel (README, Alerts)")]
    if not config.channels:
        return [
            Finding(
                "warn",
                "no alert channels: events are recorded but sent nowhere",
                "set CAPWATCH_ALERT_URLS or [channels] in the alerts file (README, Alerts)",
            )
        ]
    out = []
    for ch in config.channels:
        unset = [
            m for m in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", ch.url) if env_value(m) is None
        ]
        if unset:
            out.append(
                Finding(
                    "FAIL",
                    f"alert channel {ch.label}: {', '.join(unset)} not set",
                    f"export {unset[0]}=... where capwatch and the workers run",
                )
            )
        else:
            out.append(Finding("ok", f"alert channel {ch.label} ({ch.redacted})"))
    return out


def check_sources(settings: Settings) -> list[Finding]:
    out = [Finding("ok", f"price source {settings.source}")]
    if settings.source.startswith(("csv:", "replay:csv:")):
        d = Path(settings.source.split("csv:", 1)[1])
        if not (d / "prices.csv").is_file():
            out = [
                Finding(
                    "FAIL",
                    f"price source {settings.source}: no prices.csv in {d}",
                    "point it at a marketdata folder",
                )
            ]
    counts = settings.counts_source()
    if counts is None:
        out.append(Finding("ok", "share counts from the price source only"))
        return out
    try:
        settings.check_counts_source()
        out.append(
            Finding(
                "ok",
                f"share counts also from {counts}"
                + (
                    f" (User-Agent {settings.sec_user_agent!r}, {settings.sec_rate or 8:g} requests/s)"
                    if counts == "sec"
                    else ""
                ),
            )
        )
    except SettingsError as exc:
        out.append(
            Finding(
                "FAIL",
                str(exc).split(":")[0],
                "export CAPWATCH_SEC_USER_AGENT='Your Name you@example.com'",
            )
        )
    return out


def run_checks(settings: Settings) -> list[Finding]:
    return (
        check_packages()
        + check_sources(settings)
        + check_warehouse(settings)
        + check_prefect()
        + check_alerts(settings)
    )
