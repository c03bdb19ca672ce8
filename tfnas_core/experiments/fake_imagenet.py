"""A synthetic ImageNet in the official layout, written in seconds: ``fake-imagenet DIR``.

The paper profile reads ImageNet twice: the search through the official ImageNet-100 lists
(``wnid/file.JPEG label``, both lists name files under ``train/``) and the retraining through an
ImageFolder root with ``train/`` and ``val/``.  ``make(root)`` writes a stand-in for both:

* ``root/train/<wnid>/<file>.JPEG`` for every file either official list names (127,720 files,
  the 100 official wnids);
* ``root/val/<wnid>/ILSVRC2012_val_NNNNNNNN.JPEG``, ``val_per_class`` images per class;
* ``root/fake_imagenet.json``: the settings, the counts and the odd files below.

Each class has a pattern of its own (one of 10 hues x one of 10 stripe/checker patterns, by its
index in sorted-wnid order, which is the official label) with pixel noise, so a network can
learn something.  Only ``distinct`` images per class are encoded; every other listed file is a
hard link to one of them (``os.link``; a copy where the file system refuses links), which is
what makes 127,720 files take seconds.  Validation images are encoded one by one.

Real ImageNet is not all RGB JPEG: it holds grayscale JPEGs, CMYK JPEGs and a PNG behind a
``.JPEG`` name.  ``odd`` files of each kind are written in train (listed files) and in val, so
the loaders' ``convert("RGB")`` is exercised; ``FakeImageNet.odd`` names them.

Written atomically: everything goes into ``ROOT.partial-<random>`` beside ``root`` and is renamed
to ``root`` at the end; a failure removes the partial folder.  A non-empty ``root`` is refused.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from tfnas_core.data.datasets import DataError

OFFICIAL_TRAIN_LIST = "../shared/reference/official/ImageNet-100-effb0_train_cls_ratio0.8.txt"
OFFICIAL_VAL_LIST = "../shared/reference/official/ImageNet-100-effb0_val_cls_ratio0.8.txt"
ODD_KINDS = ("gray", "cmyk", "png")  # grayscale JPEG, CMYK JPEG, a PNG named .JPEG
MANIFEST = "fake_imagenet.json"


@dataclass
class FakeImageNet:
    """What ``make`` wrote (``root`` relative paths in ``odd``: ``train/wnid/file`` / ``val/wnid/file``)."""

    root: Path
    classes: list[str]
    n_train: int
    n_val: int
    encoded: int  # images encoded (the rest are links or copies)
    linked: int
    copied: int
    seconds: float
    odd: dict[str, list[str]] = field(default_factory=dict)


def class_image(label: int, rng: np.random.Generator, size: int, aspect: float = 1.0) -> np.ndarray:
    """An RGB uint8 image of class ``label``: hue ``label % 10``, pattern ``label // 10`` (stripes
    of 4 orientations and 2 frequencies, checkers at 2 scales), plus noise."""
    h, w = size, max(8, int(round(size * aspect)))
    hue = (label % 10) / 10.0
    base = np.array([0.5 + 0.5 * np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)])  # a colour wheel
    yy, xx = np.mgrid[0:h, 0:w] / size
    kind, freq = divmod(label // 10, 2)
    f = (3.0, 6.0)[freq]
    if kind == 0:
        wave = np.sin(2 * np.pi * f * yy)
    elif kind == 1:
        wave = np.sin(2 * np.pi * f * xx)
    elif kind == 2:
        wave = np.sin(2 * np.pi * f * (xx + yy))
    elif kind == 3:
        wave = np.sin(2 * np.pi * f * (xx - yy))
    else:
        wave = np.sign(np.sin(2 * np.pi * f * xx) * np.sin(2 * np.pi * f * yy))
    img = 255 * (0.35 + 0.45 * base[None, None, :] * (0.6 + 0.4 * wave[..., None]))
    img = img + rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(arr: np.ndarray, path: Path, kind: str = "rgb") -> None:
    from PIL import Image

    im = Image.fromarray(arr, "RGB")
    if kind == "gray":
        im.convert("L").save(path, "JPEG", quality=90)
    elif kind == "cmyk":
        im.convert("CMYK").save(path, "JPEG", quality=90)
    elif kind == "png":
        im.save(path, "PNG")  # behind a .JPEG name, as n02105855_2933.JPEG in real ImageNet
    else:
        im.save(path, "JPEG", quality=90)


def _read_lists(train_list: str | Path, val_list: str | Path) -> dict[str, list[str]]:
    """wnid -> the file names both lists name under it (sorted), checking one label per wnid."""
    from tfnas_core.search.data import read_list

    by_wnid: dict[str, set[str]] = {}
    label_of: dict[str, int] = {}
    for path in (train_list, val_list):
        for rel, label in read_list(path):
            wnid, sep, name = rel.partition("/")
            if not sep or not name or "/" in name or name in (".", "..") or wnid in (".", ".."):
                raise DataError(f"{path}: entry {rel!r} is not 'wnid/file'")
            if label_of.setdefault(wnid, label) != label:
                raise DataError(f"{path}: {wnid} has labels {label_of[wnid]} and {label}")
            by_wnid.setdefault(wnid, set()).add(name)
    return {w: sorted(names) for w, names in sorted(by_wnid.items())}


def _link(src: Path, dst: Path, state: dict) -> None:
    if state["link"]:
        try:
            os.link(src, dst)
            state["linked"] += 1
            return
        except OSError:  # no hard links here (EXDEV, EPERM, EMLINK ...): copy from now on
            state["link"] = False
    shutil.copyfile(src, dst)
    state["copied"] += 1


def _odd_slots(n_classes: int, per_kind: int) -> dict[int, str]:
    """class index -> odd kind, spread over the classes (at most one odd file per class)."""
    slots: dict[int, str] = {}
    for j, kind in enumerate(ODD_KINDS):
        for i in range(per_kind):
            c = ((j * per_kind + i) * 37 + 5) % n_classes
            while c in slots and len(slots) < n_classes:
                c = (c + 1) % n_classes
            if c not in slots:
                slots[c] = kind
    return slots


def make(root: str | Path, train_list: str | Path = OFFICIAL_TRAIN_LIST, val_list: str | Path = OFFICIAL_VAL_LIST,
         val_per_class: int = 10, size: int = 32, distinct: int = 4, odd: int = 2, seed: int = 0,
         classes: Sequence[str] | None = None) -> FakeImageNet:
    """Write a fake ImageNet at ``root`` (see the module docstring) and say what was written.

    ``classes``: only these wnids (default: every wnid the lists name); ``odd``: files of each odd
    kind (grayscale, CMYK, PNG-as-JPEG) in train and again in val.  Refuses (``DataError``) a
    non-empty ``root``, an unreadable list, or values out of range.
    """
    from tfnas_core.search.config import resolve_path

    t0 = time.perf_counter()
    for name, value, lo in (("val_per_class", val_per_class, 1), ("size", size, 8), ("distinct", distinct, 1),
                            ("odd", odd, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    root = Path(root)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise DataError(f"{root} exists and is not an empty folder; fake-imagenet writes a new one")
    files = _read_lists(resolve_path(str(train_list)), resolve_path(str(val_list)))
    if classes is not None:
        unknown = sorted(set(classes) - set(files))
        if unknown:
            raise DataError(f"class {unknown[0]} is not named by the lists" + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
        files = {w: files[w] for w in sorted(set(classes))}
    if not files:
        raise DataError("the lists name no files")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{root.name}.partial-", dir=root.parent))
    try:
        result = _write(tmp, files, val_per_class, size, distinct, odd, seed)
        manifest = {"format": "tfnas-fake-imagenet/1", "classes": len(files), "n_train": result.n_train,
                    "n_val": result.n_val, "size": size, "distinct": distinct, "val_per_class": val_per_class,
                    "seed": seed, "odd": result.odd}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        if root.is_dir():
            root.rmdir()  # empty (checked above); refuses if someone wrote into it meanwhile
        os.rename(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.root, result.seconds = root, round(time.perf_counter() - t0, 3)
    return result


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def _write(out: Path, files: dict[str, list[str]], val_per_class: int, size: int, distinct: int, odd: int,
           seed: int) -> FakeImageNet:
    rng = np.random.default_rng(seed)
    state = {"link": True, "linked": 0, "copied": 0}
    encoded, n_train, n_val = 0, 0, 0
    odd_train, odd_val = _odd_slots(len(files), odd), _odd_slots(len(files), odd)
    odd_files: dict[str, list[str]] = {k: [] for k in ODD_KINDS}
    aspects = (1.0, 4 / 3, 3 / 4, 1.25)
    for c, (wnid, names) in enumerate(files.items()):
        d = out / "train" / wnid
        d.mkdir(parents=True)
        sources = []
        for i, name in enumerate(names):
            if i < distinct:
                _save(class_image(c, rng, size, aspects[i % len(aspects)]), d / name)
                encoded += 1
                sources.append(d / name)
            elif i == distinct and odd_train.get(c):
                kind = odd_train[c]
                _save(class_image(c, rng, size), d / name, kind)
                encoded += 1
                odd_files[kind].append(f"train/{wnid}/{name}")
            else:
                _link(sources[i % len(sources)], d / name, state)
            n_train += 1
        v = out / "val" / wnid
        v.mkdir(parents=True)
        for i in range(val_per_class):
            name = f"ILSVRC2012_val_{c * val_per_class + i + 1:08d}.JPEG"
            kind = odd_val.get(c, "rgb") if i == 0 else "rgb"
            _save(class_image(c, rng, size, aspects[i % len(aspects)]), v / name, kind)
            encoded += 1
            n_val += 1
            if kind != "rgb":
                odd_files[kind].append(f"val/{wnid}/{name}")
    return FakeImageNet(out, list(files), n_train, n_val, encoded, state["linked"], state["copied"], 0.0, odd_files)


def summary(r: FakeImageNet) -> dict:
    return {**asdict(r), "root": str(r.root)}


__all__ = ["FakeImageNet", "MANIFEST", "ODD_KINDS", "OFFICIAL_TRAIN_LIST", "OFFICIAL_VAL_LIST", "class_image", "make",
           "summary"]
