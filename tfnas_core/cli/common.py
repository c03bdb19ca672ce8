"""What every command of the command line shares: spec/LUT loading, printing, the exit code, and
the settings of a search or retraining (``--profile``/``--config``/``--set``, listed in ``--help``).

``cli`` builds the parser from ``cli`` (spec and LUT tools), ``cli_train`` (retraining and real
latency) and ``cli_search`` (the search); each imports its helpers from here, so no command
module imports another.
"""
from __future__ import annotations

import argparse
import json
from typing import Any, Callable, Mapping

from tfnas_core.runs import files as run_files

EXIT_BAD_INPUT = 2
NO_LUT_HINT = ("no --lut given: pass tfnas_core/luts/cpu_local.json (this machine's CPU) or the official "
               "../shared/reference/official/latency_gpu.pkl for latency")


class CLIError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit 2, like every other bad input."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def load_spec(path: str):
    from tfnas_core.arch import spec as arch_spec
    from tfnas_core.arch import zoo

    if path.startswith("zoo:"):
        return zoo.load(path[4:])
    return arch_spec.load(path)


def load_lut(path: str | None):
    if path is None:
        return None
    from tfnas_core.latency import lut as latency

    return latency.load(path)


def print_result(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=1) if as_json else text)


# ----------------------------------------------------------------------------- configs: --help and --config

def help_width() -> int:
    """Where the settings table wraps: argparse's width (the terminal's, less 2), kept in [60, 100]."""
    import shutil

    return min(100, max(60, shutil.get_terminal_size().columns - 2))


def shown(value: Any) -> str:
    """A setting's value as ``--set`` reads it back: ``none``, ``true``/``false``, else ``str``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _type_text(hint: Any) -> str:
    import typing

    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    name = getattr(base, "__name__", str(base))
    return f"{name} or none" if len(args) < len(typing.get_args(hint)) else name


def settings_help(cls: type, profiles: Mapping[str, Callable[[], Any]]) -> str:
    """Every field of the config dataclass ``cls``: ``KEY=DEFAULT (type; the profiles that differ)``
    and, below it, its meaning (the field's ``metadata["help"]``, the one place it is written)."""
    import textwrap
    import typing
    from dataclasses import MISSING, fields

    hints, width = typing.get_type_hints(cls), help_width()
    made = {name: make() for name, make in profiles.items()}
    lines = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        notes = [_type_text(hints[f.name])]
        if f.name != "profile":  # every profile differs in its own name
            differ = [f"{p}: {shown(getattr(c, f.name))}" for p, c in made.items() if getattr(c, f.name) != default]
            notes += [", ".join(differ)] if differ else []
        lines.append(f"  {f.name}={shown(default)}  ({'; '.join(notes)})")
        meaning = f.metadata.get("help", "(no meaning written yet)")
        lines += textwrap.wrap(meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6,
                               break_on_hyphens=False)
    return "\n".join(lines)


def add_config_arguments(sp: argparse.ArgumentParser, what: str, profiles: Mapping[str, Any], out_files: str) -> None:
    """``--profile``, ``--config`` and ``--set`` of a search or a retraining (``cmd_*`` calls ``base_config``)."""
    sp.add_argument("--profile", choices=list(profiles),
                    help=f"the defaults: {', '.join(profiles)} (default: mini); see the settings below")
    sp.add_argument("--config", metavar="PATH",
                    help=f"instead of --profile: the settings of a saved {what}, its run folder's config.json (or "
                         "that folder); unchanged, the rerun has the original's run key")
    sp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one setting (listed below) after --profile or --config; repeatable")
    sp.add_argument("--out", required=True, help=f"run folder: {out_files}")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")


def config_help(description: str, cls: type, profiles: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """``add_parser`` keywords of a search or retraining command: the description, then every setting."""
    import textwrap

    head = ("settings (--set KEY=VALUE): KEY=DEFAULT (type; the profiles whose value differs), then its meaning; "
            "write none, true and false as shown:")
    epilog = textwrap.fill(head, help_width()) + "\n" + settings_help(cls, profiles)
    return dict(description=textwrap.fill(description, help_width()), epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter)


def load_config(path: str, from_dict: Callable[[dict], Any], what: str) -> Any:
    """The config a run folder's ``config.json`` (or that folder) holds, through ``from_dict``.

    Missing, unreadable, not a JSON object, an unknown key or a bad value: one ``ValueError``
    naming the file (the CLI's exit 2), before anything is written."""
    from pathlib import Path

    from tfnas_core.utils.checks import read_json

    p = Path(path)
    if p.is_dir():
        p = p / run_files.CONFIG
    try:
        d = read_json(p, ValueError, f"{what} config")
        if not isinstance(d, dict):
            raise ValueError(f"{p}: expected a JSON object of {what} settings (a run's config.json), "
                             f"got {type(d).__name__}")
        return from_dict(d)
    except ValueError as e:
        msg = str(e)
        raise ValueError(f"--config {msg if msg.startswith(str(p)) else f'{p}: {msg}'}") from None


def base_config(a: argparse.Namespace, get_profile: Callable[[str], Any], from_dict: Callable[[dict], Any],
                what: str) -> Any:
    """The config ``--set`` applies to: ``--config``'s file, else ``--profile`` (default mini)."""
    if a.config is not None:
        if a.profile is not None:
            raise CLIError(f"--config and --profile: give one (the saved {what}'s profile is in its file)")
        return load_config(a.config, from_dict, what)
    return get_profile(a.profile or "mini")
