"""A finished run's fingerprint: equal for two runs that computed the same thing, whichever
process (kernel, local worker, SLURM job) ran them; how the executors are shown to change nothing."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tfnas_core.runs import files as run_files

TIMING_KEYS = ("wall_s", "search_wall_s", "epoch_s", "time_s", "elapsed_s", "s_per_epoch")


def fingerprint(run_dir: str | os.PathLike) -> str:
    """SHA-256 of a finished run's records and results without its timings (wall and epoch
    seconds): equal for two runs that computed the same thing, whichever process ran them."""
    import csv
    import hashlib
    import io

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: clean(v) for k, v in obj.items() if k not in TIMING_KEYS and not k.endswith("_wall_s")}
        if isinstance(obj, list):
            return [clean(v) for v in obj]
        return obj

    run_dir, h = Path(run_dir), hashlib.sha256()
    for name in (run_files.SEARCH_SUMMARY, run_files.TRAIN_RESULT, run_files.SPEC, run_files.SEARCH_RECORDS,
                 run_files.TRAIN_RECORDS):
        p = run_dir / name
        if not p.is_file():
            continue
        h.update(name.encode())
        text = p.read_text()
        if name.endswith(".json"):
            h.update(json.dumps(clean(json.loads(text)), sort_keys=True).encode())
        elif name.endswith(".jsonl"):
            for line in text.splitlines():
                h.update(json.dumps(clean(json.loads(line)), sort_keys=True).encode())
        else:
            for row in csv.DictReader(io.StringIO(text)):
                h.update(json.dumps(clean(row), sort_keys=True).encode())
    return h.hexdigest()
