"""A missing run as a job: what a worker is sent, what it answers, and how a batch of jobs fails.

A ``Job`` is one missing run with what a worker needs to compute it through the experiments' own
code path (its runner, a public function of a ``tfnas_core`` module named ``module:function``).
A local worker is sent each job as one line of JSON on its stdin (``job_line``): nothing it reads
carries code, and nothing it reads lies on disk for another user to swap (issue 29; earlier
versions wrote ``RUNS/_jobs/*.job.pkl`` pickles, which ``stale.stale_files`` lists).

``Missing`` is the one record of a run a planning pass found unfinished (``experiments.runs``
lists them, ``experiments.run_plan`` hands their jobs to an executor, ``plans`` and
``missing_table`` show them).
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence


@dataclass(frozen=True)
class Job:
    """One missing run, with what a worker needs to compute it through ``experiments``' own code path."""

    kind: str  # search | train
    key: str  # its run-store key
    what: str  # the variant, as the notebook names it
    seed: int
    ctx: dict  # the run settings a worker rebuilds its experiment from (experiments.jobs.job_settings: profile, runs_root, ...)
    variant: dict = field(default_factory=dict)  # search: SearchConfig overrides
    spec: dict | None = None  # train: the derived spec (arch_spec dict)
    label: str | None = None  # train: the run's label
    epochs: int | None = None  # for the cost estimate

    @property
    def log(self) -> Path:
        return Path(self.ctx["runs_root"]) / "_jobs" / f"{self.key}.log"

    @classmethod
    def from_dict(cls, d: Any) -> "Job":
        """The ``Job`` of ``dataclasses.asdict(job)`` read back from JSON (``read_job_line``);
        ``ValueError`` naming the first field that is missing, unknown or of the wrong type."""
        if not isinstance(d, dict):
            raise ValueError(f"job: expected an object of Job fields, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = sorted(set(d) - known), [n for n in _JOB_REQUIRED if n not in d]
        if unknown or missing:
            raise ValueError("job: " + "; ".join(f"{what} field(s) {', '.join(names)}" for what, names in
                                                 (("unknown", unknown), ("missing", missing)) if names))
        for name, types in _JOB_TYPES.items():
            v = d.get(name)
            if name in d and (not isinstance(v, types) or isinstance(v, bool) and bool not in types):
                raise ValueError(f"job: {name}={v!r}: expected {' or '.join(t.__name__ for t in types)}")
        if d["kind"] not in ("search", "train") or not _RUN_KEY.fullmatch(d["key"]):
            raise ValueError(f"job: kind={d['kind']!r}, key={d['key']!r}: expected search|train and a run key")
        if not isinstance(d["ctx"].get("runs_root"), str):
            raise ValueError(f"job: ctx.runs_root={d['ctx'].get('runs_root')!r}: expected a path")
        ctx = {**d["ctx"], **({"shown_overrides": tuple(d["ctx"]["shown_overrides"])}
                              if isinstance(d["ctx"].get("shown_overrides"), list) else {})}
        return cls(**{**d, "ctx": ctx})


_JOB_REQUIRED = ("kind", "key", "what", "seed", "ctx")
_JOB_TYPES = {"kind": (str,), "key": (str,), "what": (str,), "seed": (int,), "ctx": (dict,), "variant": (dict,),
              "spec": (dict, type(None)), "label": (str, type(None)), "epochs": (int, type(None))}
_RUN_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")  # a file name in _jobs/ (runs.config_hash: 12 hex digits)


@dataclass(frozen=True)
class Outcome:
    job: Job
    ok: bool
    error: str = ""
    log: str = ""
    wall_s: float = float("nan")


@dataclass(frozen=True)
class Missing:
    """A run a planning pass (``compute`` off) asked for and did not find finished.

    ``job`` is None for a retraining that waits on its search (``status``: ``after search KEY``;
    its key is not known before the search has derived its spec)."""

    kind: str  # search | train
    what: str  # the variant, as the notebook names it
    seed: int
    key: str | None  # its run-store key (None: not known yet)
    status: str  # runs.Run.status (partial, absent, ...) or "after search KEY"
    job: Job | None = None  # what a worker computes it from

    COLUMNS = ("kind", "what", "seed", "key", "status")  # what a table of missing runs shows

    def row(self) -> dict[str, Any]:
        """The table row of this run (``COLUMNS``)."""
        return {c: getattr(self, c) for c in self.COLUMNS}


def missing_jobs(missing: Sequence[Missing]) -> list[Job]:
    """The jobs of ``missing`` runs, one per key (first ask first); waiting retrainings have none."""
    return list({m.job.key: m.job for m in missing if m.job is not None}.values())


class PlanFailed(RuntimeError):
    """Runs of a plan failed (every other run of their level finished first); ``failures`` lists them."""

    def __init__(self, failures: Sequence["Outcome"]):
        self.failures = list(failures)
        lines = [f"  {o.job.kind} [{o.job.what}] seed {o.job.seed} ({o.job.key}): {o.error}; log: {o.log}"
                 for o in self.failures]
        super().__init__(self.summary() + "\n" + "\n".join(lines))

    def summary(self) -> str:
        """One line (the message's first, what a notebook shows): how many failed, each with its log, the first error."""
        runs = ", ".join(f"{o.job.kind} {o.job.key} (log: {o.log})" for o in self.failures)
        first = (str(self.failures[0].error).strip().splitlines() or [""])[0] if self.failures else ""
        return (f"{len(self.failures)} run(s) failed, the others finished: {runs}; first error: {first}; "
                "rerun to retry the failed ones")


# ----------------------------------------------------------------------------- what a local worker is sent

_MODULE = re.compile(r"tfnas_core(\.[a-z][a-z0-9_]*)*")
_PUBLIC = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def runner_function(name: Any) -> Callable[[Job], dict]:
    """The function ``name`` (``module:function``) names, if it is one a local worker may run: a
    public function defined in a ``tfnas_core`` module; ``ValueError`` otherwise."""
    import importlib
    import inspect

    module, _, fn = name.partition(":") if isinstance(name, str) else ("", "", "")
    f = None
    if _MODULE.fullmatch(module) and _PUBLIC.fullmatch(fn):
        try:
            f = getattr(importlib.import_module(module), fn, None)
        except ImportError:
            f = None
    if not inspect.isfunction(f) or f.__module__ != module:
        raise ValueError(f"runner {name!r}: a local worker runs only a public function of a tfnas_core module, "
                         "named module:function (such as tfnas_core.experiments.jobs:run_job)")
    return f


def runner_name(runner: Callable[[Job], dict]) -> str:
    """``module:function`` of ``runner``, checked as the worker will check it (``runner_function``)."""
    name = f"{getattr(runner, '__module__', '')}:{getattr(runner, '__qualname__', '')}"
    try:
        ok = runner_function(name) is runner
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"runner {runner!r}: a local worker runs only a public function of a tfnas_core module "
                         "(such as experiments.jobs.run_job)")
    return name


def job_line(runner: str, job: Job) -> str:
    """What a local worker is sent for ``job``: one line of JSON, ``{"runner": "module:function",
    "job": {Job fields}}``: data only, no code (``read_job_line`` reads it back)."""
    try:
        return json.dumps({"runner": runner, "job": dataclasses.asdict(job)}, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise ValueError(f"job {job.key}: its fields are not plain JSON data ({e})") from None


def read_job_line(line: str) -> tuple[Callable[[Job], dict], Job]:
    """The runner and ``Job`` of a ``job_line``; ``ValueError`` (one line) for anything else."""
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    if not isinstance(msg, dict) or set(msg) != {"runner", "job"}:
        shown = line.strip()
        raise ValueError(f"job line {shown[:80]!r}{'...' if len(shown) > 80 else ''}: expected one JSON object "
                         "{\"runner\": \"module:function\", \"job\": {...}}")
    return runner_function(msg["runner"]), Job.from_dict(msg["job"])
