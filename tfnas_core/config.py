"""What search and retraining configs share: profile names, ``--set key=value`` overrides and
resume checks.

Both configs are frozen dataclasses whose field annotations say how a text value is read
(``int``, ``float``, ``bool``, ``str``, each possibly ``| None``).
"""
from __future__ import annotations

import typing
from dataclasses import field, fields, replace
from typing import Any, Callable, Mapping, TypeVar

C = TypeVar("C")

# Every profile exists for the search (``search_config``) and the retraining (``profiles``) alike;
# the notebooks, ``preflight`` and the command line take their names from here.
PROFILE_NAMES = ("paper", "mini", "smoke")
# Where ImageNet is read from (``train/`` and ``val/`` image folders) when a config leaves ``data_root`` empty,
# and the paper profile's ``data_root``.
IMAGENET_ROOT = "data/imagenet"


def setting(default: Any, meaning: str):
    """A config field with its one-line meaning in ``metadata["help"]``: the one text ``search --help``
    and ``train --help`` list (``cli_common.settings_help``)."""
    return field(default=default, metadata={"help": meaning})


def profile_registry(**makers: Callable[[], C]) -> dict[str, Callable[[], C]]:
    """The profiles of one kind of config by name: exactly ``PROFILE_NAMES``, in that order."""
    if tuple(makers) != PROFILE_NAMES:
        raise TypeError(f"profiles {tuple(makers)} differ from config.PROFILE_NAMES {PROFILE_NAMES}")
    return dict(makers)


def get_profile(profiles: Mapping[str, Callable[[], C]], name: str, error: type[Exception] = ValueError,
                what: str = "profile") -> C:
    """A fresh config of profile ``name``; an unknown name raises ``error`` listing the known ones.

    The one profile lookup: ``search_config.get_profile`` and ``profiles.get_profile`` are this
    function bound to their registry (``functools.partial``)."""
    try:
        return profiles[name]()
    except KeyError:
        raise error(f"unknown {what} {name!r}; known: {', '.join(profiles)}") from None


def resolve_device(device: str | None, profile: str, cuda_available: bool, run: str, cpu_time: str,
                   error: type[Exception] = ValueError) -> str:
    """The device a ``run`` (``"search"`` / ``"retraining"``) of ``profile`` uses: ``device``, or
    ``cuda`` when available and ``cpu`` otherwise.  ``cuda`` without a GPU is refused, and so is a
    ``paper`` run left to fall back to the CPU (it would take ``cpu_time``): no silent CPU
    (``experiments.launch``).  The one device resolver of the search and retraining configs."""
    resolved = device or ("cuda" if cuda_available else "cpu")
    if resolved == "cuda" and not cuda_available:
        raise error("device=cuda: torch sees no CUDA device here; use --set device=cpu")
    if profile == "paper" and device is None and not cuda_available:
        raise error(f"profile paper: torch sees no CUDA device here; a paper {run} on the CPU takes {cpu_time}: "
                    "set device=cpu explicitly to run it anyway, or use BUDGET=rehearsal")
    return resolved

_TRUE, _FALSE, _NONE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}, {"none", "null"}


def coerce(key: str, hint: Any, text: str, error: type[Exception] = ValueError) -> Any:
    """Read ``text`` as the annotated type ``hint`` of field ``key``; ``none`` where optional."""
    args = typing.get_args(hint)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    t = text.strip()
    if optional and t.lower() in _NONE:
        return None
    try:
        if base is bool:
            if t.lower() in _TRUE | _FALSE:
                return t.lower() in _TRUE
            raise ValueError
        if base is int:
            return int(t)
        if base is float:
            return float(t)
    except ValueError:
        raise error(f"--set {key}={text}: expected {getattr(base, '__name__', base)}"
                    + (" or none" if optional else "")) from None
    return t


def apply_overrides(cfg: C, pairs: list[str] | None, error: type[Exception] = ValueError,
                    what: str = "config key") -> C:
    """``cfg`` with ``key=value`` strings applied, each coerced to its field's type.

    Unknown keys (and ``profile``, which names where the defaults came from) are refused with
    the list of known ones.  The caller validates the result.
    """
    cls = type(cfg)
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep:
            raise error(f"--set {pair!r}: expected key=value")
        if key not in hints or key == "profile":
            import difflib

            names = [f.name for f in fields(cls) if f.name != "profile"]
            close = difflib.get_close_matches(key, names, n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise error(f"--set: unknown {what} {key!r}; {hint}known: {', '.join(names)}")
        changes[key] = coerce(key, hints[key], value, error)
    return replace(cfg, **changes)


def differences(a: dict[str, Any], b: dict[str, Any], ignore: typing.Iterable[str] = ()) -> list[str]:
    """Keys whose values differ between two config dicts, leaving out ``ignore``."""
    keys = (set(a) | set(b)) - set(ignore)
    return sorted(k for k in keys if a.get(k) != b.get(k))


def check_resumable(path, cfg_dict: dict[str, Any], ignore: typing.Iterable[str], what: str = "run") -> None:
    """Refuse to resume into a run folder when its config file ``path`` (``runs.files.CONFIG``: the
    run loop names it, as this layer is below ``runs``) was written with another config."""
    from pathlib import Path

    from tfnas_core.utils.checks import read_json

    path = Path(path)
    out = path.parent
    if path.is_file():
        stored = read_json(path, ValueError, "config")
        if not isinstance(stored, dict):
            raise ValueError(f"{path}: expected a JSON object of settings, got {type(stored).__name__}; "
                             "use another --out or delete that folder")
        diff = differences(stored, cfg_dict, ignore)
        if diff:
            raise ValueError(f"{out} holds a {what} with a different config (differs in: {', '.join(diff)}); "
                             "use another --out or delete that folder")
