"""Command line for released models: ``import-official`` (the original code's ``model.config`` and
``.pth.tar`` -> our ``spec.json`` and ``weights.pt``; ``official.import_official``).

Registered by ``cli.parser()``; errors follow ``cli``'s convention (``ValueError`` -> exit 2,
one line on stderr naming the file and the first offending key; nothing is written).
"""
from __future__ import annotations

import argparse

from .cli_common import print_result


def cmd_import_official(a: argparse.Namespace) -> None:
    from . import official

    r = official.import_official(a.config, a.weights, a.out, name=a.name)
    print_result(r.summary(), a.json, r.line())


def add_models_parser(sub) -> None:
    from .official import SPEC_FILE, WEIGHTS_FILE

    sp = sub.add_parser("import-official", help="import a model released with the original code (model.config + .pth.tar)",
                        description=f"Read the original TF-NAS code's model.config and, with --weights, its checkpoint "
                                    f"(a .pth.tar with the weights under 'state_dict' or a plain state dict; keys with "
                                    f"or without DataParallel's 'module.'; read with torch.load(weights_only=True)); "
                                    f"write OUT/{SPEC_FILE} (our spec: the zoo entry for a published net) and "
                                    f"OUT/{WEIGHTS_FILE} (the state dict of model.build(spec), for "
                                    f"torch.load(weights_only=True)). A config or checkpoint that does not match "
                                    f"(a wrong shape, an unknown or missing key) exits 2 naming the first offending "
                                    f"key; OUT appears whole or not at all.")
    sp.add_argument("--config", required=True, help="the original's model.config (JSON)")
    sp.add_argument("--weights", help=f"its checkpoint (.pth.tar); without it only OUT/{SPEC_FILE} is written")
    sp.add_argument("--out", required=True, help="folder to create (must not exist, or be empty)")
    sp.add_argument("--name", help="the spec's name (default: the zoo entry's for a published net, else the "
                                   "config file's name: TF-NAS-X.model.config -> TF-NAS-X, DIR/model.config -> DIR)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_import_official)


__all__ = ["add_models_parser", "cmd_import_official"]
