"""Issue 7: deploy from prefect.yaml to a real Prefect server on 127.0.0.1 and run the deployments with a worker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest

pytestmark = pytest.mark.slow  # a real Prefect server, a work pool, a worker

ROOT = Path(__file__).resolve().parent.parent

PREFECT = str(Path(sys.executable).parent / "prefect")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`prefect server start` (SQLite, analytics off) in a fresh PREFECT_HOME; stopped afterwards."""
    home = tmp_path_factory.mktemp("prefect-home")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db",
        PWD=str(ROOT),
    )
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            pytest.fail("prefect server exited: " + (home / "server.log").read_text()[-2000:])
        time.sleep(0.5)
    else:
        pytest.fail(
            "prefect server not healthy after 90 s: " + (home / "server.log").read_text()[-2000:]
        )
    yield env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()


def _prefect(env, *args, timeout=300):
    out = subprocess.run(
        [PREFECT, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, (
        f"prefect {' '.join(args)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


def _flow_runs(env) -> list[dict]:
    r = httpx.post(
        env["PREFECT_API_URL"] + "/flow_runs/filter",
        json={"sort": "EXPECTED_START_TIME_ASC"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()


def test_deploy_from_prefect_yaml_and_run_with_a_worker(server, shared_dir, tmp_path):
    env = dict(server)
    _prefect(env, "work-pool", "create", "capwatch", "--type", "process")
    _prefect(env, "--no-prompt", "deploy", "--all")
    deps = httpx.post(env["PREFECT_API_URL"] + "/deployments/filter", json={}, timeout=10).json()
    assert sorted(d["name"] for d in deps) == ["backfill", "daily", "freshness", "lake-maintenance"]
    fresh = next(d for d in deps if d["name"] == "freshness")
    assert [s["schedule"]["rrule"].split("\n")[0] for s in fresh["schedules"]] == [
        "DTSTART:20260101T210000"
    ]
    daily = next(d for d in deps if d["name"] == "daily")
    assert [s["schedule"]["timezone"] for s in daily["schedules"]] == ["America/New_York"] * 2
    assert all("EXDATE:" in s["schedule"]["rrule"] for s in daily["schedules"])

    _prefect(
        env,
        "deployment",
        "run",
        "capwatch-daily/daily",
        "--param",
        'tickers=["NVDA","AVGO"]',
        "--param",
        "today=2025-01-28",
        "--param",
        "history_years=1",
    )
    _prefect(
        env,
        "deployment",
        "run",
        "capwatch-backfill/backfill",
        "--param",
        'tickers=["ORCL"]',
        "--param",
        "start=2024-06-03",
        "--param",
        "end=2024-06-28",
    )

    db = tmp_path / "deployed.duckdb"
    from tests.test_alerts import Endpoint

    ops = Endpoint()
    worker_env = dict(
        env,
        CAPWATCH_DB=str(db),
        CAPWATCH_SOURCE=f"replay:csv:{shared_dir}",
        CAPWATCH_ALERT_URLS=f"json://127.0.0.1:{ops.port}/ops",
    )

    def manual_runs():
        return [
            r
            for r in _flow_runs(env)
            if r["parameters"].get("tickers") in (["NVDA", "AVGO"], ["ORCL"])
        ]

    for _ in range(3):  # --run-once takes what is due now and exits
        _prefect(worker_env, "worker", "start", "--pool", "capwatch", "--run-once", timeout=600)
        if all(r["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED") for r in manual_runs()):
            break
    manual = manual_runs()
    assert sorted(r["state"]["type"] for r in manual) == ["COMPLETED", "COMPLETED"], json.dumps(
        [(r["name"], r["state"]) for r in manual], indent=1
    )[:3000]

    # The deadline check, run by the worker from its deployment: 2025-01-29 never landed.
    _prefect(
        env, "deployment", "run", "capwatch-freshness/freshness", "--param", "today=2025-01-29"
    )
    _prefect(worker_env, "worker", "start", "--pool", "capwatch", "--run-once", timeout=600)
    bodies = [r["body"] for r in ops.received if r["body"].get("kind") == "operations"]
    ops.close()
    assert [b["event_id"] for b in bodies] == ["ops:stale:2025-01-29"], bodies
    assert (
        "no daily run has loaded 2025-01-29 (newest day stored: 2025-01-28" in bodies[0]["message"]
    )

    con = duckdb.connect(str(db), read_only=True)
    assert con.execute(
        "select round(change_usd / 1e9, 1) from company_daily_moves where company = 'NVDA' and date = '2025-01-27'"
    ).fetchone() == (-592.7,)
    assert con.execute(
        "select count(*) from prices_daily where ticker = 'ORCL' and date between '2024-06-03' and '2024-06-28'"
    ).fetchone() == (19,)
    con.close()
