"""Alert configuration: rules and channels from one TOML file, checked at start-up.

The packaged default is ``capwatch/alerts/alerts.toml``; ``Settings.alerts_config``
(``CAPWATCH_ALERTS_CONFIG``) names another file and ``Settings.alert_urls`` (``CAPWATCH_ALERT_URLS``)
replaces its channels. Channel URLs keep their ``${NAME}`` / ``${secret:NAME}`` placeholders until
the moment of sending (``expand``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from capwatch.settings import Settings, env_value

RULE_KINDS = ("pct_drop", "usd_loss", "top_n_pct_drop", "record_loss")
_PLACEHOLDER = re.compile(r"\$\{(secret:)?([A-Za-z_][A-Za-z0-9_\-]*)\}")


class AlertConfigError(ValueError):
    """The alert configuration cannot be used; raised at start-up, before any data work."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    threshold: float | None = None
    top_n: int | None = None
    min_history: int = 250


@dataclass(frozen=True)
class Channel:
    url: str  # as configured, placeholders unexpanded

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def redacted(self) -> str:
        """The URL without credentials, tokens or query: safe for logs and the deliveries table."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # a malformed port: shown as written
            port = ":" + parts.netloc.rsplit(":", 1)[-1]
        if self.scheme == "slack":
            return "slack://***"
        path = parts.path if self.scheme in ("json", "jsons", "slack+http", "slack+https") else ""
        return f"{self.scheme}://{host}{port}{path}"


@dataclass
class AlertConfig:
    rules: list[Rule]
    overrides: dict[str, dict[str, float]]
    channels: list[Channel]
    attempts: int = 3
    backoff_seconds: float = 1.0
    timeout_seconds: float = 10.0
    source: str = ""


def _default_config_text() -> str:
    return resources.files("capwatch.alerts").joinpath("alerts.toml").read_text()


def load_config(settings: Settings | None = None, path: str | Path | None = None) -> AlertConfig:
    """Read and check the alert configuration; every problem is an AlertConfigError naming it."""
    settings = settings or Settings()
    path = path or settings.alerts_config
    try:
        text = Path(path).read_text() if path else _default_config_text()
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AlertConfigError(
            f"alert config {path or 'capwatch/alerts/alerts.toml'}: {exc}"
        ) from exc
    rules = []
    for name, spec in (raw.get("rules") or {}).items():
        if not spec.get("enabled", True):
            continue
        kind = spec.get("kind")
        if kind not in RULE_KINDS:
            raise AlertConfigError(
                f"alert rule {name!r}: kind {kind!r} is not one of {', '.join(RULE_KINDS)}"
            )
        threshold = spec.get("threshold")
        if kind != "record_loss" and not isinstance(threshold, int | float):
            raise AlertConfigError(f"alert rule {name!r}: needs a numeric threshold")
        if kind == "top_n_pct_drop" and not isinstance(spec.get("top_n"), int):
            raise AlertConfigError(f"alert rule {name!r}: needs top_n (an integer)")
        rules.append(
            Rule(
                name,
                kind,
                float(threshold) if threshold is not None else None,
                spec.get("top_n"),
                int(spec.get("min_history", 250)),
            )
        )
    overrides = {}
    for company, values in (raw.get("overrides") or {}).items():
        for rule_name, value in values.items():
            if rule_name not in {r.name for r in rules} and rule_name not in (
                raw.get("rules") or {}
            ):
                raise AlertConfigError(f"alert override for {company}: no rule named {rule_name!r}")
            overrides.setdefault(company, {})[rule_name] = float(value)
    urls = (
        list(settings.alert_urls)
        if settings.alert_urls
        else list((raw.get("channels") or {}).get("urls", []))
    )
    channels = [Channel(u) for u in urls]
    for ch in channels:
        validate_channel(ch)
    delivery = raw.get("delivery") or {}
    return AlertConfig(
        rules,
        overrides,
        channels,
        int(delivery.get("attempts", 3)),
        float(delivery.get("backoff_seconds", 1.0)),
        float(delivery.get("timeout_seconds", 10)),
        str(path or "capwatch/alerts/alerts.toml"),
    )


def validate_channel(ch: Channel) -> None:
    """A malformed channel URL is a configuration error at start-up, not a failed send at night."""
    if "://" not in ch.url:
        raise AlertConfigError(f"alert channel {ch.url!r}: not a URL (expected scheme://...)")
    parts = urlsplit(ch.url)
    if ch.scheme in ("json", "jsons", "slack+http", "slack+https", "mailto", "mailtos"):
        if not parts.hostname:
            raise AlertConfigError(f"alert channel {ch.redacted}: no host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise AlertConfigError(f"alert channel {ch.redacted}: {exc}") from exc
        if (
            ch.scheme.startswith("mailto")
            and not parse_qs(parts.query).get("to")
            and "@" not in (parts.username or "")
        ):
            raise AlertConfigError(
                f"alert channel {ch.redacted}: no recipient (add ?to=name@example.com)"
            )
        return
    if ch.scheme == "slack":
        if len([p for p in (parts.netloc + parts.path).split("/") if p]) < 3:
            raise AlertConfigError(
                "alert channel slack://***: expected slack://TokenA/TokenB/TokenC"
            )
        return
    import apprise

    if apprise.Apprise.instantiate(expand(ch.url, resolve_secrets=False)) is None:
        raise AlertConfigError(
            f"alert channel {ch.redacted}: not a URL capwatch or apprise can send to"
        )


def expand(url: str, resolve_secrets: bool = True) -> str:
    """Fill ${NAME} from the environment and ${secret:NAME} from a Prefect Secret block."""

    def sub(m: re.Match) -> str:
        name = m.group(2)
        if m.group(1):
            if not resolve_secrets:
                return "secret"
            from prefect.blocks.system import Secret

            return str(Secret.load(name).get())
        value = env_value(name)
        if value is None:
            if not resolve_secrets:
                return "placeholder"
            raise AlertConfigError(f"alert channel needs the environment variable {name}")
        return value

    return _PLACEHOLDER.sub(sub, url)
