"""Atomic file writers: a result file is either the old one or the new one, never half-written.

Every writer makes a uniquely named temp file ``.NAME.XXXX.tmp`` beside the target, writes it,
gives it the permissions a plain ``open`` would (``0o666`` less the umask), and renames it over
the target; on any failure the temp file is removed and an ``OSError`` names the target.
``runs.out_lock`` deletes ``.*.tmp`` debris a killed writer left.  Used for specs, records,
configs, summaries, checkpoints (``atomic_torch_save``), LUTs, tables and figures.

A failed write is one line (``write_error``): ``no space left on MOUNT (FSTYPE) writing FILE``
when the filesystem is full (by errno, or, for torch's zip writer, which reports a full disk as
``unexpected pos ...`` without one, by its free space right after the failure),
``FILE: read-only file system``, ``FILE: permission denied``, else ``cannot write FILE: why``.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

LOW_SPACE_BYTES = 1 << 20  # after a failed write, less free space than this (or 1 % of the filesystem) is "full"


def mount_of(path: str | os.PathLike) -> tuple[str, str]:
    """(mount point, filesystem type) of the filesystem holding ``path`` (its nearest existing
    folder), from ``/proc/self/mountinfo``; (that folder, "") where it cannot be read."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    p = Path(os.path.realpath(p))
    best, fstype = "", ""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                mnt = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])  # \040: a space
                if (p == Path(mnt) or Path(mnt) in p.parents) and len(mnt) >= len(best):  # the last mount wins
                    best, fstype = mnt, fields[fields.index("-") + 1]
    except (OSError, ValueError, IndexError):
        pass
    return best or str(p), fstype


def _full(folder: Path) -> bool:
    """Whether the filesystem of ``folder`` has (next to) no room left: free blocks, for this user
    (root may use the reserved ones), or free inodes."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    root = os.geteuid() == 0
    free = (st.f_bfree if root else st.f_bavail) * st.f_frsize
    if st.f_files and (st.f_ffree if root else st.f_favail) == 0:
        return True
    return free < min(LOW_SPACE_BYTES, st.f_blocks * st.f_frsize // 100)


def write_error(path: str | os.PathLike, e: BaseException) -> OSError:
    """The ``OSError`` for a failed write of ``path``: one line saying why (module docstring).

    Call it before removing what the failed writer wrote: its blocks count as used."""
    path = Path(path)
    code = getattr(e, "errno", None)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if code in (errno.ENOSPC, errno.EDQUOT) or (code in (None, errno.EIO, errno.EFBIG) and _full(folder)):
        mnt, fstype = mount_of(folder)
        what = "no space left" if code != errno.EDQUOT else "disk quota exceeded"
        msg, code = f"{what} on {mnt}{f' ({fstype})' if fstype else ''} writing {path}", code or errno.ENOSPC
    elif code == errno.EROFS:
        msg = f"{path}: read-only file system ({mount_of(folder)[0]} is mounted read-only)"
    elif code in (errno.EACCES, errno.EPERM):
        msg = f"{path}: permission denied"
    else:
        why = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[-1]
        msg = f"cannot write {path}: {why}"
    out = OSError(msg)  # one argument: str(out) is the message alone, without "[Errno N]"
    out.errno = code
    return out


def atomic_write(path: str | os.PathLike, write: Callable[[str], None],
                 errors: tuple[type[BaseException], ...] = (OSError,)) -> Path:
    """Call ``write(tmp_path)`` on a fresh temp file beside ``path``, then rename it to ``path``.

    An exception of a type in ``errors`` becomes the one-line ``OSError`` of ``write_error``; any
    other propagates unchanged.  Either way no temp file is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise write_error(path, e) from None
    failed = None
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException as e:
        if not isinstance(e, errors):
            _remove(tmp)
            raise
        failed = write_error(path, e)  # before the temp file frees its blocks
    if failed is not None:  # raised outside the handler: no chained traceback keeps the writer's frames (and
        _remove(tmp)        # a file it left open, e.g. torch's zip writer) alive
        raise failed
    return path


def _remove(tmp: str) -> None:
    if os.path.exists(tmp):
        os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically (a full disk leaves the old file and no debris)."""
    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` atomically: a checkpoint is either the old one or the new; two writers
    never share a temp file."""
    import torch

    # torch reports a full disk as a RuntimeError ("unexpected pos ..."): write_error tells it by the free space
    return atomic_write(path, lambda tmp: torch.save(obj, tmp), errors=(OSError, RuntimeError))
