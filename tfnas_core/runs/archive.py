"""The compact run archive: finished runs without their checkpoints, committed with the results.

A finished run in the store (``runs/<hash>/``) holds a checkpoint of 10-30 MB beside a few kB of
what the tables and figures are made from: ``config.json``, the records, ``spec.json``, the done
file (``summary.json`` of a search, ``result.json`` of a retraining), ``store.json`` (kind, key,
the config it is keyed by) and ``lut_check.json``.  ``export`` copies those small files of every
finished run into ``run_archive/<hash>/``; the run store (``runs.RunStore(archive=...)``) reuses
an archived run as finished when its own folder has none, so a fresh clone re-renders a notebook
from the archive without searching.  ``TFNAS_FRESH=1`` (``make ... FRESH=1``) ignores the archive
and recomputes.

The archive verifies what it serves (``verify_run``, called by ``runs.verify_archived`` whenever
an archived run is reused, and for the whole archive by ``verify_archive`` /
``python -m tfnas_core verify-archive``).  An archived run's ``store.json`` records, besides kind,
key and config, ``files``: the SHA-256 of every other file of the run as ``export`` read it.  A run
is refused (``ArchiveError``, one line naming the run folder and the file) when

* the folder, or any entry in it, is a symlink (never followed), or an entry is not a regular file
  (TensorBoard's event files, ``events.out.tfevents.*``, are never archived and never checked: a
  live run folder verified in place keeps them);
* its config does not hash to the folder's name (``key_ignore``: the keys a run of its kind is keyed
  without), or ``store.json``'s ``key`` is another;
* a listed file is missing, its SHA-256 differs, or a file is there that ``files`` does not list
  (the archive holds exactly what ``export`` wrote: a stray ``records.csv`` beside a search's
  ``records.jsonl`` would be read as its records);
* a JSON file (the done file above all) or the JSONL/CSV records do not parse (torn);
* ``store.json`` records no ``files`` (archived before they were recorded): ``verify-archive
  --record-hashes`` records them from the files as they are, after every other check passes.

``export`` refuses (nothing written) a run store with a run folder that is a symlink or holds one,
a run whose folder name is not its config's key, or a finished run with a torn file; an unfinished
run (no done file) is left out and listed.  It reads each file once, without following links, and
checks, hashes and writes the same bytes; each run is written to a temp folder inside the archive
and renamed into place, so an interrupted export leaves no half-archived run.  Nothing in the
archive is ever written by a notebook.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from tfnas_core.runs import files as run_files
from tfnas_core.runs.files import DONE, STORE
from tfnas_core.runs.tb_log import EVENT_PREFIX, is_event_file
from tfnas_core.utils.checks import parse_json
from tfnas_core.utils.workspace import env_flag

DEFAULT_ARCHIVE = run_files.ARCHIVE_ROOT
ENV_FRESH = "TFNAS_FRESH"
# name prefixes never archived: the resumable state (large, not needed when done) and TensorBoard's event
# files (tb_log: for watching a run; they hold nothing a table or figure reads)
LEFT_OUT = (Path(run_files.CHECKPOINT).stem, EVENT_PREFIX)
HASHES = "files"  # store.json field of an archived run: {file name: sha256 hex} of every other file
RECORD_HINT = "python -m tfnas_core verify-archive --record-hashes"


class ArchiveError(ValueError):
    """An archived (or to be archived) run that cannot be trusted; the message names the run folder and file."""


def fresh_requested() -> bool:
    """``$TFNAS_FRESH`` switched on (``workspace.env_flag``): ignore the archive."""
    return env_flag(ENV_FRESH)


def key_ignore(kind: str) -> frozenset[str]:
    """The config keys a run of ``kind`` is keyed without, as ``experiments`` keys it (``runs.config_hash``)."""
    from tfnas_core.runs.keys import KEY_FREE

    return KEY_FREE[kind]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _archived(name: str) -> bool:
    """A file of a run that ``export`` copies: not hidden (``.lock``, temp files), not a checkpoint."""
    return not name.startswith(".") and not name.startswith(LEFT_OUT)


@contextlib.contextmanager
def _open_folder(run_dir: Path):
    """A descriptor of ``run_dir`` opened without following a symlink: the files are then opened
    relative to it, so the folder cannot be swapped for a link between the check and the read."""
    try:
        fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        if os.path.islink(run_dir):
            raise ArchiveError(f"{run_dir}: a symlink (to {os.readlink(run_dir)}), not a run folder; "
                               "symlinks are refused, never followed") from None
        what = "not a folder" if e.errno == errno.ENOTDIR else f"cannot open ({e.strerror or e})"
        raise ArchiveError(f"{run_dir}: {what}") from None
    try:
        yield fd
    finally:
        os.close(fd)


def _read_folder(run_dir: Path, select: Callable[[os.DirEntry], bool] = lambda e: True) -> dict[str, bytes]:
    """The bytes of every selected entry of ``run_dir``, each read once without following links.

    Any symlink in the folder (selected or not) and any selected entry that is not a regular file
    is an ``ArchiveError`` naming it."""
    out = {}
    with _open_folder(run_dir) as dfd:
        for entry in sorted(os.scandir(dfd), key=lambda e: e.name):
            if entry.is_symlink():
                raise ArchiveError(f"{run_dir}/{entry.name}: a symlink (to {os.readlink(entry.name, dir_fd=dfd)}); "
                                   "symlinks in a run are refused, never followed")
            if not select(entry):
                continue
            if not entry.is_file(follow_symlinks=False):
                raise ArchiveError(f"{run_dir}/{entry.name}: not a regular file")
            try:  # O_NONBLOCK: a FIFO swapped in after the check does not hang the open
                fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
            except OSError as e:
                raise ArchiveError(f"{run_dir}/{entry.name}: cannot read ({e.strerror or e})") from None
            with os.fdopen(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                    raise ArchiveError(f"{run_dir}/{entry.name}: not a regular file")
                out[entry.name] = f.read()
    return out


def _exported(entry: os.DirEntry) -> bool:
    """An entry of a run in the store that ``export`` copies: a file (not a folder) named as ``_archived``."""
    return _archived(entry.name) and not entry.is_dir(follow_symlinks=False)


def _check_text(path: str, data: bytes) -> None:
    """A torn or unparseable JSON, JSONL or CSV file is an ``ArchiveError`` naming ``path``."""
    if path.endswith(".json"):
        parse_json(data, path, ArchiveError)
    elif path.endswith((".jsonl", ".csv")):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ArchiveError(f"{path}: not UTF-8 text (offset {e.start})") from None
        if text and not text.endswith("\n"):
            raise ArchiveError(f"{path}: its last line is cut off (no newline at the end): a torn file")
        if path.endswith(".jsonl"):
            for i, line in enumerate(text.splitlines(), 1):
                if not isinstance(parse_json(line, f"{path} line {i}", ArchiveError), dict):
                    raise ArchiveError(f"{path} line {i}: expected a JSON object per line")
        else:
            rows = list(csv.reader(io.StringIO(text)))
            bad = next((i for i, r in enumerate(rows[1:], 2) if len(r) != len(rows[0])), None)
            if not rows or bad is not None:
                raise ArchiveError(f"{path}" + (f" line {bad}: {len(rows[bad - 1])} fields, the header has "
                                                f"{len(rows[0])}" if rows else ": empty") + " (a torn file)")


def _meta(run_dir: Path, files: dict[str, bytes]) -> dict:
    """The parsed ``store.json`` among ``files``: {kind: search|train, key, config, ...}."""
    if STORE not in files:
        raise ArchiveError(f"{run_dir}/{STORE}: missing (not a run folder)")
    meta = parse_json(files[STORE], f"{run_dir}/{STORE}", ArchiveError)
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict) or meta.get("kind") not in DONE:
        raise ArchiveError(f"{run_dir}/{STORE}: expected {{kind: search|train, key, config: {{...}}}}")
    return meta


def _check_run(run_dir: Path, files: dict[str, bytes], ignore: Iterable[str] | None, name: str) -> dict:
    """``store.json`` of the run whose files are ``files``, after checking that its config hashes to
    ``name`` (with ``ignore``, default ``key_ignore(kind)``), that it is finished and that no file is torn."""
    from tfnas_core.runs.keys import config_hash

    meta = _meta(run_dir, files)
    kind = meta["kind"]
    key = config_hash(kind, meta["config"], key_ignore(kind) if ignore is None else ignore)
    if key != name:
        raise ArchiveError(f"{run_dir}/{STORE}: its config hashes to {key}, not to the folder name {name} "
                           "(an edited or misplaced run; delete it or run with FRESH=1)")
    if meta.get("key") != name:
        raise ArchiveError(f"{run_dir}/{STORE}: key {meta.get('key')!r} is not the folder name {name}")
    done = DONE[kind]
    if done not in files:
        raise ArchiveError(f"{run_dir}/{done}: missing (a {kind} run without {done} is not finished)")
    for fname, data in files.items():
        _check_text(f"{run_dir}/{fname}", data)
    if not isinstance(json.loads(files[done]), dict):
        raise ArchiveError(f"{run_dir}/{done}: expected a JSON object")
    return meta


def _recorded_hashes(run_dir: Path, meta: dict) -> dict[str, str]:
    hashes = meta.get(HASHES)
    if hashes is None:
        raise ArchiveError(f"{run_dir}/{STORE}: records no file hashes (archived before they were recorded); "
                           f"check its files (git diff) and record them with `{RECORD_HINT}`, or run with FRESH=1")
    if (not isinstance(hashes, dict) or STORE in hashes
            or not all(isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in hashes.items())):
        raise ArchiveError(f"{run_dir}/{STORE}: '{HASHES}' must map each file but {STORE} to its sha256 hex")
    return hashes


def verify_run(run_dir: str | os.PathLike, ignore: Iterable[str] | None = None) -> dict:
    """``store.json`` of the archived run ``run_dir`` once every check of the module docstring
    passes (``ignore``: the keys its config is keyed without, default ``key_ignore(kind)``);
    ``ArchiveError`` naming the run folder and the file otherwise."""
    run_dir = Path(run_dir)
    files = _read_folder(run_dir, lambda e: not is_event_file(e.name))  # a live run's event files are no part of it
    hashes = _recorded_hashes(run_dir, _meta(run_dir, files))
    for fname in sorted(hashes):
        if fname not in files:
            raise ArchiveError(f"{run_dir}/{fname}: missing (store.json lists it)")
        if sha256_bytes(files[fname]) != hashes[fname]:
            raise ArchiveError(f"{run_dir}/{fname}: its sha256 differs from the one store.json recorded when it "
                               "was archived (an edited file; restore it, e.g. git checkout, or run with FRESH=1)")
    extra = sorted(set(files) - set(hashes) - {STORE})
    if extra:
        raise ArchiveError(f"{run_dir}/{extra[0]}: not listed in store.json (the archive holds only what export "
                           "wrote; remove it)" + (f"; {len(extra) - 1} more unlisted" if len(extra) > 1 else ""))
    return _check_run(run_dir, files, ignore, run_dir.name)


@dataclass(frozen=True)
class ArchiveCheck:
    root: str
    runs: int  # entries checked
    bad: list[str]  # one line per bad entry, naming it and the file
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.bad

    def message(self) -> str:
        if self.ok:
            return (f"{self.root}: all {self.runs} archived runs verify (file hashes, keys, no symlinks, "
                    f"no torn files; {self.seconds:.2f} s)")
        return f"{self.root}: {len(self.bad)} of {self.runs} archived run(s) fail verification (listed above)"


def _entries(archive: Path) -> list[Path]:
    """Every entry of the archive folder (the folder itself may be reached through a link; its entries may not)."""
    if not archive.is_dir():
        raise FileNotFoundError(f"{archive}: no run archive here")
    return sorted(archive.iterdir())


def verify_archive(archive: str | os.PathLike = DEFAULT_ARCHIVE) -> ArchiveCheck:
    """Verify every entry of ``archive`` (``verify_run``, each with its kind's keys left out);
    an entry that is not a run folder (a file, a symlink, a leftover temp folder) is a bad one too."""
    archive, t0, bad = Path(archive), time.perf_counter(), []
    entries = _entries(archive)
    for entry in entries:
        try:
            verify_run(entry)
        except ArchiveError as e:
            bad.append(str(e))
    return ArchiveCheck(str(archive), len(entries), bad, time.perf_counter() - t0)


def _store_text(meta: dict[str, Any]) -> str:
    """``store.json`` as ``runs.RunStore.write_record`` formats it."""
    return json.dumps(meta, indent=1, default=str) + "\n"


def record_hashes(archive: str | os.PathLike = DEFAULT_ARCHIVE) -> tuple[list[str], list[str]]:
    """Record the file hashes in every ``store.json`` of ``archive`` that has none, from the files as
    they are (a one-time migration of runs archived before hashes were recorded).  Every entry must
    pass all other checks first (and an entry with hashes, all of them), else ``ArchiveError`` and
    nothing is written; each ``store.json`` is replaced atomically.  (recorded, already had)."""
    from tfnas_core.utils.atomic import atomic_write_text

    archive = Path(archive)
    todo, had = [], []
    for entry in _entries(archive):
        files = _read_folder(entry)
        if HASHES not in _meta(entry, files):
            meta = _check_run(entry, files, None, entry.name)
            todo.append((entry, {**meta, HASHES: {n: sha256_bytes(d) for n, d in files.items() if n != STORE}}))
        else:
            verify_run(entry)
            had.append(entry.name)
    for entry, meta in todo:
        atomic_write_text(entry / STORE, _store_text(meta))
    return [e.name for e, _ in todo], had


@dataclass(frozen=True)
class ExportResult:
    archived: list[str]  # keys newly written
    kept: list[str]  # keys already in the archive (verified, left as they are)
    skipped: list[str]  # keys in the store that are not finished
    size_bytes: int  # the whole archive after the export

    def message(self, root: Path) -> str:
        return (f"{root}: {len(self.archived)} run(s) archived, {len(self.kept)} already there, "
                f"{len(self.skipped)} unfinished left out; archive size {self.size_bytes / 1024:.0f} kB")


def size_bytes(archive: str | os.PathLike) -> int:
    root = Path(archive)
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def _store_runs(runs_root: Path) -> list[Path]:
    """The run folders of ``runs_root`` (those with a ``store.json``); a symlink among them is refused."""
    out = []
    for p in sorted(runs_root.iterdir()):
        if p.is_symlink():
            if p.is_dir():
                raise ArchiveError(f"{p}: a symlink (to {os.readlink(p)}), not a run folder; symlinks are "
                                   "refused, never followed (nothing archived)")
            continue
        if p.is_dir() and os.path.lexists(p / STORE):
            out.append(p)
    return out


def export(runs_root: str | os.PathLike, archive: str | os.PathLike = DEFAULT_ARCHIVE) -> ExportResult:
    """Copy every finished run of ``runs_root`` into ``archive`` without its checkpoints, recording
    the SHA-256 of each copied file in the archived ``store.json``.

    First every run is read and checked (no symlink, config hashes to the folder name, no torn
    file; a run without its done file is unfinished: left out and listed) and every run already
    archived is verified (kept as it is: finished runs never change); one bad run is an
    ``ArchiveError`` naming it and the file, and nothing is written.  Then each new run is written
    to a temp folder inside ``archive`` and renamed into place, so an interrupted export leaves no
    half-archived run."""
    runs_root, archive = Path(runs_root), Path(archive)
    if not runs_root.is_dir():
        raise FileNotFoundError(f"{runs_root}: no run store here (run a notebook or a search first)")
    new, kept, skipped, bad = [], [], [], []
    for run_dir in _store_runs(runs_root):
        try:
            files = _read_folder(run_dir, _exported)
            if DONE[_meta(run_dir, files)["kind"]] not in files:
                skipped.append(run_dir.name)
                continue
            meta = _check_run(run_dir, files, None, run_dir.name)
            target = archive / run_dir.name
            if os.path.lexists(target):
                verify_run(target)
                kept.append(run_dir.name)
                continue
        except ArchiveError as e:
            bad.append(str(e))
            continue
        new.append((run_dir.name, files, {**meta, HASHES: {n: sha256_bytes(d) for n, d in files.items() if n != STORE}}))
    if bad:
        more = f" ({len(bad) - 1} more bad run(s))" if len(bad) > 1 else ""
        raise ArchiveError(f"{bad[0]}{more}; nothing archived")
    archived = []
    for key, files, meta in new:
        archive.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=archive, prefix=f".{key}.", suffix=".tmp"))
        try:
            for name, data in files.items():
                (tmp / name).write_bytes(_store_text(meta).encode() if name == STORE else data)
                os.chmod(tmp / name, 0o644)
            os.chmod(tmp, 0o755)
            os.replace(tmp, archive / key)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        archived.append(key)
    return ExportResult(archived, kept, skipped, size_bytes(archive))


__all__ = ["ArchiveCheck", "ArchiveError", "DEFAULT_ARCHIVE", "ENV_FRESH", "ExportResult", "export",
           "fresh_requested", "key_ignore", "record_hashes", "sha256_bytes", "size_bytes", "verify_archive",
           "verify_run"]
