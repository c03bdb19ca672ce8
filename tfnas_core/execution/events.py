"""What an executor reports while a batch runs: one line whenever its counts change, in the
notebook cell and on the terminal that started the kernel; a failed run's last log line."""
from __future__ import annotations

import sys
import time
from pathlib import Path


def tell(line: str) -> None:
    """``line`` in the notebook cell (``sys.stderr``) and on the terminal that started the kernel (``sys.__stderr__``)."""
    streams = [sys.stderr] + ([sys.__stderr__] if sys.__stderr__ is not sys.stderr else [])
    for stream in streams:  # the notebook cell, and the terminal of make / papermill / the lab server
        try:
            if stream is not None:
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError):
            continue


class Progress:
    """One line whenever the counts of a batch change - done / running / failed / queued - in the
    notebook cell (``sys.stderr``) and on the terminal that started the kernel (``sys.__stderr__``)."""

    def __init__(self, name: str, executor: str, total: int, level: int):
        self.prefix = f"[{name}] " if name else ""
        self.head = f"{self.prefix}{executor} level {level}: {total} run(s)"
        self.last: tuple | None = None
        self.t0 = time.monotonic()

    def __call__(self, done: int, running: int, failed: int, queued: int) -> None:
        state = (done, running, failed, queued)
        if state == self.last:
            return
        self.last = state
        tell(f"{self.head} - {done} done, {running} running, {failed} failed, {queued} queued "
              f"({time.monotonic() - self.t0:.0f} s)")


def last_line(path: Path, failed_only: bool = False) -> str:
    """The last non-empty line of a worker's log (a failed run's exception); ``failed_only``: ""
    unless the runner logged a failure (its ``failed:`` line and traceback)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines or (failed_only and "failed:" not in text):
        return ""
    return lines[-1].strip()
