"""What every command of the command line shares: spec/LUT loading, printing, the exit code.

``cli`` builds the parser from ``cli`` (spec and LUT tools), ``cli_train`` (retraining and real
latency) and ``cli_search`` (the search); each imports its helpers from here, so no command
module imports another.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

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
    from . import arch_spec, zoo

    if path.startswith("zoo:"):
        return zoo.load(path[4:])
    return arch_spec.load(path)


def load_lut(path: str | None):
    if path is None:
        return None
    from . import latency

    return latency.load(path)


def print_result(obj: Any, as_json: bool, text: str) -> None:
    print(json.dumps(obj, indent=1) if as_json else text)
