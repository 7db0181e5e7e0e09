"""Staging: what an extract task fetched, on disk as Parquet, until the one writer has loaded it.

Extract tasks run in parallel and never touch the warehouse; each writes its chunk here, keyed by
run and chunk (``<staging>/<run_id>/<chunk key>/``), and the writer loads staged chunks into DuckDB
one transaction at a time. A crash after extraction therefore never refetches: the next run
(``pending``) loads whatever an earlier run staged and did not load, before it plans its own
chunks. A chunk directory is written under a temporary name and renamed when complete, so a
half-written chunk is never loaded; it is deleted once its load has committed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from capwatch.extract import REFUSED_COLUMNS, Extracted, Problem
from capwatch.schema import DIVIDENDS, PRICES, SHARES, SPLITS

# Parquet goes through pyarrow, whose default allocator (mimalloc) keeps what a chunk used in
# per-thread heaps after the chunk is gone: measured at 6,000 tickers x 25 years, 205 MB more
# resident after the backfill's loads than with the system allocator (which hands big buffers
# back to the OS), at the same speed, and that baseline sits under the model build's peak.
pa.set_memory_pool(pa.system_memory_pool())

_FRAMES = {"prices": PRICES, "splits": SPLITS, "dividends": DIVIDENDS, "shares": SHARES}
_MANIFEST = "chunk.json"


@dataclass
class StagedChunk:
    """A chunk on disk: what was asked for, when, from which source, and what it holds."""

    path: Path
    run_id: str
    source: str
    tickers: list[str]
    start: date
    end: date
    fetched_on: date  # the fetch's "today": nothing on or after it counts as final
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def label(self) -> str:
        return chunk_label(self.tickers)

    def read(self) -> Extracted:
        """The chunk's frames, as the source delivered them."""
        frames = {}
        for name, table in _FRAMES.items():
            f = self.path / f"{name}.parquet"
            frames[name] = pd.read_parquet(f) if f.exists() else table.empty()
        f = self.path / "refused.parquet"
        refused = pd.read_parquet(f) if f.exists() else pd.DataFrame(columns=REFUSED_COLUMNS)
        return Extracted(**frames, refused=refused, problems=list(self.problems))

    def discard(self) -> None:
        """Forget the chunk (after its load committed)."""
        shutil.rmtree(self.path, ignore_errors=True)
        run_dir = self.path.parent
        if not any(d for d in run_dir.glob("*") if d.name != _OWNER):
            (run_dir / _OWNER).unlink(missing_ok=True)  # the run's last chunk: nothing to guard
        for empty in (run_dir, run_dir.parent):  # the run's, then the root
            try:
                empty.rmdir()  # only once nothing is left in it
            except OSError:
                break


def chunk_label(tickers: list[str]) -> str:
    """A chunk's tickers as a log and task-run name shows them: ``NVDA,AAPL,MSFT+22``."""
    return ",".join(tickers[:3]) + (f"+{len(tickers) - 3}" if len(tickers) > 3 else "")


def chunk_key(tickers: list[str], start: date, end: date) -> str:
    """A short, stable name for (tickers, start, end)."""
    digest = hashlib.sha1(",".join(tickers).encode()).hexdigest()[:12]
    return f"{start:%Y%m%d}-{end:%Y%m%d}-{digest}"


class Staging:
    """The staging area under ``root`` (default: ``<warehouse>.staging`` beside the file)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def write(
        self,
        run_id: str,
        source: str,
        tickers: list[str],
        start: date,
        end: date,
        fetched_on: date,
        batch: Extracted,
    ) -> StagedChunk:
        final = self.root / run_id / chunk_key(tickers, start, end)
        tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        owner = final.parent / _OWNER
        if not owner.exists():
            owner.write_text(_this_process())
        rows = {}
        for name in _FRAMES:
            frame = getattr(batch, name)
            rows[name] = len(frame)
            if len(frame):
                frame.to_parquet(tmp / f"{name}.parquet", index=False)
        if len(batch.refused):
            batch.refused.astype(str).to_parquet(tmp / "refused.parquet", index=False)
        chunk = StagedChunk(
            path=final,
            run_id=run_id,
            source=source,
            tickers=list(tickers),
            start=start,
            end=end,
            fetched_on=fetched_on,
            rows=rows,
            problems=list(batch.problems),
        )
        (tmp / _MANIFEST).write_text(json.dumps(_manifest(chunk)))
        shutil.rmtree(final, ignore_errors=True)  # a retried task's earlier copy
        os.replace(tmp, final)  # complete, or not there at all
        return chunk

    def pending(self) -> list[StagedChunk]:
        """Complete chunks no writer has loaded yet (a run that crashed after extracting), oldest
        first. Half-written chunks (``.tmp-*``) are left for ``sweep``."""
        out = []
        if not self.root.is_dir():
            return out
        for manifest in self.root.glob(f"*/*/{_MANIFEST}"):
            if ".tmp-" in manifest.parent.name or _running(manifest.parent.parent):
                continue  # half-written, or another flow run's that is still going (on a lake)
            try:
                out.append(_from_manifest(manifest.parent, json.loads(manifest.read_text())))
            except (ValueError, KeyError, TypeError):
                continue  # unreadable: never loaded, removed by sweep
        out.sort(key=lambda c: (c.path.stat().st_mtime, c.path.name))
        return out

    def sweep(self) -> int:
        """Remove half-written and unreadable chunk directories; returns how many."""
        removed = 0
        if not self.root.is_dir():
            return removed
        for d in self.root.glob("*/*"):
            if _running(d.parent):  # a flow run still extracting (writers share a lake)
                continue
            if d.is_dir() and (".tmp-" in d.name or not (d / _MANIFEST).exists()):
                shutil.rmtree(d, ignore_errors=True)
                removed += 1
        return removed


# A run directory's owner: "host:pid" of the flow run's process. Several flow runs share one
# staging area when they write one lake: none may sweep or load what another is still staging.
_OWNER = ".owner"


def _this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _running(run_dir: Path) -> bool:
    """True when ``run_dir`` belongs to another process on this host that still runs."""
    try:
        host, _, pid = (run_dir / _OWNER).read_text().partition(":")
    except OSError:
        return False
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    return Path(f"/proc/{pid}").exists()


def _manifest(chunk: StagedChunk) -> dict:
    d = asdict(chunk)
    d.pop("path")
    d["problems"] = [asdict(p) for p in chunk.problems]
    for k in ("start", "end", "fetched_on"):
        d[k] = d[k].isoformat()
    return d


def _from_manifest(path: Path, d: dict) -> StagedChunk:
    return StagedChunk(
        path=path,
        run_id=d["run_id"],
        source=d["source"],
        tickers=list(d["tickers"]),
        start=date.fromisoformat(d["start"]),
        end=date.fromisoformat(d["end"]),
        fetched_on=date.fromisoformat(d["fetched_on"]),
        rows=dict(d["rows"]),
        problems=[Problem(**p) for p in d["problems"]],
    )
