"""Cold start of the read-only commands on the full shared warehouse (issue 17).

Builds the warehouse once (csv backfill of ../shared/marketdata, 2010..2026) unless --db names
one, then runs each command as a new process N times and reports the median wall time, and which
heavy modules (pandas, Prefect, Great Expectations) the process imported.

    uv run python -m bench.cold_start [--db PATH] [--runs 7] [--checkout DIR]

``--checkout DIR`` times another checkout's code (e.g. a worktree of an older commit) on the same
warehouse, in the same run, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    ["losses", "--top", "10"],
    ["losses", "--ticker", "GOOGL", "--top", "5"],
    ["quality"],
    ["alerts", "list"],
    ["sql", "select count(*) from market_cap_daily"],
]
PROBE = (
    "import sys, runpy; sys.argv = ['capwatch'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('capwatch.cli', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "print('IMPORTED', ','.join(m for m in ('pandas', 'prefect', 'great_expectations') if m in sys.modules), file=sys.stderr)\n"
)


def build(db: Path) -> None:
    shared = ROOT.parent / "shared" / "marketdata"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "capwatch.cli",
            "backfill",
            "--db",
            str(db),
            "--source",
            f"csv:{shared}",
            "--start",
            "2010-01-01",
            "--end",
            "2026-05-29",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    if done.returncode not in (0, 1):  # 1: completed, with the shared data's five bad counts held
        raise SystemExit(f"building the warehouse failed (exit {done.returncode})")


def time_command(checkout: Path, db: Path, args: list[str], runs: int) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    times, imported = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-c", PROBE, *args, "--db", str(db)],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - t0)
        imported = next(
            (
                ln.split(" ", 1)[1] if " " in ln else ""
                for ln in r.stderr.splitlines()
                if ln.startswith("IMPORTED")
            ),
            "?",
        )
    return statistics.median(times), imported or "none"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", type=Path)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--checkout", type=Path, action="append", default=[])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "shared.duckdb"
        if not db.exists():
            build(db)
        checkouts = [*args.checkout, ROOT]
        print(
            f"Warehouse: {db} ({db.stat().st_size / 1e6:.0f} MB); median of {args.runs} runs each.\n"
        )
        print(
            "| command | "
            + " | ".join(f"`{c.name}`" if c != ROOT else "this checkout" for c in checkouts)
            + " |"
        )
        print("|---|" + "---:|" * len(checkouts))
        for cmd in COMMANDS:
            cells = []
            for c in checkouts:
                seconds, imported = time_command(c, db, cmd, args.runs)
                cells.append(f"{seconds:.2f} s (imports: {imported})")
            print(f"| `capwatch {' '.join(cmd)}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
