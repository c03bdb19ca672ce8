"""Command line for released models: ``import-official`` (the original code's ``model.config`` and
``.pth.tar`` -> our ``spec.json`` and ``weights.pt``; ``official.import_official``), ``evaluate``
(top-1 / top-5 on ImageNet val; ``evaluate.evaluate``) and ``export`` (TorchScript, torch.export,
ONNX or the original's format, checked against the eager network; ``export.export``).

Registered by ``cli.parser()``; errors follow ``cli``'s convention (``ValueError`` -> exit 2,
one line on stderr naming the file and the first offending key; nothing is written).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfnas_core.cli.common import load_spec, print_result


def cmd_import_official(a: argparse.Namespace) -> None:
    from tfnas_core.released import official

    r = official.import_official(a.config, a.weights, a.out, name=a.name)
    print_result(r.summary(), a.json, r.line())


def spec_and_weights(spec_arg: str, weights: str | None):
    """SPEC is zoo:NAME, a spec JSON, or a folder import-official wrote (its spec.json, and its
    weights.pt when --weights is not given)."""
    from tfnas_core.released.official import SPEC_FILE, WEIGHTS_FILE

    p = Path(spec_arg)
    if not spec_arg.startswith("zoo:") and p.is_dir():
        if not (p / SPEC_FILE).is_file():
            raise ValueError(f"SPEC {p}: a folder without {SPEC_FILE} (give zoo:NAME, a spec JSON or an import-official folder)")
        if weights is None and (p / WEIGHTS_FILE).is_file():
            weights = str(p / WEIGHTS_FILE)
        spec_arg = str(p / SPEC_FILE)
    return load_spec(spec_arg), weights


def cmd_evaluate(a: argparse.Namespace) -> None:
    from tfnas_core.released import evaluate

    spec, weights = spec_and_weights(a.spec, a.weights)
    if weights is None:
        raise ValueError("--weights: required (our weights.pt or the original's .pth.tar)")
    r = evaluate.evaluate(spec, weights, a.imagenet, list_file=a.list, wnids_file=a.wnids, batch=a.batch,
                          workers=a.workers, device=a.device, amp=not a.no_amp, limit=a.limit, progress=not a.quiet)
    print(json.dumps(r))


def cmd_export(a: argparse.Namespace) -> None:
    from tfnas_core.released import export

    spec, weights = spec_and_weights(a.spec, a.weights)
    print(json.dumps(export.export(spec, a.format, a.out, weights=weights, check=not a.no_check)))


def add_models_parser(sub) -> None:
    from tfnas_core.released.official import SPEC_FILE, WEIGHTS_FILE

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

    from tfnas_core.utils.checks import batch_int, non_negative_int, positive_int
    from tfnas_core.released.export import FORMATS

    spec_help = "zoo:NAME, a spec JSON (e.g. a search's spec.json), or a folder import-official wrote"
    weights_help = (f"our {WEIGHTS_FILE} (import-official) or a retraining checkpoint, or the original's .pth.tar "
                    f"(paper scale; the class count is the checkpoint's)")
    sp = sub.add_parser("evaluate", help="top-1 / top-5 on ImageNet val with the original's transforms",
                        description="Top-1 and top-5 of SPEC with --weights on ImageNet val: resize 256, centre crop "
                                    "224, ImageNet mean and std, as the original's test.py. Images: ROOT/val/<wnid>/* "
                                    "or the images --list names. Classes are found from each image's wnid: class i is "
                                    "line i of --wnids, else the i-th wnid in sorted order (then the images must hold "
                                    "as many wnids as the net has classes). Progress on stderr; one JSON line of "
                                    "results on stdout. AMP (float16) on CUDA.")
    sp.add_argument("spec", help=spec_help)
    sp.add_argument("--weights", help=weights_help + f"; default: SPEC/{WEIGHTS_FILE} of an import-official folder")
    sp.add_argument("--imagenet", required=True, help="ImageNet root holding val/<wnid>/<image>")
    sp.add_argument("--list", help="evaluate the images this official list names ('wnid/file.JPEG label' per line; "
                                   "relative to ROOT, ROOT/val or ROOT/train; the label column is not used)")
    sp.add_argument("--wnids", help="the net's class names in class order, one per line (first token), e.g. "
                                    "ImageNet-1k's LOC_synset_mapping.txt; needed when the images hold fewer "
                                    "classes than the net")
    sp.add_argument("--batch", type=batch_int, default=100, help="images per batch (default 100)")
    sp.add_argument("--workers", type=non_negative_int, default=None, help="data loader workers (default: cores, at most 8)")
    sp.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda where available, else cpu")
    sp.add_argument("--no-amp", action="store_true", help="float32 on CUDA too")
    sp.add_argument("--limit", type=positive_int, help="a seeded, class-stratified subset of this many images")
    sp.add_argument("--quiet", action="store_true", help="no progress lines")
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("export", help="export a network: TorchScript, torch.export, ONNX or the original's format",
                        description="Write SPEC (with --weights, else randomly initialised) as --format to --out, "
                                    "read it back and check its logits against the eager network's (eval mode, "
                                    "float32, CPU; a batch other than the tracing one). torchscript: torch.jit.trace; "
                                    "exported: torch.export (.pt2); onnx: torch.onnx.export(dynamo=True), needs the "
                                    "'export' extra (onnx, onnxscript; onnxruntime to check); official: a folder with "
                                    "model.config and model.pth.tar for the original code. Nothing half-written on "
                                    "failure. One JSON line of results on stdout.")
    sp.add_argument("spec", help=spec_help)
    sp.add_argument("--weights", help=weights_help + f"; default: SPEC/{WEIGHTS_FILE} of an import-official folder, "
                                                     "else random weights")
    sp.add_argument("--format", required=True, choices=list(FORMATS))
    sp.add_argument("--out", required=True, help="the file to write (official: a folder, absent or empty)")
    sp.add_argument("--no-check", action="store_true", help="do not run the export against the eager network")
    sp.set_defaults(func=cmd_export)


__all__ = ["add_models_parser", "cmd_evaluate", "cmd_export", "cmd_import_official", "spec_and_weights"]
