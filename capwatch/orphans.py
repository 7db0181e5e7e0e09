"""No orphans: the processes a capwatch command starts do not outlive it, even when it is killed.

Without ``PREFECT_API_URL`` Prefect runs each flow against a temporary API server it starts as a
child process, and stops it at exit; a command killed with SIGKILL never gets there, and the server
(~200 MB) would run on forever. ``start_watchdog`` starts a small process, in its own session, that
follows the command: it notes the command's children while the command lives and, once the command
is gone, ends those still running (SIGTERM, then SIGKILL).

    python -m capwatch.orphans PID   # what start_watchdog runs
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): tells a PID from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found[int(entry.name)] = fields[19]
    return found


_started = False


def start_watchdog() -> None:
    """Follow this process, once (Linux only; with a Prefect API configured there is no temporary
    server to end, and it does nothing)."""
    global _started
    from prefect.settings import PREFECT_API_URL

    if _started or PREFECT_API_URL.value() or not Path("/proc/self/stat").exists():
        return
    _started = True
    subprocess.Popen(
        [sys.executable, "-m", "capwatch.orphans", str(os.getpid())],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def follow(pid: int, poll: float = 0.25) -> list[int]:
    """Note ``pid``'s children until it ends, then end those still running; returns their PIDs."""
    started = _start_time(pid)
    seen: dict[int, str] = {}
    while started is not None and _start_time(pid) == started:
        seen.update(_children(pid))
        time.sleep(poll)
    left = [child for child, t in seen.items() if child != os.getpid() and _start_time(child) == t]
    for child in left:
        os.kill(child, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_start_time(c) == seen[c] for c in left):
        time.sleep(0.1)
    for child in left:
        if _start_time(child) == seen[child]:
            os.kill(child, signal.SIGKILL)
    return left


if __name__ == "__main__":
    follow(int(sys.argv[1]))
