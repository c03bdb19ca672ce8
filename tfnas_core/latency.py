"""Latency lookup tables (LUT): the key format, loading, prediction, expected latency, building.

A LUT maps ``base`` (stem conv + stage-2 block + 1x1 head conv + pool + fc) to milliseconds and
each block key to ``{mid: ms}``.  The key format, defined once here (``block_key``)::

    MBInvertedResBlock_{in_hw}_{cin}_{se}_{cout}_k{k}_s{stride}_{act}

Ops of the same kernel, stride and SE width share a key whatever their family (e3/e6).

Formats:

* the official ``.pkl`` (a pickled ``OrderedDict``) - read through a restricted unpickler that
  admits plain dicts/``OrderedDict``, numbers and strings only; any other object in the pickle
  is refused with ``LUTError`` and never constructed;
* our JSON (``tfnas-lut/1``) with provenance: device, batch, threads, library versions, date,
  which widths were measured and which interpolated.

``predict(spec)`` = base + Σ entry[mid] over the spec's layers (Eq. 4 for a derived net).
``expected_latency`` is the relaxed, differentiable version used by the search (Eq. 4 / Eq. 6).
"""
from __future__ import annotations

import datetime as _dt
import io
import json
import math
import os
import pickle
import platform
import statistics
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from .arch import Spec
from .atomic import atomic_write_text
from .space import LayerGeom, SearchSpace, all_layer_geometries, get_space

FORMAT = "tfnas-lut/1"
MAX_WIDTH = 100_000  # far above any layer of the spaces (Table 1: at most 6 x 320 channels)


class LUTError(ValueError):
    """A lookup table that cannot be read or lacks what is asked of it."""


def block_key(geom: LayerGeom, kernel: int, se: int) -> str:
    return f"MBInvertedResBlock_{geom.in_hw}_{geom.cin}_{se}_{geom.cout}_k{kernel}_s{geom.stride}_{geom.act}"


def layer_key(space: SearchSpace, geom: LayerGeom, op_name: str) -> str:
    op = space.op(op_name)
    return block_key(geom, op.kernel, op.se_width(geom.cin))


@dataclass(frozen=True)
class KeyInfo:
    """What a LUT key covers: the block geometry and the widths any op using it can take."""

    key: str
    geom: LayerGeom
    kernel: int
    se: int
    lo: int  # smallest valid mid over the ops sharing the key
    hi: int  # largest valid mid


def space_keys(space: SearchSpace) -> dict[str, KeyInfo]:
    """Every key a search over ``space`` can ask for, with the width range it must cover."""
    out: dict[str, KeyInfo] = {}
    for geom in all_layer_geometries(space):
        for name in space.ops:
            op = space.op(name)
            key = layer_key(space, geom, name)
            lo, hi = op.width_range(geom.cin)
            if key in out:
                prev = out[key]
                lo, hi = min(lo, prev.lo), max(hi, prev.hi)
            out[key] = KeyInfo(key, geom, op.kernel, op.se_width(geom.cin), lo, hi)
    return out


# ----------------------------------------------------------------------------- the table


@dataclass
class LUT:
    base: float
    entries: dict[str, dict[int, float]]
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    measured: dict[str, dict[int, float]] = field(default_factory=dict)  # timed points, where known
    fingerprint: dict[str, Any] = field(default_factory=dict)  # sentinel timings (``fingerprint``), where known

    def ms(self, key: str, mid: int, where: str = "") -> float:
        table = self.entries.get(key)
        at = f" (needed by {where})" if where else ""
        if table is None:
            raise LUTError(f"LUT {self.source or ''} has no entry for key {key}{at}".replace("  ", " "))
        try:
            return table[mid]
        except KeyError:
            lo, hi = min(table), max(table)
            raise LUTError(f"LUT key {key} covers widths {lo}..{hi}, not mid={mid}{at}") from None

    def layer_ms(self, spec: Spec) -> list[float]:
        """Per-layer latency of a derived network, in layer order."""
        space = spec.search_space
        out = []
        for si, (geom, layer) in enumerate(spec.layers()):
            where = f"stage {geom.stage} layer {geom.index} ({layer.op}, mid {layer.mid})"
            out.append(self.ms(layer_key(space, geom, layer.op), layer.mid, where))
        return out

    def predict(self, spec: Spec) -> float:
        """LUT latency of a derived network: base + Σ entry[mid] (refused unless positive)."""
        total = self.base + sum(self.layer_ms(spec))
        if not total > 0:  # only a table of fits far below zero can get here
            raise LUTError(f"LUT {self.source} predicts {total:.4g} ms for {spec.name}; a network must cost a positive time")
        return total

    def check_covers(self, space: SearchSpace) -> list[str]:
        """Keys (or widths) of ``space`` this LUT lacks; empty when it covers the whole space."""
        missing = []
        for key, info in space_keys(space).items():
            t = self.entries.get(key)
            if t is None:
                missing.append(key)
            elif info.lo not in t or info.hi not in t:
                missing.append(f"{key}[{info.lo}..{info.hi}]")
        return missing

    # -- serialisation ---------------------------------------------------------------------------
    def to_json_dict(self) -> dict[str, Any]:
        entries = {}
        for key, table in self.entries.items():
            lo, hi = min(table), max(table)
            entries[key] = {"widths": [lo, hi], "ms": [round(table[w], 6) for w in range(lo, hi + 1)]}
            if key in self.measured:
                entries[key]["measured"] = {str(w): round(v, 6) for w, v in sorted(self.measured[key].items())}
        d = {"format": FORMAT, "provenance": self.provenance, "base": round(self.base, 6), "entries": entries}
        if self.fingerprint:
            d["fingerprint"] = self.fingerprint
        return d

    def refit(self, fit: str) -> "LUT":
        """The same measurements with the entries recomputed by another ``fit`` (see ``fit_points``)."""
        if not self.measured:
            raise LUTError(f"LUT {self.source} holds no measured points to refit")
        entries = {k: fit_points(pts, min(self.entries[k]), max(self.entries[k]), fit) for k, pts in self.measured.items()}
        cal = self.provenance.get("calibration")
        if cal:  # the stored entries are calibrated: calibrate the refitted ones alike
            from .calibration import apply

            entries = apply(entries, {int(s): c for s, c in cal["factors"].items()}, get_space(self.provenance["space"]))
        return LUT(self.base, entries, {**self.provenance, "fit": fit}, self.source, self.measured, self.fingerprint)

    def save(self, path: str | os.PathLike) -> Path:
        """Write our JSON atomically, one key per line (readable diffs, ~0.5 MB for a space)."""
        d = self.to_json_dict()
        head = {k: v for k, v in d.items() if k not in ("entries", "fingerprint")}
        if "fingerprint" in d:
            head["fingerprint"] = d["fingerprint"]
        body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d["entries"].items())
        text = json.dumps(head, indent=1)[:-2] + ',\n "entries": {\n' + body + "\n }\n}\n"
        return atomic_write_text(Path(path), text)


# ----------------------------------------------------------------------------- loading


class _RestrictedUnpickler(pickle.Unpickler):
    """Admits ``collections.OrderedDict`` and builtin containers/scalars, nothing else."""

    _ALLOWED = {("collections", "OrderedDict")}

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        if (module, name) in self._ALLOWED:
            return OrderedDict
        raise LUTError(
            f"refusing to load this pickle: it references {module}.{name}; a latency table may hold "
            "only dicts, numbers and strings"
        )

    def persistent_load(self, pid):  # pragma: no cover - never legitimate in a LUT
        raise LUTError("refusing to load this pickle: it uses persistent ids")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _ms(v: Any, source: str, where: str, minimum: float = -math.inf) -> float:
    """A latency value: a finite number of milliseconds, at least ``minimum``."""
    if not _is_number(v) or not math.isfinite(v) or v < minimum:
        bound = "" if minimum == -math.inf else f" >= {minimum}"
        raise LUTError(f"{source}: {where} is {v!r}; latencies must be finite milliseconds{bound}")
    return float(v)


def _checked_table(table: dict[int, float], source: str, key: str) -> dict[int, float]:
    """A key's widths may dip below 0 ms at the narrowest end (the official tables' per-key
    linear fits reach -0.24 ms there), but the widest block must cost time."""
    hi = max(table)
    if not table[hi] > 0:
        raise LUTError(f"{source}: entry {key} gives {table[hi]!r} ms at its widest width {hi}; "
                       "a block must cost a positive time")
    return table


def _width(w: Any, source: str, where: str) -> int:
    if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w <= MAX_WIDTH:
        raise LUTError(f"{source}: {where} has width {w!r}; widths must be integers in 1..{MAX_WIDTH}")
    return w


def _from_mapping(obj: Any, source: str) -> LUT:
    if not isinstance(obj, dict):
        raise LUTError(f"{source}: expected a mapping at the top level, got {type(obj).__name__}")
    if "base" not in obj or not _is_number(obj["base"]):
        raise LUTError(f"{source}: no numeric 'base' entry")
    entries: dict[str, dict[int, float]] = {}
    for key, table in obj.items():
        if key == "base":
            continue
        if not isinstance(key, str) or not isinstance(table, dict):
            raise LUTError(f"{source}: entry {key!r} is not a string key with a width table")
        if not table or not all(isinstance(w, int) and _is_number(v) for w, v in table.items()):
            raise LUTError(f"{source}: entry {key} must map integer widths to numbers")
        entries[key] = _checked_table({_width(w, source, f"entry {key}"): _ms(v, source, f"entry {key}[{w}]")
                                       for w, v in table.items()}, source, key)
    return LUT(_ms(obj["base"], source, "base", 0.0), entries, {"format": "official-pkl"}, source)


def load_pickle(path: str | os.PathLike) -> LUT:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise LUTError(f"{p}: cannot read ({e.strerror})") from None
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data)).load()
    except LUTError as e:
        raise LUTError(f"{p}: {e}") from None
    except Exception as e:  # truncated or not a pickle at all
        raise LUTError(f"{p}: not a readable latency pickle nor a {FORMAT} JSON table ({type(e).__name__}: {str(e)[:80]})") from None
    return _from_mapping(obj, str(p))


def _json_entry(key: Any, e: Any, source: str) -> tuple[dict[int, float], dict[int, float] | None]:
    if not isinstance(e, dict) or not isinstance(e.get("widths"), list) or not isinstance(e.get("ms"), list):
        raise LUTError(f"{source}: entry {key} must be an object with lists 'widths' and 'ms'")
    if len(e["widths"]) != 2:
        raise LUTError(f"{source}: entry {key}: 'widths' must be [lowest, highest]")
    lo, hi = (_width(w, source, f"entry {key}") for w in e["widths"])
    ms = e["ms"]
    if len(ms) != hi - lo + 1:
        raise LUTError(f"{source}: entry {key} lists {len(ms)} values for widths {lo}..{hi}")
    if hi < lo:
        raise LUTError(f"{source}: entry {key}: widths [{lo}, {hi}] are out of order")
    table = _checked_table({lo + i: _ms(v, source, f"entry {key}[{lo + i}]") for i, v in enumerate(ms)}, source, key)
    if "measured" not in e:
        return table, None
    if not isinstance(e["measured"], dict):
        raise LUTError(f"{source}: entry {key}: 'measured' must map widths to milliseconds")
    measured = {}
    for w, v in e["measured"].items():
        if not w.isdigit():
            raise LUTError(f"{source}: entry {key}: measured width {w!r} is not an integer")
        measured[_width(int(w), source, f"entry {key} (measured)")] = _ms(v, source, f"entry {key} measured[{w}]")
    return table, measured


def load_json(path: str | os.PathLike) -> LUT:
    from .checks import read_json

    p = Path(path)
    d = read_json(p, LUTError, "latency table")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise LUTError(f"{p}: not a {FORMAT} latency table (missing or wrong 'format')")
    if not isinstance(d.get("entries"), dict):
        raise LUTError(f"{p}: 'entries' must be an object mapping keys to width tables")
    if not isinstance(d.get("provenance", {}), dict):
        raise LUTError(f"{p}: 'provenance' must be an object")
    if "base" not in d:
        raise LUTError(f"{p}: no 'base' entry")
    entries, measured = {}, {}
    for key, e in d["entries"].items():
        entries[key], m = _json_entry(key, e, str(p))
        if m is not None:
            measured[key] = m
    fp = d.get("fingerprint", {})
    sentinels = fp.get("sentinels") if isinstance(fp, dict) else None
    if not isinstance(fp, dict) or (fp and not (isinstance(sentinels, dict) and all(
            _is_number(v) and math.isfinite(v) and v > 0 for v in sentinels.values()))):
        raise LUTError(f"{p}: malformed fingerprint (expected 'sentinels' mapping names to positive milliseconds)")
    return LUT(_ms(d["base"], str(p), "base", 0.0), entries, dict(d.get("provenance", {})), str(p), measured, fp)


def load(path: str | os.PathLike) -> LUT:
    """Load an official pickle (any protocol) or our JSON, decided by content, not by name:
    text starting with ``{`` is JSON, anything else is read as a (restricted) pickle."""
    p = Path(path)
    if not p.is_file():
        raise LUTError(f"{p}: no such latency table")
    try:
        head = p.read_bytes()[:64].lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
    except OSError as e:
        raise LUTError(f"{p}: cannot read ({e.strerror})") from None
    return load_json(p) if head == b"{" else load_pickle(p)


# ----------------------------------------------------------------------------- expected latency


def op_latencies(lut: LUT, space: SearchSpace, geom: LayerGeom, mids: Sequence[int]) -> list[float]:
    """LUT latency of each candidate op of one layer at its current width (α order)."""
    return [lut.ms(layer_key(space, geom, name), mid) for name, mid in zip(space.ops, mids)]


def expected_latency(base, layer_probs, layer_lats, depth_probs=None, stage_sizes=None):
    """Relaxed latency of the supernet (torch tensors in, a differentiable scalar out).

    ``layer_probs`` / ``layer_lats``: one tensor per layer over its candidates (Eq. 4:
    Σ_i u_i·LAT(op_i)).  With ``depth_probs`` (one tensor per stage over its depths 1..L) and
    ``stage_sizes`` (layers per stage), Eq. 6: Σ_s Σ_d v_d · Σ_{l<=d} LAT(layer l).
    """
    per_layer = [(p * t).sum() for p, t in zip(layer_probs, layer_lats)]
    if depth_probs is None:
        return base + sum(per_layer)
    total = base
    start = 0
    for v, n in zip(depth_probs, stage_sizes):
        prefix, acc = [], 0.0
        for lat in per_layer[start:start + n]:
            acc = acc + lat
            prefix.append(acc)
        if v.numel() == n + 1:  # the stage may also vanish: depth 0 costs nothing
            prefix = [0.0] + prefix
        elif v.numel() != n:
            raise ValueError(f"depth distribution of size {v.numel()} for a stage of {n} layers")
        total = total + sum(v[i] * prefix[i] for i in range(v.numel()))
        start += n
    return total


# ----------------------------------------------------------------------------- building


def measured_widths(lo: int, hi: int, step: int) -> list[int]:
    """Every ``step``-th width from ``lo`` plus ``hi``: the points we time."""
    ws = list(range(lo, hi + 1, step))
    if ws[-1] != hi:
        ws.append(hi)
    return ws


FITS = ("aligned", "linear", "interp")
REF = "drift-reference"  # timing-item name of the reference block in every build window
ALIGN = 16  # channel multiple that runs fast on this repository's CPU (AVX-512: 16 fp32 lanes)


def fit_points(points: dict[int, float], lo: int, hi: int, fit: str = "aligned") -> dict[int, float]:
    """Fill every width ``lo..hi`` from timed ``points``.

    ``"aligned"`` (default): a least-squares line plus a step for widths that are a multiple
    of ``ALIGN``.  Measured on this machine, a block whose ``mid`` is a multiple of 16 runs
    3-14 % faster than its neighbours (e.g. the 56 px k3 key: 0.707 ms at mid 64, 0.751 at 63,
    0.823 at 65), so a plain line through multiples of 8 (where ``measured_widths`` times, half
    of them multiples of 16) misfits both kinds; the step term separates them (fresh probes of
    unmeasured widths, committed build: median error 3.6 % aligned vs 4.9 % linear).
    ``"linear"`` (the official tables' style: "a linear fit per key"): a plain line.  Both are
    refitted once without the points whose residual exceeds 3x the median residual (timing
    spikes from a busy machine).  ``"interp"``: piecewise-linear through every timed point.
    """
    import numpy as np

    if fit == "interp":
        return interpolate(points, lo, hi)
    if fit not in FITS:
        raise ValueError(f"unknown LUT fit {fit!r}; known: {', '.join(FITS)}")
    xs = np.array(sorted(points), dtype=float)
    ys = np.array([points[int(x)] for x in xs])
    if len(xs) < 2:
        return {w: float(ys[0]) for w in range(lo, hi + 1)}

    def design(w):
        cols = [np.ones_like(w), w]
        if fit == "aligned":
            cols.append((np.mod(w, ALIGN) == 0).astype(float))
        return np.column_stack(cols)

    a = design(xs)
    if np.linalg.matrix_rank(a) < a.shape[1] or len(xs) <= a.shape[1]:  # one kind of width only: a line
        a = a[:, :2]
        fit = "linear"
    coef = np.linalg.lstsq(a, ys, rcond=None)[0]
    res = np.abs(ys - a @ coef)
    keep = res <= 3 * np.median(res) + 1e-9
    if keep.sum() > a.shape[1] and not keep.all() and np.linalg.matrix_rank(a[keep]) == a.shape[1]:
        coef = np.linalg.lstsq(a[keep], ys[keep], rcond=None)[0]
    ws = np.arange(lo, hi + 1, dtype=float)
    full = design(ws)[:, : len(coef)]
    return {int(w): float(v) for w, v in zip(ws, full @ coef)}


def interpolate(points: dict[int, float], lo: int, hi: int) -> dict[int, float]:
    """Linear interpolation of measured ``points`` over every width ``lo..hi``."""
    import numpy as np

    xs = sorted(points)
    ys = [points[x] for x in xs]
    ws = np.arange(lo, hi + 1)
    return {int(w): float(v) for w, v in zip(ws, np.interp(ws, xs, ys))}


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
    rounds, beside a fixed block (``fingerprint.reference_block``) that is timed in every window: each key's
    points are scaled by (median reference) / (reference in its window), so a machine that
    speeds up or slows down during the build does not tilt one key against another.  The rest
    of the widths are filled by ``fit`` (see ``fit_points``); the (scaled) timed points are kept
    in the file beside the entries, the reference timings in ``provenance["drift_reference"]``.  Then ``calib`` random valid architectures are timed whole,
    interleaved, and the entries are calibrated against them; the first of them are the
    fingerprint's sentinels
    (``calibration``; ``calib=0`` skips it, and needs ``keys`` to cover the space otherwise).
    Partial results go to ``out + '.partial'`` after every key; running the same call again
    resumes from there (it refuses a partial file made with other settings).
    """
    import torch
    from tqdm.auto import tqdm

    from . import fingerprint as fp_mod
    from .ops import MBInvRes
    from .space import BlockArgs
    from .timing import DEFAULT_BATCH, check_estimator, cpu_threads, resolve_device, time_interleaved

    space = get_space(space_name)
    dev = resolve_device(device)
    check_estimator(estimator)
    if fit not in FITS:
        raise ValueError(f"unknown LUT fit {fit!r}; known: {', '.join(FITS)}")
    batch = batch or DEFAULT_BATCH[device]
    threads = threads if device == "cpu" else None
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
        prev = json.loads(partial.read_text())
        if prev.get("settings") != settings:
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
    ref_name, ref_args = fp_mod.reference_block(space.name)
    ref_item = {REF: (MBInvRes(ref_args).to(dev), torch.randn(batch, ref_args.in_chs, ref_args.in_hw, ref_args.in_hw,
                                                              device=dev))}
    with cpu_threads(threads):
        if state["base"] is None:
            res = timed({**_base_items(space, dev, batch), **ref_item}, repeats, warmup_s=1.0)
            state["base"] = res["stem"].ms + res["head"].ms
            state["ref"]["base"] = res[REF].ms
            save_partial()
            bar.update(1)
        for key in todo:
            info = infos[key]
            x = torch.randn(batch, info.geom.cin, info.geom.in_hw, info.geom.in_hw, device=dev)
            items = {str(w): (MBInvRes(BlockArgs(info.geom.cin, w, info.geom.cout, info.kernel, info.geom.stride,
                                                 info.se, info.geom.act, info.geom.in_hw)).to(dev), x)
                     for w in measured_widths(info.lo, info.hi, step)}
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
        base, fingerprint, cal = state["base"] * level / state["ref"]["base"], {}, None
        if calib:
            base, entries, cal, fingerprint = _calibrate(space, dev, batch, base, entries, calib, calib_rounds,
                                                         timed, lambda: bar.update(1) if bar.n < bar.total else None)
    bar.close()
    prov = environment(device, batch, threads)
    prov.update({"space": space.name, "step": step, "warmup": warmup, "repeats": repeats, "statistic": estimator,
                 "fit": fit, "protocol": "tfnas_core.timing: interleaved rounds, time-based warm-up, "
                                         f"estimator {estimator}" + (f", CUDA {cuda_mode}" if device == "cuda" else ""),
                 "base_covers": "stem conv + stage-2 block + 1x1 head conv + global pool + fc (1000 classes)"})
    prov["clock"] = fingerprint.get("clock") if fingerprint else ("thread" if device == "cpu" and threads == 1 else None)
    prov["drift_reference"] = {"block": ref_name, "level_ms": round(level, 6),
                                "ms": {k: round(v, 6) for k, v in state["ref"].items()},
                                "note": "timed in every key's window; each key's points scaled by level / ms[key]"}
    if cal:
        prov["calibration"] = cal
    lut = LUT(base, entries, prov, str(out), measured, fingerprint)
    lut.save(out)
    partial.unlink(missing_ok=True)
    return lut


def _calibrate(space: SearchSpace, dev, batch: int, raw_base: float, entries, n: int, rounds: int, timed, tick):
    """Time ``n`` random architectures interleaved; fit and apply the factors; keep the sentinels'."""
    import torch

    from . import calibration, fingerprint, model, random_arch

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
    fp = fingerprint.make(space.name, {k: measured[k] for k in fingerprint.sentinel_specs(space.name)},
                          some.estimator, some.clock)
    return base, cal_entries, summary, fp


def _base_items(space: SearchSpace, dev, batch: int) -> dict:
    """The fixed parts as two timing items: stem + stage-2 block, and 1x1 head conv + pool + fc."""
    import torch
    from torch import nn

    from .ops import MBInvRes, conv_bn_act
    from .space import BlockArgs

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
