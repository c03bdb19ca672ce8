"""Resumable checkpoints of searches and retraining runs: what they carry and when one is refused.

Every checkpoint carries ``config_sha256``, the hash of the resolved config it was made with
(``runs.config_hash`` over the config minus the keys that may change on resumption), so a run is
never resumed with other settings, even when ``config.json`` beside it was deleted or edited.
A checkpoint that is truncated, empty, not a torch file, or lacks what a resumption needs is
refused with one line naming it (``CheckpointError``, a ``ValueError``: exit 2 in the CLI).
Writing goes through ``atomic.atomic_torch_save`` (unique temp file, rename, cleanup on failure).

RNG state (``rng_state`` / ``set_rng_state``), the one place its keys are spelled: ``"torch"``
(torch's CPU generator), ``"cuda"`` (every GPU's, where there are GPUs), ``"python"`` and
``"numpy"`` (with ``host=True``: the search) and one entry per named generator (the search's
Gumbel generator, ``"gumbel"``).  Retraining checkpoints written before issue 30 hold torch's
generator under ``"cpu"`` (``OLD_TORCH_KEYS``); they are still read, so such a run resumes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from tfnas_core.utils.atomic import atomic_torch_save
from tfnas_core.runs.store import config_hash

HASH_KEY = "config_sha256"
TORCH_KEY = "torch"  # torch's CPU generator in an RNG state
OLD_TORCH_KEYS = ("cpu",)  # where retraining checkpoints kept it before issue 30


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


def rng_state(generators: Mapping[str, Any] | None = None, host: bool = False) -> dict[str, Any]:
    """The RNG state to checkpoint: torch's CPU generator, every GPU's (where CUDA is available),
    with ``host`` Python's and NumPy's global ones, and the ``generators`` (name -> ``torch.Generator``)."""
    import torch

    st: dict[str, Any] = {TORCH_KEY: torch.get_rng_state()}
    for name, gen in (generators or {}).items():
        st[name] = gen.get_state()
    if host:
        import random

        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        st["python"] = random.getstate()
        st["numpy"] = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: Mapping[str, Any], generators: Mapping[str, Any] | None = None) -> None:
    """Restore what ``rng_state`` saved (torch's generator under ``TORCH_KEY`` or an old key; Python's
    and NumPy's where saved; GPUs' where saved and present); each of ``generators`` from its entry."""
    import torch

    key = next((k for k in (TORCH_KEY, *OLD_TORCH_KEYS) if k in st), TORCH_KEY)
    torch.set_rng_state(st[key])
    for name, gen in (generators or {}).items():
        gen.set_state(st[name])
    if "python" in st:
        import random

        version, internal, gauss_next = st["python"]
        random.setstate((version, tuple(internal), gauss_next))
    if "numpy" in st:
        import numpy as np

        kind, keys, pos, has_gauss, gauss = st["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


__all__ = ["CheckpointError", "HASH_KEY", "OLD_TORCH_KEYS", "TORCH_KEY", "apply", "config_hash", "load", "rng_state",
           "save", "set_rng_state"]
