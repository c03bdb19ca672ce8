"""Real latency of whole derived networks, and how well a LUT predicts it.

``measure(spec)`` times the evaluation network at paper scale (224 px, 1000 classes) with the
protocol of ``timing``: CPU batch 1 on one thread (Appendix G) timed by the thread's CPU time,
CUDA batch 32 (Appendix B) by CUDA-graph replay between events; the estimate ``ms`` is the
minimum of interleaved rounds after a time-based warm-up; the median, IQR and mean are kept.
``measure_many`` times several networks interleaved (the way to compare them).

Where a LUT was made (``lut_setting``: device, batch and threads from its provenance; the
official pickles carry none, and are known by content: ``OFFICIAL_SETTINGS``) decides where its
derived nets are measured beside it (``measure_setting``): on the LUT's device at its batch when
that device is here (the official GPU table: CUDA batch 32, CUDA-graph replay between events),
else on the CPU at batch 1, labelled as not comparable with the LUT (``label``: ``"cuda b32"``,
``"cpu b1"``, ``"cpu b1, not the LUT's cuda b32"``).

``fidelity(lut)`` puts the LUT's prediction (``base + Σ entry``, Eq. 4 for a derived net) beside
the measured latency of the published tfnas/tfnas-wose models (the paper's Table 9) **and** of
held-out random valid architectures (``random_arch``, a seed the LUT was not calibrated on),
all timed interleaved in one window, with the machine's speed factor against the LUT's
drift sentinels recorded beside them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from tfnas_core.nn import flops
from tfnas_core.nn import model
from tfnas_core.arch.spec import Spec
from tfnas_core.utils.checks import BATCH, batch_floor_bytes, check_memory, check_number, check_threads
from tfnas_core.arch.space import PAPER_SCALE, get_space
from tfnas_core.latency.timing import DEFAULT_BATCH, ESTIMATOR, Timing, cpu_threads, measurement_device, time_interleaved

FIDELITY_SPACES = ("tfnas", "tfnas-wose")
N_RANDOM = 20
# The official pickles (../shared/reference/official/) record no provenance; the released code
# measured latency_gpu.pkl on a Titan RTX at batch 32 and latency_cpu.pkl on one CPU thread at
# batch 1 (paper Appendix B/G; docs/official_behaviour.md).  Known by their SHA-256, so a copy
# under another name is recognised and an edited file is not.
OFFICIAL_SETTINGS = {
    "743b2d77331a7741eb5c4ff6b3728394e2145407c05bf69f0e0f614193ed2fd3": {"device": "cuda", "batch": 32, "threads": None},
    "dfb5363d71a8421a81499c9191431305968fb1d2e1467a6fdd41153d6153ca23": {"device": "cpu", "batch": 1, "threads": 1},
}


def lut_setting(lut) -> dict[str, Any] | None:
    """Where ``lut`` was measured: ``{"device", "batch", "threads"}`` from its provenance (our
    JSON tables) or, for an official pickle, ``OFFICIAL_SETTINGS`` by content; ``None`` when unknown."""
    prov = getattr(lut, "provenance", None) or {}
    if prov.get("device") in DEFAULT_BATCH and isinstance(prov.get("batch_size"), int):
        return {"device": prov["device"], "batch": prov["batch_size"], "threads": prov.get("threads")}
    source = Path(getattr(lut, "source", "") or "")
    if prov.get("format") == "official-pkl" and source.is_file():
        known = OFFICIAL_SETTINGS.get(hashlib.sha256(source.read_bytes()).hexdigest())
        return dict(known) if known else None
    return None


def setting_label(device: str, batch: int, threads: int | None = None) -> str:
    """``"cuda b32"``, ``"cpu b1"`` (``"cpu b1 t4"`` with 4 threads)."""
    return f"{device} b{batch}" + (f" t{threads}" if device == "cpu" and threads not in (None, 1) else "")


def measure_setting(lut=None, device: str | None = None, cuda_available: bool | None = None) -> dict[str, Any]:
    """Where to measure derived nets that are set beside ``lut``.

    ``device`` ``None``: the LUT's device when it is here (CUDA needs ``cuda_available``, default
    ``torch.cuda.is_available()``), else ``"cpu"``.  On the LUT's device its batch (and threads);
    elsewhere the device's default (``timing.DEFAULT_BATCH``: CPU batch 1 on one thread).  Returns
    ``{"device", "batch", "threads", "lut": lut_setting(lut), "comparable", "label"}``:
    ``comparable`` when the measurement is at the LUT's device, batch and threads (then ``label``
    is e.g. ``"cuda b32"``); otherwise ``label`` says what it is not, e.g. ``"cpu b1, not the LUT's
    cuda b32"`` (``"cpu b1"`` alone without a LUT).  A label holds ", " exactly when it is not
    comparable (``plots.measured_like_lut`` reads tables by that)."""
    known = lut_setting(lut) if lut is not None else None
    if device is None:
        here = known is not None and (known["device"] == "cpu" or (
            torch.cuda.is_available() if cuda_available is None else cuda_available))
        device = known["device"] if here else "cpu"
    if device not in DEFAULT_BATCH:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    same = known is not None and known["device"] == device
    batch = known["batch"] if same else DEFAULT_BATCH[device]
    threads = None if device != "cpu" else (known["threads"] or 1) if same else 1
    comparable = _same_setting(known, device, batch, threads)
    label = setting_label(device, batch, threads)
    if lut is not None and not comparable:
        label += (f", not the LUT's {setting_label(known['device'], known['batch'], known['threads'])}" if known
                  else ", the LUT's device unknown")
    return {"device": device, "batch": batch, "threads": threads, "lut": known, "comparable": comparable, "label": label}


def paper_input_floor(batch: int) -> int:
    """A lower bound (bytes) of one forward pass of a paper-scale network at ``batch``: the
    224 px input and the stem's 112 px output (``checks.batch_floor_bytes``); 0.07 GB at batch 32."""
    s1 = get_space("tfnas").stage(1)
    return batch_floor_bytes(batch, 3, PAPER_SCALE.resolution, s1.out_chs, s1.stride)


def check_setting(device: str, batch: int, threads: int | None, flag: str = "") -> None:
    """Refuse, with one line naming ``flag + "batch"`` or ``flag + "threads"``, a batch past
    ``checks.BATCH`` or whose input and stem output alone exceed the memory of ``device`` here,
    and more threads than this process has cores (``checks.check_threads``; ``None``: the default)."""
    check_number(f"{flag}batch", batch, BATCH)
    if device == "cpu":
        check_threads(threads, f"{flag}threads")
    check_memory(paper_input_floor(batch), f"{flag}batch {batch} (at 224 px)", device)


def _settings(device: str, batch: int | None, threads: int | None):
    """The device, batch and threads of a measurement, checked (``check_setting``) before
    anything is built."""
    dev = measurement_device(device)
    batch = batch or DEFAULT_BATCH[device]
    if device == "cpu" and threads is None:
        threads = 1
    threads = threads if device == "cpu" else None
    check_setting(device, batch, threads)
    return dev, batch, threads


def measure_many(specs: dict[str, Spec], device: str = "cpu", batch: int | None = None, threads: int | None = None,
                 warmup: int = 1, repeats: int = 20, min_time_s: float = 1.0, warmup_s: float = 1.0,
                 estimator: str = ESTIMATOR, cuda_mode: str = "graph", lut=None, store=None) -> dict[str, Any]:
    """Time every network of ``specs`` interleaved (round ``r`` runs each once); returns
    ``{"timings": {name: Timing}, "speed_factor": ..., "kept": ..., ...}``.  With a ``lut`` that carries
    drift sentinels built on this device, its sentinel networks join the rounds (as they were timed
    among the calibration networks when the LUT was built) and ``speed_factor`` (now / when the
    LUT was built) is filled in; otherwise it is ``None``.

    With a ``store`` (``measured.MeasuredStore``) the same request on the same machine is timed once:
    later calls return what was kept (``kept`` True, ``measured_at`` its time) unless
    ``TFNAS_REMEASURE=1``."""
    from tfnas_core.latency import drift

    dev, batch, threads = _settings(device, batch, threads)
    with_sentinels = bool(lut is not None and lut.drift_sentinels and lut.provenance.get("device") == device
                          and lut.provenance.get("batch_size") == batch and lut.provenance.get("threads") == threads)
    if with_sentinels:
        estimator = lut.drift_sentinels["estimator"]

    def timed() -> dict[str, Any]:
        x = torch.randn(batch, 3, PAPER_SCALE.resolution, PAPER_SCALE.resolution, device=dev)
        items = {name: (model.build(spec, PAPER_SCALE).to(dev), x) for name, spec in specs.items()}
        sentinels = drift.sentinel_items(lut.drift_sentinels["space"], dev, batch) if with_sentinels else {}
        clash = sorted(set(items) & set(sentinels))
        if clash:
            raise ValueError(f"architecture name {clash[0]} is also a sentinel name of the LUT's drift sentinels; rename it")
        with cpu_threads(threads):
            t = time_interleaved({**items, **sentinels}, repeats, warmup, warmup_s, min_time_s, estimator,
                                 cuda_mode=cuda_mode)
        factor = None
        if sentinels:
            factor, _ = drift.speed_factor(lut.drift_sentinels, {k: t[k].ms for k in sentinels})
        return {"timings": {n: t[n].to_dict() for n in items}, "speed_factor": factor}

    if store is None:
        res, kept = timed(), False
    else:
        from tfnas_core.latency import measured

        request = {"specs": {n: s.to_dict() for n, s in specs.items()}, "device": device, "batch": batch,
                   "threads": threads, "warmup": warmup, "repeats": repeats, "min_time_s": min_time_s,
                   "warmup_s": warmup_s, "estimator": estimator, "cuda_mode": cuda_mode,
                   # the field name keeps the request keys of the measurements stored before the rename
                   "fingerprint": lut.drift_sentinels if with_sentinels else None}
        res, kept = store.remember(measured.machine(device, threads), request, timed)
    return {"timings": {n: Timing(**d) for n, d in res["timings"].items()}, "speed_factor": res["speed_factor"],
            "device": device, "batch": batch, "threads": threads, "kept": kept, "measured_at": res.get("measured_at")}


def measure(spec: Spec, device: str = "cpu", batch: int | None = None, threads: int | None = None,
            warmup: int = 5, repeats: int = 20, min_time_s: float = 3.0, lut=None,
            warmup_s: float = 1.0, estimator: str = ESTIMATOR, cuda_mode: str = "graph",
            time_base: str = "machine", store=None) -> dict[str, Any]:
    """Latency (ms) of ``spec``'s whole network at paper scale on ``device``.

    ``min_time_s`` of timed runs (default 3 s): the longer the window, the likelier it holds the
    quiet moments the minimum needs (measured here at load average 5 on 2 cores, TF-NAS-B in three
    processes: 20.3 / 25.7 / 22.9 ms with 1 s, 19.01 / 19.42 / 19.05 ms with 4 s).
    ``ms`` is the protocol's estimate (what every other tool uses); ``median_ms``, ``iqr_ms``,
    ``mean_ms`` and ``min_ms`` describe the runs.  ``time_base="lut"`` (needs a ``lut`` with
    drift sentinels) also times the LUT's sentinel networks (interleaved with it) and reports ``ms_lut_base`` = ``ms``
    divided by the speed factor: the latency this net would have had when the LUT was built.
    ``store``: as ``measure_many``'s (a request timed once per machine).
    """
    if time_base not in ("machine", "lut"):
        raise ValueError(f"time_base must be 'machine' or 'lut', got {time_base!r}")
    if time_base == "lut":
        from tfnas_core.latency.drift import settings_of

        if lut is None:
            raise ValueError("time base 'lut' needs a LUT (--lut)")
        settings_of(lut)  # refuses a LUT without drift sentinels
    m = measure_many({spec.name: spec}, device, batch, threads, warmup, repeats, min_time_s, warmup_s, estimator,
                     cuda_mode, lut if time_base == "lut" else None, store=store)
    if time_base == "lut" and m["speed_factor"] is None:
        raise ValueError(f"LUT {lut.source} was built for {lut.provenance.get('device')} batch "
                         f"{lut.provenance.get('batch_size')} threads {lut.provenance.get('threads')}, "
                         f"not {device} batch {m['batch']} threads {m['threads']}: no common time base")
    t = m["timings"][spec.name]
    factor = m["speed_factor"]
    dev = measurement_device(device)
    return {
        "name": spec.name,
        **{k: round(v, 4) if isinstance(v, float) else v for k, v in t.to_dict().items()},
        "lut_ms": round(lut.predict(spec), 4) if lut is not None else None,
        "speed_factor": round(factor, 4) if factor is not None else None,
        "ms_lut_base": round(t.ms / factor, 4) if factor is not None else None,
        "device": device,
        "device_name": torch.cuda.get_device_name(dev) if device == "cuda" else _cpu_name(),
        "batch": m["batch"],
        "threads": m["threads"],
        "flops_m": round(flops.count_flops(spec), 3),
        "torch": torch.__version__,
    }


def _same_setting(known: dict[str, Any] | None, device: str, batch: int, threads: int | None) -> bool:
    """A measurement on ``device`` at ``batch`` (``threads``) is where the LUT ``known`` was made."""
    return (known is not None and device == known["device"] and batch == known["batch"]
            and (device != "cpu" or (known["threads"] or 1) == (threads or 1)))


def lut_mismatch(lut, device: str, batch: int, threads: int | None) -> str | None:
    """One line when a measurement on ``device`` at ``batch`` (``threads``) is not where ``lut``
    was made (``lut_setting``), so the two are not comparable; ``None`` when it is, or unknown."""
    known = lut_setting(lut) if lut is not None else None
    if known is None or _same_setting(known, device, batch, threads):
        return None
    source = getattr(lut, "source", "") or ""
    hint = " (--device cuda measures at the LUT's batch)" if known["device"] == "cuda" and device != "cuda" else ""
    return (f"warning: LUT {source + ' ' if source else ''}was measured on "
            f"{setting_label(known['device'], known['batch'], known['threads'])}, this measurement is "
            f"{setting_label(device, batch, threads)}: the two are not comparable{hint}")


def _cpu_name() -> str:
    from tfnas_core.latency.build import environment

    return environment("cpu", 1, 1)["device_name"]


def spearman(xs: list[float], ys: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""
    import pandas as pd

    if len(xs) < 2:
        return float("nan")
    return float(pd.Series(xs).rank().corr(pd.Series(ys).rank()))


def fidelity(lut, specs: dict[str, Spec] | None = None, device: str = "cpu", batch: int | None = None,
             threads: int | None = None, warmup: int = 1, repeats: int = 30, min_time_s: float = 1.0,
             n_random: int = N_RANDOM, seed: int | None = None, cuda_mode: str = "graph", store=None):
    """A ``pandas.DataFrame``: LUT prediction vs measured latency per architecture.

    ``specs`` defaults to the zoo's tfnas and tfnas-wose models; ``n_random`` random valid
    architectures of the LUT's space (``random_arch``, ``seed``; default the held-out seed
    ``calibration.HELDOUT_SEED``) are added with ``group`` "random".  All are timed interleaved
    in one window.  A spec the LUT cannot predict (a missing key or width) gets a row with
    ``note`` saying why and no numbers; a LUT whose provenance names another space is used, with
    a note.  ``abs_err_ms = lut_ms - ms`` and ``rel_err_pct`` relative to the measurement.
    With drift sentinels, ``rel_err_lut_base_pct`` compares with the measurement divided by the
    speed factor (what the net would have measured when the LUT was built).
    ``df.attrs``: ``speed_factor`` (``None`` without drift sentinels), ``seed``, ``held_out``.
    ``store``: as ``measure_many``'s (a request timed once per machine).
    """
    import pandas as pd

    from tfnas_core.latency import calibration
    from tfnas_core.arch import random_arch
    from tfnas_core.arch import zoo

    if specs is None:
        specs = {n: s for n, s in zoo.load_all().items() if s.space in FIDELITY_SPACES}
    groups = {n: "given" if n not in zoo.PAPER else "zoo" for n in specs}
    lut_space = getattr(lut, "provenance", {}).get("space")
    seed = calibration.HELDOUT_SEED if seed is None else seed
    if n_random:
        rnd = random_arch.sample_specs(lut_space or "tfnas", n_random, seed, prefix="heldout")
        specs = {**specs, **rnd}
        groups.update({n: "random" for n in rnd})
    rows, timed = [], {}
    for name, spec in specs.items():
        row: dict[str, Any] = {"name": name, "group": groups[name], "space": spec.space, "lut_ms": None, "ms": None,
                               "median_ms": None, "iqr_ms": None, "abs_err_ms": None, "rel_err_pct": None, "note": ""}
        try:
            row["lut_ms"] = lut.predict(spec)
            timed[name] = spec
        except ValueError as e:
            row["note"] = f"skipped: {str(e).splitlines()[0]}"
        if lut_space and lut_space != spec.space and not row["note"]:
            row["note"] = f"LUT built for space {lut_space}: its base times that space's stage-2 block"
        rows.append(row)
    m = measure_many(timed, device, batch, threads, warmup, repeats, min_time_s, cuda_mode=cuda_mode, lut=lut,
                     store=store) if timed else \
        {"timings": {}, "speed_factor": None}
    for row in rows:
        t = m["timings"].get(row["name"])
        if t is None:
            continue
        row.update(ms=t.ms, median_ms=t.median_ms, iqr_ms=t.iqr_ms)
        row["abs_err_ms"] = row["lut_ms"] - t.ms
        row["rel_err_pct"] = 100 * row["abs_err_ms"] / t.ms
        if m["speed_factor"] is not None:  # the measurement in the LUT's time base: ms / speed factor
            row["rel_err_lut_base_pct"] = 100 * (row["lut_ms"] * m["speed_factor"] / t.ms - 1)
    df = pd.DataFrame(rows)
    cal = getattr(lut, "provenance", {}).get("calibration") or {}
    df.attrs.update(speed_factor=m["speed_factor"], seed=seed, n_random=n_random,
                    held_out=not cal or cal.get("seed") != seed)
    return df


def summary(df) -> dict[str, Any]:
    """Mean and max |relative error| and Spearman rank correlation, per group and over all."""
    done = df.dropna(subset=["rel_err_pct"])
    out = {}
    for group, part in [("all", done)] + [(g, done[done["group"] == g]) for g in sorted(done["group"].unique())]:
        if len(part):
            err = part["rel_err_pct"].abs()
            out[group] = {"n": len(part), "mean_abs_err_pct": float(err.mean()), "max_abs_err_pct": float(err.max()),
                          "spearman": spearman(list(part["lut_ms"]), list(part["ms"]))}
            if "rel_err_lut_base_pct" in part:
                base_err = part["rel_err_lut_base_pct"].abs()
                out[group].update(mean_abs_err_lut_base_pct=float(base_err.mean()),
                                  max_abs_err_lut_base_pct=float(base_err.max()))
    return out


def format_fidelity(df) -> str:
    """The fidelity table as text, then mean/max |relative error| and Spearman per group."""
    lines = [f"{'architecture':17s} {'space':10s} {'LUT ms':>8s} {'ms':>8s} {'median':>8s} {'IQR':>6s} "
             f"{'err ms':>8s} {'err %':>7s}"]
    lines.append("-" * len(lines[0]))
    for r in df.itertuples():
        if r.ms is None or r.ms != r.ms:  # skipped (None or NaN)
            lines.append(f"{r.name:17s} {r.space:10s} {r.note}")
            continue
        lines.append(f"{r.name:17s} {r.space:10s} {r.lut_ms:8.3f} {r.ms:8.3f} {r.median_ms:8.3f} {r.iqr_ms:6.2f} "
                     f"{r.abs_err_ms:+8.3f} {r.rel_err_pct:+7.2f}  {r.note}".rstrip())
    for group, s in summary(df).items():
        lines.append(f"{group:7s}: mean |relative error| {s['mean_abs_err_pct']:.2f} %, max {s['max_abs_err_pct']:.2f} %, "
                     f"Spearman {s['spearman']:.3f} over {s['n']} architectures")
        if "mean_abs_err_lut_base_pct" in s:
            lines.append(f"{'':9s}in the LUT's time base (measured / speed factor): mean {s['mean_abs_err_lut_base_pct']:.2f} %, "
                         f"max {s['max_abs_err_lut_base_pct']:.2f} %")
    f = df.attrs.get("speed_factor")
    if f is not None:
        from tfnas_core.latency.drift import describe

        lines.append(describe(f)[1])
    if df.attrs.get("n_random") and not df.attrs.get("held_out", True):
        lines.append(f"note: random seed {df.attrs['seed']} is the LUT's calibration seed: these are not held out")
    return "\n".join(lines)
