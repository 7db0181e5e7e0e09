"""Alert configuration: rules and channels from one TOML file, checked at start-up.

The packaged default is ``capwatch/alerts/alerts.toml``; ``Settings.alerts_config``
(``CAPWATCH_ALERTS_CONFIG``) names another file and ``Settings.alert_urls`` (``CAPWATCH_ALERT_URLS``)
replaces its channels. Channel URLs keep their ``${NAME}`` / ``${secret:NAME}`` placeholders until
the moment of sending (``expand``).
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from capwatch.settings import Settings, env_value

RULE_KINDS = (
    "pct_drop",
    "usd_loss",
    "top_n_pct_drop",
    "record_loss",
    "market_usd_loss",
    "market_pct_drop",
    "group_pct_drop",
)
# Rules over the whole universe or a group (transforms/alerts/market_candidates.sql).
MARKET_KINDS = ("market_usd_loss", "market_pct_drop", "group_pct_drop")
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
    direction: str = "down"  # "down" (threshold as written), "up" (its mirror), or "both"


# Schemes whose netloc is a real host (for the others, e.g. slack://TokenA/..., it is a secret).
_HOSTED = ("json", "jsons", "slack+http", "slack+https", "mailto", "mailtos")


@dataclass(frozen=True)
class Channel:
    url: str  # as configured, placeholders unexpanded
    name: str = ""  # deliveries are keyed on it; derived from the URL when not given
    rules: frozenset[str] | None = None  # only these rules (None: all)
    companies: frozenset[str] | None = None  # only these companies (None: all)

    def __post_init__(self) -> None:
        if not self.name:
            digest = hashlib.sha256(self.url.encode()).hexdigest()[:8]
            object.__setattr__(self, "name", f"{self.scheme}-{digest}")

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def redacted(self) -> str:
        """Scheme and host only (never a path, user, token or query): safe for logs and tables."""
        if self.scheme not in _HOSTED:
            return f"{self.scheme}://"
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # a malformed port: left out
            port = ""
        return f"{self.scheme}://{host}{port}"

    @property
    def label(self) -> str:
        """How logs and commands name the channel: ``ops_slack (slack+https://hooks.example.com)``."""
        return f"{self.name} ({self.redacted})"

    def wants(self, rule: str, company: str) -> bool:
        return (self.rules is None or rule in self.rules) and (
            self.companies is None or company in self.companies
        )

    @property
    def legacy_key(self) -> str:
        """What deliveries of capwatch before named channels recorded as the channel (kept so an
        upgrade does not send every past event again)."""
        parts = urlsplit(self.url)
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:  # a malformed port: shown as written
            port = ":" + parts.netloc.rsplit(":", 1)[-1]
        if self.scheme == "slack":
            return "slack://***"
        path = parts.path if self.scheme in ("json", "jsons", "slack+http", "slack+https") else ""
        return f"{self.scheme}://{parts.hostname or ''}{port}{path}"


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
        direction = spec.get("direction", "down")
        if direction not in ("down", "up", "both"):
            raise AlertConfigError(
                f"alert rule {name!r}: direction {direction!r} is not down, up or both"
            )
        rules.append(
            Rule(
                name,
                kind,
                float(threshold) if threshold is not None else None,
                spec.get("top_n"),
                int(spec.get("min_history", 250)),
                direction,
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
    channels = _channels(raw.get("channels") or {}, settings.alert_urls, {r.name for r in rules})
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


def _channels(
    section: dict, env_urls: tuple[str, ...] | None, rule_names: set[str]
) -> list[Channel]:
    """Named entries ``[channels.NAME] url = ..., rules = [...], companies = [...]``, and the older
    ``[channels] urls = [...]`` list; ``CAPWATCH_ALERT_URLS`` replaces both (names derived)."""
    if env_urls:
        return [Channel(u) for u in env_urls]
    channels = [Channel(u) for u in section.get("urls", [])]
    for name, spec in section.items():
        if name == "urls":
            continue
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise AlertConfigError(
                f'alert channel {name!r}: expected [channels.{name}] with url = "..."'
            )
        rules = frozenset(spec["rules"]) if "rules" in spec else None
        if rules is not None and (unknown := rules - rule_names):
            raise AlertConfigError(
                f"alert channel {name!r}: no rule named {', '.join(sorted(unknown))}"
            )
        companies = frozenset(spec["companies"]) if "companies" in spec else None
        channels.append(Channel(spec["url"], name, rules, companies))
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        raise AlertConfigError("alert channels: two channels have the same URL or name")
    return channels


def secrets_in(channel: Channel) -> list[str]:
    """Every string of a channel's expanded URL that must never be stored or printed: the URL
    itself, its user, password, path segments and query values, and each placeholder's value."""
    values = []
    for m in _PLACEHOLDER.finditer(channel.url):
        try:
            values.append(expand(m.group(0)))
        except Exception:  # noqa: BLE001 - an unset placeholder has no value to hide
            pass
    try:
        url = expand(channel.url)
    except Exception:  # noqa: BLE001
        url = channel.url
    parts = urlsplit(url)
    values += [
        url,
        url.split("://", 1)[-1],
        parts.username or "",
        parts.password or "",
        parts.path,
        parts.query,
    ]
    values += [seg for seg in parts.path.split("/") if len(seg) >= 4]
    values += [v for vs in parse_qs(parts.query).values() for v in vs if len(v) >= 4]
    if channel.scheme not in _HOSTED:
        values.append(parts.netloc)
    return sorted({v for v in values if v and len(v) >= 4}, key=len, reverse=True)


def scrub(text: str, channel: Channel) -> str:
    """``text`` with every secret of the channel replaced by ***."""
    for secret in secrets_in(channel):
        text = text.replace(secret, "***")
    return text


def validate_channel(ch: Channel) -> None:
    """A malformed channel URL is a configuration error at start-up, not a failed send at night."""
    if "://" not in ch.url:
        raise AlertConfigError(f"alert channel {ch.url!r}: not a URL (expected scheme://...)")
    parts = urlsplit(ch.url)
    if ch.scheme in ("json", "jsons", "slack+http", "slack+https", "mailto", "mailtos"):
        if not parts.hostname:
            raise AlertConfigError(f"alert channel {ch.label}: no host")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise AlertConfigError(f"alert channel {ch.label}: {exc}") from exc
        if (
            ch.scheme.startswith("mailto")
            and not parse_qs(parts.query).get("to")
            and "@" not in (parts.username or "")
        ):
            raise AlertConfigError(
                f"alert channel {ch.label}: no recipient (add ?to=name@example.com)"
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
            f"alert channel {ch.label}: not a URL capwatch or apprise can send to"
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
