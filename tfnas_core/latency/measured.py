"""Measured latencies kept per machine, so that re-rendering a table from the run archive times nothing.

A table's ``measured_ms`` is the derived nets' latency timed on this machine (``measure.measure_many``).
Timing them anew on every render changed the committed tables each time (the VM's speed drifts about
2x between days), so a re-render from the archive always left git dirty.  A :class:`MeasuredStore`
(one JSON file beside the table it feeds, ``<results_dir>/measured-<profile>.json``) keeps every
timing request's result under the machine it ran on:

    {"format": 1, "machines": {MACHINE_KEY: {"machine": {...}, "requests": {REQUEST_KEY: RESULT}}}}

- the machine key names the device (CPU model and cores, or GPU name), torch's version and, on the
  CPU, the cores this process may use: another machine measures anew and is kept beside;
- the request key is the SHA-256 of everything that decides what is timed and how: the networks
  (their specs, by name), device, batch, threads, warm-up, repeats, minimum time, estimator, CUDA
  mode and the LUT's drift sentinels that join the rounds (``latency.drift``; the request field
  is still named "fingerprint", so the requests kept before keep their keys).  A new run (another
  architecture), another seed list or other settings is another request and is timed;
- ``TFNAS_REMEASURE=1`` (``make ... REMEASURE=1``) times every request again and replaces what was kept.

A rehearsal or a run with changed settings writes its tables under ``outputs/`` (``launch.output_dirs``),
and so its store too: nothing it measures lands in a tracked file.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.workspace import env_flag

FORMAT = 1
ENV_REMEASURE = "TFNAS_REMEASURE"


def remeasure() -> bool:
    """``$TFNAS_REMEASURE`` switched on (``workspace.env_flag``): time again."""
    return env_flag(ENV_REMEASURE)


def machine(device: str, threads: int | None) -> dict[str, Any]:
    """What decides how fast a network runs here: device, its name, torch, and on the CPU the
    cores and threads (the date, host name and Python do not)."""
    import torch

    from tfnas_core.latency.build import environment

    env = environment(device, 1, threads)
    out = {"device": device, "device_name": env["device_name"], "torch": torch.__version__}
    if device == "cuda":
        out["cuda"] = torch.version.cuda
        out["cudnn"] = env["cudnn"]
    else:
        out["cores"] = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        out["threads"] = threads
    return out


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def machine_key(m: dict[str, Any]) -> str:
    """``cpu-1a2b3c4d5e6f`` / ``cuda-...``: the device and 12 hex digits of the machine's description."""
    return f"{m['device']}-{_digest(m)[:12]}"


def request_key(request: dict[str, Any]) -> str:
    return _digest(request)


class MeasuredStore:
    """The results of timing requests on each machine, in one JSON file (module docstring).

    A missing file is an empty store; a file that is not such a store is refused in one line
    naming it (it is never overwritten)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def _read(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {"format": FORMAT, "machines": {}}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{self.path}: not a store of measured latencies ({type(e).__name__}: "
                             f"{str(e).splitlines()[0]}); delete it or render with REMEASURE=1 after deleting it") from None
        if not (isinstance(data, dict) and data.get("format") == FORMAT and isinstance(data.get("machines"), dict)):
            raise ValueError(f"{self.path}: not a store of measured latencies (expected format {FORMAT} "
                             f"with 'machines'); delete it to measure anew")
        return data

    def get(self, machine_desc: dict[str, Any], request: dict[str, Any]) -> dict[str, Any] | None:
        """The result kept for ``request`` on this machine, or None."""
        entry = self._read()["machines"].get(machine_key(machine_desc), {})
        return entry.get("requests", {}).get(request_key(request))

    def put(self, machine_desc: dict[str, Any], request: dict[str, Any], result: dict[str, Any]) -> None:
        """Keep ``result`` (JSON-able) for ``request`` on this machine, replacing an older one."""
        data = self._read()  # read again: a timing takes minutes, and another render may have kept one meanwhile
        entry = data["machines"].setdefault(machine_key(machine_desc), {"machine": machine_desc, "requests": {}})
        entry["machine"] = machine_desc
        entry["requests"][request_key(request)] = {
            **result, "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        atomic_write_text(self.path, json.dumps(data, indent=1, sort_keys=True) + "\n")

    def remember(self, machine_desc: dict[str, Any], request: dict[str, Any],
                 compute: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """``(result, kept)``: the kept result of ``request`` on this machine (``kept`` True), else
        ``compute()``'s, kept for next time.  ``TFNAS_REMEASURE=1`` always computes."""
        if not remeasure():
            hit = self.get(machine_desc, request)
            if hit is not None:
                return hit, True
        result = compute()
        self.put(machine_desc, request, result)
        return result, False


def path_for(results_dir: str | os.PathLike, profile: str) -> str:
    """Where a notebook keeps its measured latencies: beside its tables, ``<results_dir>/measured-<profile>.json``."""
    return str(Path(results_dir) / f"measured-{profile}.json")


def store_for(results_dir: str | os.PathLike, profile: str) -> MeasuredStore:
    """The store at ``path_for(results_dir, profile)``."""
    return MeasuredStore(path_for(results_dir, profile))
