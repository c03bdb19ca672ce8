"""Data for retraining: IDX reading, Fashion-MNIST, synthetic classes, batched augmentation, sharding."""
from __future__ import annotations

import gzip
import struct
from dataclasses import replace

import numpy as np
import pytest
import torch

from tfnas_core.data import datasets as data
from tfnas_core.data import in_memory
from tfnas_core.train import config as profiles

FMNIST = in_memory.FMNIST_SYSTEM_DIR


def _idx_bytes(a: np.ndarray) -> bytes:
    return bytes([0, 0, 8, a.ndim]) + b"".join(struct.pack(">I", d) for d in a.shape) + a.tobytes()


def test_read_idx_plain_and_gz(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "x").write_bytes(_idx_bytes(a))
    (tmp_path / "x.gz").write_bytes(gzip.compress(_idx_bytes(a)))
    np.testing.assert_array_equal(in_memory.read_idx(tmp_path / "x"), a)
    np.testing.assert_array_equal(in_memory.read_idx(tmp_path / "x.gz"), a)
    (tmp_path / "bad").write_bytes(_idx_bytes(a)[:-1])
    with pytest.raises(in_memory.DataError, match="header says"):
        in_memory.read_idx(tmp_path / "bad")
    (tmp_path / "float").write_bytes(b"\0\0\x0d\x01" + struct.pack(">I", 1) + b"\0" * 4)
    with pytest.raises(in_memory.DataError, match="not an unsigned-byte IDX"):
        in_memory.read_idx(tmp_path / "float")


@pytest.mark.skipif(not (FMNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason=f"Fashion-MNIST not installed in {FMNIST} (Debian package dataset-fashion-mnist)")
def test_fashion_mnist_reads_the_real_files():
    d = in_memory.fashion_mnist()
    assert d["train_x"].shape == (60000, 1, 28, 28) and d["test_x"].shape == (10000, 1, 28, 28)
    assert d["train_x"].dtype == torch.uint8 and d["train_y"].dtype == torch.int64
    assert torch.bincount(d["train_y"]).tolist() == [6000] * 10
    assert torch.bincount(d["test_y"]).tolist() == [1000] * 10
    mean = d["train_x"].float().div(255).mean().item()
    assert mean == pytest.approx(in_memory.FMNIST_MEAN[0], abs=1e-3)


def test_synthetic_is_deterministic_and_class_structured():
    x1, y1 = in_memory.synthetic(200, seed=3)
    x2, y2 = in_memory.synthetic(200, seed=3)
    x3, _ = in_memory.synthetic(200, seed=4)
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and not torch.equal(x1, x3)
    assert x1.dtype == torch.uint8 and x1.shape == (200, 1, 16, 16)
    # nearest class mean (from another sample) classifies far above chance
    xt, yt = in_memory.synthetic(1000, seed=5)
    means = torch.stack([xt[yt == c].float().mean(0) for c in range(10)]).flatten(1)
    pred = torch.cdist(x1.float().flatten(1), means).argmin(1)
    assert (pred == y1).float().mean() > 0.8


def test_augment_with_full_crop_is_identity_or_flip():
    x = torch.rand(16, 1, 12, 12)
    g = torch.Generator().manual_seed(0)
    y = in_memory.augment(x, 12, min_scale=1.0, g=g, ratio=(1.0, 1.0))
    flipped = 0
    for a, b in zip(x, y):
        if torch.allclose(a, b, atol=1e-5):
            continue
        assert torch.allclose(a.flip(-1), b, atol=1e-5)
        flipped += 1
    assert 0 < flipped < 16
    z = in_memory.augment(x, 8, 0.3, torch.Generator().manual_seed(1))
    assert z.shape == (16, 1, 8, 8)
    assert torch.equal(z, in_memory.augment(x, 8, 0.3, torch.Generator().manual_seed(1)))


def test_sharding_splits_train_and_covers_validation_once():
    cfg = replace(profiles.smoke(), train_subset=100, val_subset=50, batch_size=10, eval_batch_size=8)
    ranks = [data.make(cfg, r, 2) for r in range(2)]
    seen = [torch.cat([y for _, y in d.val]) for d in ranks]
    vx, vy = in_memory.synthetic(50, seed=cfg.seed + 1)
    assert sorted(torch.cat(seen).tolist()) == sorted(vy.tolist())
    for d in ranks:
        d.train.set_epoch(0)
    idx = [d.train._indices() for d in ranks]
    assert set(idx[0]).isdisjoint(idx[1]) and len(idx[0]) == len(idx[1]) == 50
    assert len(ranks[0].train) == 10  # global batch 10 -> 5 per rank
    ranks[0].train.set_epoch(1)
    assert ranks[0].train._indices() != idx[0]  # a new permutation every epoch
    x, y = next(iter(ranks[0].train))
    assert x.shape == (5, 1, 16, 16) and x.dtype == torch.float32


def test_missing_imagenet_says_where_it_looked(tmp_path):
    cfg = replace(profiles.paper(), data_root=str(tmp_path / "in1k"))
    with pytest.raises(data.DataError, match=str(tmp_path / "in1k" / "train")):
        data.make(cfg)
