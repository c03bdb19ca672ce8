"""The key of a run: a stable hash of its kind and resolved config.

Below both the run store (``runs``) and the run archive (``run_archive``), which check keys the
same way; neither imports the other for it.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(kind: str, cfg: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """12 hex digits of SHA-256 over ``kind`` and the config without the ``ignore`` keys.

    Key order and float formatting do not matter (canonical JSON); every other change does.
    """
    skip = set(ignore)
    body = {k: v for k, v in cfg.items() if k not in skip}
    return hashlib.sha256(canonical_json({"kind": kind, "config": body}).encode()).hexdigest()[:12]


# The settings a run is keyed without: how a run is logged, shown or stopped, never what it computes
# (the search and retraining configs take these sets from here; the archive verifies keys with them).
LOGGING_KEYS = frozenset({"tensorboard", "log_every", "log_every_s"})
KEY_FREE = {
    "search": frozenset({"stop_after_epoch", "progress", "num_workers", "threads", "cuda_graphs", *LOGGING_KEYS}),
    "train": frozenset({"stop_after_epoch", "num_workers", "threads", "progress", *LOGGING_KEYS}),
}

__all__ = ["KEY_FREE", "LOGGING_KEYS", "canonical_json", "config_hash"]
