"""Writes the smoke-search baselines that tests/test_search_baseline.py holds the search to.

Each case is one ``python -m tfnas_core search --profile smoke`` with the settings in its name;
its records (less the wall-clock ``epoch_s``) and its derived spec are kept, together with the
torch build and CPU capability that made them, since bit-for-bit equality holds only on those.
Run from the repository root: ``python tests/data/search_baseline/make.py``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CASES = {
    "sink-relaxed": ["depth_space=sink", "arch_step=relaxed"],
    "sink-hard": ["depth_space=sink", "arch_step=hard"],
    "skip-in-relaxed": ["depth_space=skip-in", "arch_step=relaxed"],
    "skip-in-hard": ["depth_space=skip-in", "arch_step=hard"],
    "skip-out-relaxed": ["depth_space=skip-out", "arch_step=relaxed"],
    "skip-out-hard": ["depth_space=skip-out", "arch_step=hard"],
    "sink-relaxed-plain": ["depth_space=sink", "arch_step=relaxed", "fast=false"],
}
TIMED = ("epoch_s",)  # wall-clock fields, the only ones allowed to differ


def comparable(run: Path) -> dict:
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines() if line.strip()]
    for r in records:
        for k in TIMED:
            r.pop(k, None)
    return {"records": records, "spec": json.loads((run / "spec.json").read_text())}


def run_case(sets: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "tfnas_core", "search", "--profile", "smoke", "--out", str(out),
           "--set", "tensorboard=false"]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, capture_output=True)
    return comparable(out)


def build() -> dict:
    return {"torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        for name, sets in CASES.items():
            got = run_case(sets, Path(tmp) / name)
            (HERE / f"{name}.json").write_text(json.dumps({"build": build(), "sets": sets, **got}, indent=1) + "\n")
            print(name)
