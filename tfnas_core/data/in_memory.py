"""Datasets held whole in memory as ``uint8`` tensors: Fashion-MNIST (the mini profile) and
synthetic images (smoke), with the augmentation and batches that serve them.

On a CPU the per-image PIL pipeline of a ``DataLoader`` would cost more than the network, so these
are augmented a batch at a time with tensor ops (``augment``: the paper's random-resized crop +
horizontal flip of Appendix B, as one ``grid_sample``).  Training batches are sharded like
``torch.utils.data.DistributedSampler`` (a permutation by ``seed + epoch``, split over ranks);
validation is split ``rank::world`` without padding so the all-reduced metrics count every image
exactly once.  ImageNet, read from disk, and the entry point ``make`` are ``datasets``.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DistributedSampler

FMNIST_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian dataset-fashion-mnist
FMNIST_MEAN, FMNIST_STD = (0.2860,), (0.3530,)
FMNIST_CLASSES = 10
_FMNIST_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A dataset that cannot be found or read; the message says where we looked."""


# ----------------------------------------------------------------------------- raw arrays


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain): the big-endian format of (Fashion-)MNIST."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        why = "truncated gzip" if isinstance(e, EOFError) else (getattr(e, "strerror", None) or str(e))
        raise DataError(f"{path}: cannot read ({why})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).copy()  # writable, owns its memory
    if data.size != math.prod(dims):
        raise DataError(f"{path}: header says {dims}, file holds {data.size} bytes")
    return data.reshape(dims)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def check_fmnist(arrays: dict[str, np.ndarray], paths: dict[str, Path]) -> None:
    """Images ``[N, 28, 28]`` beside ``N`` labels in ``0..9``, for train and test alike."""
    for part in ("train", "test"):
        x, y = arrays[f"{part}_x"], arrays[f"{part}_y"]
        px, py = paths[f"{part}_x"], paths[f"{part}_y"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise DataError(f"{px}: expected images of 28x28, got shape {x.shape}")
        if y.ndim != 1:
            raise DataError(f"{py}: expected a vector of labels, got shape {y.shape}")
        if len(x) != len(y):
            raise DataError(f"{py}: {len(y)} labels beside {len(x)} images in {px.name}")
        if len(y) and int(y.max()) >= FMNIST_CLASSES:
            raise DataError(f"{py}: label {int(y.max())} outside 0..{FMNIST_CLASSES - 1}")


def fashion_mnist(root: str | Path | None = None, download_to: str | Path = "data") -> dict[str, torch.Tensor]:
    """Fashion-MNIST as uint8 tensors ``train_x [60000,1,28,28]``, ``train_y``, ``test_x``, ``test_y``.

    With ``root`` given, only there (a folder lacking a file is an error, never a fallback).
    Otherwise the Debian package's folder, then ``download_to/FashionMNIST/raw``, then
    torchvision downloads it into ``download_to``.  Lengths and label range are checked.
    """
    if root is not None:
        folder = Path(root)
        paths = {k: _find_idx(folder, stem) for k, stem in _FMNIST_FILES.items()}
        lacking = [stem for k, stem in _FMNIST_FILES.items() if paths[k] is None]
        if lacking:
            raise DataError(f"data_root {folder}: no Fashion-MNIST file {lacking[0]}[.gz]"
                            + (f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""))
        looked = [folder]
    else:
        looked = [FMNIST_SYSTEM_DIR, Path(download_to) / "FashionMNIST" / "raw"]
    for folder in looked:
        paths = {k: _find_idx(folder, stem) for k, stem in _FMNIST_FILES.items()}
        if all(paths.values()):
            arrays = {k: read_idx(p) for k, p in paths.items()}
            check_fmnist(arrays, paths)
            return _fmnist_tensors(arrays)
    try:
        from torchvision.datasets import FashionMNIST

        train = FashionMNIST(str(download_to), train=True, download=True)
        test = FashionMNIST(str(download_to), train=False, download=True)
    except Exception as e:  # no network, no torchvision
        where = ", ".join(str(p) for p in looked)
        raise DataError(f"Fashion-MNIST not found (looked in {where}) and download failed ({e}); "
                        "install Debian's dataset-fashion-mnist or run `make fashion-mnist`") from None
    return _fmnist_tensors({"train_x": train.data.numpy(), "train_y": train.targets.numpy(),
                            "test_x": test.data.numpy(), "test_y": test.targets.numpy()})


def _fmnist_tensors(a: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "train_x": torch.from_numpy(np.ascontiguousarray(a["train_x"])).unsqueeze(1),
        "train_y": torch.from_numpy(a["train_y"].astype(np.int64)),
        "test_x": torch.from_numpy(np.ascontiguousarray(a["test_x"])).unsqueeze(1),
        "test_y": torch.from_numpy(a["test_y"].astype(np.int64)),
    }


def synthetic(n: int, num_classes: int = 10, size: int = 16, chans: int = 1, seed: int = 0,
              class_seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uint8 images of learnable classes: a smooth per-class template plus pixel noise.

    Templates are mirror-symmetric and coarse (4x4 upsampled) so that flips and crops keep the
    class recognisable.  They depend only on ``class_seed`` (train and validation share them),
    the samples on ``seed``.  Deterministic.
    """
    g = torch.Generator().manual_seed(class_seed)
    coarse = torch.randn(num_classes, chans, 4, 4, generator=g)
    coarse = (coarse + coarse.flip(-1)) / 2
    templates = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, num_classes, (n,), generator=g)
    x = 128 + 60 * templates[y] + 25 * torch.randn(n, chans, size, size, generator=g)
    return x.clamp(0, 255).round().to(torch.uint8), y


# ----------------------------------------------------------------------------- augmentation


def augment(x: torch.Tensor, out_size: int, min_scale: float, g: torch.Generator,
            ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Random-resized crop + horizontal flip of a float batch ``[B,C,H,W]``, all at once.

    Per sample: area fraction ``U(min_scale, 1)``, log aspect ratio ``U(log 3/4, log 4/3)``
    (torchvision's ranges; sides clamped to the image instead of torchvision's rejection
    sampling), a uniform position, flip with probability 1/2; one ``grid_sample`` does it all.
    """
    b = x.shape[0]
    area = torch.empty(b).uniform_(min_scale, 1.0, generator=g)
    logr = torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1]), generator=g)
    w = (area * logr.exp()).sqrt().clamp(max=1.0)  # fraction of the image width
    h = (area / logr.exp()).sqrt().clamp(max=1.0)
    cx = (torch.rand(b, generator=g) * 2 - 1) * (1 - w)  # centre in normalised coordinates
    cy = (torch.rand(b, generator=g) * 2 - 1) * (1 - h)
    flip = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, [b, x.shape[1], out_size, out_size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


class TensorBatches:
    """Batches of an in-memory uint8 dataset for one rank, augmented on the fly when training."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, train: bool,
                 resolution: int, mean, std, rank: int = 0, world: int = 1, seed: int = 0,
                 min_scale: float = 0.08):
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.resolution = batch_size, train, resolution
        self.mean, self.std, self.rank, self.world = mean, std, rank, world
        self.seed, self.min_scale, self.epoch = seed, min_scale, 0
        n = len(labels)
        if train:
            self.sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True,
                                              seed=seed, drop_last=True)
        else:
            self.sampler = None
        self.indices_count = len(self.sampler) if train else len(range(rank, n, world))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.train:
            return self.indices_count // self.batch_size  # drop the last partial batch
        return math.ceil(self.indices_count / self.batch_size)

    def _indices(self) -> list[int]:
        if not self.train:
            return list(range(self.rank, len(self.labels), self.world))
        self.sampler.set_epoch(self.epoch)
        return list(self.sampler)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = torch.tensor(self._indices(), dtype=torch.long)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 7919 + self.rank)
        for i in range(len(self)):
            sel = idx[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.images[sel].float().div_(255)
            if self.train:
                x = augment(x, self.resolution, self.min_scale, g)
            elif x.shape[-1] != self.resolution:
                x = F.interpolate(x, size=(self.resolution,) * 2, mode="bilinear", antialias=True,
                                  align_corners=False)
            yield _normalise(x, self.mean, self.std), self.labels[sel]


__all__ = ["FMNIST_CLASSES", "FMNIST_MEAN", "FMNIST_STD", "FMNIST_SYSTEM_DIR", "DataError", "TensorBatches", "augment",
           "check_fmnist", "fashion_mnist", "read_idx", "synthetic"]
