"""Export a network for inference outside this package, checked against the eager network.

Formats (``FORMATS``):

* ``torchscript`` - ``torch.jit.trace`` in eval mode, ``torch.jit.save``; read with ``torch.jit.load``.
* ``exported`` - ``torch.export.export`` with a dynamic batch dimension, ``torch.export.save``
  (a ``.pt2`` archive); read with ``torch.export.load(F).module()``.
* ``onnx`` - ``torch.onnx.export(dynamo=True)`` (the torch.export-based exporter; needs the
  ``export`` extra: onnx, onnxscript; onnxruntime for the check), input ``input`` and output
  ``logits``, dynamic batch.
* ``official`` - the original code's ``model.config`` + ``model.pth.tar`` in folder F
  (``official.export``), read back with ``official.read_config`` / ``load_weights``.

Every export is read back from what was written and run on a seeded input of a batch other than
the tracing example's (3 vs 2, so a batch fixed by tracing shows): its logits must equal the
eager network's (eval mode, float32, CPU) within ``atol + rtol * max|logits|``; the largest
difference is reported.  A file is written to a temp file beside F, checked there and renamed
to F; the official folder appears whole or not at all (and is removed if its check fails).
Nothing half-written stays behind.  Any spec works: a zoo entry, a search's ``spec.json`` or an
imported one.  Without weights the network is randomly initialised (reported).
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from tfnas_core.arch.spec import Spec
from tfnas_core.utils.atomic import atomic_write

FORMATS = ("torchscript", "exported", "onnx", "official")
EXAMPLE_BATCH, CHECK_BATCH = 2, 3  # trace with one batch size, check with another
RTOL, ATOL = 1e-4, 1e-5  # |exported - eager| <= ATOL + RTOL * max|eager|
ONNX_OPSET = 18
EXTRA_HINT = "pip install 'tfnas_core[export]' (onnx, onnxscript, onnxruntime)"


class ExportError(ValueError):
    """An export that cannot be made or whose output differs from the eager network's."""


def _inputs(resolution: int, batch: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 3, resolution, resolution, generator=g)


def _batch_dim():
    return torch.export.Dim("batch", min=1, max=4096)


# ----------------------------------------------------------------------------- writers and readers
# write(net, example, path) writes the file; run(path, x) runs what was written on x.


_JIT_DEPRECATED: list[str] = []  # torch.jit's deprecation warnings seen by the last torchscript export


@contextlib.contextmanager
def _jit_deprecation_hidden():
    """Recent torch marks torch.jit deprecated, a FutureWarning per call: kept out of the output
    and stated once in the result's notes."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield
    for w in seen:
        if issubclass(w.category, FutureWarning) and "deprecated" in str(w.message) and "jit" in str(w.message):
            _JIT_DEPRECATED.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _write_torchscript(net, example, path) -> None:
    with torch.no_grad(), _jit_deprecation_hidden():
        traced = torch.jit.trace(net, (example,))
        torch.jit.save(traced, path)


def _run_torchscript(path, x) -> torch.Tensor:
    with torch.no_grad(), _jit_deprecation_hidden():
        return torch.jit.load(path, map_location="cpu")(x)


def _write_exported(net, example, path) -> None:
    # through a buffer: torch.export's writer warns about a file name not ending in .pt2 (the temp file's)
    ep = torch.export.export(net, (example,), dynamic_shapes=({0: _batch_dim()},))
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    Path(path).write_bytes(buf.getvalue())


def _run_exported(path, x) -> torch.Tensor:
    with torch.no_grad():
        return torch.export.load(io.BytesIO(Path(path).read_bytes())).module()(x)


def _onnx_modules() -> None:
    missing = [m for m in ("onnx", "onnxscript") if not _importable(m)]
    if missing:
        raise ExportError(f"--format onnx needs {' and '.join(missing)}, not installed: {EXTRA_HINT}")


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _write_onnx(net, example, path) -> None:
    _onnx_modules()
    # the exporter reports its steps with print(): keep stdout for the result line
    with contextlib.redirect_stdout(sys.stderr):
        prog = torch.onnx.export(net, (example,), dynamo=True, input_names=["input"], output_names=["logits"],
                                 dynamic_shapes=({0: _batch_dim()},), opset_version=ONNX_OPSET, verbose=False)
        prog.save(str(path))


def _run_onnx(path, x) -> torch.Tensor:
    import onnx
    import onnxruntime as ort

    onnx.checker.check_model(onnx.load(str(path)))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(sess.run(["logits"], {"input": x.numpy()})[0])


NOTES = {"exported": "read with torch.export.load(F).module(); name F *.pt2, torch.export warns on other names"}

WRITERS: dict[str, tuple[Callable, Callable]] = {
    "torchscript": (_write_torchscript, _run_torchscript),
    "exported": (_write_exported, _run_exported),
    "onnx": (_write_onnx, _run_onnx),
}


def checkable(fmt: str) -> str | None:
    """Why ``fmt``'s output cannot be checked here (a module missing), or None."""
    if fmt == "onnx" and not _importable("onnxruntime"):
        return f"onnxruntime not installed, the ONNX file is not run: {EXTRA_HINT}"
    return None


def max_diff(got: torch.Tensor, want: torch.Tensor, what: str) -> float:
    """max |got - want|; ``ExportError`` when it exceeds the tolerance or the shapes differ."""
    if tuple(got.shape) != tuple(want.shape):
        raise ExportError(f"{what}: output shape {list(got.shape)}, the eager network's {list(want.shape)}")
    d = float((got.float() - want.float()).abs().max())
    tol = ATOL + RTOL * float(want.abs().max())
    if not d <= tol:  # NaN fails too
        raise ExportError(f"{what}: output differs from the eager network's by {d:.3g} (tolerance {tol:.3g})")
    return d


# ----------------------------------------------------------------------------- export


def export(spec: Spec, fmt: str, out: str | os.PathLike, weights: str | os.PathLike | None = None,
           check: bool = True, seed: int = 0) -> dict[str, Any]:
    """Write ``spec`` (with ``weights``, else random) as ``fmt`` to ``out`` (module docstring).
    Returns the result line's fields, ``max_abs_diff`` among them (None when not checked)."""
    from tfnas_core.released.evaluate import load_net
    from tfnas_core.arch.space import PAPER_SCALE

    if fmt not in FORMATS:
        raise ExportError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    if fmt != "official" and out.is_dir():
        raise ExportError(f"--out {out}: is a folder; --format {fmt} writes a file")
    t0 = time.perf_counter()
    net = load_net(spec, weights)
    classes = net.classifier.out_features
    res = PAPER_SCALE.resolution
    x = _inputs(res, CHECK_BATCH, seed + 1)
    with torch.no_grad():
        want = net(x)
    why_not = checkable(fmt) if check else "output not checked (--no-check)"
    diff: list[float] = []
    if fmt == "official":
        d = _export_official(spec, net, out, x, want, check=why_not is None)
        diff += [] if d is None else [d]
    else:
        write, run = WRITERS[fmt]

        def write_and_check(tmp: str) -> None:
            write(net, _inputs(res, EXAMPLE_BATCH, seed), tmp)
            if why_not is None:
                diff.append(max_diff(run(tmp, x), want, f"--format {fmt}"))

        _JIT_DEPRECATED.clear()
        if fmt == "onnx":
            _onnx_modules()  # before a temp file exists
        atomic_write(out, write_and_check, errors=(OSError,))
    size = sum(f.stat().st_size for f in out.iterdir()) if out.is_dir() else out.stat().st_size
    if fmt == "torchscript" and _JIT_DEPRECATED:
        notes_fmt = f"torch {torch.__version__} deprecates torch.jit ({_JIT_DEPRECATED[0]}); --format exported does not"
    else:
        notes_fmt = NOTES.get(fmt)
    notes = [n for n in (why_not, notes_fmt, None if weights is not None else "no --weights: random weights")
             if n]
    return {"spec": spec.name, "format": fmt, "out": str(out), "bytes": size,
            "weights": str(weights) if weights is not None else None, "classes": classes,
            "max_abs_diff": diff[0] if diff else None, "checked": bool(diff),
            **({"notes": notes} if notes else {}), "seconds": round(time.perf_counter() - t0, 2)}


def _export_official(spec: Spec, net, out: Path, x: torch.Tensor, want: torch.Tensor, check: bool) -> float | None:
    from tfnas_core.released import official
    from tfnas_core.released.evaluate import load_net

    official.export(spec, net.state_dict(), out)
    if not check:
        return None
    try:
        back, _ = official.read_config(out / official.CONFIG_FILE, name=spec.name)
        with torch.no_grad():
            got = load_net(back, out / official.CHECKPOINT_FILE)(x)
        return max_diff(got, want, "--format official")
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise


__all__ = ["ATOL", "ExportError", "FORMATS", "RTOL", "checkable", "export", "max_diff"]
