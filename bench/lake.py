"""The DuckLake backend against the one-file warehouse on the same data (issue 19), in one run.

A generated market (seeded) is backfilled through the real ``backfill`` flow, each run a new
process against one Prefect server:

- **file**: one flow run, all tickers, into a DuckDB file (the default backend);
- **lake, 1 writer**: the same flow run into a DuckLake whose catalog is in PostgreSQL;
- **lake, W writers**: W flow runs at once, each over its share of the tickers, into a new lake.

Reported: wall time of each, chunks, commit conflicts retried (by what), rows stored, rows lost
against the file (must be 0), duplicate keys (must be 0). Writes ``bench/LAKE.md``.

    uv run python -m bench.lake [--tickers 40] [--years 5] [--writers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "LAKE.md"

CHILD = """
import json
from datetime import date
import capwatch.lake as lake
from flows.pipeline import backfill
s = backfill(start=date.fromisoformat(%r), end=date.fromisoformat(%r), tickers=%r, source=%r,
             db=%r, chunk_size=%d, chunk_years=5)
print("CHUNKS", len(s.chunks), flush=True)
print("RETRIED", json.dumps(lake.retried), flush=True)
"""


def _run(groups, start, end, source, db, chunk, env) -> tuple[float, int, dict]:
    t0 = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD % (start.isoformat(), end.isoformat(), g, source, db, chunk),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for g in groups
    ]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.perf_counter() - t0
    for p, out in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise SystemExit(f"a flow run failed:\n{out[-3000:]}")
    chunks = sum(int(re.search(r"CHUNKS (\d+)", o).group(1)) for o in outs)
    retried: dict[str, int] = {}
    for o in outs:
        for what, n in json.loads(re.search(r"RETRIED (.*)", o).group(1)).items():
            retried[what] = retried.get(what, 0) + n
    return seconds, chunks, retried


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tickers", type=int, default=40)
    ap.add_argument("--years", type=int, default=5)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=5, help="tickers per chunk")
    args = ap.parse_args()

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    from capwatch.replay.market import generate_market, tickers_for
    from tests.lakes import attach_both, differences, duplicate_keys, lake_env, start_postgres

    end = date(2025, 12, 31)
    start = date(end.year - args.years + 1, 1, 2)
    tmp = Path(tempfile.mkdtemp(prefix="capwatch-bench-lake-"))
    market = generate_market(n_tickers=args.tickers, start=start, end=end)
    source = f"replay:csv:{market.write_csv(tmp / 'market')}"
    tickers = tickers_for(args.tickers)
    share = -(-len(tickers) // args.writers)
    groups = [tickers[i : i + share] for i in range(0, len(tickers), share)]
    pg = start_postgres()
    rows = []
    try:
        with prefect_test_harness(server_startup_timeout=120):
            base = {k: v for k, v in os.environ.items() if not k.startswith("CAPWATCH_WAREHOUSE")}
            base.update(PREFECT_API_URL=PREFECT_API_URL.value(), PYTHONUNBUFFERED="1")
            file_db = tmp / "file.duckdb"
            runs = {"file": _run([tickers], start, end, source, str(file_db), args.chunk, base)}
            lakes = {}
            for label, parts in (
                ("lake, 1 writer", [tickers]),
                (f"lake, {len(groups)} writers", groups),
            ):
                env = lake_env(pg.createdb(f"bench_{len(lakes)}"), tmp / f"lake{len(lakes)}")
                runs[label] = _run(
                    parts,
                    start,
                    end,
                    source,
                    str(tmp / "unused.duckdb"),
                    args.chunk,
                    {**base, **env},
                )
                lakes[label] = env
        for label, (seconds, chunks, retried) in runs.items():
            lost = dup = "-"
            stored = None
            if label in lakes:
                env = lakes[label]
                con = attach_both(
                    file_db, env["CAPWATCH_LAKE_CATALOG"], Path(env["CAPWATCH_LAKE_DATA_PATH"])
                )
                d = differences(
                    con,
                    skip_tables={
                        "load_runs",
                        "validation_runs",
                        "model_builds",
                        "lake_leases",
                        "load_intervals",
                        "alert_events",
                        "alert_deliveries",
                    },
                )
                stored = con.execute("select count(*) from l.prices_daily").fetchone()[0]
                lost = sum(a for a, _ in d["differ"].values())
                dup = sum(duplicate_keys(con, "l").values())
                con.close()
            rows.append((label, seconds, chunks, retried, stored, lost, dup))
    finally:
        pg.stop()

    file_seconds = rows[0][1]
    lines = [
        "# DuckLake vs the one-file warehouse (bench/lake.py, one run)",
        "",
        f"{args.tickers} generated tickers x {args.years} years ({start}..{end}), {args.chunk} tickers "
        f"per chunk, through the real `backfill` flow (new process per flow run, one Prefect "
        f"server, PostgreSQL {pg.bin.parent.name} on 127.0.0.1 for the catalog, files on local disk). "
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores.",
        "",
        "| run | wall time | vs file | chunks | conflicts retried | prices stored | rows lost | duplicate keys |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for label, seconds, chunks, retried, stored, lost, dup in rows:
        r = ", ".join(f"{k} {v}" for k, v in sorted(retried.items())) or "0"
        lines.append(
            f"| {label} | {seconds:.1f} s | {seconds / file_seconds:.2f} | {chunks} | {r} | "
            f"{stored if stored is not None else '-'} | {lost} | {dup} |"
        )
    lines += [
        "",
        "`rows lost`: rows of the file's tables (data and models; run logs and alert events "
        "left out) missing from the lake's, or differing. Each flow run also starts Python, "
        "imports Prefect and GX and builds the models; with W writers that is W times.",
        "",
    ]
    # Notes written by hand below the table ("## Notes" on) survive a new run.
    kept = OUT.read_text().partition("\n## Notes")[1:] if OUT.exists() else ("", "")
    OUT.write_text("\n".join(lines) + "".join(kept))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
