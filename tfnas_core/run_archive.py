"""The compact run archive: finished runs without their checkpoints, committed with the results.

A finished run in the store (``runs/<hash>/``) holds a checkpoint of 10-30 MB beside a few kB of
what the tables and figures are made from: ``config.json``, the records, ``spec.json``, the done
file (``summary.json`` of a search, ``result.json`` of a retraining), ``store.json`` (kind, key,
the config it is keyed by) and ``lut_check.json``.  ``export`` copies those small files of every
finished run into ``run_archive/<hash>/``; the run store (``runs.RunStore(archive=...)``) reuses
an archived run as finished when its own folder has none, so a fresh clone re-renders a notebook
from the archive without searching.  ``TFNAS_FRESH=1`` (``make ... FRESH=1``) ignores the archive
and recomputes.

An archived run is trusted only when its ``store.json`` config hashes to the folder's name
(``runs.verify_archived``): an edited or misplaced run is refused with a one-line error naming it,
never silently used.  Nothing in the archive is ever written by a notebook; only ``export`` adds
runs (atomically: a temp folder renamed into place).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .checks import read_json

DEFAULT_ARCHIVE = "run_archive"
ENV_FRESH = "TFNAS_FRESH"
DONE_FILES = {"search": "summary.json", "train": "result.json"}  # the file a finished run writes last
LEFT_OUT = ("checkpoint",)  # name prefixes never archived (the resumable state: large, not needed when done)


class ArchiveError(ValueError):
    """An archived run that cannot be trusted (its config does not hash to its folder name, or it is incomplete)."""


def fresh_requested() -> bool:
    """``$TFNAS_FRESH`` set to anything but ``""``/``0``/``false``: ignore the archive."""
    return os.environ.get(ENV_FRESH, "").strip().lower() not in ("", "0", "false", "no")


def _archived_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir()
                  if p.is_file() and not p.name.startswith(".") and not p.name.startswith(LEFT_OUT))


@dataclass(frozen=True)
class ExportResult:
    archived: list[str]  # keys newly written
    kept: list[str]  # keys already in the archive (left as they are)
    skipped: list[str]  # keys in the store that are not finished
    size_bytes: int  # the whole archive after the export

    def message(self, root: Path) -> str:
        return (f"{root}: {len(self.archived)} run(s) archived, {len(self.kept)} already there, "
                f"{len(self.skipped)} unfinished left out; archive size {self.size_bytes / 1024:.0f} kB")


def size_bytes(archive: str | os.PathLike) -> int:
    root = Path(archive)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def export(runs_root: str | os.PathLike, archive: str | os.PathLike = DEFAULT_ARCHIVE) -> ExportResult:
    """Copy every finished run of ``runs_root`` into ``archive`` without its checkpoints.

    A run already archived is kept as it is (finished runs never change).  Each new run is
    written to a temp folder inside ``archive`` and renamed into place, so an interrupted export
    leaves no half-archived run."""
    runs_root, archive = Path(runs_root), Path(archive)
    if not runs_root.is_dir():
        raise FileNotFoundError(f"{runs_root}: no run store here (run a notebook or a search first)")
    archived, kept, skipped = [], [], []
    for run_dir in sorted(p for p in runs_root.iterdir() if p.is_dir() and (p / "store.json").is_file()):
        meta = read_json(run_dir / "store.json", ArchiveError, "run-store record")
        kind = meta.get("kind") if isinstance(meta, dict) else None
        if kind not in DONE_FILES or not (run_dir / DONE_FILES[kind]).is_file():
            skipped.append(run_dir.name)
            continue
        target = archive / run_dir.name
        if target.exists():
            kept.append(run_dir.name)
            continue
        archive.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=archive, prefix=f".{run_dir.name}.", suffix=".tmp"))
        try:
            for f in _archived_files(run_dir):
                shutil.copy2(f, tmp / f.name)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        archived.append(run_dir.name)
    return ExportResult(archived, kept, skipped, size_bytes(archive))


__all__ = ["ArchiveError", "DEFAULT_ARCHIVE", "DONE_FILES", "ENV_FRESH", "ExportResult", "export",
           "fresh_requested", "size_bytes"]
