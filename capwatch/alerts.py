"""Alert: turn big company moves into events, once each, and deliver them through real channels.

Rules and channels come from one TOML file (``capwatch/alerts.toml`` by default,
``CAPWATCH_ALERTS_CONFIG`` to use another; ``CAPWATCH_ALERT_URLS`` overrides the channels). Rules
are evaluated in SQL (``transforms/alerts/candidates.sql``); each (rule, company, date) becomes one
row of ``alert_events``; every delivery attempt is a row of ``alert_deliveries``. An event is
delivered to a channel at least once per attempt and marked sent only when the endpoint accepted
it; a failed channel is retried with backoff within the run and again on the next run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import smtplib
import ssl
import time
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.message import EmailMessage
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import duckdb
import requests

from capwatch.report import fmt_usd
from capwatch.settings import TRANSFORMS_DIR

log = logging.getLogger("capwatch.alerts")

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
    return resources.files("capwatch").joinpath("alerts.toml").read_text()


def load_config(path: str | Path | None = None) -> AlertConfig:
    """Read and check the alert configuration; every problem is an AlertConfigError naming it."""
    path = path or os.environ.get("CAPWATCH_ALERTS_CONFIG")
    try:
        text = Path(path).read_text() if path else _default_config_text()
        raw = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AlertConfigError(f"alert config {path or 'capwatch/alerts.toml'}: {exc}") from exc
    rules = []
    for name, spec in (raw.get("rules") or {}).items():
        if not spec.get("enabled", True):
            continue
        kind = spec.get("kind")
        if kind not in RULE_KINDS:
            raise AlertConfigError(f"alert rule {name!r}: kind {kind!r} is not one of {', '.join(RULE_KINDS)}")
        threshold = spec.get("threshold")
        if kind != "record_loss" and not isinstance(threshold, int | float):
            raise AlertConfigError(f"alert rule {name!r}: needs a numeric threshold")
        if kind == "top_n_pct_drop" and not isinstance(spec.get("top_n"), int):
            raise AlertConfigError(f"alert rule {name!r}: needs top_n (an integer)")
        rules.append(Rule(name, kind, float(threshold) if threshold is not None else None, spec.get("top_n"),
                          int(spec.get("min_history", 250))))
    overrides = {}
    for company, values in (raw.get("overrides") or {}).items():
        for rule_name, value in values.items():
            if rule_name not in {r.name for r in rules} and rule_name not in (raw.get("rules") or {}):
                raise AlertConfigError(f"alert override for {company}: no rule named {rule_name!r}")
            overrides.setdefault(company, {})[rule_name] = float(value)
    env_urls = os.environ.get("CAPWATCH_ALERT_URLS")
    urls = [u.strip() for u in env_urls.split(",") if u.strip()] if env_urls else list((raw.get("channels") or {}).get("urls", []))
    channels = [Channel(u) for u in urls]
    for ch in channels:
        validate_channel(ch)
    delivery = raw.get("delivery") or {}
    return AlertConfig(rules, overrides, channels, int(delivery.get("attempts", 3)),
                       float(delivery.get("backoff_seconds", 1.0)), float(delivery.get("timeout_seconds", 10)),
                       str(path or "capwatch/alerts.toml"))


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
        if ch.scheme.startswith("mailto") and not parse_qs(parts.query).get("to") and "@" not in (parts.username or ""):
            raise AlertConfigError(f"alert channel {ch.redacted}: no recipient (add ?to=name@example.com)")
        return
    if ch.scheme == "slack":
        if len([p for p in (parts.netloc + parts.path).split("/") if p]) < 3:
            raise AlertConfigError("alert channel slack://***: expected slack://TokenA/TokenB/TokenC")
        return
    import apprise

    if apprise.Apprise.instantiate(_expand(ch.url, resolve_secrets=False)) is None:
        raise AlertConfigError(f"alert channel {ch.redacted}: not a URL capwatch or apprise can send to")


def _expand(url: str, resolve_secrets: bool = True) -> str:
    """Fill ${NAME} from the environment and ${secret:NAME} from a Prefect Secret block."""

    def sub(m: re.Match) -> str:
        name = m.group(2)
        if m.group(1):
            if not resolve_secrets:
                return "secret"
            from prefect.blocks.system import Secret

            return str(Secret.load(name).get())
        if name not in os.environ:
            if not resolve_secrets:
                return "placeholder"
            raise AlertConfigError(f"alert channel needs the environment variable {name}")
        return os.environ[name]

    return _PLACEHOLDER.sub(sub, url)


# ------------------------------------------------------------------------------------ events


@dataclass
class Event:
    rule: str
    company: str
    date: date
    ticker: str
    change_pct: float
    change_usd: float
    market_cap: float | None
    rank_in_history: int
    message: str

    @property
    def key(self) -> str:
        """Idempotency key: receivers can drop a repeat of an at-least-once delivery."""
        return f"{self.rule}:{self.company}:{self.date.isoformat()}"


def message_for(company: str, ticker: str, change_pct: float, change_usd: float, rank_in_history: int,
                prior_days: int) -> str:
    """One line: "NVDA -16.97% — market cap -$592.7B, largest one-day loss on record"."""
    name = ticker if company == ticker else f"{company} ({ticker})"
    line = f"{name} {change_pct:+.2f}% — market cap {fmt_usd(change_usd)}"
    if change_usd < 0 and prior_days > 0:
        if rank_in_history == 1:
            line += ", largest one-day loss on record"
        elif rank_in_history <= 10:
            line += f", {_ordinal(rank_in_history)}-largest one-day loss on record"
    return line


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def evaluate(con: duckdb.DuckDBPyConnection, config: AlertConfig, since: date, run_id: str,
             notify_since: date | None) -> list[Event]:
    """Record the events on or after ``since``; those before ``notify_since`` (or all, when it is
    None) are recorded as not-to-notify. Returns the events that were new in this run."""
    rows = [(r.name, r.kind, r.threshold, r.top_n, r.min_history, None) for r in config.rules]
    rows += [(rule, None, t, None, None, company) for company, o in config.overrides.items() for rule, t in o.items()]
    if not config.rules:
        return []
    con.execute("create or replace temp table alert_rules (rule varchar, kind varchar, threshold double, "
                "top_n integer, min_history integer, company varchar)")
    con.executemany("insert into alert_rules values (?, ?, ?, ?, ?, ?)", rows)
    sql = (TRANSFORMS_DIR / "alerts" / "candidates.sql").read_text()
    cands = con.execute(sql, {"since": since}).fetchall()
    cols = [d[0] for d in con.description]
    now = datetime.now(UTC)
    new = []
    con.execute("begin transaction")
    try:
        for row in cands:
            c = dict(zip(cols, row, strict=True))
            ev = Event(c["rule"], c["company"], c["date"], c["ticker"], c["change_pct"], c["change_usd"],
                       c["market_cap"], c["rank_in_history"],
                       message_for(c["company"], c["ticker"], c["change_pct"], c["change_usd"], c["rank_in_history"], c["prior_days"]))
            notify = notify_since is not None and ev.date >= notify_since
            inserted = con.execute(
                "insert into alert_events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict do nothing returning rule",
                [ev.rule, ev.company, ev.date, ev.ticker, ev.change_pct, ev.change_usd, ev.market_cap,
                 ev.rank_in_history, ev.message, notify, now, run_id],
            ).fetchall()
            if inserted:
                new.append(ev)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return new


_EVENT_COLUMNS = "e.rule, e.company, e.date, e.ticker, e.change_pct, e.change_usd, e.market_cap, e.rank_in_history, e.message"


def pending(con: duckdb.DuckDBPyConnection, channel: Channel) -> list[Event]:
    """Events to notify that this channel has not accepted yet."""
    rows = con.execute(f"""
        select {_EVENT_COLUMNS}
        from alert_events e
        where e.notify and not exists (
            select 1 from alert_deliveries d
            where d.rule = e.rule and d.company = e.company and d.date = e.date
              and d.channel = ? and d.status = 'sent')
        order by e.date, e.change_usd
    """, [channel.redacted]).fetchall()
    return [Event(*r) for r in rows]


def find_event(con: duckdb.DuckDBPyConnection, rule: str, company: str, on: date) -> Event | None:
    row = con.execute(f"select {_EVENT_COLUMNS} from alert_events e where rule = ? and company = ? and date = ?",
                      [rule, company, on]).fetchone()
    return Event(*row) if row else None


# ---------------------------------------------------------------------------------- channels


def _payload(ev: Event) -> dict:
    return {"event_id": ev.key, "rule": ev.rule, "company": ev.company, "ticker": ev.ticker,
            "date": ev.date.isoformat(), "change_pct": round(ev.change_pct, 4), "change_usd": ev.change_usd,
            "market_cap": ev.market_cap, "rank_in_history": ev.rank_in_history, "message": ev.message}


def _slack_body(ev: Event) -> dict:
    fields = [
        {"type": "mrkdwn", "text": f"*Move*\n{ev.change_pct:+.2f}%"},
        {"type": "mrkdwn", "text": f"*Market cap change*\n{fmt_usd(ev.change_usd)}"},
        {"type": "mrkdwn", "text": f"*Market cap*\n{fmt_usd(ev.market_cap).lstrip('+') if ev.market_cap else '-'}"},
        {"type": "mrkdwn", "text": f"*Rank in history*\n#{ev.rank_in_history} one-day loss"},
    ]
    return {
        "text": ev.message,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"{ev.ticker} {ev.change_pct:+.2f}% on {ev.date}"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": ev.message}, "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"capwatch rule `{ev.rule}` · event {ev.key}"}]},
        ],
    }


def _http_post(url: str, body: dict, timeout: float, key: str) -> None:
    r = requests.post(url, json=body, timeout=timeout, headers={"Idempotency-Key": key})
    if r.status_code >= 300:
        raise RuntimeError(f"HTTP {r.status_code} {r.text[:200]!r}")


def _send_mail(url: str, ev: Event, timeout: float) -> None:
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    to = q.get("to") or user
    sender = q.get("from") or (user if "@" in user else f"capwatch@{parts.hostname}")
    msg = EmailMessage()
    msg["Subject"] = f"capwatch: {ev.message}"
    msg["From"], msg["To"] = sender, to
    msg["X-Capwatch-Event"] = ev.key
    msg.set_content(f"{ev.message}\n\n{json.dumps(_payload(ev), indent=2)}\n")
    secure = parts.scheme.startswith("mailtos")
    with smtplib.SMTP(parts.hostname, parts.port or (587 if secure else 25), timeout=timeout) as smtp:
        if secure:
            ctx = ssl.create_default_context()
            if q.get("verify", "yes").lower() in ("no", "false", "0"):
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            smtp.starttls(context=ctx)
        if user and password:
            smtp.login(user, password)
        smtp.send_message(msg)


def send(channel: Channel, ev: Event, timeout: float = 10.0) -> None:
    """Deliver one event to one channel; raises unless the endpoint accepted it."""
    url = _expand(channel.url)
    scheme = channel.scheme
    if scheme in ("json", "jsons"):
        _http_post(("https" if scheme == "jsons" else "http") + url[len(scheme):], _payload(ev), timeout, ev.key)
    elif scheme in ("slack+http", "slack+https"):
        _http_post(url[len("slack+"):], _slack_body(ev), timeout, ev.key)
    elif scheme == "slack":
        tokens = [p for p in url[len("slack://"):].split("/") if p][:3]
        _http_post("https://hooks.slack.com/services/" + "/".join(tokens), _slack_body(ev), timeout, ev.key)
    elif scheme in ("mailto", "mailtos"):
        _send_mail(url, ev, timeout)
    else:
        import apprise

        ap = apprise.Apprise()
        if not ap.add(url):
            raise AlertConfigError(f"alert channel {channel.redacted}: apprise cannot use it")
        if not ap.notify(title=f"capwatch: {ev.ticker} {ev.change_pct:+.2f}%", body=ev.message):
            raise RuntimeError("apprise reported the notification as not delivered")


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver(con: duckdb.DuckDBPyConnection, config: AlertConfig, run_id: str, sleep=time.sleep,
            only: Event | None = None) -> DeliveryReport:
    """Send every pending event (or just ``only``, even if sent before) to every channel; record
    each attempt. Never raises for a send."""
    report = DeliveryReport()
    for channel in config.channels:
        for ev in [only] if only else pending(con, channel):
            delay = config.backoff_seconds
            for attempt in range(1, config.attempts + 1):
                error = None
                try:
                    send(channel, ev, config.timeout_seconds)
                except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                    error = f"{type(exc).__name__}: {exc}"[:500]
                con.execute(
                    "insert into alert_deliveries values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [ev.rule, ev.company, ev.date, channel.redacted, attempt, datetime.now(UTC),
                     "sent" if error is None else "failed", error, run_id],
                )
                if error is None:
                    report.sent += 1
                    log.info("alert %s sent to %s", ev.key, channel.redacted)
                    break
                log.warning("alert %s to %s failed (attempt %d/%d): %s", ev.key, channel.redacted, attempt, config.attempts, error)
                if attempt < config.attempts:
                    sleep(delay)
                    delay *= 2
            else:
                report.failed += 1
                report.errors.append(f"{ev.key} -> {channel.redacted}: {error}")
    return report
