"""Input checks shared by every entry point: numbers, config fields, JSON files, CLI flags.

Bad input is refused where it enters, with one line that names the file or the setting (the
CLI turns it into exit code 2).  Three kinds of check live here:

* ``Range`` - a closed or open interval on a number; every number must also be finite.
* ``check_fields(cfg, limits, error)`` - every numeric field of a config dataclass is checked
  against ``limits[field]``; a numeric field *without* an entry there is a programming error
  (``TypeError``), so a new field cannot be added without saying what values it may take.
* ``read_json`` / ``parse_json`` - a file that is not UTF-8, not JSON, nested too deeply or holds
  a number too long for Python is refused naming the file.
* ``positive_int`` & co. - ``argparse`` types for CLI flags (``threads_int``, ``batch_int`` & co.
  with the upper bounds of ``SIZE_LIMITS``).
* Sizes - upper bounds of every size-like setting (``SIZE_LIMITS``), and the machine they meet:
  ``check_threads`` (no more threads than this process's cores), ``check_memory`` (a cheap lower
  bound of the memory a run allocates, against the memory there is).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import typing
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``lo``/``hi`` (``None``: unbounded), each open or closed."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def describe(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo}, {self.hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi}"
        return "finite"


POSITIVE = Range(0, lo_open=True)  # > 0, finite
NON_NEGATIVE = Range(0)  # >= 0, finite
AT_LEAST_1 = Range(1)
FRACTION = Range(0, 1, hi_open=True)  # [0, 1)
SEED = Range(0, 2**32 - 1)  # numpy's seed range; torch and python accept it too


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def check_number(name: str, v: Any, allowed: Range, error: type[Exception] = ValueError) -> None:
    """Refuse ``v`` unless it is a finite number inside ``allowed``."""
    if not is_number(v):
        raise error(f"{name} must be a number, got {v!r}")
    if v not in allowed:
        if isinstance(v, int) and v.bit_length() > 64:  # repr() of a huge int may itself fail
            shown = f"an integer of {v.bit_length()} bits"
        else:
            shown = repr(v)
        raise error(f"{name} must be {'finite and ' if isinstance(v, float) else ''}{allowed.describe()}, got {shown}")


def _base_type(hint: Any) -> tuple[Any, bool]:
    args = typing.get_args(hint)
    if args:
        return next(a for a in args if a is not type(None)), type(None) in args
    return hint, False


def numeric_fields(cls: type) -> list[str]:
    """Names of the ``int``/``float`` fields (optional or not) of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return [f.name for f in fields(cls) if _base_type(hints[f.name])[0] in (int, float)]


def check_fields(cfg: Any, limits: Mapping[str, Range], error: type[Exception] = ValueError) -> None:
    """Type-check every field of dataclass ``cfg`` and range-check every numeric one.

    ``None`` is accepted only where the annotation is optional.  ``int`` fields must hold ints
    (not bools, not floats); ``float`` fields take ints too.
    """
    cls = type(cfg)
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        base, optional = _base_type(hints[f.name])
        v = getattr(cfg, f.name)
        if v is None:
            if not optional:
                raise error(f"{f.name} must be set, got none")
            continue
        if base in (int, float):
            if f.name not in limits:
                raise TypeError(f"{cls.__name__}.{f.name}: no allowed range declared (add it to the limits table)")
            if base is int and (isinstance(v, bool) or not isinstance(v, int)):
                raise error(f"{f.name} must be an integer, got {v!r}")
            check_number(f.name, v, limits[f.name], error)
        elif base is bool and not isinstance(v, bool):
            raise error(f"{f.name} must be true or false, got {v!r}")
        elif base is str and not isinstance(v, str):
            raise error(f"{f.name} must be a string, got {v!r}")


# ----------------------------------------------------------------------------- JSON files


def parse_json(text: str | bytes, source: str, error: type[Exception] = ValueError) -> Any:
    """``json.loads`` that names ``source`` on every failure (bad UTF-8, syntax, depth, digits)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise error(f"{source}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{source}: not valid JSON ({e})") from None
    except RecursionError:
        raise error(f"{source}: JSON nested too deeply") from None
    except ValueError as e:  # an integer longer than Python's digit limit (sys.get_int_max_str_digits)
        why = "a number with too many digits" if "digits" in str(e) else str(e).splitlines()[0][:80]
        raise error(f"{source}: unreadable JSON value ({why})") from None


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError, what: str = "file") -> Any:
    """Read and parse a JSON file; a missing or unreadable file is an ``error`` naming it."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise error(f"{p}: cannot read {what} ({e.strerror or e})") from None
    return parse_json(raw, str(p), error)


# ----------------------------------------------------------------------------- CLI flags


def _flag_type(kind: type, allowed: Range, label: str):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {label}, got {text!r}") from None
        if v not in allowed:
            raise argparse.ArgumentTypeError(f"expected {label}, got {text}")
        return v

    parse.__name__ = label
    return parse


positive_int = _flag_type(int, AT_LEAST_1, "a positive integer")
non_negative_int = _flag_type(int, NON_NEGATIVE, "a non-negative integer")
positive_float = _flag_type(float, POSITIVE, "a positive finite number")
non_negative_float = _flag_type(float, NON_NEGATIVE, "a non-negative finite number")


# ----------------------------------------------------------------------------- sizes

# Upper bounds of every size-like setting (search, retraining, measure, LUT build).  A value past
# one is a typo, not a plan: ``threads=100000`` crashes torch (a segmentation fault, no message)
# and ``resolution=100000`` or ``synthetic_n=10**10`` ask for terabytes.  Each bound leaves wide
# headroom over the paper's settings; what a bound lets through is then held against this
# machine (``check_threads``: its cores; ``check_memory``: its memory) where the run starts.
MAX_THREADS = 1024  # more than any machine torch runs on has cores; each thread is an OS thread
THREADS = Range(1, MAX_THREADS)
RESOLUTION = Range(8, 1024)  # the paper uses 224 px (Appendix B); 1024 is 4.6x that (EfficientNet-B7: 600)
BATCH = Range(1, 65536)  # the paper: 32 (search), 512 (retraining); 64 k is the largest published ImageNet batch
WORKERS = Range(0, 256)  # data-loader processes; more than the cores of a two-socket node
IMAGES = Range(1, 10**8)  # images in a pool or subset; ImageNet-1k has 1.28 M, ImageNet-21k 14 M
# Epochs only cost time, but 10**9 (a typo) would hold a machine forever; the paper: 90 / 250.
EPOCHS = Range(1, 10_000)
ROUNDS = Range(1, 100_000)  # timed runs of one measurement (the paper's protocol: 20-30)
WARMUP_ROUNDS = Range(0, 100_000)
SECONDS = Range(0, 3600)  # a time budget of one measurement (default 1-3 s)

# The size-like fields of the configs (``search_config.SearchConfig``, ``profiles.TrainConfig``),
# whichever of them a config has; ``check_sizes`` applies them.
SIZE_LIMITS: dict[str, Range] = {
    "threads": THREADS, "resolution": RESOLUTION, "batch_size": BATCH, "eval_batch_size": BATCH,
    "num_workers": WORKERS, "subset": IMAGES, "synthetic_n": IMAGES, "train_subset": IMAGES, "val_subset": IMAGES,
    "epochs": EPOCHS,
}


def check_sizes(cfg: Any, error: type[Exception] = ValueError) -> None:
    """Range-check the size-like fields (``SIZE_LIMITS``) that dataclass ``cfg`` has."""
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name in SIZE_LIMITS and v is not None:
            check_number(f.name, v, SIZE_LIMITS[f.name], error)


def usable_cpus() -> int:
    """The CPU cores this process may run on (its affinity mask; a container's ``--cpuset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS)
        return os.cpu_count() or 1


def check_threads(n: int | None, name: str = "threads", error: type[Exception] = ValueError) -> None:
    """Refuse more intra-op threads than ``THREADS`` allows or this process has cores (``None``: torch's default)."""
    if n is None:
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise error(f"{name} must be an integer, got {n!r}")
    check_number(name, n, THREADS, error)
    cores = usable_cpus()
    if n > cores:
        raise error(f"{name}={n}: more threads than the {cores} CPU core{'s' if cores != 1 else ''} "
                    f"this process may use here; use at most {cores}")


def _meminfo() -> dict[str, int]:
    out = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * 1024  # kB
    except OSError:
        pass
    return out


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max`` or v1), ``None`` when unlimited."""
    for p in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(p).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 writes a huge number for "unlimited"
            return int(text)
    return None


def host_memory() -> tuple[int | None, int | None]:
    """``(total, available)`` bytes of this machine (``/proc/meminfo``; a cgroup limit caps the
    total); ``None`` where unknown."""
    info = _meminfo()
    total, avail = info.get("MemTotal"), info.get("MemAvailable")
    limit = _cgroup_limit()
    if limit is not None:
        total = limit if total is None else min(total, limit)
        avail = None if avail is None else min(avail, limit)
    return total, avail


def device_memory(device: str) -> tuple[int | None, int | None]:
    """``(total, available)`` bytes where tensors on ``device`` live: the host's for ``cpu``,
    the current GPU's for ``cuda`` (``None, None`` when torch sees no CUDA device)."""
    if device != "cuda":
        return host_memory()
    import torch

    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory, None


def batch_floor_bytes(batch: int, in_chans: int, resolution: int, stem_chs: int, stem_stride: int) -> int:
    """A lower bound of the memory one forward pass holds at once: the float32 input batch and
    the stem convolution's output (the largest feature maps of these networks are at or after
    it), ignoring weights, the rest of the activations and everything a backward pass keeps."""
    side = -(-resolution // stem_stride)
    return 4 * batch * (in_chans * resolution * resolution + stem_chs * side * side)


def check_memory(need: int, what: str, device: str = "cpu", error: type[Exception] = ValueError) -> None:
    """Refuse when ``need`` bytes (a lower bound of what ``what`` allocates on ``device``) exceed
    all the memory there.  The total, not what is free now: the bound is a floor, so a run it
    lets through may still not fit, but one it refuses cannot (it would end in a traceback or the
    OOM killer after minutes), and a busy machine does not turn a run away."""
    total, avail = device_memory(device)
    if total is None or need <= total:
        return
    where = "this GPU" if device == "cuda" else "this machine"
    now = f" ({avail / 1e9:.1f} GB available now)" if avail is not None else ""
    raise error(f"{what} needs at least {need / 1e9:,.1f} GB of memory, {where} has {total / 1e9:.1f} GB in all{now}")


def bounded_int(allowed: Range, label: str):
    """An ``argparse`` type: an integer within ``allowed`` (``label`` says which, in the usage error)."""
    return _flag_type(int, allowed, label)


def bounded_float(allowed: Range, label: str):
    return _flag_type(float, allowed, label)


threads_int = bounded_int(THREADS, f"a thread count in [1, {MAX_THREADS}]")
batch_int = bounded_int(BATCH, f"a batch size in [1, {int(BATCH.hi)}]")
rounds_int = bounded_int(ROUNDS, f"a number of runs in [1, {int(ROUNDS.hi)}]")
warmup_int = bounded_int(WARMUP_ROUNDS, f"a number of runs in [0, {int(WARMUP_ROUNDS.hi)}]")
seconds_float = bounded_float(SECONDS, f"a number of seconds in [0, {int(SECONDS.hi)}]")
