"""Search data: the 80/20 weights/architecture split (paper Appendix B) and its batches.

Appendix B: the supernet weights ω are trained on 80 % of the training set, the architecture
parameters α, β on the remaining 20 %.  The split is a pure function of the labels and the
seed (per class: a seeded shuffle, the first ``round(ratio · n_c)`` images to the weights), so
that both parts keep the class balance, as the official ``cls_ratio0.8`` lists do.  It is written
once to ``<split_dir>/<dataset>-<seed>.json`` with a SHA-256 of its content; a later run reads
that file (checking the hash) instead of recomputing, so a split in git is the split used.

Datasets:

* ``imagenet-100`` - the paper's 100 classes through the official list files (``wnid/file.JPEG
  label`` per line; train list = weights split, val list = arch split) with images under
  ``data_root`` (an ImageNet root holding ``train/``, or that ImageFolder-style train folder itself).  Every
  listed file is checked before any compute (exists, opens as an image); a missing or unreadable
  one stops the search unless ``missing_ok`` (then the search uses the rest).  The split record
  holds the two lists' SHA-256 and sizes instead of indices (with ``missing_ok``, also what was
  left out and the SHA-256 of the lists used); it is written into the run folder
  (``split.json``), not into the repository.  The run key names the lists' content
  (``list_identity``), not where ImageNet is mounted.
* ``fashion-mnist`` (``data.fashion_mnist``), ``cifar10`` / ``cifar100`` (torchvision,
  ``download=False`` unless ``download=true``), ``synthetic`` (``data.synthetic``, tests).

``subset`` takes ``round(subset · ratio)`` images of the weights part and the rest of the arch
part, each a seeded choice *after* the split, so the split file does not depend on it.

``select_classes`` is Appendix B's class-selection procedure as a pure function of per-class
accuracies (the paper used a pre-trained EfficientNet-B0's top-1 per class on ImageNet).
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch

from tfnas_core.config import IMAGENET_ROOT
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.checks import parse_json
from tfnas_core.data.datasets import (FMNIST_MEAN, FMNIST_STD, IMAGENET_MEAN, IMAGENET_STD, DataError, LoaderBatches, TensorBatches,
                   check_files, open_rgb, sha256_lines)
from tfnas_core.search.config import SearchConfig, resolve_path

SPLIT_FORMAT = "tfnas-split/1"
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
SYNTHETIC_STATS = ((0.5,), (0.25,))
IMAGENET100_CLASSES = 100


# ----------------------------------------------------------------------------- class selection


def select_classes(accuracies: Mapping[str, float], groups: int = 100, seed: int = 0) -> list[str]:
    """Appendix B's ImageNet-100 procedure: rank the classes by accuracy, cut the ranking into
    ``groups`` consecutive groups (sizes differ by at most one when they do not divide), and
    pick one class uniformly at random from each group (``random.Random(seed)``).

    Ties in accuracy are broken by class name, so the result depends only on the inputs.
    Returns the chosen classes in ranking order (most accurate group first).
    """
    if not 1 <= groups <= len(accuracies):
        raise ValueError(f"cannot form {groups} groups from {len(accuracies)} classes")
    for name, acc in accuracies.items():
        if not np.isfinite(acc):
            raise ValueError(f"class {name!r}: accuracy {acc} is not a number")
    ranked = sorted(accuracies, key=lambda c: (-float(accuracies[c]), str(c)))
    rng = random.Random(seed)
    return [rng.choice(list(group)) for group in np.array_split(np.array(ranked, dtype=object), groups)]


# ----------------------------------------------------------------------------- the split


def split_indices(labels: Sequence[int] | np.ndarray, ratio: float = 0.8, seed: int = 0) -> tuple[list[int], list[int]]:
    """Per-class seeded 80/20 split of ``range(len(labels))``: (weights, arch), each sorted."""
    labels = np.asarray(labels)
    if not 0 < ratio < 1:
        raise ValueError(f"split ratio must be in (0, 1), got {ratio}")
    rng = np.random.default_rng(seed)
    weights, arch = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        k = int(round(ratio * len(idx)))
        weights.extend(idx[:k].tolist())
        arch.extend(idx[k:].tolist())
    return sorted(weights), sorted(arch)


def content_hash(content: Mapping) -> str:
    """SHA-256 of the canonical JSON of ``content`` (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class Split:
    path: Path | None  # None: not written (imagenet-100 without a run folder)
    sha256: str
    weights: tuple[int, ...]  # indices into the pool (empty for imagenet-100: lists instead)
    arch: tuple[int, ...]
    content: dict


def _write_or_check(path: Path, content: dict) -> str:
    """Write ``content`` with its hash, or check that the file there holds exactly it."""
    digest = content_hash(content)
    if path.is_file():
        try:
            stored = parse_json(path.read_bytes(), str(path), DataError)
            body = {k: v for k, v in stored.items() if k != "sha256"}
        except (DataError, AttributeError) as e:
            why = f" ({str(e).removeprefix(f'{path}: ')})" if isinstance(e, DataError) else ""
            raise DataError(f"{path}: not a split file{why}; delete it to recreate") from None
        if content_hash(body) != stored.get("sha256"):
            raise DataError(f"{path}: content does not match its sha256 (edited or corrupt); delete it to recreate")
        if stored["sha256"] != digest:
            raise DataError(f"{path} holds a different split than seed/ratio/data give now "
                            f"(sha256 {stored['sha256'][:12]} vs {digest[:12]}); delete it or use another split_dir")
        return digest
    atomic_write_text(path, json.dumps({**content, "sha256": digest}, sort_keys=True) + "\n")
    return digest


def compute_split(name: str, labels: Sequence[int] | np.ndarray, ratio: float, seed: int,
               split_dir: str | Path) -> tuple[Path, dict, list[int], list[int]]:
    """The split of an in-memory pool, computed but not written: (path, content, weights, arch)."""
    weights, arch = split_indices(labels, ratio, seed)
    content = {"format": SPLIT_FORMAT, "dataset": name, "seed": int(seed), "ratio": float(ratio),
               "n": int(len(labels)), "n_weights": len(weights), "n_arch": len(arch), "arch": arch,
               "method": "per class: numpy default_rng(seed) permutation, first round(ratio*n_c) to weights"}
    return Path(split_dir) / f"{name}-{seed}.json", content, weights, arch


def make_split(name: str, labels: Sequence[int] | np.ndarray, ratio: float, seed: int, split_dir: str | Path) -> Split:
    """The split of an in-memory pool, written to / checked against ``split_dir/<name>-<seed>.json``.

    Only the arch indices are stored; the weights are the complement (``n`` is stored).
    """
    path, content, weights, arch = compute_split(name, labels, ratio, seed, split_dir)
    return Split(path, _write_or_check(path, content), tuple(weights), tuple(arch), content)


def _subset(idx: Sequence[int], k: int, seed: int) -> list[int]:
    if k >= len(idx):
        return list(idx)
    rng = np.random.default_rng(seed)
    return sorted(np.asarray(idx)[rng.permutation(len(idx))[:k]].tolist())


# ----------------------------------------------------------------------------- pools


def _cifar(cfg: SearchConfig) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    from torchvision import datasets

    root = Path(cfg.data_root or "data")
    cls, folder = (datasets.CIFAR10, "cifar-10-batches-py") if cfg.dataset == "cifar10" else \
        (datasets.CIFAR100, "cifar-100-python")
    try:
        ds = cls(str(root), train=True, download=cfg.download)
    except RuntimeError:
        raise DataError(f"{cfg.dataset} not found in {root / folder}; pass --set download=true to let torchvision "
                        f"fetch it there, or --set data_root=DIR where {folder}/ is") from None
    x = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()
    y = torch.as_tensor(ds.targets, dtype=torch.long)
    return x, y, *CIFAR_STATS[cfg.dataset]


def memory_pool(cfg: SearchConfig) -> tuple[torch.Tensor, torch.Tensor, tuple, tuple]:
    """(uint8 images [N,C,H,W], labels, mean, std) of an in-memory dataset's training set."""
    if cfg.dataset == "fashion-mnist":
        from tfnas_core.data.datasets import fashion_mnist

        d = fashion_mnist(cfg.data_root)
        return d["train_x"], d["train_y"], FMNIST_MEAN, FMNIST_STD
    if cfg.dataset in CIFAR_STATS:
        return _cifar(cfg)
    if cfg.dataset == "synthetic":
        from tfnas_core.data.datasets import synthetic

        x, y = synthetic(cfg.synthetic_n, num_classes=10, size=cfg.resolution, seed=cfg.seed)
        return x, y, *SYNTHETIC_STATS
    raise ValueError(f"dataset {cfg.dataset!r} is not an in-memory dataset")


def split_name(cfg: SearchConfig) -> str:
    return f"synthetic{cfg.synthetic_n}" if cfg.dataset == "synthetic" else cfg.dataset


# ----------------------------------------------------------------------------- batches


@dataclass
class SearchData:
    """Batches of one search: ``weights`` (80 %, augmented), ``arch`` (20 %, augmented, cycled by
    ``arch_stream``) and ``val`` (the arch split without augmentation, for the supernet
    validation the released code logs)."""

    weights: object  # TensorBatches | LoaderBatches: set_epoch(e), len(), iter()
    arch: object
    val: object
    num_classes: int
    in_chans: int
    split: Split
    n_weights: int
    n_arch: int

    def arch_stream(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Endless arch batches for ``epoch``: the arch split reshuffled on every pass, a function
        of ``epoch`` alone (so a resumed run sees the same batches)."""
        cycle = 0
        while True:
            self.arch.set_epoch(epoch * 1000 + cycle)
            n = 0
            for batch in self.arch:
                n += 1
                yield batch
            if n == 0:
                raise DataError(f"the arch split ({self.n_arch} images) cannot fill one batch")
            cycle += 1


def make(cfg: SearchConfig, run_dir: str | Path | None = None) -> SearchData:
    """The search data of ``cfg`` (writes/checks the split file first).

    imagenet-100: every listed file is checked first (``data.check_files``); the split record goes
    to ``run_dir/split.json`` (with ``missing_ok``, beside the lists used, ``weights_list.txt`` and
    ``arch_list.txt``), and nowhere without ``run_dir``.  Other datasets: ``split_dir`` as before."""
    if cfg.dataset == "imagenet-100":
        return _imagenet100(cfg, run_dir)
    x, y, mean, std = memory_pool(cfg)
    path, content, w_all, a_all = compute_split(split_name(cfg), y.numpy(), cfg.split_ratio, cfg.seed, cfg.split_dir)
    w_idx, a_idx = w_all, a_all
    if cfg.subset:
        k = int(round(cfg.subset * cfg.split_ratio))
        w_idx, a_idx = _subset(w_idx, k, cfg.seed + 1), _subset(a_idx, cfg.subset - k, cfg.seed + 2)
    wi, ai = torch.tensor(w_idx, dtype=torch.long), torch.tensor(a_idx, dtype=torch.long)
    if len(wi) < cfg.batch_size or len(ai) < cfg.batch_size:  # checked before the split file is written
        raise DataError(f"split of {len(wi)} weights / {len(ai)} arch images cannot fill a batch of {cfg.batch_size}")
    split = Split(path, _write_or_check(path, content), tuple(w_all), tuple(a_all), content)
    kw = dict(resolution=cfg.resolution, mean=mean, std=std, min_scale=cfg.crop_min_scale)
    weights = TensorBatches(x[wi], y[wi], cfg.batch_size, True, seed=cfg.seed, **kw)
    arch = TensorBatches(x[ai], y[ai], cfg.batch_size, True, seed=cfg.seed + 7, **kw)
    val = TensorBatches(x[ai], y[ai], cfg.batch_size, False, seed=cfg.seed, **kw)
    return SearchData(weights, arch, val, int(y.max()) + 1, x.shape[1], split, len(wi), len(ai))


# ----------------------------------------------------------------------------- ImageNet-100


def read_list(path: str | Path) -> list[tuple[str, int]]:
    """An official list file: ``wnid/filename.JPEG label`` per line."""
    p = resolve_path(str(path))
    if not p.is_file():
        raise DataError(f"ImageNet-100 list file not found: {p} (set train_list / val_list)")
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start})") from None
    out = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{p}:{n}: expected 'wnid/file.JPEG label', got {line!r}")
        out.append((parts[0], int(parts[1])))
    return out


class ListImages(torch.utils.data.Dataset):
    """Images named by a list file under an ImageFolder-style root; a file that cannot be read
    raises ``data.ImageReadError`` naming it (relative to ``root``), from a loader worker too."""

    def __init__(self, root: Path, entries: Sequence[tuple[str, int]], transform):
        self.root, self.entries, self.transform = root, list(entries), transform

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int):
        rel, label = self.entries[i]
        return self.transform(open_rgb(self.root, rel)), label


# Settings of an imagenet-100 search that say where its data lies, not what it is: the run key
# holds ``list_identity`` instead, and they may change between an interrupted run and its resumption.
LOCATION_KEYS = frozenset({"data_root", "train_list", "val_list", "split_dir"})


def resume_free_keys(cfg: SearchConfig) -> frozenset[str]:
    """``LOCATION_KEYS`` for imagenet-100 (the checkpoint's split hash still guards the content); none otherwise."""
    return LOCATION_KEYS if cfg.dataset == "imagenet-100" else frozenset()


def train_root(cfg: SearchConfig) -> Path:
    """The folder the lists' ``wnid/file`` entries are relative to: ``data_root/train`` when it exists, else ``data_root``."""
    root = Path(cfg.data_root or IMAGENET_ROOT)
    return root / "train" if (root / "train").is_dir() else root


def _sha256_file(path: str) -> str | None:
    p = resolve_path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def _rels(cfg: SearchConfig) -> list[str]:
    return [rel for rel, _ in read_list(cfg.train_list) + read_list(cfg.val_list)]


def _list_text(entries: Sequence[tuple[str, int]]) -> str:
    return "".join(f"{rel} {c}\n" for rel, c in entries)


def check_listed(cfg: SearchConfig, train: Sequence[tuple[str, int]] | None = None,
                 val: Sequence[tuple[str, int]] | None = None, header: bool = True):
    """``data.check_files`` over every file the two lists name (read from ``cfg`` unless given),
    under ``train_root(cfg)``: what a search checks before any compute, and make's preflight too."""
    train = read_list(cfg.train_list) if train is None else train
    val = read_list(cfg.val_list) if val is None else val
    return check_files(train_root(cfg), [rel for rel, _ in train] + [rel for rel, _ in val], header=header)


def list_identity(cfg: SearchConfig) -> dict:
    """What an imagenet-100 search reads, not where: the two lists' SHA-256 (``None`` for a list
    not found; the run will say so), and with ``missing_ok`` the number and SHA-256 of the listed
    files present under the root (existence only: one ``os.scandir`` per class folder)."""
    out = {"train_list_sha256": _sha256_file(cfg.train_list), "val_list_sha256": _sha256_file(cfg.val_list)}
    if cfg.missing_ok and None not in out.values():
        check = check_listed(cfg, header=False)
        gone = set(check.missing)
        present = [rel for rel in sorted(_rels(cfg)) if rel not in gone]
        out["present"] = {"files": len(present), "sha256": sha256_lines(present)}
    return out


def _imagenet100(cfg: SearchConfig, run_dir: str | Path | None = None) -> SearchData:
    from torch.utils.data import DataLoader, DistributedSampler, Subset
    from torchvision import transforms as T

    train, val = read_list(cfg.train_list), read_list(cfg.val_list)
    for path, entries in ((cfg.train_list, train), (cfg.val_list, val)):
        if not entries:
            raise DataError(f"{resolve_path(path)}: an empty ImageNet-100 list")
        bad = next((f"{rel} {c}" for rel, c in entries if not 0 <= c < IMAGENET100_CLASSES), None)
        if bad is not None:
            raise DataError(f"{resolve_path(path)}: entry {bad!r} has a label outside 0..{IMAGENET100_CLASSES - 1}")
    root = train_root(cfg)
    first = root / train[0][0]
    if not first.parent.is_dir():
        raise DataError(f"ImageNet-100 images not found: looked for {first}; data_root must be an ImageFolder-style "
                        "ImageNet train root (one folder per wnid), or its parent holding train/ - get ILSVRC2012 from https://image-net.org and "
                        "pass --set data_root=DIR")
    check = check_listed(cfg, train, val)  # before any compute
    content = {"format": SPLIT_FORMAT, "dataset": "imagenet-100", "seed": int(cfg.seed),
               "train_list": Path(cfg.train_list).name, "val_list": Path(cfg.val_list).name,
               "train_sha256": _sha256_file(cfg.train_list), "val_sha256": _sha256_file(cfg.val_list),
               "n_weights": len(train), "n_arch": len(val), "classes": len({c for _, c in train}),
               "method": "official lists (Appendix B class selection, cls_ratio0.8)"}
    if not check.ok and not cfg.missing_ok:
        raise DataError(check.line("ImageNet-100 lists") + "; restore them, or --set missing_ok=true to search on the rest")
    kept_lists = None
    if cfg.missing_ok:
        bad = check.bad
        train, val = [e for e in train if e[0] not in bad], [e for e in val if e[0] not in bad]
        for name, entries in (("train_list", train), ("val_list", val)):
            if not entries:
                raise DataError(check.line(f"ImageNet-100 {name}") + ": no file of it is left to search on")
        kept_lists = {"weights_list.txt": _list_text(train), "arch_list.txt": _list_text(val)}
        content.update({
            "missing_ok": True, "n_weights": len(train), "n_arch": len(val), "classes": len({c for _, c in train}),
            "left_out": {"missing": len(check.missing), "unreadable": len(check.unreadable),
                         "first": sorted(check.bad)[:20]},
            "kept": {name: {"entries": text.count("\n"), "sha256": hashlib.sha256(text.encode()).hexdigest()}
                     for name, text in kept_lists.items()},
        })
    path = Path(run_dir) / "split.json" if run_dir is not None else None  # not into the repository: the run's own folder
    if path is None:
        split = Split(None, content_hash(content), (), (), content)
    else:
        split = Split(path, _write_or_check(path, content), (), (), content)  # refuses another split first
        for name, text in (kept_lists or {}).items():  # the lists used, whose SHA-256 the split record holds
            atomic_write_text(Path(run_dir) / name, text)
    norm = T.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train_tf = T.Compose([T.RandomResizedCrop(cfg.resolution, scale=(cfg.crop_min_scale, 1.0)),
                          T.RandomHorizontalFlip(), T.ColorJitter(0.4, 0.4, 0.4, 0.2), T.ToTensor(), norm])
    val_tf = T.Compose([T.Resize(int(round(cfg.resolution / 0.875))), T.CenterCrop(cfg.resolution), T.ToTensor(), norm])
    w_ds, a_ds, v_ds = ListImages(root, train, train_tf), ListImages(root, val, train_tf), ListImages(root, val, val_tf)
    if cfg.subset:
        k = int(round(cfg.subset * cfg.split_ratio))
        w_ds = Subset(w_ds, _subset(range(len(train)), k, cfg.seed + 1))
        keep = _subset(range(len(val)), cfg.subset - k, cfg.seed + 2)
        a_ds, v_ds = Subset(a_ds, keep), Subset(v_ds, keep)
    kw = dict(num_workers=cfg.num_workers, pin_memory=cfg.device == "cuda", persistent_workers=cfg.num_workers > 0)

    def loader(ds, seed, shuffle):
        sampler = DistributedSampler(ds, num_replicas=1, rank=0, shuffle=shuffle, seed=seed, drop_last=shuffle)
        return LoaderBatches(DataLoader(ds, batch_size=cfg.batch_size, sampler=sampler, drop_last=shuffle, **kw), sampler)

    return SearchData(loader(w_ds, cfg.seed, True), loader(a_ds, cfg.seed + 7, True), loader(v_ds, cfg.seed, False),
                      IMAGENET100_CLASSES, 3, split, len(w_ds), len(a_ds))


__all__ = ["LOCATION_KEYS", "ListImages", "SPLIT_FORMAT", "SearchData", "Split", "check_listed", "content_hash",
           "list_identity", "make",
           "make_split", "memory_pool", "read_list", "resume_free_keys", "select_classes", "split_indices", "train_root"]
