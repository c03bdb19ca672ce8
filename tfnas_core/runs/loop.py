"""The run skeleton shared by the search (``search.run``) and the retraining (``train.run``).

Both write one run folder ``OUT`` the same way, and this module is where that way lives:

* **before anything is written**: ``OUT/config.json`` must hold the same config (``config.
  check_resumable``) and ``OUT/checkpoint.pt`` the same config hash (``checkpoint.load``); a
  refused run leaves the folder as it was;
* **resume**: a checkpoint restores the state after its epoch, the records so far and the wall
  time of earlier sessions; a finished run (every epoch and the done file) is returned as it is;
* **after every epoch**: the checkpoint (atomically, with the config hash), the records file
  (``records.jsonl`` for a search, ``records.csv`` for a retraining: the formats the notebooks
  and ``plots.load_records`` read) and one progress line through ``say``;
* **during an epoch**: ``step`` after every step: a ``step`` ``Event`` (cheap: nothing is read
  from the device) and every ``log_every``-th step the step's values (``values()``, read then:
  the only host syncs logging adds) as TensorBoard scalars and in the event; ``resume`` and
  ``end_epoch`` send ``resumed`` and ``epoch`` events.  The listener (``events``; by default the
  ``event`` method of ``say`` where it has one, else ``progress.RunProgress`` writing step lines
  through ``say``) makes the progress lines with their ETA (``progress``);
* **TensorBoard** (``tensorboard``, main rank): event files in ``OUT`` (``tb_log``), opened by
  ``open_log`` once the run is known to go on; a resumed session drops the steps after the
  checkpoint that an interrupted session had logged (``purge_step``).  They are never archived;
* ``stop_after_epoch`` stops cleanly after that epoch (rerun the same command to resume);
* a non-finite loss names the epoch and step and what is kept (``kept``);
* **at the end**: the done file (``summary.json`` / ``result.json``), written last, so
  ``runs.RunStore`` takes a folder with it for a finished run.

In a distributed retraining every rank runs the loop; only the main rank (``main=True``) writes.
"""
from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from tfnas_core import config
from tfnas_core.runs import checkpoint
from tfnas_core.runs import files
from tfnas_core.runs import store as runs
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.checks import is_number, read_json
from tfnas_core.utils.progress import Event, Events  # the structured progress events a run sends (re-exported)

Say = Callable[[str], None]


def default_say(msg: str) -> None:
    print(msg, file=sys.stderr)


def out_lock(out: Path, say: Say, enabled: bool = True):
    """``runs.out_lock`` on ``out``, announcing a wait (a no-op where ``enabled`` is false: the
    ranks of a distributed run other than the main one only read)."""
    if not enabled:
        return contextlib.nullcontext()
    return runs.out_lock(out, lambda: say(f"waiting: another process is writing {out}"))


def progress_bar(it: Iterable, enabled: bool, **kw):
    """A tqdm bar over ``it``, shown only where ``enabled`` and stderr is a terminal."""
    from tqdm import tqdm  # bars only on a TTY; tqdm.auto would warn in kernels without ipywidgets

    return tqdm(it, disable=not bars_shown(enabled), **kw)


def bars_shown(enabled: bool) -> bool:
    """Whether ``progress_bar(..., enabled)`` shows its bar."""
    return enabled and sys.stderr.isatty()


class Window:
    """Differences of running sums since the previous ``delta`` (the means of the steps between two
    logging points)."""

    def __init__(self) -> None:
        self.prev: dict[str, float] = {}

    def delta(self, totals: Mapping[str, float]) -> dict[str, float]:
        out = {k: v - self.prev.get(k, 0) for k, v in totals.items()}
        self.prev = dict(totals)
        return out


def numeric(rec: Mapping[str, Any]) -> dict[str, float]:
    """The finite-or-not numbers of ``rec`` (no bools, lists or strings): what an epoch logs."""
    return {k: float(v) for k, v in rec.items() if is_number(v) and not isinstance(v, bool)}


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def read_done(path: str | Path, numbers: Iterable[str] = (), keys: Iterable[str] = (), hint: str = "") -> dict:
    """The done file ``path`` (``summary.json`` / ``result.json``): a JSON object holding a number
    under each of ``numbers`` and some value under each of ``keys``.  A torn, empty or incomplete
    one is a ``ValueError`` of one line naming it and what is wrong, then ``hint`` (what to do)."""
    def refuse(why: str) -> ValueError:
        return ValueError(f"{why}; {hint}" if hint else why)

    try:
        obj = read_json(path, ValueError, "done file")
    except ValueError as e:
        raise refuse(str(e)) from None
    if not isinstance(obj, dict):
        raise refuse(f"{path}: expected a JSON object, got {type(obj).__name__}")
    absent = [k for k in (*numbers, *keys) if k not in obj]
    if absent:
        raise refuse(f"{path}: no {', '.join(absent[:3])}{' ...' if len(absent) > 3 else ''}")
    for k in numbers:
        if not is_number(obj[k]) or obj[k] != obj[k]:
            raise refuse(f"{path}: {k} must be a number, got {str(obj[k])[:40]!r}")
    return obj


# What a run of each kind is called in messages: about its folder, about its checkpoint.
NAMES = {"search": ("search", "search"), "train": ("run", "retraining")}


@dataclass(frozen=True)
class LogSettings:
    """How a run is watched (never what it computes): logging points every ``every`` steps (0:
    none), a step line after ``every_s`` seconds without one, TensorBoard event files in the
    folder (main rank), and the default listener's step lines (off while tqdm bars show the steps)."""

    every: int = 0
    every_s: float = 60.0
    tensorboard: bool = False
    step_lines: bool = True

    @classmethod
    def of(cls, cfg: Any) -> "LogSettings":
        """A search's or retraining's settings (``log_every``, ``log_every_s``, ``tensorboard``,
        ``progress``)."""
        return cls(cfg.log_every, cfg.log_every_s, cfg.tensorboard, not bars_shown(cfg.progress))


@dataclass
class RunLoop:
    """One session of a resumable run in ``out`` (see the module docstring).

    ``kind`` (``"search"`` / ``"train"``) keys the config hash and names the run's files
    (``runs.files``: records, done file) and the run in messages (``NAMES``)."""

    out: Path
    kind: str
    cfg_dict: dict[str, Any]
    resume_free: Iterable[str]
    epochs: int
    stop_after_epoch: int | None
    write_records: Callable[[list[dict], Path], None]
    say: Say = default_say
    main: bool = True
    events: Events | None = None  # default: say.event where say has one, else step lines through say
    log: LogSettings = LogSettings()
    start: int = field(default=0, init=False)
    records: list[dict] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._t0 = time.perf_counter()
        self._wall_before = 0.0
        self.tb = None  # tb_log.Writer once open_log opened one
        self.steps = 0
        if self.events is None:
            self.events = getattr(self.say, "event", None)
        self.records_file, self.done_file = files.RECORDS[self.kind], files.DONE[self.kind]
        self.what, self.ckpt_what = NAMES[self.kind]
        if self.events is None and self.log.step_lines and self.main:
            from tfnas_core.utils.progress import RunProgress

            self.events = RunProgress(self.kind, write=self.say, epoch_lines=False, every_s=self.log.every_s).event
        self.out = Path(self.out)
        self.cfg_hash = runs.config_hash(self.kind, self.cfg_dict, self.resume_free)
        self.ckpt_path = self.out / files.CHECKPOINT
        config.check_resumable(self.out / files.CONFIG, self.cfg_dict, self.resume_free, self.what)
        self._config_json_seen = (self.out / files.CONFIG).is_file()

    # -- before the first epoch ------------------------------------------------------------------
    def resume(self, device, keys: Iterable[str], load_state: Callable[..., None], *state_args: Any,
               epoch_of: Callable[[dict], int], check: Callable[[dict], None] | None = None) -> None:
        """Restore from the checkpoint when there is one (else start at epoch 0).

        ``check(st)`` may refuse it (another data split ...); ``load_state(st, *state_args)``
        restores the modules, optimisers and RNGs; ``epoch_of(st)`` is the epoch it ends."""
        if not self.ckpt_path.is_file():
            return
        st = checkpoint.load(self.ckpt_path, device, self.cfg_hash, keys, self._config_json_seen, self.ckpt_what)
        if check is not None:
            check(st)
        checkpoint.apply(self.ckpt_path, load_state, st, *state_args)
        self.start, self.records, self._wall_before = epoch_of(st), st["records"], st["wall_s"]
        self.say(f"resuming {self.out} after epoch {self.start}/{self.epochs}")
        self.emit(Event("resumed", self.start, self.epochs))

    def begin(self, extra: Mapping[str, Any] | None = None) -> dict | None:
        """Write ``config.json`` (and ``extra``: file name -> JSON object); return the done file's
        content when the run is already complete, else ``None``."""
        if self.main:
            write_json(self.out / files.CONFIG, self.cfg_dict)
            for name, obj in (extra or {}).items():
                write_json(self.out / name, obj)
        done = self.out / self.done_file
        if self.start >= self.epochs and done.is_file():
            self.say(f"{self.out}: already complete")
            return read_done(done, hint="delete it and rerun the same command: the last checkpoint rewrites it")
        return None

    def epoch_range(self) -> Iterator[int]:
        """The (0-based) epochs left, each announced by a ``start`` event."""
        for epoch in range(self.start, self.epochs):
            self.emit(Event("start", epoch + 1, self.epochs, 0, self.steps))
            yield epoch

    def open_log(self, steps: int) -> None:
        """Start logging with ``steps`` steps per epoch (global step = epoch * steps + step): the
        TensorBoard writer where ``tensorboard`` is on (main rank).  Call it after ``begin``."""
        self.steps = steps
        if self.log.tensorboard and self.main and self.tb is None:
            from tfnas_core.runs import tb_log

            self.tb = tb_log.Writer(self.out, purge_step=self.start * steps + 1 if self.start else None)

    def close(self) -> None:
        """Flush and close the event file (every way a session ends)."""
        if self.tb is not None:
            self.tb.close()
            self.tb = None

    def emit(self, ev: Event) -> None:
        if self.events is not None:
            self.events(ev)

    # -- during and after each epoch -------------------------------------------------------------
    def logging_point(self, step: int) -> bool:
        """Whether (0-based) ``step`` of an epoch is a logging point (and anyone reads its values)."""
        return bool(self.log.every) and (step + 1) % self.log.every == 0 and (self.tb is not None
                                                                               or self.events is not None)

    def step(self, epoch: int, step: int, phase: str = "",
             values: Callable[[], Mapping[str, float]] | None = None) -> None:
        """After (0-based) ``step`` of (0-based) ``epoch``: at a logging point ``values()`` (the
        step's scalars: reading them may wait for the device) go to TensorBoard and into the event;
        a ``step`` event either way."""
        vals = dict(values()) if values is not None and self.logging_point(step) else {}
        if vals and self.tb is not None:
            self.tb.scalars(epoch * self.steps + step + 1, vals)
        self.emit(Event("step", epoch + 1, self.epochs, step + 1, self.steps, phase, vals))

    def wall_s(self) -> float:
        """Seconds of this run so far, over every session."""
        return self._wall_before + time.perf_counter() - self._t0

    def kept(self) -> str:
        """What a stopped run leaves to resume from."""
        if self.ckpt_path.is_file():
            return f"the last good checkpoint (epoch {len(self.records)}) is kept at {self.ckpt_path}"
        return "no checkpoint was written yet"

    def end_epoch(self, rec: dict, state: Callable[[], dict], line: str, phase: str = "") -> None:
        """Append ``rec``; on the main rank save ``state()`` (+ records, wall time) as the
        checkpoint and rewrite the records file; then say ``line``, log the record's numbers as
        ``epoch/...`` scalars and send the ``epoch`` event."""
        self.records.append(rec)
        if self.main:
            checkpoint.save({**state(), "records": self.records, "wall_s": self.wall_s()}, self.ckpt_path,
                            self.cfg_hash)
            self.write_records(self.records, self.out / self.records_file)
        self.say(line)
        values = numeric(rec)
        if self.tb is not None:
            self.tb.scalars(len(self.records) * self.steps, {f"epoch/{k}": v for k, v in values.items()})
            self.tb.flush()
        self.emit(Event("epoch", len(self.records), self.epochs, self.steps, self.steps, phase, values))

    def stopping(self, epoch: int) -> bool:
        """Whether to stop after (0-based) ``epoch`` on purpose (``stop_after_epoch``)."""
        n = epoch + 1
        if self.stop_after_epoch and n >= self.stop_after_epoch and n < self.epochs:
            self.say(f"stopped after epoch {n} (stop_after_epoch); rerun the same command to resume")
            return True
        return False

    # -- at the end --------------------------------------------------------------------------------
    def finish(self, result: dict) -> dict:
        """Write the done file (main rank) and return ``result``."""
        if self.main:
            write_json(self.out / self.done_file, result)
        self.close()
        return result


__all__ = ["Event", "Events", "LogSettings", "NAMES", "RunLoop", "Window", "bars_shown", "default_say", "numeric", "out_lock", "progress_bar",
           "read_done", "write_json"]
