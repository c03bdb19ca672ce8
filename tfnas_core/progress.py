"""One-line progress of notebook runs on the terminal that started them.

Inside a notebook, ``print`` goes into the cell; a search or a retraining of the mini profile
runs for minutes per cell and ``make reproduce-*`` (papermill) would show nothing meanwhile.
``RunProgress`` turns the per-epoch log lines of ``search.run`` / ``train.run``
(``"epoch 3/8 ..."``, ``"resuming ... after epoch 2/8"``) into one line each on the process's
*real* stderr (``sys.__stderr__``): the terminal of ``make``/papermill (the kernel inherits it),
the server log under JupyterLab, the terminal of a script::

    [table3-sampling] search [second_path=gumbel] seed 2: epoch 3/8 (41 s/epoch, ETA 3.4 min)
"""
from __future__ import annotations

import re
import sys
import time
from typing import Callable, TextIO

_EPOCH = re.compile(r"^epoch (\d+)/(\d+)(?: \[(\w+)\])?")
_RESUMED = re.compile(r"^resuming .* after epoch (\d+)/(\d+)")


def format_eta(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class RunProgress:
    """A ``log`` callable for one run: forwards every message to ``forward`` (if any) and writes
    a progress line with the epoch, the time per epoch and the ETA for each epoch message."""

    def __init__(self, what: str, notebook: str = "", forward: Callable[[str], None] | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.prefix = f"[{notebook}] {what}" if notebook else what
        self.forward = forward
        self.stream = stream
        self.clock = clock
        self.t0 = clock()
        self.last = self.t0  # when the previous epoch ended
        self.durations: list[tuple[str, float]] = []  # (phase, seconds) of each epoch run here

    def write(self, line: str) -> None:
        stream = self.stream or sys.__stderr__ or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed or detached stream never stops a run
            pass

    def start(self, note: str = "") -> None:
        self.t0 = self.last = self.clock()
        self.write(f"{self.prefix}: {note or 'started'}")

    def __call__(self, msg: str) -> None:
        if self.forward is not None:
            self.forward(msg)
        m = _RESUMED.match(msg)
        if m:
            self.last = self.clock()
            self.write(f"{self.prefix}: resumed after epoch {m.group(1)}/{m.group(2)}")
            return
        m = _EPOCH.match(msg)
        if not m:
            return
        done, total, phase = int(m.group(1)), int(m.group(2)), m.group(3) or ""
        now = self.clock()
        self.durations.append((phase, now - self.last))
        self.last = now
        # the mean epoch of the current phase (a search's epochs after warm-up take longer)
        same = [d for p, d in self.durations if p == phase]
        per_epoch = sum(same) / len(same)
        left = total - done
        eta = f"ETA {format_eta(per_epoch * left)}" if left else "done"
        self.write(f"{self.prefix}: epoch {done}/{total} ({per_epoch:.0f} s/epoch, {eta})")
