"""What crashed runs leave in a run store, and the one line ``plan`` says about it.

Job files of earlier versions of the local pool (``_jobs/*.job.pkl``, pickles never read now: a
local run removes them unread) and run folders holding only ``store.json`` whose locks no one
holds (a run that started and wrote nothing else; its next run resumes there).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from tfnas_core.runs import files as run_files

STALE_JOB_GLOB = "*.job.pkl"  # the local pool's job files before issue 29 (pickles)


def unlink_stale_job_files(jobs_dir: Path) -> list[Path]:
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

    for p in (run_dir / run_files.LOCK, run_dir):
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
    return {n for n in names if n != run_files.LOCK and not (n.startswith(".") and n.endswith(".tmp"))} == {run_files.STORE}


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
