"""The package installs anywhere: a wheel, installed into a fresh venv outside the checkout, runs the demo.

The SQL models, migrations and flows travel in the wheel as package data (capwatch/_project/); the
dependencies come from uv's cache, offline, pinned to the lock.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _uv() -> list[str]:
    if exe := shutil.which("uv"):
        return [exe]
    for python in ("python3", "python"):
        if (
            shutil.which(python)
            and subprocess.run([python, "-m", "uv", "--version"], capture_output=True).returncode
            == 0
        ):
            return [python, "-m", "uv"]
    pytest.fail("uv is needed to build the wheel (make install puts it there)")


def _run(args: list, cwd: Path, env: dict | None = None, timeout: int = 600) -> str:
    out = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert out.returncode == 0, f"{args}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_wheel_installed_outside_the_checkout_runs_the_demo(tmp_path):
    uv = _uv()
    dist = tmp_path / "dist"
    _run([*uv, "build", "--wheel", "--out-dir", dist], cwd=ROOT)
    (wheel,) = dist.glob("capwatch-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "capwatch/_project/transforms/marts/market_cap_daily.sql" in names
    assert "capwatch/_project/warehouse/migrations/001_raw_tables.sql" in names
    assert "capwatch/_project/flows/pipeline.py" in names
    assert not [n for n in names if n.startswith(("flows/", "tests/", "transforms/"))]

    # A fresh venv outside the checkout with the locked dependencies and capwatch as a built wheel
    # (--no-editable: uv builds and installs the wheel, as pip would), from uv's cache, offline.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    venv = tmp_path / "venv"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "CAPWATCH_", "UV_"))
    }
    _run(
        [*uv, "sync", "--frozen", "--offline", "--no-dev", "--no-editable"],
        cwd=ROOT,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
    )
    installed = list(
        (venv / "lib").glob("python3*/site-packages/capwatch/_project/transforms/marts/*.sql")
    )
    assert (
        len(installed)
        == len([n for n in names if n.startswith("capwatch/_project/transforms/marts/")])
        > 0
    )

    env.update(
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        PREFECT_HOME=str(tmp_path / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
    )
    where = _run(
        [
            venv / "bin" / "python",
            "-c",
            "import capwatch, capwatch.resources as r; "
            "print(capwatch.__file__); print(r.transforms_dir())",
        ],
        cwd=elsewhere,
        env=env,
    )
    assert str(ROOT) not in where and "_project" in where, where
    out = _run([venv / "bin" / "capwatch", "demo", "--tickers", "8"], cwd=elsewhere, env=env)
    assert "Largest one-day losses on 2025-01-27:" in out
    lines = out.split("Largest one-day losses on 2025-01-27:")[1].splitlines()
    assert lines[3].split()[2] == "ALFA" and "-17.00%" in lines[3], out[-2000:]
    assert (elsewhere / "capwatch-demo.duckdb").is_file()
