"""Top-1 / top-5 of a network on ImageNet val, as the original code's ``test.py`` measures it.

Transforms (``eval_transform``): resize the shorter side to 256, centre crop 224, ImageNet mean
and std: the same composition ``data.imagenet`` uses for its validation loader.  Images: the
whole ``ROOT/val/<wnid>/...`` folder, or the images an official list file names
(``wnid/file.JPEG label`` per line; ``search_data.read_list``).

Class indices.  The original's 1000-class nets index ImageNet-1k's classes in sorted-wnid order.
An image's class is found from its wnid (its folder), never from a list's label column (the
official ImageNet-100 lists number their own 100 classes 0..99, which a 1000-class net does not):

* ``wnids`` given (a file, the net's class names in class order, one per line, first token used,
  e.g. ImageNet-1k's ``LOC_synset_mapping.txt``): class i is line i.  It must name exactly as
  many classes as the net has, and every evaluated wnid.
* otherwise the folder (or list) must hold exactly as many wnids as the net has classes; class
  i is the i-th wnid in sorted order.  This is right for a net trained on exactly those
  classes (ImageNet-1k's full val/, or the 100 classes of a net retrained on them) and
  refused otherwise: this repository ships no list of ImageNet-1k's 1000 wnids, so a val/ of
  fewer classes (such as the synthetic ImageNet's 100) needs ``wnids`` for a 1000-class net.

Weights: ours (``weights.pt`` of ``import-official``, a retraining checkpoint's ``model``) or the
original's ``.pth.tar`` (``official.load_weights``); the class count is the classifier's.
On CUDA the forward runs under autocast (float16) unless ``amp=False``.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from tfnas_core.arch.spec import Spec
from tfnas_core.data.datasets import CROP_RATIO, eval_transform, scan_image_folder, stratified_subset  # noqa: F401 - re-exported
from tfnas_core.utils.progress import format_eta

RESOLUTION = 224
TOPK = (1, 5)


class EvalError(ValueError):
    """Bad input to an evaluation: one line naming the file or flag."""


# ----------------------------------------------------------------------------- weights


def load_net(spec: Spec, weights: str | os.PathLike | None, num_classes: int = 1000):
    """``model.build(spec)`` at paper scale in eval mode, with ``weights`` (either layout; the
    class count is the checkpoint's) or, without, randomly initialised with ``num_classes``."""
    from tfnas_core.nn import model
    from tfnas_core.released import official
    from tfnas_core.arch.space import PAPER_SCALE

    if weights is not None:  # read once: the class count and the weights come from the same state dict
        sd, prefix = official.read_checkpoint(weights)
        num_classes = official.classes_of(sd) or num_classes
        ours = official.weights_of(sd, prefix, spec, num_classes, str(weights))
    net = model.build(spec, PAPER_SCALE.with_(num_classes=num_classes))
    if weights is not None:
        net.load_state_dict(ours)
    return net.eval()


# ----------------------------------------------------------------------------- images and classes


def read_wnids(path: str | os.PathLike) -> list[str]:
    """Class names in class order: the first token of every non-empty line."""
    p = Path(path)
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EvalError(f"--wnids {p}: cannot read ({getattr(e, 'strerror', None) or e})") from None
    out = [line.split()[0] for line in lines if line.strip()]
    seen: set[str] = set()
    for n, w in enumerate(out, start=1):
        if w in seen:
            raise EvalError(f"--wnids {p}: {w} named twice (class {n - 1})")
        seen.add(w)
    if not out:
        raise EvalError(f"--wnids {p}: no class names")
    return out


def class_map(present: Sequence[str], num_classes: int, wnids: Sequence[str] | None = None,
              where: str = "val/", wnids_source: str = "--wnids") -> dict[str, int]:
    """wnid -> the net's class index (module docstring); ``EvalError`` naming what does not fit."""
    present = sorted(set(present))
    if wnids is not None:
        if len(wnids) != num_classes:
            raise EvalError(f"{wnids_source}: {len(wnids)} classes, the net has {num_classes}")
        index = {w: i for i, w in enumerate(wnids)}
        unknown = [w for w in present if w not in index]
        if unknown:
            raise EvalError(f"{where}: {len(unknown)} class(es) not in {wnids_source}, e.g. {unknown[0]}")
        return {w: index[w] for w in present}
    if len(present) != num_classes:
        raise EvalError(f"{where}: {len(present)} classes, the net has {num_classes}; give --wnids FILE naming the "
                        f"net's {num_classes} classes in class order (the original's 1000-class nets: ImageNet-1k's "
                        f"wnids sorted, e.g. LOC_synset_mapping.txt)")
    return {w: i for i, w in enumerate(present)}


@dataclass(frozen=True)
class Images:
    folder: Path  # the image paths are relative to it
    rels: tuple[str, ...]  # wnid/file
    source: str  # what was read: "ROOT/val" or the list file

    @property
    def wnids(self) -> list[str]:
        return [r.split("/", 1)[0] for r in self.rels]


def val_images(root: str | os.PathLike, list_file: str | os.PathLike | None = None) -> Images:
    """The images to evaluate: ``root/val``'s (class folders by wnid), or those ``list_file`` names,
    relative to the first of ``root``, ``root/val``, ``root/train`` that holds its first entry
    (the official ImageNet-100 lists name files under ``train/``).  Missing files are refused."""
    from tfnas_core.data.datasets import check_files
    from tfnas_core.search.data import read_list

    root = Path(root)
    if not root.is_dir():
        raise EvalError(f"--imagenet {root}: no such folder")
    if list_file is None:
        val = root / "val"
        if not val.is_dir():
            raise EvalError(f"--imagenet {root}: no val/ folder (ImageFolder layout: val/<wnid>/<image>)")
        scan = scan_image_folder(val)
        if not scan.files:
            raise EvalError(f"{val}: no images (ImageFolder layout: val/<wnid>/<image>)")
        return Images(val, scan.files, str(val))
    if not Path(list_file).is_file():
        raise EvalError(f"--list {list_file}: no such file")
    entries = read_list(list_file)
    if not entries:
        raise EvalError(f"--list {list_file}: no images")
    rels = tuple(rel for rel, _ in entries)
    bad = next((r for r in rels if "/" not in r or r.startswith("/") or ".." in r.split("/")), None)
    if bad is not None:
        raise EvalError(f"--list {list_file}: entry {bad!r} is not wnid/file")
    folder = next((f for f in (root, root / "val", root / "train") if (f / rels[0]).is_file()), None)
    if folder is None:
        raise EvalError(f"--list {list_file}: its first image {rels[0]} is in none of {root}, {root / 'val'}, "
                        f"{root / 'train'}")
    check = check_files(folder, list(rels), header=False)
    if not check.ok:
        raise EvalError(f"--list {list_file}: {check.line('images')}")
    return Images(folder, rels, str(list_file))


# ----------------------------------------------------------------------------- evaluation


def _device(device: str | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise EvalError(f"--device: expected cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise EvalError("--device cuda: CUDA is not available here (torch.cuda.is_available() is False)")
    return torch.device(device)


class ProgressLine:
    """``evaluate NAME: 1280/50000 images (2.6 %), top-1 74.10 %, 412 img/s, ETA 2.0 min`` on stderr,
    every ``every`` batches and after the last one."""

    def __init__(self, what: str, total_images: int, total_batches: int, every: int | None = None,
                 stream=None, clock: Callable[[], float] = time.monotonic):
        self.what, self.total, self.batches = what, total_images, total_batches
        self.every = every or max(1, total_batches // 20)
        self.stream, self.clock, self.t0 = stream, clock, clock()

    def __call__(self, batch_no: int, images: int, correct1: int) -> None:
        if batch_no % self.every and batch_no != self.batches:
            return
        dt = max(self.clock() - self.t0, 1e-9)
        rate = images / dt
        eta = "done" if images >= self.total else f"ETA {format_eta((self.total - images) / max(rate, 1e-9))}"
        line = (f"evaluate {self.what}: {images}/{self.total} images ({100 * images / self.total:.1f} %), "
                f"top-1 {100 * correct1 / max(images, 1):.2f} %, {rate:.0f} img/s, {eta}")
        stream = self.stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass


def accuracy(net: torch.nn.Module, batches, device: torch.device, amp: bool = True,
             on_batch: Callable[[int, int, int], None] | None = None) -> tuple[int, int, int]:
    """(top-1 correct, top-5 correct, images) of ``net`` over ``(images, labels)`` batches."""
    net = net.to(device).eval()
    c1 = c5 = n = 0
    use_amp = amp and device.type == "cuda"
    with torch.inference_mode():
        for i, (x, y) in enumerate(batches, start=1):
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext():
                logits = net(x)
            top = logits.float().topk(min(max(TOPK), logits.shape[1]), dim=1).indices
            hit = top == y[:, None]
            c1 += int(hit[:, :1].any(1).sum())
            c5 += int(hit.any(1).sum())
            n += y.numel()
            if on_batch is not None:
                on_batch(i, n, c1)
    return c1, c5, n


def evaluate(spec: Spec, weights: str | os.PathLike, root: str | os.PathLike, list_file: str | None = None,
             wnids_file: str | None = None, batch: int = 100, workers: int | None = None,
             device: str | None = None, amp: bool = True, limit: int | None = None, seed: int = 0,
             progress: bool = True, stream=None) -> dict[str, Any]:
    """Top-1 and top-5 (%) of ``spec`` with ``weights`` on ``root``'s val images (or ``list_file``'s).

    ``limit``: a seeded, class-stratified subset of that many images (``data.stratified_subset``).
    Everything is checked (weights against the spec, images present, classes mapped) before the
    first forward pass.  Returns the result line's fields."""
    from torch.utils.data import DataLoader

    from tfnas_core.search.data import ListImages

    if batch < 1:
        raise EvalError(f"--batch: expected a positive integer, got {batch}")
    if limit is not None and limit < 1:
        raise EvalError(f"--limit: expected a positive integer, got {limit}")
    dev = _device(device)
    net = load_net(spec, weights)
    num_classes = net.classifier.out_features
    images = val_images(root, list_file)
    wnids = read_wnids(wnids_file) if wnids_file else None
    cmap = class_map(images.wnids, num_classes, wnids, images.source, f"--wnids {wnids_file}")
    labels = [cmap[w] for w in images.wnids]
    keep = stratified_subset(labels, limit, seed) if limit and limit < len(labels) else range(len(labels))
    entries = [(images.rels[i], labels[i]) for i in keep]
    workers = min(8, os.cpu_count() or 1) if workers is None else workers
    loader = DataLoader(ListImages(images.folder, entries, eval_transform()), batch_size=batch, shuffle=False,
                        num_workers=workers, pin_memory=dev.type == "cuda")
    line = ProgressLine(spec.name, len(entries), len(loader), stream=stream) if progress else None
    t0 = time.perf_counter()
    c1, c5, n = accuracy(net, loader, dev, amp, line)
    wall = time.perf_counter() - t0
    return {"spec": spec.name, "weights": str(weights), "top1": round(100 * c1 / n, 3),
            "top5": round(100 * c5 / n, 3) if num_classes >= max(TOPK) else None, "images": n,
            "classes": num_classes, "wall_s": round(wall, 2),
            "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
            "amp": amp and dev.type == "cuda", "images_from": images.source}


# ----------------------------------------------------------------------------- the zoo


def find_weights(weights_dir: str | os.PathLike, name: str) -> Path | None:
    """The weights of zoo net ``name`` in ``weights_dir``: the first of ``NAME.pth.tar``, ``NAME.pt``,
    ``NAME/model.pth.tar`` (``export --format official``), ``NAME/weights.pt`` (``import-official``),
    and the same with the torch.hub name (``tfnas_a``), that exists."""
    from tfnas_core.released.official import hub_name

    d = Path(weights_dir)
    for stem in (name, hub_name(name)):
        for rel in (f"{stem}.pth.tar", f"{stem}.pt", f"{stem}/model.pth.tar", f"{stem}/weights.pt"):
            if (d / rel).is_file():
                return d / rel
    return None


def zoo_accuracy(weights_dir: str | os.PathLike, root: str | os.PathLike, names: Sequence[str] | None = None,
                 **kw) -> "pd.DataFrame":
    """``evaluate`` for every zoo net (``names``, default all) with weights in ``weights_dir``
    (``find_weights``), beside the paper's top-1.  ``kw`` go to ``evaluate``; progress lines go to
    the process's real stderr (in a notebook: the terminal of papermill or the server's log, as
    ``progress.RunProgress``), not into the cell."""
    import pandas as pd

    from tfnas_core.arch import zoo

    kw.setdefault("stream", sys.__stderr__ or sys.stderr)

    if not Path(weights_dir).is_dir():
        raise EvalError(f"weights_dir {weights_dir}: no such folder")
    rows = []
    for name in names or zoo.names():
        w = find_weights(weights_dir, name)
        if w is None:
            continue
        r = evaluate(zoo.load(name), w, root, **kw)
        paper = zoo.PAPER[name].top1
        rows.append({"architecture": name, "weights": w.name if w.parent == Path(weights_dir) else f"{w.parent.name}/{w.name}",
                     "top1": r["top1"], "top5": r["top5"], "paper_top1": paper,
                     "top1_minus_paper": round(r["top1"] - paper, 3), "images": r["images"], "classes": r["classes"],
                     "wall_s": r["wall_s"], "device": r["device"]})
    if not rows:
        raise EvalError(f"weights_dir {weights_dir}: no weights for any of {', '.join(names or zoo.names())} "
                        f"(looked for NAME.pth.tar, NAME.pt, NAME/model.pth.tar, NAME/weights.pt)")
    return pd.DataFrame(rows)


__all__ = ["EvalError", "Images", "ProgressLine", "accuracy", "class_map", "eval_transform", "evaluate",
           "find_weights", "load_net", "read_wnids", "val_images", "zoo_accuracy"]
