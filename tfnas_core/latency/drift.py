"""LUT drift: a few sentinel networks timed with the LUT, re-timed later to see how far this machine's
speed has drifted from the one the table was measured at.

A latency table is only valid on the machine, and at the speed, it was measured at.  The
sentinels are the first ``N_SENTINELS`` of the LUT's calibration networks (``random_arch``,
``calibration.CALIB_SEED``): whole networks, timed whole in the very window the LUT was
calibrated in, so their stored times *are* the LUT's time base.  Re-timing them later gives the
machine's **speed factor** now / then: the median of the sentinels' ratios (one disturbed
sentinel does not move it).  1.00 means the LUT's numbers hold; 1.20 means everything runs 20 %
slower than when the table was built, so whole-network measurements should be divided by 1.20
before they are compared with the table (``measure --time-base lut``).  Past ``WARN_PCT`` the
check warns.  A LUT stores its sentinels' timings as ``LUT.drift_sentinels`` (``make_sentinels``;
the JSON field ``lut.DRIFT_FIELD``, named "fingerprint" in every LUT written).

Measured here (load average 1.2, three processes): the six sentinel networks gave 0.851, 0.851
and 0.864, while six sentinel *blocks* (one per stage, timed alone) gave 0.930, 0.958 and 0.935
in the same processes; blocks do not see what whole networks see (cache misses between
layers), so whole networks are the sentinels.
"""
from __future__ import annotations

import statistics
from typing import Any

import torch

from tfnas_core.arch.space import BlockArgs, get_space, layer_geometry

WARN_PCT = 5.0
N_SENTINELS = 6
ROUNDS = 15


def reference_block(space_name: str) -> tuple[str, BlockArgs]:
    """A mid-size fixed block (first layer of stage 5, the space's largest op at its largest
    width): the drift reference ``lut_build.build`` times in every window."""
    from tfnas_core.latency.keys import layer_key

    space = get_space(space_name)
    op_name = space.ops[-1]
    op = space.op(op_name)
    g = layer_geometry(space, 5, 0)
    mid = op.max_width(g.cin)
    return f"{layer_key(space, g, op_name)}@{mid}", BlockArgs(g.cin, mid, g.cout, op.kernel, g.stride,
                                                               op.se_width(g.cin), g.act, g.in_hw)


def sentinel_specs(space_name: str) -> dict:
    """The sentinel networks of ``space_name``: the first calibration networks."""
    from tfnas_core.latency.calibration import CALIB_SEED
    from tfnas_core.arch.random_arch import sample_specs

    return sample_specs(space_name, N_SENTINELS, CALIB_SEED, prefix="calib")


def sentinel_items(space_name: str, device: torch.device, batch: int) -> dict[str, tuple[torch.nn.Module, torch.Tensor]]:
    """The sentinels as ``timing.time_interleaved`` items (network, input) on ``device``."""
    from tfnas_core.nn import model

    x = torch.randn(batch, 3, 224, 224, device=device)
    return {name: (model.build(spec).to(device), x) for name, spec in sentinel_specs(space_name).items()}


def time_sentinels(space_name: str, device: torch.device, batch: int, estimator: str, rounds: int = ROUNDS,
                   warmup_s: float = 0.5) -> dict[str, Any]:
    """The sentinels timed interleaved: name -> ``timing.Timing``."""
    from tfnas_core.latency.timing import time_interleaved

    return time_interleaved(sentinel_items(space_name, device, batch), rounds=rounds, warmup_s=warmup_s,
                            estimator=estimator)


def make_sentinels(space_name: str, sentinel_ms: dict[str, float], estimator: str, clock: str) -> dict[str, Any]:
    """The drift sentinels a LUT stores (``LUT.drift_sentinels``): sentinel -> ms, and how they were timed."""
    expected = set(sentinel_specs(space_name))
    if set(sentinel_ms) != expected:
        raise ValueError(f"drift sentinels need exactly the sentinels of {space_name}: {sorted(expected)}")
    return {"space": space_name, "estimator": estimator, "clock": clock,
            "sentinels": {k: round(v, 6) for k, v in sentinel_ms.items()}}


def speed_factor(drift_sentinels: dict[str, Any], now_ms: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Median over the sentinels of now / then (``drift_sentinels``: then), and each sentinel's ratio."""
    then = drift_sentinels["sentinels"]
    missing = sorted(set(then) - set(now_ms))
    if missing:
        raise ValueError(f"sentinel {missing[0]} was not re-timed")
    ratios = {k: now_ms[k] / then[k] for k in then}
    return statistics.median(ratios.values()), ratios


def describe(factor: float, warn_pct: float = WARN_PCT) -> tuple[bool, str]:
    """Whether ``factor`` is past the warning threshold, and a one-line message."""
    pct = 100 * (factor - 1)
    warn = abs(pct) > warn_pct
    msg = (f"speed factor {factor:.3f}: this machine now runs the sentinels {abs(pct):.1f} % "
           f"{'slower' if pct > 0 else 'faster'} than when the LUT was built")
    if warn:
        msg += f" (past {warn_pct:g} %: divide measurements by {factor:.3f} to compare them with the LUT)"
    return warn, msg


def settings_of(lut) -> tuple[str, torch.device, int, int | None]:
    """(space, device, batch, threads) the LUT was built with; refuses a LUT without drift sentinels."""
    from tfnas_core.latency.lut import LUTError
    from tfnas_core.latency.timing import measurement_device

    sentinels = lut.drift_sentinels
    if not sentinels:
        raise LUTError(f"LUT {lut.source or '(in memory)'} has no drift sentinels (built before drift detection); "
                       "rebuild it with 'lut build'")
    prov = lut.provenance
    device = prov.get("device", "cpu")
    return sentinels["space"], measurement_device(device), int(prov.get("batch_size") or 1), prov.get("threads")


def check(lut, rounds: int = ROUNDS, warmup_s: float = 1.0) -> dict[str, Any]:
    """Re-time ``lut``'s sentinels here, now, with its protocol; return the speed factor."""
    from tfnas_core.latency.timing import cpu_threads

    space, device, batch, threads = settings_of(lut)
    sentinels = lut.drift_sentinels
    with cpu_threads(threads if device.type == "cpu" else None):
        t = time_sentinels(space, device, batch, sentinels["estimator"], rounds, warmup_s)
    factor, ratios = speed_factor(sentinels, {k: v.ms for k, v in t.items()})
    warn, msg = describe(factor)
    return {"lut": lut.source, "built": lut.provenance.get("date"), "speed_factor": round(factor, 4),
            "warn": warn, "message": msg, "ratios": {k: round(v, 4) for k, v in ratios.items()}}


def record(lut, rounds: int = 8, warmup_s: float = 0.3) -> dict[str, Any] | None:
    """A quick ``check`` for run records (searches): ``None`` when ``lut`` has no drift sentinels
    or was built for a device this machine lacks; never raises for those.  Leaves torch's global
    random state as it found it (the sentinels' weights and inputs are random)."""
    if not lut.drift_sentinels or (lut.provenance.get("device") == "cuda" and not torch.cuda.is_available()):
        return None
    with torch.random.fork_rng(devices=[]):
        return check(lut, rounds=rounds, warmup_s=warmup_s)
