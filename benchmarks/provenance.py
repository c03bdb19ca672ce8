"""What every benchmark table records about where it was measured."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str | None:
    """The checkout's commit (with ``+dirty`` for local changes), so a table says what it measured."""
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return rev + ("+dirty" if dirty else "")


def header(device: str, load_start: tuple[float, ...]) -> dict:
    """Machine, torch, load averages (at start and now), date and commit of a benchmark run."""
    import os
    import platform
    import time

    import torch

    name = torch.cuda.get_device_name() if device == "cuda" else (platform.processor() or platform.machine())
    return {"machine": f"{name}, {os.cpu_count()} logical CPUs", "torch": torch.__version__,
            "loadavg_start": [round(v, 2) for v in load_start], "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit()}


def write(out: str | Path, stem: str, res: dict, markdown: str) -> None:
    """``OUT/STEM.json`` and ``OUT/STEM.md``, atomically, and the table on stdout."""
    import json

    from tfnas_core.utils.atomic import atomic_write_text

    atomic_write_text(Path(out) / f"{stem}.json", json.dumps(res, indent=1) + "\n")
    atomic_write_text(Path(out) / f"{stem}.md", markdown)
    print(markdown)
