"""Alert channels: one event sent to one channel, raising unless the endpoint accepted it.

JSON webhooks, Slack(-compatible) incoming webhooks and SMTP are sent by capwatch itself; any
other apprise URL goes through apprise.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from capwatch.alerts.config import AlertConfigError, Channel, expand
from capwatch.alerts.rules import Event
from capwatch.report import fmt_usd

# urllib3 logs every request line with its path at DEBUG: a webhook's path is often its secret.
logging.getLogger("urllib3.connectionpool").setLevel(logging.WARNING)


def _payload(ev: Event) -> dict:
    kind = getattr(ev, "kind", "market")
    if kind == "operations":
        return {
            "event_id": ev.key,
            "kind": kind,
            "date": ev.date.isoformat(),
            "message": ev.message,
        }
    if kind == "correction":
        return {
            "event_id": ev.key,
            "kind": kind,
            "company": ev.company,
            "date": ev.date.isoformat(),
            "rules": ev.rules,
            "message": ev.message,
        }
    return {
        "event_id": ev.key,
        "rule": ev.rule,
        "company": ev.company,
        "ticker": ev.ticker,
        "date": ev.date.isoformat(),
        "change_pct": round(ev.change_pct, 4),
        "change_usd": ev.change_usd,
        "market_cap": ev.market_cap,
        "rank_in_history": ev.rank_in_history,
        "message": ev.message,
        # a notice groups every rule the company passed that day (a single event: its own rule)
        "rules": list(getattr(ev, "rules", [ev.rule])),
        "follow_up": bool(getattr(ev, "follow_up", False)),
    }


def _slack_body(ev: Event) -> dict:
    if getattr(ev, "kind", "market") in ("operations", "correction"):
        return {
            "text": ev.message,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": f"capwatch {ev.kind}"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": ev.message}},
            ],
        }
    fields = [
        {"type": "mrkdwn", "text": f"*Move*\n{ev.change_pct:+.2f}%"},
        {"type": "mrkdwn", "text": f"*Market cap change*\n{fmt_usd(ev.change_usd)}"},
        {
            "type": "mrkdwn",
            "text": f"*Market cap*\n{fmt_usd(ev.market_cap).lstrip('+') if ev.market_cap else '-'}",
        },
        {"type": "mrkdwn", "text": f"*Rank in history*\n#{ev.rank_in_history} one-day loss"},
    ]
    return {
        "text": ev.message,
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": f"{ev.ticker} {ev.change_pct:+.2f}% on {ev.date}",
                },
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": ev.message}, "fields": fields},
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"capwatch rule `{ev.rule}` · event {ev.key}"}
                ],
            },
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
    with smtplib.SMTP(
        parts.hostname, parts.port or (587 if secure else 25), timeout=timeout
    ) as smtp:
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
    url = expand(channel.url)
    scheme = channel.scheme
    if scheme in ("json", "jsons"):
        _http_post(
            ("https" if scheme == "jsons" else "http") + url[len(scheme) :],
            _payload(ev),
            timeout,
            ev.key,
        )
    elif scheme in ("slack+http", "slack+https"):
        _http_post(url[len("slack+") :], _slack_body(ev), timeout, ev.key)
    elif scheme == "slack":
        tokens = [p for p in url[len("slack://") :].split("/") if p][:3]
        _http_post(
            "https://hooks.slack.com/services/" + "/".join(tokens), _slack_body(ev), timeout, ev.key
        )
    elif scheme in ("mailto", "mailtos"):
        _send_mail(url, ev, timeout)
    else:
        import apprise

        ap = apprise.Apprise()
        if not ap.add(url):
            raise AlertConfigError(f"alert channel {channel.label}: apprise cannot use it")
        kind = getattr(ev, "kind", "market")
        title = (
            f"capwatch {kind}"
            if kind in ("operations", "correction")
            else f"capwatch: {ev.ticker} {ev.change_pct:+.2f}%"
        )
        if not ap.notify(title=title, body=ev.message):
            raise RuntimeError("apprise reported the notification as not delivered")
