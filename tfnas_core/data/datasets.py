"""Data for retraining: ImageNet (paper) here, Fashion-MNIST (mini) and synthetic (smoke) from
``in_memory``, and the entry point ``make`` that picks one.

The paper retrains on ImageNet with random-resized crop + horizontal flip (Appendix B); the
evaluation view is resize 256 / centre crop 224.  Small datasets are held whole in memory as
``uint8`` tensors and augmented a batch at a time with tensor ops (``in_memory``).

Sharding follows ``torch.utils.data.DistributedSampler`` for training (a permutation by
``seed + epoch``, split over ranks); validation is split ``rank::world`` without padding so the
all-reduced metrics count every image exactly once.

ImageNet is checked before any compute (``check_image_folder``: train/ and val/ hold the same
classes, every image opens; ``check_files`` is the same check for a list of files, which the
search uses).  The classifier gets as many outputs as the root has classes, and a run is keyed
by what the root holds (``image_folder_identity``), not by where it is mounted.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from tfnas_core.config import IMAGENET_ROOT
from tfnas_core.data.in_memory import (FMNIST_MEAN, FMNIST_STD, DataError, TensorBatches, fashion_mnist,
                                       synthetic)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

CROP_RATIO = 0.875  # evaluation: resize to round(224 / 0.875) = 256, then centre crop 224 (the original's test.py)


def eval_transform(resolution: int = 224):
    """Evaluation transform: resize the shorter side to ``round(resolution / 0.875)``, centre crop,
    ImageNet mean/std (the retraining's validation and ``evaluate`` both use it)."""
    from torchvision import transforms as T

    return T.Compose([T.Resize(int(round(resolution / CROP_RATIO))), T.CenterCrop(resolution), T.ToTensor(),
                      T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])


# ----------------------------------------------------------------------------- ImageNet


class LoaderBatches:
    """A ``DataLoader`` with ``set_epoch`` (for its ``DistributedSampler``) and ``len``."""

    def __init__(self, loader, sampler=None):
        self.loader, self.sampler = loader, sampler

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


# ImageNet's files are checked before any compute (``check_files``): every listed or found file
# must exist (one ``os.scandir`` per class folder) and open as an image (``PIL.Image.open``
# reads the header only, no decoding); a DataLoader worker that still meets a bad file raises
# ``ImageReadError`` naming it relative to the data root.

_CHECK_THREADS = min(8, os.cpu_count() or 1)  # header checks at once: helps on a cold or network disk (reads release the GIL)
_SHOWN = 3  # bad files named in a message


class ImageReadError(DataError):
    """An image file that cannot be read, named relative to its data root.

    Torch re-raises a DataLoader worker's exception as ``type(e)(traceback text)``, whose first
    line ("Caught ... in DataLoader worker process 0.") drops the file; this class puts the
    original message first again."""

    def __init__(self, msg: str = ""):
        if msg.startswith(f"Caught {type(self).__name__} "):
            tag = f"{type(self).__module__}.{type(self).__qualname__}: "
            own = [line[len(tag):] for line in msg.splitlines() if line.startswith(tag)]
            if own:
                msg = f"{own[-1]} (in a DataLoader worker)"
        super().__init__(msg)


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]


def open_rgb(root: Path, rel: str):
    """The image ``root/rel`` as an RGB ``PIL.Image`` (grayscale, CMYK, palette and PNG-named-JPEG
    files alike); ``ImageReadError`` naming ``rel`` when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(Path(root) / rel) as im:
            return im.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:  # UnidentifiedImageError is an OSError
        raise ImageReadError(f"image {rel} under {root}: cannot read ({_why(e)})") from None


class _FolderLoader:
    """``ImageFolder``'s ``loader``: ``open_rgb`` relative to the folder (picklable for workers)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def __call__(self, path: str):
        return open_rgb(self.root, os.path.relpath(path, self.root))


@dataclass(frozen=True)
class FileCheck:
    """Which of ``n`` files under ``root`` are missing and which cannot be opened as images."""

    root: Path
    n: int
    missing: tuple[str, ...]
    unreadable: tuple[tuple[str, str], ...]  # (relative path, why)
    seconds: float

    @property
    def bad(self) -> frozenset[str]:
        return frozenset(self.missing) | {rel for rel, _ in self.unreadable}

    @property
    def ok(self) -> bool:
        return not self.missing and not self.unreadable

    def line(self, what: str) -> str:
        """One line: how many files are missing / unreadable, the first few by name."""
        parts = []
        if self.missing:
            shown = ", ".join(self.missing[:_SHOWN]) + (", ..." if len(self.missing) > _SHOWN else "")
            parts.append(f"{len(self.missing)} of {self.n} files missing ({shown})")
        if self.unreadable:
            shown = ", ".join(f"{rel} ({why})" for rel, why in self.unreadable[:_SHOWN])
            parts.append(f"{len(self.unreadable)} unreadable ({shown}{', ...' if len(self.unreadable) > _SHOWN else ''})")
        return f"{what}: " + " and ".join(parts) + f" under {self.root}" if parts else f"{what}: all {self.n} files readable"


def _header_errors(root: Path, rels: list[str]) -> list[tuple[str, str]]:
    from PIL import Image

    out = []
    for rel in rels:
        try:
            with Image.open(root / rel):
                pass
        except Exception as e:  # noqa: BLE001 - any failure to identify the file makes it unreadable
            out.append((rel, _why(e)))
    return out


def check_files(root: str | Path, rels: list[str] | tuple[str, ...], header: bool = True,
                threads: int = _CHECK_THREADS) -> FileCheck:
    """Check the files ``rels`` (``/``-separated, relative to ``root``): existence by one
    ``os.scandir`` per folder, and with ``header`` that ``PIL.Image.open`` identifies each one
    (the header only), in ``threads`` threads.  Results keep the order of ``rels``."""
    from concurrent.futures import ThreadPoolExecutor

    t0 = time.perf_counter()
    root = Path(root)
    by_dir: dict[str, list[str]] = {}
    for rel in rels:
        by_dir.setdefault(rel.rpartition("/")[0], []).append(rel)
    missing: set[str] = set()
    unreadable: dict[str, str] = {}
    present: list[list[str]] = []
    for d, group in by_dir.items():
        try:
            with os.scandir(root / d if d else root) as it:
                names = {e.name for e in it if e.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            names = set()
        except OSError as e:
            unreadable.update((rel, _why(e)) for rel in group)
            continue
        here = [rel for rel in group if rel.rpartition("/")[2] in names]
        missing.update(rel for rel in group if rel.rpartition("/")[2] not in names)
        present.append(here)
    if header and present:
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for errors in pool.map(lambda g: _header_errors(root, g), present):
                unreadable.update(errors)
    return FileCheck(root, len(rels), tuple(r for r in rels if r in missing),
                     tuple((r, unreadable[r]) for r in rels if r in unreadable), round(time.perf_counter() - t0, 3))


@dataclass(frozen=True)
class FolderScan:
    """An ImageFolder split as torchvision sees it: class folders (sorted) and the image files
    (``class/file``, sorted, extensions ``IMG_EXTENSIONS`` in any case)."""

    folder: Path
    classes: tuple[str, ...]
    files: tuple[str, ...]

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self.classes, 0)
        for f in self.files:
            out[f.partition("/")[0]] += 1
        return out


_SCANS: dict[str, tuple[tuple, FolderScan]] = {}


def _image_names(folder: Path, prefix: str) -> list[str]:
    from torchvision.datasets.folder import IMG_EXTENSIONS

    out = []
    with os.scandir(folder) as it:
        for e in it:
            if e.is_dir():
                out.extend(_image_names(Path(e.path), f"{prefix}{e.name}/"))  # ImageFolder walks sub-folders too
            elif e.name.lower().endswith(IMG_EXTENSIONS) and e.is_file():
                out.append(prefix + e.name)
    return out


def scan_image_folder(folder: str | Path) -> FolderScan:
    """The classes and image files of an ImageFolder split; remembered per process while the
    folder and its class folders keep their modification times (a file added or removed in a
    class folder changes its time)."""
    folder = Path(folder)
    try:
        with os.scandir(folder) as it:
            subdirs = sorted((e.name, e.stat().st_mtime_ns) for e in it if e.is_dir())
        stamp = (folder.stat().st_mtime_ns, tuple(subdirs))
    except OSError as e:
        raise DataError(f"{folder}: cannot list ({_why(e)})") from None
    key = str(folder.resolve())
    hit = _SCANS.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    classes = tuple(name for name, _ in subdirs)
    files: list[str] = []
    for c in classes:
        try:
            files.extend(_image_names(folder / c, f"{c}/"))
        except OSError as e:
            raise DataError(f"{folder / c}: cannot list ({_why(e)})") from None
    scan = FolderScan(folder, classes, tuple(sorted(files)))
    _SCANS[key] = (stamp, scan)
    return scan


def sha256_lines(lines) -> str:
    """SHA-256 of ``lines``, each ended by a newline (sorted names, as keys hold them)."""
    return hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()


def image_folder_identity(root: str | Path) -> dict | None:
    """What an ImageNet root holds, not where it is: per split the number of classes and files
    and the SHA-256 of the sorted class list and of the sorted ``class/file`` names.  ``None``
    when ``root`` has no train/ and val/ (the run will say so when it starts)."""
    root = Path(root)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        return None
    out = {}
    for split in ("train", "val"):
        s = scan_image_folder(root / split)
        out[split] = {"classes": len(s.classes), "classes_sha256": sha256_lines(s.classes),
                      "files": len(s.files), "files_sha256": sha256_lines(s.files)}
    return out


def check_image_folder(root: Path, header: bool = True) -> tuple[FolderScan, FolderScan]:
    """train/ and val/ of an ImageNet root: the same classes, none empty, every image readable;
    ``DataError`` with one line otherwise."""
    tr, va = scan_image_folder(root / "train"), scan_image_folder(root / "val")
    if not tr.classes:
        raise DataError(f"{root / 'train'}: no class folders (ImageFolder layout: train/<class>/<image>)")
    if tr.classes != va.classes:
        only_t, only_v = sorted(set(tr.classes) - set(va.classes)), sorted(set(va.classes) - set(tr.classes))
        which = (f"{len(only_t)} only in train/ (first {only_t[0]})" if only_t else "") + \
            ("; " if only_t and only_v else "") + (f"{len(only_v)} only in val/ (first {only_v[0]})" if only_v else "")
        raise DataError(f"{root}: val/ has other classes than train/ ({len(va.classes)} vs {len(tr.classes)}: {which})")
    for s in (tr, va):
        empty = [c for c, n in s.counts().items() if n == 0]
        if empty:
            raise DataError(f"{s.folder}: {len(empty)} class folder(s) without images (first {empty[0]})")
    if header:
        rels = [f"train/{f}" for f in tr.files] + [f"val/{f}" for f in va.files]
        check = check_files(root, rels, header=True)
        if not check.ok:
            raise DataError(check.line(f"ImageNet {root}") + "; remove or replace them")
    return tr, va


def stratified_subset(labels, n: int, seed: int) -> list[int]:
    """``n`` indices of ``labels``, class-stratified (per-class counts differ by at most one) and
    seeded: each class's indices in a seeded order, then one of every class in turn (classes in a
    seeded order); returned sorted."""
    labels = np.asarray(labels)
    if n >= len(labels):
        return list(range(len(labels)))
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pools = [np.flatnonzero(labels == c) for c in classes[rng.permutation(len(classes))]]
    pools = [p[rng.permutation(len(p))] for p in pools]
    picked: list[int] = []
    depth = 0
    while len(picked) < n:
        for p in pools:
            if depth < len(p):
                picked.append(int(p[depth]))
                if len(picked) == n:
                    break
        depth += 1
    return sorted(picked)


def imagenet(root: str | Path | None, resolution: int, batch: int, eval_batch: int, workers: int,
             rank: int, world: int, seed: int, min_scale: float, train_subset=None, val_subset=None,
             check: bool = True):
    """ImageNet ImageFolder loaders: random-resized crop + flip / resize + centre crop.

    ``root`` holds train/ and val/ with the same class folders (any number of classes: the head
    gets ``len(classes)``); ``check`` first checks every file (``check_image_folder``).
    ``val_subset``: a seeded, class-stratified choice of that many validation images.
    Returns (train, val, number of classes, 3)."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms as T

    root = Path(root or IMAGENET_ROOT)
    if not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"ImageNet not found: looked for {root / 'train'} and {root / 'val'} "
                        "(ImageFolder layout, one folder per class); get ILSVRC2012 from "
                        "https://image-net.org and pass --set data_root=DIR")
    tr_scan, _ = check_image_folder(root, header=check)
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(resolution, scale=(min_scale, 1.0)),
                          T.RandomHorizontalFlip(), T.ToTensor(), norm])
    val_tf = eval_transform(resolution)
    train_ds = datasets.ImageFolder(str(root / "train"), train_tf, loader=_FolderLoader(root))
    val_ds = datasets.ImageFolder(str(root / "val"), val_tf, loader=_FolderLoader(root))
    if train_subset:
        g = torch.Generator().manual_seed(seed)
        train_ds = Subset(train_ds, torch.randperm(len(train_ds), generator=g)[:train_subset].tolist())
    keep = stratified_subset(val_ds.targets, val_subset, seed) if val_subset else range(len(val_ds))
    val_ds = Subset(val_ds, list(keep)[rank::world])
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=True)
    kw = dict(num_workers=workers, pin_memory=torch.cuda.is_available(), persistent_workers=workers > 0)
    train = DataLoader(train_ds, batch_size=batch, sampler=sampler, drop_last=True, **kw)
    val = DataLoader(val_ds, batch_size=eval_batch, shuffle=False, **kw)
    return LoaderBatches(train, sampler), LoaderBatches(val), len(tr_scan.classes), 3


def resume_free_keys(cfg) -> frozenset[str]:
    """Settings of a retraining that say where its data lies, not what it is: they may change
    between an interrupted run and its resumption (the run key holds ``image_folder_identity``)."""
    return frozenset({"data_root"}) if cfg.dataset == "imagenet" else frozenset()


# ----------------------------------------------------------------------------- entry point


@dataclass
class Data:
    train: object  # TensorBatches | LoaderBatches
    val: object
    num_classes: int
    in_chans: int
    notes: tuple[str, ...] = ()  # lines the run should log (an ImageNet root of other than 1000 classes ...)


def make(cfg, rank: int = 0, world: int = 1) -> Data:
    """Train/validation batches of ``cfg.dataset`` for this rank (``batch_size`` is global)."""
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} ranks")
    batch = cfg.batch_size // world
    eval_batch = max(1, cfg.eval_batch_size // world)
    if cfg.dataset == "imagenet":
        tr, va, nc, ch = imagenet(cfg.data_root, cfg.resolution, batch, eval_batch, cfg.num_workers, rank,
                                  world, cfg.seed, cfg.crop_min_scale, cfg.train_subset, cfg.val_subset)
        notes = () if nc == 1000 else (f"ImageNet root {cfg.data_root}: {nc} classes (not ImageNet-1k's 1000): "
                                       f"the classifier gets {nc} outputs",)
        return Data(tr, va, nc, ch, notes)
    if cfg.dataset == "fashion-mnist":
        d = fashion_mnist(cfg.data_root)
        tx, ty, vx, vy = d["train_x"], d["train_y"], d["test_x"], d["test_y"]
        mean, std, nc = FMNIST_MEAN, FMNIST_STD, 10
    elif cfg.dataset == "synthetic":
        tx, ty = synthetic(cfg.train_subset or 1024, size=cfg.resolution, seed=cfg.seed)
        vx, vy = synthetic(cfg.val_subset or 512, size=cfg.resolution, seed=cfg.seed + 1)
        mean, std, nc = (0.5,), (0.25,), 10
    else:
        raise ValueError(f"unknown dataset {cfg.dataset!r}")
    if cfg.train_subset and cfg.train_subset < len(ty):
        keep = torch.randperm(len(ty), generator=torch.Generator().manual_seed(cfg.seed))[:cfg.train_subset]
        tx, ty = tx[keep], ty[keep]
    if cfg.val_subset and cfg.val_subset < len(vy):
        vx, vy = vx[:cfg.val_subset], vy[:cfg.val_subset]
    kw = dict(resolution=cfg.resolution, mean=mean, std=std, rank=rank, world=world, seed=cfg.seed,
              min_scale=cfg.crop_min_scale)
    if len(ty) // world < batch:
        raise ValueError(f"{len(ty)} training images cannot fill one batch of {batch} per rank")
    return Data(TensorBatches(tx, ty, batch, True, **kw), TensorBatches(vx, vy, eval_batch, False, **kw),
                nc, tx.shape[1])
