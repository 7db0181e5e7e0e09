"""Issue 17: `capwatch doctor` says what is wrong with the environment and what to fix."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from capwatch.cli import main
from tests.conftest import LAKE_LANE, open_db


def _doctor(db, monkeypatch, **env):
    for k in (
        "CAPWATCH_SEC_USER_AGENT",
        "CAPWATCH_ALERT_URLS",
        "PREFECT_API_URL",
        "CAPWATCH_SHARES_SOURCE",
    ):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(main, ["doctor", "--db", str(db)])


def test_doctor_passes_a_sound_setup_and_names_each_problem_with_its_fix(tmp_path, monkeypatch):
    db = tmp_path / "w.duckdb"
    open_db(db, read_only=False).close()  # migrated, no models yet
    ok = _doctor(db, monkeypatch, CAPWATCH_SEC_USER_AGENT="Jane Doe jane@example.com")
    assert ok.exit_code == 0, ok.output
    opened = "the lake (capwatch lake cli)" if LAKE_LANE else "the file"
    assert f"ok    the official CLI opens {opened}" in ok.output
    assert (
        "ok    share counts also from sec (User-Agent 'Jane Doe jane@example.com', 8 requests/s)"
        in ok.output
    )
    assert "warn  no models built yet" in ok.output and "0 failed" in ok.output

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    bad = _doctor(
        db,
        monkeypatch,
        PREFECT_API_URL=f"http://127.0.0.1:{dead}/api",
        CAPWATCH_ALERT_URLS="json://127.0.0.1:9/h/${HOOK_TOKEN_UNSET}",
    )
    assert bad.exit_code == 3
    lines = bad.output.splitlines()
    assert "FAIL  CAPWATCH_SEC_USER_AGENT is not set to a name and e-mail" in lines
    assert any(
        ln.startswith(f"FAIL  Prefect API http://127.0.0.1:{dead}/api is not reachable")
        for ln in lines
    )
    assert any("HOOK_TOKEN_UNSET not set" in ln for ln in lines)
    assert "      fix: export HOOK_TOKEN_UNSET=... where capwatch and the workers run" in lines
    assert bad.output.rstrip().endswith("3 failed")
