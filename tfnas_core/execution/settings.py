"""How an experiment's missing runs are computed: the executor, its workers and its SLURM options.

``ExecutorSettings`` is all the execution wing is told of an experiment (NNI's rule: the execution
engine takes typed arguments and reports events; it never reads an experiment's config): which
executor (``inline`` | ``local`` | ``slurm``), how many local workers, the SLURM options
(``SlurmOptions``), the run store's folder (job logs in ``_jobs/``, SLURM's pickles in ``_slurm/``),
the profile (a paper-profile retraining with several GPUs runs DDP) and the name on progress lines.
``experiments.context.Context.executor_settings`` builds it from a notebook's inputs.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from tfnas_core.runs.files import RUNS_ROOT
from tfnas_core.utils.checks import AT_LEAST_1, NON_NEGATIVE, POSITIVE, check_fields

EXECUTORS = ("inline", "local", "slurm")
# SlurmOptions' numeric fields and their allowed ranges (checks.check_fields)
SLURM_LIMITS = {"gpus": NON_NEGATIVE, "search_gpus": NON_NEGATIVE, "cpus": AT_LEAST_1, "timeout_min": AT_LEAST_1,
                "array_parallelism": AT_LEAST_1, "max_requeues": NON_NEGATIVE, "signal_delay_s": NON_NEGATIVE,
                "poll_s": POSITIVE, "mem_gb": AT_LEAST_1, "train_tasks": AT_LEAST_1}


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


@dataclass(frozen=True)
class ExecutorSettings:
    """What an executor needs to compute a batch of jobs, and nothing of the experiment around it."""

    executor: str = "inline"  # inline | local | slurm (EXECUTORS)
    jobs: int | None = None  # local workers; None: one per GPU where CUDA is present, else one per CPU core
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    runs_root: str = RUNS_ROOT  # the run store (absolute: a worker's cwd may differ)
    profile: str = "mini"  # at the paper profile a retraining with gpus > 1 runs as one DDP job of several tasks
    name: str = ""  # the notebook's name, shown on the progress lines

    def __post_init__(self) -> None:
        if not isinstance(self.slurm, SlurmOptions):
            raise TypeError(f"slurm: expected SlurmOptions, got {type(self.slurm).__name__}")
        check(self.executor, self.jobs, None)

    @property
    def slurm_folder(self) -> Path:
        """Where ``submitit`` keeps the pickles its jobs load (kept private: ``slurm.private_folder``)."""
        return Path(self.runs_root) / "_slurm"
