"""Search data (Appendix B): the 80/20 split, its file and hash, subsets, ImageNet-100 lists and
the class-selection procedure."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tfnas_core.search import data as search_data
from tfnas_core.data.datasets import DataError
from tfnas_core.search.config import paper, smoke

OFFICIAL = Path(__file__).resolve().parents[2] / "shared" / "reference" / "official"


def labels(n_per_class=(50, 30, 20, 7), seed=0):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    return np.random.default_rng(seed).permutation(y)


# ----------------------------------------------------------------------------- split


def test_split_is_a_per_class_partition():
    y = labels()
    w, a = search_data.split_indices(y, 0.8, seed=3)
    assert sorted(w + a) == list(range(len(y))) and not set(w) & set(a)
    cw, ca = Counter(y[w].tolist()), Counter(y[a].tolist())
    for c, n in enumerate((50, 30, 20, 7)):
        assert cw[c] == round(0.8 * n) and ca[c] == n - round(0.8 * n)


def test_split_is_deterministic_and_seeded():
    y = labels()
    assert search_data.split_indices(y, 0.8, 1) == search_data.split_indices(y, 0.8, 1)
    assert search_data.split_indices(y, 0.8, 1) != search_data.split_indices(y, 0.8, 2)


def test_split_file_has_a_content_hash_and_is_reused(tmp_path):
    y = labels()
    s1 = search_data.make_split("toy", y, 0.8, 5, tmp_path)
    assert s1.path == tmp_path / "toy-5.json"
    stored = json.loads(s1.path.read_text())
    assert stored["sha256"] == s1.sha256 == search_data.content_hash({k: v for k, v in stored.items() if k != "sha256"})
    assert stored["arch"] == list(s1.arch) and stored["n"] == len(y)
    text = s1.path.read_text()
    s2 = search_data.make_split("toy", y, 0.8, 5, tmp_path)  # reads and checks, does not rewrite
    assert s2.sha256 == s1.sha256 and s2.path.read_text() == text
    other = search_data.make_split("toy", y, 0.8, 6, tmp_path)
    assert other.path.name == "toy-6.json" and other.sha256 != s1.sha256


def test_split_file_edits_and_conflicts_are_refused(tmp_path):
    y = labels()
    s = search_data.make_split("toy", y, 0.8, 5, tmp_path)
    d = json.loads(s.path.read_text())
    d["arch"][0] += 1
    s.path.write_text(json.dumps(d))
    with pytest.raises(DataError, match="does not match its sha256"):
        search_data.make_split("toy", y, 0.8, 5, tmp_path)
    s.path.unlink()
    search_data.make_split("toy", y, 0.8, 5, tmp_path)
    with pytest.raises(DataError, match="different split"):
        search_data.make_split("toy", y, 0.7, 5, tmp_path)  # same file name, other content


def test_make_builds_batches_from_the_split_and_subset(tmp_path):
    cfg = replace(smoke(), split_dir=str(tmp_path), synthetic_n=200, subset=100, batch_size=10)
    d = search_data.make(cfg)
    assert (d.n_weights, d.n_arch) == (80, 20) and len(d.weights) == 8
    assert set(d.split.weights) | set(d.split.arch) == set(range(200))
    x, y = next(iter(d.weights))
    assert x.shape == (10, 1, cfg.resolution, cfg.resolution) and x.dtype.is_floating_point
    stream = d.arch_stream(0)
    batches = [next(stream) for _ in range(5)]  # the 20-image arch split cycles (2 batches per pass)
    assert all(b[0].shape[0] == 10 for b in batches)
    again = search_data.make(cfg).arch_stream(0)
    assert all((next(again)[0] == b[0]).all() for b in batches)  # a function of the epoch alone


def test_missing_cifar_says_where_and_how(tmp_path):
    cfg = replace(smoke(), dataset="cifar10", data_root=str(tmp_path / "nothing"), split_dir=str(tmp_path))
    with pytest.raises(DataError, match=r"cifar-10-batches-py.*download=true"):
        search_data.make(cfg)


def test_missing_imagenet_images_say_where(tmp_path):
    if not (OFFICIAL / "ImageNet-100-effb0_train_cls_ratio0.8.txt").is_file():
        pytest.skip(f"official lists not found in {OFFICIAL}")
    cfg = replace(paper(), data_root=str(tmp_path / "imagenet"), split_dir=str(tmp_path),
                  train_list=str(OFFICIAL / "ImageNet-100-effb0_train_cls_ratio0.8.txt"),
                  val_list=str(OFFICIAL / "ImageNet-100-effb0_val_cls_ratio0.8.txt"))
    with pytest.raises(DataError, match=r"ImageNet-100 images not found: looked for .*n01560419.*data_root"):
        search_data.make(cfg)
    assert not (tmp_path / "imagenet-100-2.json").exists()  # nothing written for a missing dataset


def test_imagenet100_loader_reads_list_files_under_an_imagefolder_root(tmp_path):
    from PIL import Image

    root, lines = tmp_path / "train", {"train": [], "val": []}
    for c, wnid in enumerate(("n0001", "n0002")):
        (root / wnid).mkdir(parents=True)
        for i in range(5):
            rgb = np.random.default_rng(10 * c + i).integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(rgb).save(root / wnid / f"{wnid}_{i}.JPEG")
            lines["train" if i < 4 else "val"].append(f"{wnid}/{wnid}_{i}.JPEG {c}")
    for part in lines:
        (tmp_path / f"{part}.txt").write_text("\n".join(lines[part]) + "\n")
    cfg = replace(paper(), data_root=str(root), train_list=str(tmp_path / "train.txt"),
                  val_list=str(tmp_path / "val.txt"), split_dir=str(tmp_path / "splits"), resolution=16,
                  batch_size=2, num_workers=0, device="cpu")
    d = search_data.make(cfg, tmp_path / "run")
    assert (d.n_weights, d.n_arch, len(d.weights)) == (8, 2, 4)
    x, y = next(iter(d.weights))
    assert x.shape == (2, 3, 16, 16) and set(y.tolist()) <= {0, 1}
    xa, _ = next(d.arch_stream(0))
    xv, yv = next(iter(d.val))
    assert xa.shape == xv.shape == (2, 3, 16, 16) and sorted(yv.tolist()) == [0, 1]
    stored = json.loads((tmp_path / "run" / "split.json").read_text())  # in the run folder, not in split_dir
    assert (stored["n_weights"], stored["n_arch"], stored["classes"]) == (8, 2, 2)
    assert not (tmp_path / "splits").exists() and d.split.path == tmp_path / "run" / "split.json"
    assert search_data.make(cfg).split.path is None  # without a run folder: written nowhere
    assert not (tmp_path / "splits").exists()


def test_official_lists_are_a_per_class_80_20_split():
    tr, va = OFFICIAL / "ImageNet-100-effb0_train_cls_ratio0.8.txt", OFFICIAL / "ImageNet-100-effb0_val_cls_ratio0.8.txt"
    if not tr.is_file():
        pytest.skip(f"official lists not found in {OFFICIAL}")
    train, val = search_data.read_list(tr), search_data.read_list(va)
    assert (len(train), len(val)) == (102170, 25550)
    assert not {p for p, _ in train} & {p for p, _ in val}
    ct, cv = Counter(c for _, c in train), Counter(c for _, c in val)
    assert sorted(ct) == sorted(cv) == list(range(100))
    for c in ct:
        assert abs(ct[c] / (ct[c] + cv[c]) - 0.8) < 0.01
    assert len({p.split("/")[0] for p, _ in train}) == 100  # one wnid per label


def test_bad_list_line_names_the_line(tmp_path):
    p = tmp_path / "list.txt"
    p.write_text("n1/a.JPEG 0\nbroken line here\n")
    with pytest.raises(DataError, match=r"list.txt:2"):
        search_data.read_list(p)


# ----------------------------------------------------------------------------- class selection


def test_select_classes_takes_one_class_per_accuracy_group():
    rng = np.random.default_rng(0)
    acc = {f"n{i:04d}": float(a) for i, a in enumerate(rng.uniform(0.3, 1.0, 1000))}
    chosen = search_data.select_classes(acc, groups=100, seed=1)
    ranked = sorted(acc, key=lambda c: -acc[c])
    assert len(chosen) == len(set(chosen)) == 100
    for g, c in enumerate(chosen):
        assert 10 * g <= ranked.index(c) < 10 * g + 10  # group g = ranks 10g..10g+9
    assert chosen == search_data.select_classes(acc, groups=100, seed=1)
    assert chosen != search_data.select_classes(acc, groups=100, seed=2)
    mean_acc = np.mean([acc[c] for c in chosen])
    assert abs(mean_acc - np.mean(list(acc.values()))) < 0.03  # spans the accuracy range, unlike top-100


def test_select_classes_uneven_groups_ties_and_errors():
    acc = {c: 0.5 for c in "abcdefg"}  # all tied: ranking by name
    chosen = search_data.select_classes(acc, groups=3, seed=0)
    groups = [set("abc"), set("de"), set("fg")]  # array_split: sizes 3, 2, 2
    assert all(c in g for c, g in zip(chosen, groups))
    assert search_data.select_classes(acc, groups=7, seed=0) == list("abcdefg")
    with pytest.raises(ValueError, match="cannot form 8 groups"):
        search_data.select_classes(acc, groups=8)
    with pytest.raises(ValueError, match="not a number"):
        search_data.select_classes({"a": float("nan"), "b": 1.0}, groups=1)
