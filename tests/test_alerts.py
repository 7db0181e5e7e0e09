"""Issue 6: alerts reach people once, through real channels on 127.0.0.1, and are never lost."""

from __future__ import annotations

import json
import os
import re
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from capwatch.alerts import AlertConfigError, deliver, evaluate, load_config
from capwatch.alerts.rules import ALERT_RULES_TABLE
from capwatch.extract.csv import CsvSource
from capwatch.load import load_batch
from capwatch.transform import build_and_gate
from capwatch.validate import gate_raw
from tests.conftest import LAKE_LANE, open_db

DEEPSEEK = date(2025, 1, 27)


class Endpoint:
    """A real HTTP server on 127.0.0.1 that records POSTs and answers with scripted statuses."""

    def __init__(self, statuses=()):
        self.received: list[dict] = []
        self.statuses = list(statuses)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = outer.statuses.pop(0) if outer.statuses else 200
                if status == 200:
                    outer.received.append(
                        {
                            "path": self.path,
                            "body": json.loads(body),
                            "key": self.headers.get("Idempotency-Key"),
                        }
                    )
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"down")

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    ep = Endpoint()
    yield ep
    ep.close()


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    import socket

    with socket.socket() as probe:  # aiosmtpd cannot start on port 0: pick a free port first
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    inbox.port = port
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox
    controller.stop()


def _config(tmp_path, urls, attempts=3, extra=""):
    path = tmp_path / "alerts.toml"
    path.write_text(f"""
[rules.pct_drop]
kind = "pct_drop"
threshold = -10.0
[rules.usd_loss]
kind = "usd_loss"
threshold = -100e9
[rules.top10_drop]
kind = "top_n_pct_drop"
top_n = 10
threshold = -7.0
{extra}
[channels]
urls = {json.dumps(urls)}
[delivery]
attempts = {attempts}
backoff_seconds = 0.01
timeout_seconds = 5
""")
    return load_config(path=path)


def _fill_deepseek(con, shared_dir) -> None:
    """The whole universe from ../shared/marketdata, 2024-01-02..2025-01-31, models built."""
    from capwatch.settings import default_universe

    src = CsvSource(shared_dir)
    tickers = default_universe()
    clean, q, res = gate_raw(
        src.fetch(tickers, date(2024, 1, 2), date(2025, 1, 31)), date(2026, 11, 23)
    )
    load_batch(
        con,
        clean,
        q,
        source=src.name,
        run_id="load",
        flow="test",
        start=None,
        end=None,
        tickers=tickers,
        validation=res,
    )
    build_and_gate(con, "load")


@pytest.fixture(scope="module")
def deepseek_db(shared_dir, tmp_path_factory):
    """A DuckDB file holding ``_fill_deepseek``, built once per module (copied per test)."""
    from capwatch.warehouse import connect

    path = tmp_path_factory.mktemp("alerts") / "w.duckdb"
    if not LAKE_LANE:
        con = connect(path)
        _fill_deepseek(con, shared_dir)
        con.close()
    return path


@pytest.fixture
def con(deepseek_db, shared_dir, tmp_path):
    import shutil

    copy = tmp_path / "w.duckdb"
    if LAKE_LANE:  # a lake cannot be copied as a file: each test fills its own
        c = open_db(copy, read_only=False)
        _fill_deepseek(c, shared_dir)
    else:
        shutil.copy(deepseek_db, copy)
        c = open_db(copy, read_only=False)
    yield c
    c.close()


EXPECTED = [
    ("pct_drop", "AVGO"),
    ("pct_drop", "CEG"),
    ("pct_drop", "MU"),
    ("pct_drop", "NVDA"),
    ("pct_drop", "ORCL"),
    ("pct_drop", "VRT"),
    ("top10_drop", "AVGO"),
    ("top10_drop", "NVDA"),
    ("usd_loss", "AVGO"),
    ("usd_loss", "NVDA"),
]


def test_deepseek_day_fires_exactly_the_expected_events(con, tmp_path):
    config = _config(tmp_path, [])
    new = evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    assert sorted((e.rule, e.company) for e in new if e.date == DEEPSEEK) == EXPECTED
    nvda = next(
        e for e in new if e.rule == "usd_loss" and e.company == "NVDA" and e.date == DEEPSEEK
    )
    assert nvda.message == "NVDA -16.97% — market cap -$592.7B, largest one-day loss on record"
    assert (
        evaluate(con, config, since=DEEPSEEK, run_id="r2", notify_since=DEEPSEEK) == []
    )  # each event exists once


def test_webhook_slack_and_email_each_receive_every_event_once(
    con, tmp_path, endpoint, smtp_server
):
    slack = Endpoint()
    try:
        config = _config(
            tmp_path,
            [
                f"json://127.0.0.1:{endpoint.port}/capwatch",
                f"slack+http://127.0.0.1:{slack.port}/services/T0/B0/X0",
                f"mailto://127.0.0.1:{smtp_server.port}?to=oncall@example.com&from=capwatch@example.com",
            ],
        )
        evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
        # One message per company and day (issue 15), grouping every rule it passed.
        n_events = con.execute(
            "select count(distinct (company, date)) from alert_events where notify"
        ).fetchone()[0]
        report = deliver(con, config, "r1")
        assert (report.sent, report.failed) == (3 * n_events, 0)
        assert (
            len(endpoint.received) == len(slack.received) == len(smtp_server.messages) == n_events
        )
        nvda_key = "NVDA:2025-01-27:pct_drop+top10_drop+usd_loss"
        hook = next(r for r in endpoint.received if r["body"]["event_id"] == nvda_key)
        assert hook["path"] == "/capwatch" and hook["key"] == nvda_key
        assert hook["body"]["rules"] == ["pct_drop", "top10_drop", "usd_loss"]
        assert hook["body"]["message"] == (
            "NVDA -16.97% — market cap -$592.7B, largest one-day loss on record; "
            "rules pct_drop, top10_drop, usd_loss"
        )
        assert (
            hook["body"]["change_pct"] == pytest.approx(-16.9682)
            and hook["body"]["rank_in_history"] == 1
        )
        block = next(
            r["body"] for r in slack.received if r["body"]["text"].startswith("NVDA -16.97%")
        )
        assert block["blocks"][0]["text"]["text"] == "NVDA -16.97% on 2025-01-27"
        assert any("-$592.7B" in f["text"] for f in block["blocks"][1]["fields"])
        rcpt, mail = smtp_server.messages[0]
        assert rcpt == ["oncall@example.com"] and "Subject: capwatch:" in mail
        # The flow runs again (re-run, retry): nothing new is sent anywhere.
        evaluate(con, config, since=DEEPSEEK, run_id="r2", notify_since=DEEPSEEK)
        assert deliver(con, config, "r2").sent == 0
        assert (
            len(endpoint.received) == len(slack.received) == len(smtp_server.messages) == n_events
        )
    finally:
        slack.close()


def test_endpoint_down_then_up_receives_each_event_exactly_once(con, tmp_path):
    down = Endpoint(statuses=[500] * 50)
    try:
        config = _config(tmp_path, [f"json://127.0.0.1:{down.port}/hook"], attempts=2)
        evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
        keys = sorted(
            f"{c}:{d}:{rules}"
            for c, d, rules in con.execute(
                "select company, date, string_agg(rule, '+' order by rule) from alert_events "
                "group by company, date"
            ).fetchall()
        )
        n_events = con.execute("select count(*) from alert_events").fetchone()[0]
        first = deliver(con, config, "r1")
        assert first.sent == 0 and first.failed == len(keys)
        assert down.received == []
        statuses = con.execute(
            "select status, count(*) from alert_deliveries group by status"
        ).fetchall()
        assert statuses == [
            ("failed", 2 * n_events)
        ]  # every attempt of every event recorded, none sent
        down.statuses = [500]  # one more failure, then it recovers
        second = deliver(con, config, "r2")
        assert second.sent == len(keys)
        assert sorted(r["body"]["event_id"] for r in down.received) == keys  # each exactly once
        assert deliver(con, config, "r3").sent == 0 and len(down.received) == len(keys)
    finally:
        down.close()


def test_backfill_records_history_without_paging_unless_asked(con, tmp_path, endpoint):
    config = _config(tmp_path, [f"json://127.0.0.1:{endpoint.port}/hook"])
    evaluate(con, config, since=date(2024, 1, 2), run_id="bf", notify_since=None)
    assert deliver(con, config, "bf").sent == 0 and endpoint.received == []
    assert con.execute("select count(*) from alert_events where not notify").fetchone()[0] >= len(
        EXPECTED
    )


def test_overrides_change_a_companys_threshold(con, tmp_path):
    config = _config(tmp_path, [], extra="[overrides.MU]\npct_drop = -15.0\n")
    new = evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    assert ("pct_drop", "MU") not in {(e.rule, e.company) for e in new}


@pytest.mark.parametrize(
    "url,message",
    [
        ("json://", "no host"),
        ("http//nohost", "not a URL"),
        ("json://127.0.0.1:99999/x", "Port out of range"),
        ("mailto://127.0.0.1:25", "no recipient"),
        ("bogus://what", "not a URL capwatch or apprise can send to"),
    ],
)
def test_malformed_channel_is_a_config_error_at_start(tmp_path, url, message):
    with pytest.raises(AlertConfigError, match=message):
        _config(tmp_path, [url])


def test_flow_refuses_to_start_with_a_bad_channel(
    prefect_harness, tmp_path, monkeypatch, shared_dir
):
    from flows.pipeline import backfill

    monkeypatch.setenv("CAPWATCH_ALERT_URLS", "bogus://nowhere")
    db = tmp_path / "never.duckdb"
    with pytest.raises(AlertConfigError, match="bogus://"):
        backfill(
            start=date(2025, 1, 2),
            end=date(2025, 1, 3),
            tickers=["NVDA"],
            source=f"csv:{shared_dir}",
            db=str(db),
        )
    assert not db.exists()


def test_daily_flow_twice_sends_once(prefect_harness, shared_dir, tmp_path, monkeypatch, endpoint):
    from flows.pipeline import daily

    monkeypatch.setenv("CAPWATCH_SOURCE", f"replay:csv:{shared_dir}")
    monkeypatch.setenv("CAPWATCH_ALERT_URLS", f"json://127.0.0.1:{endpoint.port}/hook")
    db = str(tmp_path / "d.duckdb")
    first = daily(tickers=["NVDA", "AVGO"], db=db, history_years=1, today=date(2025, 1, 28))
    got = sorted(r["body"]["event_id"] for r in endpoint.received)
    # The first run loads a year of history but pages only about the last week (NVDA also lost
    # $113B on 2025-01-24); the year before is recorded, not sent.
    assert got == [
        "AVGO:2025-01-27:pct_drop+top10_drop+usd_loss",
        "NVDA:2025-01-24:usd_loss",
        "NVDA:2025-01-27:pct_drop+top10_drop+usd_loss",
        "Semiconductors (group):2025-01-27:group_drop",  # NVDA and AVGO are the group here
    ]
    assert first.alerts.sent == 4 and first.alerts.new_events > 7
    again = daily(tickers=["NVDA", "AVGO"], db=db, history_years=1, today=date(2025, 1, 28))
    assert again.alerts.sent == 0 and again.alerts.new_events == 0 and len(endpoint.received) == 4


def _self_signed(tmp_path):
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tmp_path / "c.pem", tmp_path / "k.pem"


def test_email_over_starttls(con, tmp_path):
    import socket
    import ssl

    from aiosmtpd.controller import Controller

    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    got = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            got.append(session.ssl is not None)
            return "250 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True
    )
    controller.start()
    try:
        config = _config(tmp_path, [f"mailtos://127.0.0.1:{port}?to=oncall@example.com&verify=no"])
        evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
        report = deliver(con, config, "r1")
        assert report.failed == 0 and report.sent == len(got) > 0 and all(got)
    finally:
        controller.stop()


def test_alerts_cli_list_test_resend(con, tmp_path, endpoint, monkeypatch):
    from click.testing import CliRunner

    from capwatch.cli import main

    config = _config(tmp_path, [f"json://127.0.0.1:{endpoint.port}/hook"])
    evaluate(
        con, config, since=date(2024, 1, 2), run_id="bf", notify_since=None
    )  # a backfill: recorded only
    path = str(tmp_path / "w.duckdb")  # the con fixture's warehouse (in the lake lane, its name)
    con.close()
    monkeypatch.setenv("CAPWATCH_ALERTS_CONFIG", str(tmp_path / "alerts.toml"))
    runner = CliRunner()
    res = runner.invoke(main, ["alerts", "list", "--db", path, "--limit", "3"])
    assert res.exit_code == 0 and "recorded only (backfill)" in res.output
    res = runner.invoke(main, ["alerts", "test"])
    assert res.exit_code == 0 and re.search(
        rf"ok      json-[0-9a-f]{{8}} \(json://127\.0\.0\.1:{endpoint.port}\)", res.output
    )
    res = runner.invoke(
        main,
        [
            "alerts",
            "resend",
            "--db",
            path,
            "--rule",
            "usd_loss",
            "--company",
            "NVDA",
            "--on",
            "2025-01-27",
        ],
    )
    assert res.exit_code == 0, res.output
    assert [r["body"]["event_id"] for r in endpoint.received] == [
        "test:TEST:" + date.today().isoformat(),
        "NVDA:2025-01-27:usd_loss",
    ]


@pytest.mark.file_only
def test_a_slow_endpoint_never_holds_the_warehouse(deepseek_db, tmp_path):
    """Issue 14: delivery happens with the warehouse closed, so a webhook that takes seconds to
    answer keeps nobody out of the file."""
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from capwatch.settings import Settings
    from capwatch.warehouse import connect
    from flows.pipeline import alert

    arrived, release = threading.Event(), threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            self.rfile.read(int(self.headers["Content-Length"]))
            arrived.set()
            release.wait(10)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    db = tmp_path / "w.duckdb"
    shutil.copy(deepseek_db, db)
    config = _config(tmp_path, [f"json://127.0.0.1:{server.server_port}/hook"])
    done = {}

    def run_task():
        from prefect.logging import disable_run_logger

        with disable_run_logger():
            done["s"] = alert.fn(
                Settings(db_path=db),
                config,
                "run",
                since=date(2025, 1, 27),
                notify_since=date(2025, 1, 27),
            )

    worker = threading.Thread(target=run_task)
    worker.start()
    assert arrived.wait(30)
    con = connect(db, wait_seconds=1)  # while the endpoint is still answering: the file is free
    con.execute("select count(*) from alert_events").fetchone()
    con.close()
    release.set()
    worker.join(60)
    server.shutdown()
    assert done["s"].sent > 0 and done["s"].failed == 0


# ----------------------------------------------------------------- issue 15: named channels, secrets


def _named_config(tmp_path, channels: dict[str, dict], attempts=2):
    lines = [
        '[rules.pct_drop]\nkind = "pct_drop"\nthreshold = -10.0',
        '[rules.usd_loss]\nkind = "usd_loss"\nthreshold = -100e9',
        f"[delivery]\nattempts = {attempts}\nbackoff_seconds = 0.01\ntimeout_seconds = 5",
    ]
    for name, spec in channels.items():
        lines.append(
            f"[channels.{name}]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in spec.items())
        )
    path = tmp_path / "alerts.toml"
    path.write_text("\n\n".join(lines) + "\n")
    return load_config(path=path)


def test_two_channels_of_one_kind_are_each_served(con, tmp_path, smtp_server):
    """Two mailto recipients on one SMTP host, two Slack-compatible hooks on one host: every channel
    gets every event once (deliveries are keyed on the channel's name, not its redacted URL)."""
    hook = Endpoint()
    try:
        config = _named_config(
            tmp_path,
            {
                "oncall_mail": {
                    "url": f"mailto://127.0.0.1:{smtp_server.port}?to=oncall@example.com"
                },
                "desk_mail": {"url": f"mailto://127.0.0.1:{smtp_server.port}?to=desk@example.com"},
                "ops_slack": {
                    "url": f"slack+http://127.0.0.1:{hook.port}/services/T1/B1/opsSECRET"
                },
                "risk_slack": {
                    "url": f"slack+http://127.0.0.1:{hook.port}/services/T2/B2/riskSECRET",
                    "rules": ["usd_loss"],
                },
            },
        )
        evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
        events = con.execute(
            "select distinct company, date from alert_events where notify"
        ).fetchall()
        usd = con.execute(
            "select distinct company, date from alert_events where notify and rule = 'usd_loss'"
        ).fetchall()
        report = deliver(con, config, "r1")
        assert (report.sent, report.failed) == (3 * len(events) + len(usd), 0)
        rcpts = sorted(r[0] for r, _ in smtp_server.messages)
        assert rcpts == sorted(
            ["desk@example.com"] * len(events) + ["oncall@example.com"] * len(events)
        )
        paths = sorted(r["path"] for r in hook.received)
        assert paths == sorted(
            ["/services/T1/B1/opsSECRET"] * len(events) + ["/services/T2/B2/riskSECRET"] * len(usd)
        )
        # deliveries are recorded per event (a notice covers all of a company-day's events)
        (n_rows,) = con.execute("select count(*) from alert_events where notify").fetchone()
        by_channel = dict(
            con.execute(
                "select channel, count(*) from alert_deliveries where status = 'sent' "
                "group by channel"
            ).fetchall()
        )
        assert by_channel == {
            "oncall_mail": n_rows,
            "desk_mail": n_rows,
            "ops_slack": n_rows,
            "risk_slack": len(usd),
        }
        assert deliver(con, config, "r2").sent == 0  # again: nothing new anywhere
    finally:
        hook.close()


def test_a_secret_in_channel_urls_is_never_stored_or_printed(
    con, tmp_path, endpoint, monkeypatch, caplog
):
    import logging
    import socket

    secret = "tok-9f8e7d6c5b4a"
    monkeypatch.setenv("HOOK_TOKEN", secret)
    with (
        socket.socket() as probe
    ):  # a port nobody listens on: the send fails with the URL in the error
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    config = _named_config(
        tmp_path,
        {
            "good": {"url": f"json://127.0.0.1:{endpoint.port}/hook/${{HOOK_TOKEN}}"},
            "down": {"url": f"json://127.0.0.1:{dead}/hook/${{HOOK_TOKEN}}"},
            "slack_down": {"url": f"slack+http://127.0.0.1:{dead}/services/T/B/{secret}"},
            "mail_down": {"url": f"mailto://user:{secret}@127.0.0.1:{dead}?to=a@example.com"},
        },
    )
    assert all(secret not in ch.redacted and secret not in ch.label for ch in config.channels)
    caplog.set_level(logging.DEBUG)
    evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    report = deliver(con, config, "r1", sleep=lambda s: None)
    assert report.sent > 0 and report.failed > 0
    assert endpoint.received[0]["path"] == f"/hook/{secret}"  # the endpoint did get the real URL
    errors = [
        e
        for (e,) in con.execute(
            "select error from alert_deliveries where error is not null"
        ).fetchall()
    ]
    assert errors and all("***" in e or "Connection refused" in e for e in errors)
    assert not any(secret in e for e in errors + report.errors)
    assert secret not in caplog.text
    con.execute("checkpoint")
    if LAKE_LANE:  # every file of the lake
        stored = [f for f in Path(os.environ["CAPWATCH_LAKE_DATA_PATH"]).rglob("*") if f.is_file()]
    else:
        stored = [tmp_path / "w.duckdb"]
    assert stored and not any(secret.encode() in f.read_bytes() for f in stored)


def test_a_rule_that_fires_later_sends_one_follow_up_never_a_repeat(con, tmp_path, endpoint):
    config = _config(tmp_path, [f"json://127.0.0.1:{endpoint.port}/hook"])
    evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    first = deliver(con, config, "r1").sent
    # Late data: the same company-day passes another rule on a later run.
    con.execute(
        "insert into alert_events (rule, company, date, ticker, change_pct, change_usd, market_cap, "
        "rank_in_history, message, notify, created_at, run_id) select 'record_loss', company, date, ticker, change_pct, change_usd, "
        "market_cap, rank_in_history, message, true, now(), 'r2' from alert_events "
        "where rule = 'usd_loss' and company = 'NVDA' and date = ?",
        [DEEPSEEK],
    )
    assert deliver(con, config, "r2").sent == 1 and len(endpoint.received) == first + 1
    follow = endpoint.received[-1]["body"]
    assert follow["event_id"] == "NVDA:2025-01-27:record_loss" and follow["follow_up"] is True
    assert follow["message"].startswith("follow-up for 2025-01-27: NVDA -16.97%")
    assert follow["message"].endswith("; now also rule record_loss")
    assert deliver(con, config, "r3").sent == 0


def test_top_n_ranks_against_the_whole_universe_not_the_days_movers(db):
    """Issue 15: a big company missing from a day's data (a failed fetch) does not make a smaller
    one "top 1"."""
    from capwatch.resources import transforms_dir
    from capwatch.transform import run_models
    from tests.conftest import insert_prices, insert_shares

    d0, d1 = date(2025, 1, 24), date(2025, 1, 27)
    # BIG (cap 1e12) has no price on d1 (its fetch failed); SMALL (cap 1e9) falls 8 %.
    insert_prices(db, [("BIG", d0, 100.0), ("SMALL", d0, 10.0), ("SMALL", d1, 9.2)])
    insert_shares(
        db,
        [
            ("BIG", "all", date(2024, 12, 1), 10_000_000_000, date(2024, 12, 2)),
            ("SMALL", "all", date(2024, 12, 1), 100_000_000, date(2024, 12, 2)),
        ],
    )
    run_models(db)
    db.execute(ALERT_RULES_TABLE)
    db.execute(
        "insert into alert_rules values ('top1_drop', 'top_n_pct_drop', -7.0, 1, 250, null, 'down')"
    )
    rows = db.execute(
        (transforms_dir() / "alerts" / "candidates.sql").read_text(), {"since": d0}
    ).fetchall()
    assert rows == []  # SMALL was #2 of the universe on d0: no top-1 event
    db.execute("update alert_rules set top_n = 2")
    rows = db.execute(
        (transforms_dir() / "alerts" / "candidates.sql").read_text(), {"since": d0}
    ).fetchall()
    assert [(r[0], r[2], r[8]) for r in rows] == [("top1_drop", "SMALL", 2)]


def test_a_timed_out_attempt_is_uncertain_and_retried_with_the_same_key(con, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen = []

    class SlowOnce(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Idempotency-Key"])
            if len(seen) == 1:
                threading.Event().wait(2.5)  # longer than the channel's timeout
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        config = _config(tmp_path, [f"json://127.0.0.1:{server.server_port}/hook"])
        config.timeout_seconds = 1.0
        evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
        report = deliver(con, config, "r1", sleep=lambda s: None)
        assert report.failed == 0
        statuses = con.execute(
            "select status, attempt from alert_deliveries order by attempted_at"
        ).fetchall()
        assert statuses[0][0] == "uncertain" and statuses[0][1] == 1
        assert seen[0] == seen[1]  # the retry carried the same Idempotency-Key
    finally:
        server.shutdown()


def test_a_failed_flow_run_and_an_empty_day_each_send_one_operations_message(
    prefect_harness, shared_dir, tmp_path, monkeypatch, endpoint
):
    from flows.pipeline import backfill, daily
    from tests.test_gates import _broken_models

    monkeypatch.setenv("CAPWATCH_ALERT_URLS", f"json://127.0.0.1:{endpoint.port}/ops")
    # A day where the source has nothing for most of the universe: an outage, said as such.
    summary = daily(
        tickers=["NVDA", "NOPE1", "NOPE2", "NOPE3", "NOPE4"],
        source=f"csv:{shared_dir}",
        db=str(tmp_path / "d.duckdb"),
        history_years=1,
        today=date(2025, 1, 28),
    )
    assert len(summary.problems) == 4
    ops = [r["body"] for r in endpoint.received if r["body"].get("kind") == "operations"]
    assert [o["event_id"] for o in ops] == ["ops:empty:2025-01-28"]
    assert (
        ops[0]["message"].startswith("capwatch daily 2025-01-28: no prices from csv:")
        and "4 of 5 tickers" in ops[0]["message"]
    )
    # A flow run that fails (a fault of the models) pages the same channels, once.
    _broken_models(monkeypatch)
    state = backfill(
        start=date(2025, 1, 2),
        end=date(2025, 1, 31),
        tickers=["ORCL"],
        source=f"csv:{shared_dir}",
        db=str(tmp_path / "f.duckdb"),
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match="model gate failed, previous models kept"):
        state.result()
    ops = [r["body"] for r in endpoint.received if r["body"].get("kind") == "operations"]
    assert len(ops) == 2 and ops[1]["event_id"].startswith("ops:")
    assert (
        ops[1]["message"].startswith("capwatch capwatch-backfill run ")
        and "failed" in ops[1]["message"]
    )
    assert "model gate failed" in ops[1]["message"]


def test_a_missed_deadline_sends_one_operations_message(
    prefect_harness, shared_dir, tmp_path, monkeypatch, endpoint
):
    from flows.pipeline import daily, freshness

    monkeypatch.setenv("CAPWATCH_ALERT_URLS", f"json://127.0.0.1:{endpoint.port}/ops")
    db = str(tmp_path / "d.duckdb")
    daily(
        tickers=["NVDA"],
        source=f"csv:{shared_dir}",
        db=db,
        history_years=1,
        today=date(2025, 1, 28),
    )
    before = len(endpoint.received)
    assert freshness(db=db, today=date(2025, 1, 28)) is None  # landed: nothing to say
    assert freshness(db=db, today=date(2025, 2, 1)) is None  # a Saturday: nothing was due
    message = freshness(db=db, today=date(2025, 1, 29))
    assert message.startswith(
        "capwatch 2025-01-29, after the 21:00 New York deadline: no daily run has loaded"
    )
    new = [r["body"] for r in endpoint.received[before:]]
    assert [b["event_id"] for b in new] == ["ops:stale:2025-01-29"] and new[0]["message"] == message


def test_market_and_group_rules_fire_on_the_deepseek_day(con, tmp_path, endpoint):
    config = _config(
        tmp_path,
        [f"json://127.0.0.1:{endpoint.port}/hook"],
        extra='[rules.market_loss]\nkind = "market_usd_loss"\nthreshold = -500e9\n'
        '[rules.group_drop]\nkind = "group_pct_drop"\nthreshold = -7.0\n',
    )
    new = evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    wide = sorted(
        (e.rule, e.company)
        for e in new
        if e.date == DEEPSEEK and e.rule in ("market_loss", "group_drop")
    )
    assert wide == [("group_drop", "Semiconductors (group)"), ("market_loss", "Market")]
    deliver(con, config, "r1")
    bodies = {r["body"]["company"]: r["body"] for r in endpoint.received}
    semis = bodies["Semiconductors (group)"]
    assert semis["message"].startswith("Semiconductors (group) -") and semis["rules"] == [
        "group_drop"
    ]
    market = bodies["Market"]
    assert market["change_usd"] < -500e9 and market["message"].startswith("Market -")


def test_an_event_whose_data_is_corrected_is_withdrawn_and_a_correction_follows(
    con, tmp_path, endpoint
):
    config = _config(tmp_path, [f"json://127.0.0.1:{endpoint.port}/hook"])
    evaluate(con, config, since=DEEPSEEK, run_id="r1", notify_since=DEEPSEEK)
    deliver(con, config, "r1")
    sent = len(endpoint.received)
    assert any(r["body"]["company"] == "ORCL" for r in endpoint.received)
    # The data under ORCL's -13.8 % turns out wrong: corrected, the move is -1 %.
    con.execute(
        "update company_daily_moves set change_pct = -1.0, change_usd = -5e9 "
        "where company = 'ORCL' and date = ?",
        [DEEPSEEK],
    )
    evaluate(con, config, since=DEEPSEEK, run_id="r2", notify_since=DEEPSEEK)
    (withdrawn,) = con.execute(
        "select withdrawn_reason from alert_events where company = 'ORCL' and date = ? "
        "and withdrawn_at is not null",
        [DEEPSEEK],
    ).fetchall()
    assert withdrawn == ("no longer passes pct_drop: the move is now -1.00%",)
    assert deliver(con, config, "r2").sent == 1 and len(endpoint.received) == sent + 1
    correction = endpoint.received[-1]["body"]
    assert (
        correction["kind"] == "correction"
        and correction["event_id"] == "correction:ORCL:2025-01-27:pct_drop"
    )
    assert (
        correction["message"]
        == "correction for 2025-01-27: ORCL no longer passes pct_drop: the move is now -1.00%"
    )
    assert deliver(con, config, "r3").sent == 0  # one correction, never repeated


def test_a_secret_is_in_no_artifact_and_no_flow_log(
    prefect_harness, shared_dir, tmp_path, monkeypatch, endpoint
):
    import socket

    from prefect.client.orchestration import get_client

    from flows.pipeline import daily

    secret = "tok-0a1b2c3d4e5f"
    monkeypatch.setenv("HOOK_TOKEN", secret)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    monkeypatch.setenv(
        "CAPWATCH_ALERT_URLS",
        f"json://127.0.0.1:{endpoint.port}/h/${{HOOK_TOKEN}},"
        f"json://127.0.0.1:{dead}/h/${{HOOK_TOKEN}}",
    )
    summary = daily(
        tickers=["NVDA", "AVGO"],
        source=f"csv:{shared_dir}",
        db=str(tmp_path / "d.duckdb"),
        history_years=1,
        today=date(2025, 1, 28),
    )
    assert summary.alerts.sent > 0 and summary.alerts.failed > 0
    assert any(r["path"] == f"/h/{secret}" for r in endpoint.received)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts()
        logs = client.read_logs()
    texts = [str(a.data) + str(a.description) for a in artifacts] + [log.message for log in logs]
    assert artifacts and logs and not [t for t in texts if secret in t]
    # the daily run writes the day's report beside the warehouse and puts its summary in the artifact
    page = tmp_path / "reports" / "capwatch-report-2025-01-28.html"
    assert page.is_file() and 'src="data:image/png;base64,' in page.read_text()
    assert any(
        a.key == "capwatch-daily"
        and "## Report for 2025-01-28" in str(a.data)
        and str(page) in str(a.data)
        for a in artifacts
    )
