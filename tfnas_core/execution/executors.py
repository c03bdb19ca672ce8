"""Where the runs of an experiment are computed: in the kernel, in a local worker pool, or on SLURM.

An experiment (``experiments.ablation``, ``searches``, ``fig2/4/5``, ``tuning.tuned_values``)
is planned, then run: with ``Context.executor`` other than ``inline``, ``run_plan`` calls it
with a *planning* context (``compute`` off: every finished run is read, every missing one is
listed as a ``Job`` and nothing is computed), hands the missing jobs to the executor all at once
(one batch, on SLURM one job array, per dependency level: the searches first, then the
retrainings of the specs they derived, then the next probe of a λ tuning), and repeats until
nothing is missing.  The last call computes nothing: it reads every run from the run store,
the one place where runs meet, so the tables are those ``inline`` gives (a run's records and
results are the same whichever process computed it; ``fingerprint`` compares them).

* ``inline``: today's behaviour, one run after another in this process;
* ``local``: ``jobs`` worker processes on this machine (fresh interpreters that import torch
  once and compute one run after another, each with ``cpu_count // jobs`` torch threads).  Where
  CUDA is present each worker sees one GPU through ``CUDA_VISIBLE_DEVICES`` (worker ``i`` the
  ``i mod n``-th of the ``n`` visible GPUs, mapped into an existing ``CUDA_VISIBLE_DEVICES`` list;
  ``local_gpus``) and ``jobs`` defaults to the GPU count; on a CPU-only machine to one worker per
  CPU core (``default_workers``);
* ``slurm``: ``submitit`` job arrays (partition, GPUs, time limit, array throttle:
  ``SlurmOptions``).  A job that reaches its time limit is requeued (``submitit``'s checkpoint
  hook) and the run resumes from its last epoch checkpoint; a retraining at the paper profile
  with ``gpus > 1`` runs as one job of ``gpus`` tasks, DDP over them (``train.run``'s torchrun
  path, the rank variables taken from SLURM's).

A local worker is sent each job as one line of JSON on its stdin (``job_line``: the ``Job``'s fields and
its runner named ``module:function``, a public function of a ``tfnas_core`` module): nothing it reads
carries code, and nothing it reads lies on disk for another user to swap (issue 29; earlier versions
wrote ``RUNS/_jobs/*.job.pkl`` pickles, which ``stale_files`` lists and a local run removes unread).
SLURM jobs are ``submitit``'s pickles in ``RUNS/_slurm``, a folder only its owner may enter (0700).

A job that fails is reported with its log path while the others go on; ``run_plan`` raises
``PlanFailed`` naming every failed run once its level has finished.  A rerun picks up what
finished (the run store reuses it) and resumes what was interrupted.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from tfnas_core.utils.checks import AT_LEAST_1, NON_NEGATIVE, POSITIVE, check_fields

EXECUTORS = ("inline", "local", "slurm")
# SlurmOptions' numeric fields and their allowed ranges (checks.check_fields)
SLURM_LIMITS = {"gpus": NON_NEGATIVE, "search_gpus": NON_NEGATIVE, "cpus": AT_LEAST_1, "timeout_min": AT_LEAST_1,
                "array_parallelism": AT_LEAST_1, "max_requeues": NON_NEGATIVE, "signal_delay_s": NON_NEGATIVE,
                "poll_s": POSITIVE, "mem_gb": AT_LEAST_1, "train_tasks": AT_LEAST_1}
TIMING_KEYS = ("wall_s", "search_wall_s", "epoch_s", "time_s", "elapsed_s", "s_per_epoch")


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


@dataclass(frozen=True)
class SlurmOptions:
    """Settings of the ``slurm`` executor (``Context.slurm``, ``make SLURM_*=``, a notebook's ``slurm`` dict)."""

    partition: str | None = None  # None: the cluster's default partition
    gpus: int = 0  # GPUs per retraining job (0 on a CPU cluster); at the paper profile it runs DDP over them
    search_gpus: int | None = None  # GPUs per search job (one process); None: 1 when ``gpus`` > 0, else 0
    cpus: int | None = None  # CPUs per task; None: the cluster's default
    timeout_min: int = 60  # time limit per job: a job that reaches it is requeued and resumes
    array_parallelism: int = 64  # at most this many jobs of an array run at once
    max_requeues: int = 3  # requeues after a time limit before the run counts as failed
    signal_delay_s: int = 90  # the requeue signal comes this long before the limit (must be < timeout)
    poll_s: float = 2.0  # how often job states are read (sacct)
    mem_gb: int | None = None
    train_tasks: int | None = None  # DDP ranks (tasks) per retraining job; None: ``gpus`` at the paper profile, else 1
    additional: dict = field(default_factory=dict)  # more sbatch options (submitit's slurm_additional_parameters)

    @classmethod
    def from_dict(cls, d: dict | None) -> "SlurmOptions":
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"slurm: unknown setting(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        o = cls(**d)
        try:
            check_fields(o, SLURM_LIMITS)
        except ValueError as e:
            raise ValueError(f"slurm: {e}") from None
        if o.signal_delay_s >= 60 * o.timeout_min:
            raise ValueError(f"slurm: signal_delay_s ({o.signal_delay_s}) must be below the time limit "
                             f"({o.timeout_min} min = {60 * o.timeout_min} s)")
        o._check_script_text()
        return o

    def _check_script_text(self) -> None:
        """Nothing typed may add a line to the generated sbatch script: submitit writes ``#SBATCH
        --KEY=VALUE`` lines and quotes values but not keys, so ``partition`` must be a partition name
        (list), every ``additional`` key an sbatch option name and every value one line of text."""
        if self.partition is not None and not _PARTITION.fullmatch(self.partition):
            raise ValueError(f"slurm: partition {self.partition!r}: expected a partition name "
                             "(letters, digits, '_', '-', '.', comma-separated)")
        if not isinstance(self.additional, dict):
            raise ValueError(f"slurm: additional must be a mapping of sbatch options, got {self.additional!r}")
        for k, v in self.additional.items():
            if not isinstance(k, str) or not _OPTION.fullmatch(k):
                raise ValueError(f"slurm: additional key {k!r}: expected an sbatch option name such as "
                                 "'qos' or 'constraint' (letters, digits, '_', '-')")
            if isinstance(v, bool) or not isinstance(v, (str, int, float)) or any(c in str(v) for c in _CONTROL):
                raise ValueError(f"slurm: additional {k}={v!r}: expected one line of text or a number")


_PARTITION = re.compile(r"[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*")
_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_CONTROL = frozenset(chr(i) for i in range(32)) | {chr(127)}


def check(executor: str, jobs: int | None, slurm: dict | None) -> None:
    """One-line ``ValueError`` for a bad executor, worker count or SLURM setting."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ValueError(f"jobs: expected a positive integer, got {jobs!r}")
    SlurmOptions.from_dict(slurm)


# ----------------------------------------------------------------------------- jobs


@dataclass(frozen=True)
class Job:
    """One missing run, with what a worker needs to compute it through ``experiments``' own code path."""

    kind: str  # search | train
    key: str  # its run-store key
    what: str  # the variant, as the notebook names it
    seed: int
    ctx: dict  # the Context fields a worker rebuilds (profile, runs_root, archive_root, overrides)
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


def context_fields(ctx) -> dict:
    """What a worker needs of ``ctx`` to key and compute its run exactly as this process would."""
    from tfnas_core.runs import archive as run_archive

    archive = None if run_archive.fresh_requested() or ctx.archive_root is None else str(Path(ctx.archive_root).resolve())
    return {"profile": ctx.profile, "runs_root": str(Path(ctx.runs_root).resolve()),  # absolute: a job's cwd may differ
            "archive_root": archive,
            "search_overrides": dict(ctx.search_overrides), "train_overrides": dict(ctx.train_overrides),
            "shown_overrides": tuple(ctx.shown_overrides), "name": ctx.name}


# ----------------------------------------------------------------------------- what a local worker is sent

_MODULE = re.compile(r"tfnas_core(\.[a-z][a-z0-9_]*)*")
_PUBLIC = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _runner(name: Any) -> Callable[[Job], dict]:
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
                         "named module:function (such as tfnas_core.experiments.core:run_job)")
    return f


def runner_name(runner: Callable[[Job], dict]) -> str:
    """``module:function`` of ``runner``, checked as the worker will check it (``_runner``)."""
    name = f"{getattr(runner, '__module__', '')}:{getattr(runner, '__qualname__', '')}"
    try:
        ok = _runner(name) is runner
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"runner {runner!r}: a local worker runs only a public function of a tfnas_core module "
                         "(such as experiments.run_job)")
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
    return _runner(msg["runner"]), Job.from_dict(msg["job"])


# ----------------------------------------------------------------------------- what a crash leaves

STALE_JOB_GLOB = "*.job.pkl"  # the local pool's job files before issue 29 (pickles)


def _unlink_stale_job_files(jobs_dir: Path) -> list[Path]:
    """Remove the job files earlier versions left in ``jobs_dir`` (``*.job.pkl``, never read now)."""
    gone = []
    for p in sorted(jobs_dir.glob(STALE_JOB_GLOB)):
        try:
            p.unlink()
            gone.append(p)
        except FileNotFoundError:
            continue
    return gone


def _lock_held(run_dir: Path) -> bool:
    """Whether a process holds one of ``run_dir``'s locks (runs.py): ``_locked``'s ``.lock`` file or
    ``out_lock``'s ``flock`` on the folder itself.  Tried without waiting and let go at once."""
    import fcntl

    for p in (run_dir / ".lock", run_dir):
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError:  # no .lock file, or the folder is gone
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing lets go of it
    return False


def _only_store_json(run_dir: Path) -> bool:
    """``run_dir`` holds ``store.json`` and nothing a run writes after it (its lock file and a killed
    writer's ``.*.tmp`` aside): a run that started and never wrote anything else."""
    try:
        names = {p.name for p in run_dir.iterdir()}
    except OSError:
        return False
    return {n for n in names if n != ".lock" and not (n.startswith(".") and n.endswith(".tmp"))} == {"store.json"}


def stale_files(runs_root: str | os.PathLike) -> list[Path]:
    """What crashed runs left under ``runs_root``: the local pool's job files of earlier versions
    (``_jobs/*.job.pkl``; a local run removes them unread) and run folders holding only ``store.json``
    whose locks no one holds (a run that started and wrote nothing else; its next run resumes there,
    and deleting one is safe while no run is going).  Job files first, then folders, each sorted."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    out = sorted((root / "_jobs").glob(STALE_JOB_GLOB))
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        if _only_store_json(d) and not _lock_held(d):
            out.append(d)
    return out


def stale_note(runs_root: str | os.PathLike, paths: Sequence[Path] | None = None) -> str:
    """One line on ``stale_files(runs_root)`` (or ``paths``) for ``plan``; "" when there are none."""
    paths = stale_files(runs_root) if paths is None else list(paths)
    if not paths:
        return ""
    jobs = [p for p in paths if p.name.endswith(".job.pkl")]
    dirs = [p for p in paths if p not in jobs]
    parts = []
    if jobs:
        parts.append(f"{len(jobs)} job file(s) of an earlier version in {jobs[0].parent} (removed unread by the next "
                     "local run)")
    if dirs:
        shown = ", ".join(d.name for d in dirs[:5]) + (", ..." if len(dirs) > 5 else "")
        parts.append(f"{len(dirs)} run folder(s) holding only store.json, a run that started and wrote nothing else "
                     f"({shown}; its next run resumes there, or delete them while no run is going)")
    return f"left by crashed runs in {runs_root}: " + "; ".join(parts)


def fingerprint(run_dir: str | os.PathLike) -> str:
    """SHA-256 of a finished run's records and results without its timings (wall and epoch
    seconds): equal for two runs that computed the same thing, whichever process ran them."""
    import csv
    import hashlib
    import io

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k not in TIMING_KEYS and not k.endswith("_wall_s")}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    run_dir, h = Path(run_dir), hashlib.sha256()
    for name in ("summary.json", "result.json", "spec.json", "records.jsonl", "records.csv"):
        p = run_dir / name
        if not p.is_file():
            continue
        h.update(name.encode())
        text = p.read_text()
        if name.endswith(".json"):
            h.update(json.dumps(clean(json.loads(text)), sort_keys=True).encode())
        elif name.endswith(".jsonl"):
            for line in text.splitlines():
                h.update(json.dumps(clean(json.loads(line)), sort_keys=True).encode())
        else:
            for row in csv.DictReader(io.StringIO(text)):
                h.update(json.dumps(clean(row), sort_keys=True).encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- executors


def _tell(line: str) -> None:
    """``line`` in the notebook cell (``sys.stderr``) and on the terminal that started the kernel (``sys.__stderr__``)."""
    streams = [sys.stderr] + ([sys.__stderr__] if sys.__stderr__ is not sys.stderr else [])
    for stream in streams:  # the notebook cell, and the terminal of make / papermill / the lab server
        try:
            if stream is not None:
                stream.write(line + "\n")
                stream.flush()
        except (OSError, ValueError):
            continue


def local_gpus(cuda_available: bool | None = None, device_count: int | None = None,
               environ: dict | None = None) -> list[str]:
    """The GPUs a local pool hands out, as ``CUDA_VISIBLE_DEVICES`` entries: none without CUDA;
    else the entries of an existing ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs, the first
    ``device_count`` of them: those torch sees), or ``0 .. device_count - 1``.  The arguments
    default to ``torch.cuda`` and ``os.environ`` (tests pass them)."""
    if cuda_available is None or device_count is None:
        import torch

        cuda_available = torch.cuda.is_available() if cuda_available is None else cuda_available
        device_count = (torch.cuda.device_count() if cuda_available else 0) if device_count is None else device_count
    if not cuda_available or device_count < 1:
        return []
    visible = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(device_count)]
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    return entries[:device_count]


def default_workers(gpus: Sequence[str] | None = None) -> int:
    """``jobs=None`` of the local pool: one worker per GPU where CUDA is present, else one per CPU core."""
    gpus = local_gpus() if gpus is None else gpus
    return len(gpus) or os.cpu_count() or 1


def worker_env(threads: int, gpu: str | None, environ: dict | None = None) -> dict:
    """The environment of a local worker: ``threads`` torch/OpenMP threads and, with ``gpu``, that
    one GPU as its ``cuda:0`` (``CUDA_VISIBLE_DEVICES``); without, the parent's CUDA setting."""
    env = {**(os.environ if environ is None else environ), "TFNAS_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    return env


class _Progress:
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
        _tell(f"{self.head} - {done} done, {running} running, {failed} failed, {queued} queued "
              f"({time.monotonic() - self.t0:.0f} s)")


def _last_line(path: Path, failed_only: bool = False) -> str:
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


class _Worker:
    """One local worker process (``python -m tfnas_core.execution.executors --serve``): a fresh interpreter that
    imports torch once and then computes the jobs it is sent (``job_line``), one at a time, answering a line each."""

    def __init__(self, env: dict, log_dir: Path, n: int, slot: int = 0):
        import subprocess

        log_dir.mkdir(parents=True, exist_ok=True)
        self.slot = slot  # which of the pool's places it fills (a replacement takes the dead worker's, and its GPU)
        self.err = open(log_dir / f"worker-{n}.log", "a")  # what a worker prints outside any job
        self.proc = subprocess.Popen([sys.executable, "-m", "tfnas_core.execution.executors", "--serve"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, text=True, bufsize=1)
        self.job: int | None = None
        self.t0 = 0.0

    def send(self, i: int, line: str) -> None:
        self.job, self.t0 = i, time.perf_counter()
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self, kill: bool = False) -> None:
        if self.proc.poll() is None:
            if kill:
                self.proc.terminate()
            else:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


def _run_local(jobs: Sequence[Job], runner: Callable[[Job], dict], workers: int, progress: _Progress,
               gpus: Sequence[str] | None = None) -> list[Outcome]:
    """At most ``workers`` worker processes (``_Worker``), each computing one job at a time; a job's
    output goes to its log.  With ``gpus`` (default ``local_gpus()``) the worker in place ``i`` sees
    only GPU ``gpus[i % len(gpus)]``, said on stderr and in its log.  A worker that dies takes only
    its current job with it (reported failed) and is replaced, on the same GPU, for the rest.

    Each job goes to its worker as one line of JSON on the worker's stdin (``job_line``), so no job
    lies on disk; the job files an earlier version left in ``_jobs/`` are removed first, unread."""
    import selectors

    name = runner_name(runner)
    lines = [job_line(name, j) for j in jobs]  # every job checked before a worker starts
    gpus = list(local_gpus() if gpus is None else gpus)
    threads = max(1, (os.cpu_count() or 1) // workers)
    log_dir = jobs[0].log.parent
    for jobs_dir in dict.fromkeys(j.log.parent for j in jobs):
        gone = _unlink_stale_job_files(jobs_dir)
        if gone:
            _tell(f"{progress.prefix}removed {len(gone)} stale job file(s) of an earlier version from {jobs_dir}, unread")
    outcomes: dict[int, Outcome] = {}
    queue = list(range(len(jobs)))
    pool: list[_Worker] = []
    sel = selectors.DefaultSelector()
    started = 0

    def start_worker(slot: int) -> _Worker:
        nonlocal started
        gpu = gpus[slot % len(gpus)] if gpus else None
        w = _Worker(worker_env(threads, gpu), log_dir, started, slot)
        if gpu is not None:
            line = f"{progress.prefix}local worker {started} (place {slot}): GPU {gpu} (CUDA_VISIBLE_DEVICES={gpu})"
            _tell(line)
            w.err.write(line + "\n")
            w.err.flush()
        started += 1
        sel.register(w.proc.stdout, selectors.EVENT_READ, w)
        pool.append(w)
        return w

    def retire(w: _Worker) -> None:
        sel.unregister(w.proc.stdout)
        pool.remove(w)
        w.close(kill=True)

    try:
        for slot in range(min(workers, len(jobs))):
            start_worker(slot)
        while queue or any(w.job is not None for w in pool):
            for w in [w for w in pool if w.job is None]:
                if not queue:
                    break
                i = queue.pop(0)
                w.send(i, lines[i])
            failed = sum(not o.ok for o in outcomes.values())
            progress(len(outcomes) - failed, sum(w.job is not None for w in pool), failed, len(queue))
            for key, _ in sel.select(timeout=1.0):
                w: _Worker = key.data
                line = w.proc.stdout.readline()
                i, j = w.job, jobs[w.job] if w.job is not None else None
                if not line:  # the worker died (killed, out of memory, a crash in C)
                    if j is not None:
                        outcomes[i] = Outcome(j, False, f"worker died (exit {w.proc.wait()}): {_last_line(j.log)}", str(j.log))
                    retire(w)
                    if queue:
                        start_worker(w.slot)
                    continue
                status, _, rest = line.rstrip("\n").partition(" ")
                outcomes[i] = (Outcome(j, True, log=str(j.log), wall_s=time.perf_counter() - w.t0) if status == "ok"
                               else Outcome(j, False, rest, str(j.log)))
                w.job = None
        failed = sum(not o.ok for o in outcomes.values())
        progress(len(outcomes) - failed, 0, failed, 0)
    except BaseException:
        for w in list(pool):  # interrupted: stop the workers (their runs resume on a rerun)
            w.close(kill=True)
        raise
    for w in pool:
        w.close()
    sel.close()
    return [outcomes[i] for i in range(len(jobs))]


def _submitit_runner(runner: Callable[[Job], dict]):
    """``submitit``'s checkpointable wrapper of ``runner``: on the time-limit signal the job is
    requeued with the same arguments, and the run resumes from its last epoch checkpoint."""
    import submitit

    class JobRunner(submitit.helpers.Checkpointable):
        def __init__(self, fn):
            self.fn = fn  # pickled by reference (experiments.run_job): the job imports the package itself

        def __call__(self, job: Job) -> dict:
            return self.fn(job)

    return JobRunner(runner)


def private_folder(folder: str | os.PathLike) -> Path:
    """``folder``, made if missing, with mode 0700: a folder of pickles that jobs load (submitit's) is
    code, so no other user may write into it.  ``ValueError`` when another user owns it."""
    folder = Path(folder)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_uid != os.getuid():
        raise ValueError(f"SLURM folder {folder}: owned by user id {st.st_uid}, not by you ({os.getuid()}); "
                         "its job pickles would run as your jobs: use a runs folder of your own")
    if st.st_mode & 0o777 != 0o700:
        os.chmod(folder, 0o700)
    return folder


def submit_slurm(jobs: Sequence[Job], runner: Callable[[Job], dict], opts: SlurmOptions, folder: str | os.PathLike,
                 profile: str = "mini"):
    """Submit ``jobs`` as job arrays (one per kind and task count) with ``opts``; the submitit jobs, in order.
    ``folder`` holds submitit's pickles, which the jobs load: it is made (or kept) private (``private_folder``)."""
    import shutil

    import submitit

    if shutil.which("sbatch") is None:
        raise ValueError("executor slurm: sbatch is not on the PATH (no SLURM client on this machine); "
                         "run where SLURM is, or use executor local or inline")
    private_folder(folder)
    out = [None] * len(jobs)
    groups: dict[tuple[int, int], list[int]] = {}  # (tasks, GPUs) -> the jobs of one array
    for i, j in enumerate(jobs):
        if j.kind == "train":
            tasks = opts.train_tasks or (opts.gpus if profile == "paper" and opts.gpus > 1 else 1)
            gpus = opts.gpus
        else:
            tasks, gpus = 1, opts.search_gpus if opts.search_gpus is not None else min(opts.gpus, 1)
        groups.setdefault((tasks, gpus), []).append(i)
    for (tasks, gpus), idx in groups.items():
        ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster="slurm",
                                   slurm_max_num_timeout=opts.max_requeues)
        params = dict(timeout_min=opts.timeout_min, slurm_array_parallelism=opts.array_parallelism,
                      slurm_signal_delay_s=opts.signal_delay_s,
                      name="tfnas", tasks_per_node=tasks, nodes=1)
        if opts.partition:
            params["slurm_partition"] = opts.partition
        if gpus:
            params["gpus_per_node"] = gpus
        if opts.cpus:
            params["cpus_per_task"] = opts.cpus
        if opts.mem_gb:
            params["mem_gb"] = opts.mem_gb
        if opts.additional:
            params["slurm_additional_parameters"] = dict(opts.additional)
        ex.update_parameters(**params)
        try:
            subs = ex.map_array(_submitit_runner(runner), [jobs[i] for i in idx])
        except (submitit.core.utils.FailedJobError, OSError) as e:  # no controller answers, a refused option ...
            said = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            raise ValueError(f"executor slurm: sbatch refused the submission of {len(idx)} job(s): "
                             f"{said[-1] if said else type(e).__name__}") from None
        for i, s in zip(idx, subs):
            out[i] = s
    return out


def _run_slurm(jobs: Sequence[Job], runner: Callable[[Job], dict], opts: SlurmOptions, folder: Path, profile: str,
               progress: _Progress, on_submit: Callable[[list], None] | None = None) -> list[Outcome]:
    subs = submit_slurm(jobs, runner, opts, folder, profile)
    if on_submit is not None:
        on_submit(subs)
    outcomes: dict[int, Outcome] = {}
    while len(outcomes) < len(jobs):
        running = 0
        for i, s in enumerate(subs):
            if i in outcomes:
                continue
            if s.done():
                try:
                    r = s.results()[0]  # rank 0 of a multi-task (DDP) job; result() refuses sub-tasks
                    outcomes[i] = Outcome(jobs[i], True, log=str(jobs[i].log), wall_s=r["wall_s"])
                except Exception as e:  # FailedJobError (with the remote traceback), UncompletedJobError (cancelled)
                    state = s.state
                    why = _last_line(jobs[i].log, failed_only=True) or f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"
                    outcomes[i] = Outcome(jobs[i], False, f"SLURM job {s.job_id} {state}: {why}",
                                          f"{jobs[i].log} (SLURM: {s.paths.stderr})")
            elif s.state == "RUNNING":
                running += 1
        failed = sum(not o.ok for o in outcomes.values())
        progress(len(outcomes) - failed, running, failed, len(jobs) - len(outcomes) - running)
        if len(outcomes) < len(jobs):
            time.sleep(opts.poll_s)
    return [outcomes[i] for i in range(len(jobs))]


def execute(jobs: Sequence[Job], executor: str, runner: Callable[[Job], dict], *, workers: int | None = None,
            slurm: dict | None = None, name: str = "", level: int = 1, profile: str = "mini",
            on_submit=None) -> list[Outcome]:
    """Compute ``jobs`` (independent of each other) with ``executor``, each by ``runner(job)``
    (``experiments.run_job``: a public function of a tfnas_core module, which a local worker is sent by
    name and SLURM pickles by reference); one ``Outcome`` per job, in order."""
    jobs = list(jobs)
    if not jobs:
        return []
    gpus = local_gpus() if executor == "local" else []
    workers = workers or default_workers(gpus)
    on = f", {len(gpus)} GPU(s)" if gpus else ""
    progress = _Progress(name, executor if executor != "local" else f"local ({workers} workers{on})", len(jobs), level)
    if executor == "local":
        return _run_local(jobs, runner, workers, progress, gpus)
    if executor == "slurm":
        return _run_slurm(jobs, runner, SlurmOptions.from_dict(slurm), Path(jobs[0].ctx["runs_root"]) / "_slurm",
                          profile, progress, on_submit)
    out = []
    for j in jobs:  # inline: here, one after another
        try:
            out.append(Outcome(j, True, log=str(j.log), wall_s=runner(j)["wall_s"]))
        except Exception as e:
            out.append(Outcome(j, False, f"{type(e).__name__}: {e}", str(j.log)))
        progress(sum(o.ok for o in out), 0, sum(not o.ok for o in out), len(jobs) - len(out))
    return out


# ----------------------------------------------------------------------------- plans


def planning_pass(ctx, build: Callable[[Any], Any]):
    """``build`` on a planning copy of ``ctx`` (reads finished runs, computes nothing): its result,
    the jobs of the missing runs (one per key, first ask first) and the copy (its ledger and missing)."""
    probe = dataclasses.replace(ctx, compute=False, planning=True, missing=[], ledger=[])
    result = build(probe)
    jobs = list({m["job"].key: m["job"] for m in probe.missing if m.get("job") is not None}.values())
    return result, jobs, probe


def run_plan(ctx, build: Callable[[Any], Any], final: bool = True):
    """``build(ctx)`` with its missing runs computed by ``ctx.executor`` first, level by level;
    ``final=False``: only compute them (``plans.run``), return None."""
    computed: set[str] = set()
    attempted: set[str] = set()
    level = 0
    while True:
        _, jobs, _ = planning_pass(ctx, build)
        if not jobs:
            break
        again = [j.key for j in jobs if j.key in attempted]
        if again:
            raise ValueError(f"runs {', '.join(again)} were computed and are still missing from the run store "
                               f"{ctx.runs_root} (another runs_root on the workers?)")
        level += 1
        outcomes = execute(jobs, ctx.executor, ctx.runner, workers=ctx.jobs, slurm=ctx.slurm, name=ctx.name, level=level,
                           profile=ctx.profile)
        attempted.update(j.key for j in jobs)
        failed = [o for o in outcomes if not o.ok]
        computed.update(o.job.key for o in outcomes if o.ok)
        if failed:
            raise PlanFailed(failed)
    if not final:
        return None
    start = len(ctx.ledger)
    result = build(ctx)  # everything is finished: read from the run store, as inline would
    for row in ctx.ledger[start:]:
        if row["key"] in computed:
            row["source"] = f"computed now ({ctx.executor})"
    return result


def planned(fn: Callable) -> Callable:
    """Make ``fn(ctx, ...)`` go through ``run_plan`` when ``ctx.executor`` is not ``inline`` (and
    ``ctx`` computes and is not itself a planning pass)."""
    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        if ctx.executor == "inline" or not ctx.compute or ctx.planning:
            return fn(ctx, *args, **kwargs)
        return run_plan(ctx, lambda c: fn(c, *args, **kwargs))
    return wrapper


def _worker_main(argv: list[str]) -> int:
    """A local worker (``_Worker``): ``--serve`` reads jobs from stdin, one line of JSON each
    (``job_line``), computes each (its output into the job's log) and answers ``ok KEY`` or ``failed
    MESSAGE``; a line that is not a job (``read_job_line``) is refused, unrun, with ``failed error: ...``."""
    import contextlib

    threads = os.environ.get("TFNAS_THREADS")
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    if argv != ["--serve"]:
        print("usage: python -m tfnas_core.execution.executors --serve  (a local worker; executors._run_local starts it)",
              file=sys.stderr)
        return 2
    answer = sys.stdout
    for line in sys.stdin:
        try:
            runner, job = read_job_line(line)
        except ValueError as e:
            msg = f"failed error: {e}"
            print(msg, file=sys.stderr, flush=True)  # the worker's own log
            answer.write(msg + "\n")
            answer.flush()
            continue
        job.log.parent.mkdir(parents=True, exist_ok=True)
        with open(job.log, "a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                runner(job)
                msg = f"ok {job.key}"
            except Exception as e:  # the runner wrote the traceback into the job's log
                first = str(e).strip().splitlines()
                msg = f"failed {type(e).__name__}: {first[0] if first else ''}"
        answer.write(msg + "\n")
        answer.flush()
    return 0


if __name__ == "__main__":  # the worker reads jobs as tfnas_core.execution.executors.Job, the class the runners know
    from tfnas_core.execution.executors import _worker_main as main

    sys.exit(main(sys.argv[1:]))
