"""A notebook's experiment context: its settings (frozen) apart from the state of its runs.

``Settings`` is what every search and retraining of a notebook is configured by (profile, run
store, archive, overrides, where derived nets are measured, where missing runs are computed);
it never changes once made (``Context.replace`` makes a new context).  ``Context`` holds one
``Settings`` and the mutable state of a notebook's runs: the ledger of every run it asked for
(``runs_table``), whether missing runs are computed (``compute``), the runs it found missing
(``missing``: ``execution.jobs.Missing`` records) and whether it is a planning pass of a run plan
(``run_plan.planning_pass``).  Every ``Settings`` field reads through the context (``ctx.profile``).

The execution wing is handed ``Context.executor_settings()`` (typed, nothing else of the
experiment) and, per job, ``Context.job_settings()`` (what a worker rebuilds its context from).
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from tfnas_core.config import PROFILE_NAMES
from tfnas_core.execution.jobs import Missing
from tfnas_core.execution.settings import ExecutorSettings, SlurmOptions, check
from tfnas_core.runs import archive as run_archive
from tfnas_core.runs.store import RunStore
from tfnas_core.runs.files import RUNS_ROOT


@dataclass(frozen=True)
class Settings:
    """Where runs live and how every search/retraining of a notebook is configured."""

    profile: str = "mini"
    runs_root: str = RUNS_ROOT
    # finished runs committed without checkpoints (run_archive.py), reused when runs_root lacks them;
    # None, or TFNAS_FRESH=1 (make FRESH=1), ignores it and recomputes
    archive_root: str | None = run_archive.DEFAULT_ARCHIVE
    search_overrides: dict[str, Any] = field(default_factory=dict)  # applied to every search
    train_overrides: dict[str, Any] = field(default_factory=dict)  # applied to every retraining
    # where derived nets are measured at paper scale (measured_ms); None: the LUT's device when it is
    # here (the official GPU table: CUDA batch 32), else the CPU at batch 1 (measure.measure_setting)
    measure_device: str | None = None
    measure_repeats: int | None = None  # None: 20 timed runs (3 at the smoke profile)
    measure_min_s: float | None = None  # None: time at least 1 s (0 at the smoke profile)
    # the file keeping measured_ms per machine (measured.MeasuredStore; launch.measured_path: beside the
    # tables), so a re-render times nothing it timed before here; None: time on every call
    measured: str | None = None
    name: str = ""  # the notebook's name, shown on the terminal's progress lines
    progress: bool = True  # one line per epoch on the process's real stderr (progress.RunProgress)
    shown_overrides: tuple[str, ...] = ()  # search_overrides named in every run's description (``longer``: epochs)
    # where missing runs are computed (tfnas_core.execution): inline (here, one after another) | local
    # (``jobs`` worker processes) | slurm (submitit job arrays, ``slurm``: execution.settings.SlurmOptions fields)
    executor: str = "inline"
    jobs: int | None = None  # local workers; None: one per GPU where CUDA is present, else one per CPU core
    slurm: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILE_NAMES)}")
        smoke = self.profile == "smoke"
        if self.measure_repeats is None:
            object.__setattr__(self, "measure_repeats", 3 if smoke else 20)
        if self.measure_min_s is None:
            object.__setattr__(self, "measure_min_s", 0.0 if smoke else 1.0)
        if self.measure_device not in (None, "cpu", "cuda"):
            raise ValueError(f"measure_device: expected None, 'cpu' or 'cuda', got {self.measure_device!r}")
        check(self.executor, self.jobs, self.slurm)


SETTINGS = tuple(f.name for f in dataclasses.fields(Settings))
STATE = ("log", "ledger", "compute", "missing", "planning")  # Context's own, mutable fields


class Context:
    """One ``Settings`` and the state of a notebook's runs.

    ``Context("smoke", runs_root=..., executor="local")`` takes ``Settings`` fields (or
    ``settings=``) and the state: ``log`` (every line a search/retraining logs; default: none),
    ``ledger`` (every run this context asked for, in order), ``compute`` (False: finished runs only,
    from the run store or the archive; a run that is not finished raises ``MissingRun`` and is
    listed in ``missing``: nothing is computed), ``missing`` and ``planning`` (a planning pass of a
    run plan: missing runs become jobs, nothing is computed)."""

    def __init__(self, *args: Any, settings: Settings | None = None, log: Callable[[str], None] | None = None,
                 ledger: list | None = None, compute: bool = True, missing: list[Missing] | None = None,
                 planning: bool = False, **fields: Any):
        if settings is not None and (args or fields):
            raise TypeError("Context: give settings= or Settings fields, not both")
        self.settings = settings if settings is not None else Settings(*args, **fields)
        self.log = log
        self.ledger = [] if ledger is None else ledger
        self.compute = compute
        self.missing: list[Missing] = [] if missing is None else missing
        self.planning = planning

    def replace(self, **changes: Any) -> "Context":
        """A new context with ``changes`` (``Settings`` fields and state); what is not changed is
        shared (the same ledger and list of missing runs, as ``dataclasses.replace`` would)."""
        unknown = sorted(set(changes) - set(SETTINGS) - set(STATE))
        if unknown:
            raise TypeError(f"Context.replace: unknown field(s) {', '.join(unknown)}")
        settings = dataclasses.replace(self.settings, **{k: v for k, v in changes.items() if k in SETTINGS})
        state = {k: changes.get(k, getattr(self, k)) for k in STATE}
        return Context(settings=settings, **state)

    def __repr__(self) -> str:
        return (f"Context({self.settings!r}, compute={self.compute}, planning={self.planning}, "
                f"{len(self.ledger)} run(s) in the ledger, {len(self.missing)} missing)")

    @property
    def store(self) -> RunStore:
        use_archive = self.archive_root is not None and not run_archive.fresh_requested()
        return RunStore(self.runs_root, archive=self.archive_root if use_archive else None)

    def executor_settings(self) -> ExecutorSettings:
        """What the execution wing is told of this context (``execution.settings.ExecutorSettings``)."""
        return ExecutorSettings(self.executor, self.jobs, SlurmOptions.from_dict(self.slurm),
                                str(Path(self.runs_root).resolve()), self.profile, self.name)

    def job_settings(self) -> dict:
        """What a worker needs of this context to key and compute a run exactly as this process
        would (a ``Job``'s ``ctx``; plain JSON data, the worker's ``Context(**job.ctx)``)."""
        archive = None if run_archive.fresh_requested() or self.archive_root is None else str(Path(self.archive_root).resolve())
        return {"profile": self.profile, "runs_root": str(Path(self.runs_root).resolve()),  # absolute: a job's cwd may differ
                "archive_root": archive,
                "search_overrides": dict(self.search_overrides), "train_overrides": dict(self.train_overrides),
                "shown_overrides": tuple(self.shown_overrides), "name": self.name}

    def say(self, msg: str) -> None:
        (self.log or (lambda m: print(m, file=sys.stderr)))(msg)

    def run_log(self, what: str, path: Path) -> Callable[[str], None]:
        """The ``log`` of one search/retraining: announces it in the cell and, with ``progress``,
        on the terminal, then reports every epoch there with its ETA."""
        self.say(f"{what} -> {path}")
        if not self.progress:
            return self.log or (lambda m: None)
        from tfnas_core.utils.progress import RunProgress

        p = RunProgress(what, self.name, forward=self.log)
        p.start(f"running in {path}")
        return p


def _setting(name: str) -> property:
    return property(lambda self: getattr(self.settings, name), doc=f"``Settings.{name}`` (read-only: ``replace``)")


for _name in SETTINGS:
    setattr(Context, _name, _setting(_name))


class MissingRun(LookupError):
    """A run a ``compute=False`` context asked for is not finished (``Context.missing`` lists it)."""
