"""Input checks shared by every entry point: numbers, config fields, JSON files, CLI flags.

Bad input is refused where it enters, with one line that names the file or the setting (the
CLI turns it into exit code 2).  Three kinds of check live here:

* ``Range`` - a closed or open interval on a number; every number must also be finite.
* ``check_fields(cfg, limits, error)`` - every numeric field of a config dataclass is checked
  against ``limits[field]``; a numeric field *without* an entry there is a programming error
  (``TypeError``), so a new field cannot be added without saying what values it may take.
* ``read_json`` / ``parse_json`` - a file that is not UTF-8, not JSON, nested too deeply or holds
  a number too long for Python is refused naming the file.
* ``positive_int`` & co. - ``argparse`` types for CLI flags.
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
