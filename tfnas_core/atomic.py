"""Atomic file writers: a result file is either the old one or the new one, never half-written.

Every writer makes a uniquely named temp file ``.NAME.XXXX.tmp`` beside the target, writes it,
gives it the permissions a plain ``open`` would (``0o666`` less the umask), and renames it over
the target; on any failure the temp file is removed and an ``OSError`` names the target.
``runs.out_lock`` deletes ``.*.tmp`` debris a killed writer left.  Used for specs, records,
configs, summaries, checkpoints (``atomic_torch_save``), LUTs, tables and figures.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _cannot_write(path: Path, e: BaseException) -> OSError:
    why = getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[-1]
    return OSError(f"cannot write {path}: {why}")


def atomic_write(path: str | os.PathLike, write: Callable[[str], None],
                 errors: tuple[type[BaseException], ...] = (OSError,)) -> Path:
    """Call ``write(tmp_path)`` on a fresh temp file beside ``path``, then rename it to ``path``.

    An exception of a type in ``errors`` becomes ``OSError("cannot write PATH: why")``; any
    other propagates unchanged.  Either way no temp file is left behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as e:
        raise _cannot_write(path, e) from None
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, errors):
            raise _cannot_write(path, e) from None
        raise
    return path


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

    # torch reports a full disk as a RuntimeError
    return atomic_write(path, lambda tmp: torch.save(obj, tmp), errors=(OSError, RuntimeError))
