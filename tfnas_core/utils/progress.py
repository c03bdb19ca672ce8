"""Progress lines with an ETA, made from the structured events of the run loop.

``search.run`` and ``train.run`` report their progress as ``Event``s (defined here, sent by ``run_loop``): ``resumed`` (after
epoch k), ``start`` (an epoch begins), ``step`` (every step, cheap: no numbers read from the device)
carrying ``values`` every ``log_every``-th step, and ``epoch`` (an epoch ended, with its record).  ``RunProgress`` turns them
into one line each, on the process's *real* stderr by default (``sys.__stderr__``: the terminal of
``make``/papermill, whose kernel inherits it; the server log under JupyterLab; a SLURM job's log;
the terminal of a script), so a notebook cell, a terminal and a SLURM log show the same lines::

    [table3-sampling] search [second_path=gumbel] seed 2: epoch 3/8 step 40/80 (0.52 s/step, loss 2.310; epoch ETA 21 s, ETA 3.4 min)
    [table3-sampling] search [second_path=gumbel] seed 2: epoch 3/8 (41 s/epoch, ETA 3.4 min)

A step line is written when the step carries values (every ``log_every`` steps) or when
``every_s`` seconds passed since the last line, whichever comes first.  The ETA of a run is the
rest of this epoch at this epoch's rate plus the epochs left at the mean epoch of this phase
(a search's epochs after warm-up take longer), or, before an epoch of this phase has ended, at
this epoch's rate.  ``RunProgress`` is also a ``log`` callable: text messages go to ``forward``
unchanged (nothing is parsed from them).
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, TextIO


@dataclass(frozen=True)
class Event:
    """A structured progress event of a run, for progress lines and ETAs (``progress.RunProgress``).

    ``kind``: ``resumed`` (``epoch``: the last finished one), ``start`` (the 1-based ``epoch``
    begins), ``step`` (``step`` of ``steps`` of ``epoch`` done) or ``epoch`` (``epoch`` finished).
    ``values``: a ``step``'s TensorBoard scalars (tag -> number) every ``log_every``-th step, else
    empty; an ``epoch``'s numeric record fields."""

    kind: str
    epoch: int
    epochs: int
    step: int = 0
    steps: int = 0
    phase: str = ""
    values: Mapping[str, float] = field(default_factory=dict)


Events = Callable[[Event], None]

STEP_VALUE = "train/loss"  # the value a step line shows (when the step carries values)


def format_eta(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class RunProgress:
    """A ``log`` callable and an ``event`` listener for one run.

    ``what`` (and ``notebook``) prefix every line; ``write`` receives each line (default: the real
    stderr, or ``stream``); ``epoch_lines=False`` writes step lines only (where the run's own log
    already has a line per epoch and one on resuming); ``every_s``: seconds after which a step without values gets a
    line too."""

    def __init__(self, what: str, notebook: str = "", forward: Callable[[str], None] | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None, epoch_lines: bool = True, every_s: float = 60.0):
        self.prefix = f"[{notebook}] {what}" if notebook else what
        self.forward = forward
        self.stream = stream
        self._write = write
        self.clock = clock
        self.epoch_lines = epoch_lines
        self.every_s = every_s
        self.t0 = clock()
        self.last = self.t0  # when the previous epoch ended (or the run started / resumed)
        self.last_line = self.t0  # when the last line was written
        self.durations: list[tuple[str, float]] = []  # (phase, seconds) of each epoch run here

    def write(self, line: str) -> None:
        self.last_line = self.clock()
        if self._write is not None:
            self._write(line)
            return
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

    def _per_epoch(self, phase: str) -> float | None:
        same = [d for p, d in self.durations if p == phase]
        return sum(same) / len(same) if same else None

    def eta(self, ev: Event, now: float) -> tuple[float, float]:
        """(seconds left in this epoch, seconds left in the run) after step event ``ev``."""
        elapsed = now - self.last
        per_step = elapsed / max(ev.step, 1)
        epoch_left = per_step * max(ev.steps - ev.step, 0)
        per_epoch = self._per_epoch(ev.phase)
        if per_epoch is None:
            per_epoch = elapsed + epoch_left
        return epoch_left, epoch_left + per_epoch * max(ev.epochs - ev.epoch, 0)

    def event(self, ev: Event) -> None:
        if ev.kind == "resumed":
            self.last = self.clock()
            if self.epoch_lines:
                self.write(f"{self.prefix}: resumed after epoch {ev.epoch}/{ev.epochs}")
        elif ev.kind == "start":
            self.last = self.clock()  # an epoch is timed from its start, not from the setup before it
        elif ev.kind == "step":
            now = self.clock()
            if not ev.values and now - self.last_line < self.every_s:
                return
            epoch_left, run_left = self.eta(ev, now)
            per_step = (now - self.last) / max(ev.step, 1)
            loss = f", loss {ev.values[STEP_VALUE]:.3f}" if STEP_VALUE in ev.values else ""
            self.write(f"{self.prefix}: epoch {ev.epoch}/{ev.epochs} step {ev.step}/{ev.steps} "
                       f"({per_step:.2f} s/step{loss}; epoch ETA {format_eta(epoch_left)}, ETA {format_eta(run_left)})")
        elif ev.kind == "epoch":
            now = self.clock()
            self.durations.append((ev.phase, now - self.last))
            self.last = now
            per_epoch = self._per_epoch(ev.phase)
            left = ev.epochs - ev.epoch
            if self.epoch_lines:
                eta = f"ETA {format_eta(per_epoch * left)}" if left else "done"
                self.write(f"{self.prefix}: epoch {ev.epoch}/{ev.epochs} ({per_epoch:.0f} s/epoch, {eta})")
            else:
                self.last_line = now  # the run's own epoch line was just written


__all__ = ["RunProgress", "STEP_VALUE", "format_eta"]
