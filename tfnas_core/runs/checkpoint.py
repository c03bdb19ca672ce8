"""Resumable checkpoints of searches and retraining runs: what they carry and when one is refused.

Every checkpoint carries ``config_sha256``, the hash of the resolved config it was made with
(``runs.config_hash`` over the config minus the keys that may change on resumption), so a run is
never resumed with other settings, even when ``config.json`` beside it was deleted or edited.
A checkpoint that is truncated, empty, not a torch file, or lacks what a resumption needs is
refused with one line naming it (``CheckpointError``, a ``ValueError``: exit 2 in the CLI).
Writing goes through ``atomic.atomic_torch_save`` (unique temp file, rename, cleanup on failure).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from tfnas_core.utils.atomic import atomic_torch_save
from tfnas_core.runs.store import config_hash

HASH_KEY = "config_sha256"


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message names the file and what to do."""


def save(state: dict[str, Any], path: Path, cfg_hash: str) -> Path:
    """Write ``state`` plus the config hash atomically to ``path``."""
    return atomic_torch_save({**state, HASH_KEY: cfg_hash}, path)


def load(path: Path, map_location, cfg_hash: str, keys: Iterable[str], config_json_seen: bool,
         what: str = "run") -> dict[str, Any]:
    """Read ``path`` (tensors and plain containers only) and check it belongs to this config.

    ``config_json_seen``: a ``config.json`` matching this config was found beside the checkpoint;
    only then is a checkpoint without a hash (written before hashes existed) accepted.
    """
    import torch

    try:
        st = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, zero bytes, a foreign pickle, not a file we can read
        why = (str(e).strip().splitlines() or [""])[0][:100]
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {why}); "
                              "delete it to start that run over") from None
    missing = [k for k in keys if not isinstance(st, Mapping) or k not in st]
    if missing:
        raise CheckpointError(f"{path}: not a {what} checkpoint (lacks {', '.join(missing[:3])}); "
                              "delete it to start that run over")
    stored = st.get(HASH_KEY)
    if stored is None and not config_json_seen:
        raise CheckpointError(f"{path} carries no config hash and no config.json lies beside it, so the settings "
                              "it was made with cannot be checked; delete it to start over")
    if stored is not None and stored != cfg_hash:
        raise CheckpointError(f"{path} was made with another config (hash {str(stored)[:12]}, this run "
                              f"{cfg_hash[:12]}); use another --out, or delete that folder to start over")
    return st


def apply(path: Path, fn, *args) -> Any:
    """Run ``fn(*args)`` (loading state into modules/optimisers), naming ``path`` on a mismatch."""
    try:
        return fn(*args)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise CheckpointError(f"{path}: does not fit this run ({why}); delete it to start over") from None


__all__ = ["CheckpointError", "HASH_KEY", "apply", "config_hash", "load", "save"]
