"""The run store: every search or retraining keyed by a stable hash of its resolved config.

A run lives in ``ROOT/<hash>/`` with its ``config.json``, records, checkpoints and results.
Notebooks ask the store for the runs they need: a finished run is reused (Table 3's
bi-sampling run *is* Table 4's sink-connecting run when their configs agree), an interrupted one
resumes (the runner finds its checkpoint in the same folder), a missing one is started.  A file
lock per run keeps two processes (``make -j``) from running the same run at once.

``write_table`` writes result tables atomically (CSV and Markdown, temp file + rename), so an
interrupted notebook never leaves a half-written table.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from tfnas_core.utils.atomic import atomic_write_text, write_error
from tfnas_core.runs import archive as run_archive
from tfnas_core.runs import files as run_files
from tfnas_core.utils.checks import read_json
from tfnas_core.runs.keys import canonical_json, config_hash  # noqa: F401 - the store's key, re-exported

ENV_RUNS = "TFNAS_RUNS"  # the run store's folder, when not ``run_files.RUNS_ROOT``
DEFAULT_ROOT = Path(os.environ.get(ENV_RUNS, run_files.RUNS_ROOT))


@dataclass(frozen=True)
class Run:
    kind: str
    key: str
    path: Path
    done_file: str
    source: str = "run store"  # where the finished run came from: run store | archive | computed now

    @property
    def done(self) -> bool:
        return (self.path / self.done_file).is_file()

    @property
    def status(self) -> str:
        if self.done:
            return "done"
        return "partial" if self.path.exists() else "absent"


def _make_dir(path: Path) -> None:
    """``mkdir -p``; a failure is one line naming the folder (read-only, full, permission: ``atomic.write_error``)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(path, e) from None


def _open_lock(path: Path):
    try:
        return open(path, "w")
    except OSError as e:
        raise write_error(path, e) from None


@contextlib.contextmanager
def _locked(path: Path):
    _make_dir(path)
    with _open_lock(path / run_files.LOCK) as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def out_lock(path: str | os.PathLike, on_wait: Callable[[], None] | None = None):
    """Hold an exclusive lock on the run folder ``path`` itself (``flock`` on the directory).

    Searches and retraining runs take it for their ``--out``, so two processes never write one
    folder at once: the second waits (``on_wait`` is called once) and then resumes or finds the
    run complete.  Holding the lock, it deletes the ``.*.tmp`` files a killed writer left (no one
    else can be writing them).  It leaves no lock file; a folder it had to create is removed again if the run
    wrote nothing into it (bad input leaves no trace).  The run store's ``.lock`` file is another
    lock, so a store run that takes both does not wait on itself.
    """
    path = Path(path)
    while True:
        created = not path.exists()
        _make_dir(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
                on_wait = None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            st = os.stat(path)
            same = (st.st_ino, st.st_dev) == (os.fstat(fd).st_ino, os.fstat(fd).st_dev)
        except FileNotFoundError:
            same = False
        if same:  # the folder was not removed (and recreated) while we waited
            break
        os.close(fd)
    for debris in path.glob(".*.tmp"):  # temp files of a killed writer (atomic_write_text, atomic_torch_save)
        with contextlib.suppress(OSError):
            debris.unlink()
    try:
        yield path
    finally:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds while empty
        os.close(fd)


def verify_archived(run_dir: str | os.PathLike, ignore: Iterable[str] | None = None) -> dict:
    """The ``store.json`` of an archived run once it is trusted (``run_archive.verify_run``): no symlink,
    its config hashes to the folder name (``ignore``: default its kind's keys), every file has the
    SHA-256 store.json recorded and none is torn or unlisted; ``run_archive.ArchiveError`` naming the
    folder and the file otherwise."""
    return run_archive.verify_run(run_dir, ignore)


class RunStore:
    """Runs under ``root`` (default ``runs/``, or ``$TFNAS_RUNS``).

    ``archive``: a compact run archive (``run_archive``) consulted for a run that ``root`` has not
    finished: an archived finished run is reused from there (read only, after ``verify_archived``:
    its files must have the hashes its ``store.json`` recorded).  ``None``: no archive."""

    def __init__(self, root: str | os.PathLike | None = None, archive: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else DEFAULT_ROOT
        self.archive = Path(archive) if archive is not None else None

    def run_folder(self, kind: str, cfg: Mapping[str, Any], done_file: str, ignore: Iterable[str] = ()) -> Run:
        """The run for ``cfg``: its folder under ``root`` (by config hash) and status; creates nothing.

        When ``root`` has not finished it and the archive holds it finished, the archived folder."""
        ignore = tuple(ignore)
        key = config_hash(kind, cfg, ignore)
        run = Run(kind, key, self.root / key, done_file)
        if not run.done and self.archive is not None:
            archived = Run(kind, key, self.archive / key, done_file, "archive")
            if os.path.lexists(archived.path):  # a symlink there is refused, never followed
                verify_archived(archived.path, ignore)  # refuses an edited, torn or unfinished archived run
                return archived
        return run

    def get_or_run(
        self,
        kind: str,
        cfg: Mapping[str, Any],
        runner: Callable[[Path], Any],
        done_file: str,
        ignore: Iterable[str] = (),
    ) -> Run:
        """Reuse the finished run for ``cfg``, or run (resume) it with ``runner(path)``.

        The runner must write ``done_file`` last (atomically) and resume from whatever it left
        in ``path`` before.  ``store.json`` in the run folder records kind and hash.
        """
        run = self.run_folder(kind, cfg, done_file, ignore)
        if run.done:
            return run
        with _locked(run.path):
            if run.done:  # another process finished it while we waited
                return run
            self.write_record(run, cfg)
            runner(run.path)
            if not run.done:
                raise RuntimeError(f"run {run.key} ({kind}) finished without writing {done_file}")
        return replace(run, source="computed now")

    @staticmethod
    def write_record(run: Run, cfg: Mapping[str, Any]) -> Path:
        """``store.json`` of ``run`` (kind, key, config), atomically; its folder is made if missing.
        ``get_or_run`` writes it under the run's lock; a DDP job's rank 0 writes it for its ranks."""
        _make_dir(run.path)
        return atomic_write_text(run.path / run_files.STORE,
                                 json.dumps({"kind": run.kind, "key": run.key, "config": dict(cfg)}, indent=1,
                                            default=str) + "\n")

    def index(self) -> list[dict[str, Any]]:
        """Every run in the store: key, kind, status and its config."""
        rows = []
        if not self.root.exists():
            return rows
        for d in sorted(p for p in self.root.iterdir() if p.is_dir()):
            meta_path = d / run_files.STORE
            if not meta_path.is_file():
                continue
            meta = read_json(meta_path, ValueError, "run-store record")
            if not isinstance(meta, dict):
                raise ValueError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
            rows.append({"key": d.name, "kind": meta.get("kind"), "path": str(d), "config": meta.get("config", {})})
        return rows


def write_table(df, stem: str | os.PathLike, floatfmt: str = ".2f") -> tuple[Path, Path]:
    """Write ``df`` as ``stem.csv`` and ``stem.md``, each atomically."""
    stem = Path(stem)
    csv = atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))
    md = atomic_write_text(stem.with_suffix(".md"), _markdown(df, floatfmt) + "\n")
    return csv, md


def _markdown(df, floatfmt: str) -> str:
    """A pipe table without the optional ``tabulate`` dependency."""
    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v)

    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)
