"""Real latency of a whole derived network, and how well a LUT predicts it.

``measure(spec)`` times the evaluation network at paper scale (224 px, 1000 classes) with
``timing.time_module``: CPU batch 1 on one thread (Appendix G), CUDA batch 32 with
synchronisation (Appendix B).  ``fidelity(lut)`` puts the LUT's prediction (``base + Σ entry``,
Eq. 4 for a derived net) beside the measured latency for the published tfnas/tfnas-wose models,
the comparison behind the paper's Table 9.  The LUT sums blocks timed alone, so it misses
inter-layer effects (cache, allocator, fusion); the relative error shows how much that matters.
"""
from __future__ import annotations

from typing import Any

import torch

from . import flops, model
from .arch import Spec
from .space import PAPER_SCALE
from .timing import DEFAULT_BATCH, cpu_threads, resolve_device, time_module

FIDELITY_SPACES = ("tfnas", "tfnas-wose")
_WARMED: set[str] = set()  # devices this process has already timed a throwaway network on


def measure(spec: Spec, device: str = "cpu", batch: int | None = None, threads: int | None = None,
            warmup: int = 5, repeats: int = 20, min_time_s: float = 1.0, lut=None,
            warmup_s: float = 1.0) -> dict[str, Any]:
    """Latency (ms) of ``spec``'s whole network at paper scale on ``device``.

    Defaults follow the paper: CPU batch 1 and one thread, CUDA batch 32.  ``min_time_s`` keeps
    timing until that much time is spent (at least ``repeats`` runs).
    """
    dev = resolve_device(device)
    batch = batch or DEFAULT_BATCH[device]
    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    if device == "cpu" and threads is None:
        threads = 1
    net = model.build(spec, PAPER_SCALE).to(dev)
    x = torch.randn(batch, 3, PAPER_SCALE.resolution, PAPER_SCALE.resolution, device=dev)
    with cpu_threads(threads if device == "cpu" else None):
        if device not in _WARMED:  # the first network a process times runs slow: time one and drop it
            time_module(model.build(spec, PAPER_SCALE).to(dev), x, warmup=warmup, repeats=repeats, warmup_s=warmup_s)
            _WARMED.add(device)
        t = time_module(net, x, warmup=warmup, repeats=repeats, min_time_s=min_time_s, warmup_s=warmup_s)
    return {
        "name": spec.name,
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in t.to_dict().items()},
        "lut_ms": round(lut.predict(spec), 4) if lut is not None else None,
        "device": device,
        "device_name": torch.cuda.get_device_name(dev) if device == "cuda" else _cpu_name(),
        "batch": batch,
        "threads": threads if device == "cpu" else None,
        "flops_m": round(flops.count_flops(spec), 3),
        "torch": torch.__version__,
    }


def _cpu_name() -> str:
    from .latency import environment

    return environment("cpu", 1, 1)["device_name"]


def fidelity(lut, specs: dict[str, Spec] | None = None, device: str = "cpu", batch: int | None = None,
             threads: int | None = None, warmup: int = 5, repeats: int = 20, min_time_s: float = 1.0):
    """A ``pandas.DataFrame``: LUT prediction vs measured latency per architecture.

    ``specs`` defaults to the zoo's tfnas and tfnas-wose models.  A spec the LUT cannot predict
    (a missing key or width) gets a row with ``note`` saying why and no numbers; a LUT whose
    provenance names another space is used, with a note (its ``base`` holds that space's
    stage-2 block).  Errors:
    ``abs_err_ms = lut_ms - median_ms`` and ``rel_err_pct`` relative to the measurement.
    """
    import pandas as pd

    from . import zoo

    if specs is None:
        specs = {n: s for n, s in zoo.load_all().items() if s.space in FIDELITY_SPACES}
    rows = []
    for name, spec in specs.items():
        row: dict[str, Any] = {"name": name, "space": spec.space, "lut_ms": None, "median_ms": None,
                               "mean_ms": None, "iqr_ms": None, "abs_err_ms": None, "rel_err_pct": None, "note": ""}
        try:
            row["lut_ms"] = lut.predict(spec)
        except ValueError as e:
            row["note"] = f"skipped: {str(e).splitlines()[0]}"
            rows.append(row)
            continue
        lut_space = getattr(lut, "provenance", {}).get("space")
        if lut_space and lut_space != spec.space:
            row["note"] = f"LUT built for space {lut_space}: its base times that space's stage-2 block"
        m = measure(spec, device, batch, threads, warmup, repeats, min_time_s)
        row.update(median_ms=m["median_ms"], mean_ms=m["mean_ms"], iqr_ms=m["iqr_ms"])
        row["abs_err_ms"] = row["lut_ms"] - m["median_ms"]
        row["rel_err_pct"] = 100 * row["abs_err_ms"] / m["median_ms"]
        rows.append(row)
    return pd.DataFrame(rows)


def format_fidelity(df) -> str:
    """The fidelity table as text, with the mean absolute relative error of the measured rows."""
    lines = [f"{'architecture':15s} {'space':10s} {'LUT ms':>8s} {'median':>8s} {'IQR':>6s} {'err ms':>8s} {'err %':>7s}"]
    lines.append("-" * len(lines[0]))
    for r in df.itertuples():
        if r.median_ms is None or r.median_ms != r.median_ms:  # skipped (None or NaN)
            lines.append(f"{r.name:15s} {r.space:10s} {r.note}")
            continue
        lines.append(f"{r.name:15s} {r.space:10s} {r.lut_ms:8.3f} {r.median_ms:8.3f} {r.iqr_ms:6.2f} "
                     f"{r.abs_err_ms:+8.3f} {r.rel_err_pct:+7.2f}  {r.note}".rstrip())
    done = df.dropna(subset=["rel_err_pct"])
    if len(done):
        lines.append(f"mean |relative error| {done['rel_err_pct'].abs().mean():.2f} % over {len(done)} architectures")
    return "\n".join(lines)
