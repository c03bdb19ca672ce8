"""Building a LUT on this machine: time every key's blocks, fit, calibrate, write our JSON.

``build`` (``python -m tfnas_core lut build``) follows ``timing``'s protocol and writes a
``latency.LUT``; ``lut_fit`` fills unmeasured widths; ``calibration`` fits per-stage factors
against whole networks; ``drift.make_sentinels`` keeps sentinel timings for later drift checks.
``key_block`` and ``base_items`` are the timed modules, shared with ``benchmarks/bench_lut.py``.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
from pathlib import Path
from typing import Any, Callable, Iterable

from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.checks import (BATCH, ROUNDS, WARMUP_ROUNDS, Range, batch_floor_bytes, check_memory, check_number, check_threads,
                     read_json)
from tfnas_core.latency.lut import LUT, LUTError
from tfnas_core.latency.keys import KeyInfo, space_keys
from tfnas_core.latency.fit import FITS, fit_points, measured_widths
from tfnas_core.arch.space import SearchSpace, get_space

REF = "drift-reference"  # timing-item name of the reference block in every build window


def key_block(info: KeyInfo, mid: int):
    """The block a LUT key times at width ``mid`` (paper scale, ``ops.MBInvRes``)."""
    from tfnas_core.nn.ops import MBInvRes
    from tfnas_core.arch.space import BlockArgs

    g = info.geom
    return MBInvRes(BlockArgs(g.cin, mid, g.cout, info.kernel, g.stride, info.se, g.act, g.in_hw))


def environment(device: str, batch: int, threads: int | None) -> dict[str, Any]:
    import torch

    if device == "cuda":
        name = torch.cuda.get_device_name(0)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return {
        "device": device,
        "device_name": name,
        "batch_size": batch,
        "threads": threads,
        "torch": torch.__version__,
        "cudnn": torch.backends.cudnn.version() if device == "cuda" else None,
        "python": platform.python_version(),
        "host": platform.node(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# Random networks a build times whole for calibration (default 32): each is a paper-scale network
# held in memory while all are timed in one window.
CALIB_NETS = Range(0, 500)


def check_build_sizes(space: SearchSpace, device: str, batch: int, threads: int | None, warmup: int, repeats: int,
                      calib: int, calib_rounds: int) -> None:
    """Refuse, naming the setting, a size past its bound (``checks``: ``BATCH``, ``ROUNDS``,
    ``WARMUP_ROUNDS``; ``CALIB_NETS``), more threads than this process has cores, or a batch whose
    224 px input and stem output alone (``checks.batch_floor_bytes``) exceed the device's memory:
    before the partial file or the LUT is written."""
    check_number("batch", batch, BATCH)
    check_number("warmup", warmup, WARMUP_ROUNDS)
    check_number("repeats", repeats, ROUNDS)
    check_number("calib", calib, CALIB_NETS)
    check_number("calib_rounds", calib_rounds, ROUNDS)
    check_threads(threads)
    s1 = space.stage(1)
    check_memory(batch_floor_bytes(batch, 3, 224, s1.out_chs, s1.stride), f"a LUT build at batch {batch} (224 px)", device)


def build(
    space_name: str,
    out: str | os.PathLike,
    device: str = "cpu",
    batch: int | None = None,
    threads: int | None = 1,
    step: int = 8,
    warmup: int = 5,
    repeats: int = 20,
    keys: Iterable[str] | None = None,
    progress: bool = True,
    fit: str = "aligned",
    on_key: Callable[[str], None] | None = None,
    calib: int = 32,
    calib_rounds: int = 25,
    estimator: str = "min",
    cuda_mode: str = "graph",
) -> LUT:
    """Measure a LUT for ``space_name`` on this machine and write it to ``out`` (our JSON).

    With the protocol of ``timing`` (interleaved rounds, minimum by default): per key, every
    ``step``-th width (plus the maximum) is timed, all widths of the key interleaved, ``repeats``
    rounds, beside a fixed block (``drift.reference_block``) that is timed in every window: each key's
    points are scaled by (median reference) / (reference in its window), so a machine that
    speeds up or slows down during the build does not tilt one key against another.  The rest
    of the widths are filled by ``fit`` (see ``fit_points``); the (scaled) timed points are kept
    in the file beside the entries, the reference timings in ``provenance["drift_reference"]``.  Then ``calib`` random valid architectures are timed whole,
    interleaved, and the entries are calibrated against them; the first of them are the
    drift sentinels (``LUT.drift_sentinels``)
    (``calibration``; ``calib=0`` skips it, and needs ``keys`` to cover the space otherwise).
    Partial results go to ``out + '.partial'`` after every key; running the same call again
    resumes from there (it refuses a partial file made with other settings).
    """
    import torch
    from tqdm.auto import tqdm

    from tfnas_core.latency import drift
    from tfnas_core.nn.ops import MBInvRes
    from tfnas_core.latency.timing import DEFAULT_BATCH, check_estimator, cpu_threads, measurement_device, time_interleaved

    space = get_space(space_name)
    dev = measurement_device(device)
    check_estimator(estimator)
    if fit not in FITS:
        raise ValueError(f"unknown LUT fit {fit!r}; known: {', '.join(FITS)}")
    batch = batch or DEFAULT_BATCH[device]
    threads = threads if device == "cpu" else None
    check_build_sizes(space, device, batch, threads, warmup, repeats, calib, calib_rounds)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    infos = space_keys(space)
    if keys is not None:
        wanted = list(keys)
        unknown = [k for k in wanted if k not in infos]
        if unknown:
            raise LUTError(f"keys not in space {space_name}: {', '.join(unknown)}")
        if calib and set(wanted) != set(infos):
            raise LUTError("calibration needs every key of the space: pass calib=0 with a subset of keys")
        infos = {k: infos[k] for k in wanted}
    settings = {"space": space.name, "device": device, "batch_size": batch, "threads": threads, "step": step,
                "warmup": warmup, "repeats": repeats, "keys": sorted(infos), "estimator": estimator,
                "cuda_mode": cuda_mode if device == "cuda" else None, "protocol": 3}
    state: dict[str, Any] = {"settings": settings, "base": None, "points": {}, "ref": {}}
    if partial.exists():
        prev = read_json(partial, LUTError, "partial latency table")
        if not isinstance(prev, dict) or not all(isinstance(prev.get(k), dict) for k in ("settings", "points", "ref")):
            raise LUTError(f"{partial}: not a partial latency table of this builder; delete it to start over")
        if prev["settings"] != settings:
            raise LUTError(f"{partial} was made with other settings; delete it to start over")
        state = prev

    def save_partial() -> None:
        atomic_write_text(partial, json.dumps(state))

    def timed(items, rounds, warmup_s=0.0, on_round=None):
        return time_interleaved(items, rounds, warmup, warmup_s, estimator=estimator, cuda_mode=cuda_mode,
                                on_round=on_round)

    todo = [k for k in infos if k not in state["points"]]
    total_points = sum(len(measured_widths(i.lo, i.hi, step)) for k, i in infos.items() if k in todo)
    bar = tqdm(total=total_points + (state["base"] is None) + calib, desc=f"LUT {space.name} on {device}",
               unit="step", disable=not progress)
    ref_name, ref_args = drift.reference_block(space.name)
    ref_item = {REF: (MBInvRes(ref_args).to(dev), torch.randn(batch, ref_args.in_chs, ref_args.in_hw, ref_args.in_hw,
                                                              device=dev))}
    with cpu_threads(threads):
        if state["base"] is None:
            res = timed({**base_items(space, dev, batch), **ref_item}, repeats, warmup_s=1.0)
            state["base"] = res["stem"].ms + res["head"].ms
            state["ref"]["base"] = res[REF].ms
            save_partial()
            bar.update(1)
        for key in todo:
            info = infos[key]
            x = torch.randn(batch, info.geom.cin, info.geom.in_hw, info.geom.in_hw, device=dev)
            items = {str(w): (key_block(info, w).to(dev), x) for w in measured_widths(info.lo, info.hi, step)}
            res = timed({**items, **ref_item}, repeats, warmup_s=0.1)
            bar.update(len(items))
            state["ref"][key] = res.pop(REF).ms
            state["points"][key] = {w: t.ms for w, t in res.items()}
            save_partial()
            if on_key:
                on_key(key)
        # the reference block timed in every window puts all windows on one time base (its median)
        level = statistics.median(state["ref"].values())
        entries, measured = {}, {}
        for key, info in infos.items():
            scale = level / state["ref"][key]
            measured[key] = {int(w): v * scale for w, v in state["points"][key].items()}
            entries[key] = fit_points(measured[key], info.lo, info.hi, fit)
        base, drift_sentinels, cal = state["base"] * level / state["ref"]["base"], {}, None
        if calib:
            base, entries, cal, drift_sentinels = _calibrate(space, dev, batch, base, entries, calib, calib_rounds,
                                                             timed, lambda: bar.update(1) if bar.n < bar.total else None)
    bar.close()
    prov = environment(device, batch, threads)
    prov.update({"space": space.name, "step": step, "warmup": warmup, "repeats": repeats, "statistic": estimator,
                 "fit": fit, "protocol": "tfnas_core.latency.timing: interleaved rounds, time-based warm-up, "
                                         f"estimator {estimator}" + (f", CUDA {cuda_mode}" if device == "cuda" else ""),
                 "base_covers": "stem conv + stage-2 block + 1x1 head conv + global pool + fc (1000 classes)"})
    prov["clock"] = drift_sentinels.get("clock") if drift_sentinels else ("thread" if device == "cpu" and threads == 1 else None)
    prov["drift_reference"] = {"block": ref_name, "level_ms": round(level, 6),
                                "ms": {k: round(v, 6) for k, v in state["ref"].items()},
                                "note": "timed in every key's window; each key's points scaled by level / ms[key]"}
    if cal:
        prov["calibration"] = cal
    lut = LUT(base, entries, prov, str(out), measured, drift_sentinels)
    lut.save(out)
    partial.unlink(missing_ok=True)
    return lut


def _calibrate(space: SearchSpace, dev, batch: int, raw_base: float, entries, n: int, rounds: int, timed, tick):
    """Time ``n`` random architectures interleaved; fit and apply the factors; keep the sentinels'."""
    import torch

    from tfnas_core.latency import calibration
    from tfnas_core.latency import drift
    from tfnas_core.nn import model
    from tfnas_core.arch import random_arch

    specs = random_arch.sample_specs(space.name, n, calibration.CALIB_SEED, prefix="calib")
    x = torch.randn(batch, 3, 224, 224, device=dev)
    items = {name: (model.build(s).to(dev), x) for name, s in specs.items()}
    res = timed(items, rounds, warmup_s=1.0, on_round=tick)
    measured = {name: res[name].ms for name in specs}
    rows = [calibration.stage_sums(entries, s) for s in specs.values()]
    base, factors = calibration.fit(rows, [measured[n] for n in specs])
    cal_entries = calibration.apply(entries, dict(zip(calibration.SEARCHABLE_STAGES, factors)), space)
    cal_lut = LUT(base, cal_entries)
    predicted = {name: cal_lut.predict(s) for name, s in specs.items()}
    summary = calibration.summary(raw_base, base, factors, specs, measured, predicted, rounds)
    some = next(iter(res.values()))  # the sentinels are the first calibration networks, timed in this window
    sentinels = drift.make_sentinels(space.name, {k: measured[k] for k in drift.sentinel_specs(space.name)},
                                     some.estimator, some.clock)
    return base, cal_entries, summary, sentinels


def base_items(space: SearchSpace, dev, batch: int) -> dict:
    """The fixed parts as two timing items: stem + stage-2 block, and 1x1 head conv + pool + fc."""
    import torch
    from torch import nn

    from tfnas_core.nn.ops import MBInvRes, conv_bn_act
    from tfnas_core.arch.space import BlockArgs

    s1, s2, s8, s9 = space.stage(1), space.stage(2), space.stage(8), space.stage(9)
    b2 = space.stage2

    class Stem(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = conv_bn_act(3, s1.out_chs, 3, 2, s1.act)
            self.block = MBInvRes(BlockArgs(s1.out_chs, b2.mid, s2.out_chs, b2.kernel, 1, b2.se, s2.act, s2.in_hw))

        def forward(self, x):
            return self.block(self.stem(x))

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = conv_bn_act(s8.out_chs, s9.out_chs, 1, 1, s9.act)
            self.fc = nn.Linear(s9.out_chs, 1000)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    # A fresh process times slow until it has run the whole base a while (measured here: 4.5-6.1
    # ms for the first base of a process, 2.0-2.1 ms after): the caller warms up by time first.
    return {"stem": (Stem().to(dev), torch.randn(batch, 3, 224, 224, device=dev)),
            "head": (Head().to(dev), torch.randn(batch, s8.out_chs, s9.in_hw, s9.in_hw, device=dev))}
