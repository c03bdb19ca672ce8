"""Latency lookup tables (LUT): the table, loading and prediction.

A LUT maps ``base`` (stem conv + stage-2 block + 1x1 head conv + pool + fc) to milliseconds and
each block key (``lut_keys``: the key format, defined once) to ``{mid: ms}``.

Formats:

* the official ``.pkl`` (a pickled ``OrderedDict``) - read through a restricted unpickler that
  admits plain dicts/``OrderedDict``, numbers and strings only; any other object in the pickle
  is refused with ``LUTError`` and never constructed;
* our JSON (``tfnas-lut/1``) with provenance: device, batch, threads, library versions, date,
  which widths were measured and which interpolated.

``predict(spec)`` = base + Σ entry[mid] over the spec's layers (Eq. 4 for a derived net).
The relaxed, differentiable version the search uses (Eq. 4 / Eq. 6) is ``relaxed_latency``;
building a LUT on this machine is ``lut_build``, filling unmeasured widths ``lut_fit``.
"""
from __future__ import annotations

import io
import json
import math
import os
import pickle
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfnas_core.arch.spec import Spec
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.latency.keys import layer_key, space_keys
from tfnas_core.arch.space import SearchSpace, get_space

FORMAT = "tfnas-lut/1"
# The JSON field holding the drift sentinels' timings (``LUT.drift_sentinels``, ``latency.drift``).  The
# name is what every LUT with sentinels holds (``luts/cpu_local.json`` ...), so it stays; it is not a
# run's fingerprint (``execution.fingerprint``).
DRIFT_FIELD = "fingerprint"
MAX_WIDTH = 100_000  # far above any layer of the spaces (Table 1: at most 6 x 320 channels)


class LUTError(ValueError):
    """A lookup table that cannot be read or lacks what is asked of it."""


# ----------------------------------------------------------------------------- the table


@dataclass
class LUT:
    base: float
    entries: dict[str, dict[int, float]]
    provenance: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    measured: dict[str, dict[int, float]] = field(default_factory=dict)  # timed points, where known
    drift_sentinels: dict[str, Any] = field(default_factory=dict)  # ``drift.make_sentinels``, where known

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
        """Keys (or widths) of ``space`` this LUT lacks; empty when it covers the whole space.  A key
        must hold every width of its op's range, both bounds and every width between (a search or
        elasticity scaling may visit any of them): a key lacking some is listed with its range and
        the first width it lacks."""
        missing = []
        for key, info in space_keys(space).items():
            t = self.entries.get(key)
            if t is None:
                missing.append(key)
                continue
            lacks = next((w for w in range(info.lo, info.hi + 1) if w not in t), None)
            if lacks is not None:
                missing.append(f"{key}[{info.lo}..{info.hi}] (no width {lacks})")
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
        if self.drift_sentinels:
            d[DRIFT_FIELD] = self.drift_sentinels
        return d

    def refit(self, fit: str) -> "LUT":
        """The same measurements with the entries recomputed by another ``fit`` (see ``fit_points``)."""
        if not self.measured:
            raise LUTError(f"LUT {self.source} holds no measured points to refit")
        from tfnas_core.latency.fit import fit_points

        entries = {k: fit_points(pts, min(self.entries[k]), max(self.entries[k]), fit) for k, pts in self.measured.items()}
        cal = self.provenance.get("calibration")
        if cal:  # the stored entries are calibrated: calibrate the refitted ones alike
            from tfnas_core.latency.calibration import apply

            entries = apply(entries, {int(s): c for s, c in cal["factors"].items()}, get_space(self.provenance["space"]))
        return LUT(self.base, entries, {**self.provenance, "fit": fit}, self.source, self.measured, self.drift_sentinels)

    def save(self, path: str | os.PathLike) -> Path:
        """Write our JSON atomically, one key per line (readable diffs, ~0.5 MB for a space)."""
        d = self.to_json_dict()
        head = {k: v for k, v in d.items() if k not in ("entries", DRIFT_FIELD)}
        if DRIFT_FIELD in d:
            head[DRIFT_FIELD] = d[DRIFT_FIELD]
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
    from tfnas_core.utils.checks import read_json

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
    drift_sentinels = d.get(DRIFT_FIELD, {})
    sentinels = drift_sentinels.get("sentinels") if isinstance(drift_sentinels, dict) else None
    if not isinstance(drift_sentinels, dict) or (drift_sentinels and not (isinstance(sentinels, dict) and all(
            _is_number(v) and math.isfinite(v) and v > 0 for v in sentinels.values()))):
        raise LUTError(f"{p}: malformed {DRIFT_FIELD} (expected 'sentinels' mapping names to positive milliseconds)")
    return LUT(_ms(d["base"], str(p), "base", 0.0), entries, dict(d.get("provenance", {})), str(p), measured,
               drift_sentinels)


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


def file_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 (hex) of the table file's bytes, ``None`` where there is no such file: the LUT's
    identity in a search's run key (``experiments.search_key``), one read of the file."""
    import hashlib

    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None
