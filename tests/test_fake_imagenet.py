"""fake-imagenet: the official layout, odd files both loaders read, atomic writing, the CLI."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tfnas_core.data import datasets as data
from tfnas_core.experiments import fake_imagenet
from tfnas_core.search import data as search_data
from tfnas_core.cli.main import main
from tfnas_core.data.datasets import DataError

from conftest import OFFICIAL_LISTS


def _small_lists(tmp_path, classes=3, per_class=6):
    """Lists in the official format naming ``classes`` wnids (4 weights + 2 arch files each)."""
    tr, va = [], []
    for c in range(classes):
        wnid = f"n{c:08d}"
        for i in range(per_class):
            (tr if i < per_class - 2 else va).append(f"{wnid}/{wnid}_{i}.JPEG {c}")
    (tmp_path / "tr.txt").write_text("\n".join(tr) + "\n")
    (tmp_path / "va.txt").write_text("\n".join(va) + "\n")
    return tmp_path / "tr.txt", tmp_path / "va.txt"


def test_every_listed_file_is_there_in_the_official_layout(fake_imagenet_root):
    root = fake_imagenet_root
    listed = [rel for p in OFFICIAL_LISTS for rel, _ in search_data.read_list(p)]
    assert len(listed) == 127_720
    check = data.check_files(root / "train", listed, header=False)
    assert check.ok and check.n == 127_720
    wnids = sorted({rel.split("/")[0] for rel in listed})
    assert sorted(os.listdir(root / "train")) == sorted(os.listdir(root / "val")) == wnids
    assert all(len(os.listdir(root / "val" / w)) == 10 for w in wnids)
    manifest = json.loads((root / fake_imagenet.MANIFEST).read_text())
    assert (manifest["n_train"], manifest["n_val"], manifest["classes"]) == (127_720, 1000, 100)
    assert not [p for p in root.parent.iterdir() if ".partial-" in p.name]


def test_odd_files_are_what_real_imagenet_holds_and_both_loaders_read_them(fake_imagenet_root):
    from PIL import Image
    from torchvision.datasets.folder import default_loader

    root = fake_imagenet_root
    odd = json.loads((root / fake_imagenet.MANIFEST).read_text())["odd"]
    expect = {"gray": ("JPEG", "L"), "cmyk": ("JPEG", "CMYK"), "png": ("PNG", None)}
    for kind, rels in odd.items():
        assert any(r.startswith("train/") for r in rels) and any(r.startswith("val/") for r in rels)
        for rel in rels:
            assert rel.endswith(".JPEG")
            with Image.open(root / rel) as im:
                assert im.format == expect[kind][0] and (expect[kind][1] is None or im.mode == expect[kind][1])
            assert data.open_rgb(root, rel).mode == "RGB"
            assert default_loader(str(root / rel)).mode == "RGB"  # torchvision ImageFolder's own loader
    # the search's ListImages and the retraining's ImageFolder give 3-channel tensors for them
    train_odd = [r.removeprefix("train/") for rels in odd.values() for r in rels if r.startswith("train/")]
    ds = search_data.ListImages(root / "train", [(r, 0) for r in train_odd], lambda im: torch.from_numpy(np.array(im)))
    assert all(ds[i][0].shape[-1] == 3 for i in range(len(ds)))
    tr, va, nc, ch = data.imagenet(root, 16, 4, 2000, 0, 0, 1, 0, 0.5, check=False)
    x, y = next(iter(va))
    assert x.shape == (1000, 3, 16, 16) and (nc, ch) == (100, 3)


def test_class_patterns_differ_between_classes():
    rng = np.random.default_rng(0)
    mean = {c: fake_imagenet.class_image(c, rng, 32).astype(float).mean(axis=(0, 1)) for c in (0, 1, 10)}
    assert np.abs(mean[0] - mean[1]).max() > 10  # another hue
    a, b = fake_imagenet.class_image(0, rng, 32).astype(float), fake_imagenet.class_image(10, rng, 32).astype(float)
    assert np.abs(a - b).mean() > 10  # same hue, another pattern


def test_links_most_files_and_copies_where_links_fail(tmp_path, monkeypatch):
    tr, va = _small_lists(tmp_path)
    r = fake_imagenet.make(tmp_path / "a", tr, va, val_per_class=2, distinct=2, odd=0)
    assert (r.n_train, r.n_val, r.encoded, r.linked, r.copied) == (18, 6, 12, 12, 0)
    assert os.stat(tmp_path / "a" / "train" / "n00000000" / "n00000000_3.JPEG").st_nlink > 1

    def no_link(src, dst):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    r = fake_imagenet.make(tmp_path / "b", tr, va, val_per_class=2, distinct=2, odd=0)
    assert (r.linked, r.copied) == (0, 12)
    assert (tmp_path / "b" / "train" / "n00000002" / "n00000002_3.JPEG").read_bytes() == \
        (tmp_path / "a" / "train" / "n00000002" / "n00000002_3.JPEG").read_bytes()


def test_refuses_a_non_empty_folder_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    tr, va = _small_lists(tmp_path)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("mine")
    with pytest.raises(DataError, match="not an empty folder"):
        fake_imagenet.make(tmp_path / "full", tr, va)
    assert os.listdir(tmp_path / "full") == ["x"]
    (tmp_path / "empty").mkdir()
    assert fake_imagenet.make(tmp_path / "empty", tr, va, odd=0).n_train == 18  # an empty folder is filled

    calls = {"n": 0}
    real_save = fake_imagenet._save

    def failing_save(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise OSError(28, "No space left on device")
        return real_save(*a, **k)

    monkeypatch.setattr(fake_imagenet, "_save", failing_save)
    with pytest.raises(OSError, match="No space"):
        fake_imagenet.make(tmp_path / "new", tr, va)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "full", "tr.txt", "va.txt"]


def test_cli_writes_and_refuses_with_one_line(tmp_path, capsys):
    tr, va = _small_lists(tmp_path, classes=2)
    out = tmp_path / "in"
    assert main(["fake-imagenet", str(out), "--val-per-class", "3", "--size", "16", "--train-list", str(tr),
                 "--val-list", str(va), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert (r["n_train"], r["n_val"], r["classes"]) == (12, 6, ["n00000000", "n00000001"])
    assert main(["fake-imagenet", str(out), "--train-list", str(tr), "--val-list", str(va)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an empty folder" in err
    assert main(["fake-imagenet", str(tmp_path / "x"), "--train-list", str(tmp_path / "nope.txt")]) == 2
    assert "list file not found" in capsys.readouterr().err and not (tmp_path / "x").exists()
    assert main(["check-data", str(out)]) == 0
    assert main(["check-data", str(out), "--lists", "--train-list", str(tr), "--val-list", str(va)]) == 0
    capsys.readouterr()
    (out / "val" / "n00000001" / "ILSVRC2012_val_00000004.JPEG").write_bytes(b"")
    assert main(["check-data", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 unreadable (val/n00000001/ILSVRC2012_val_00000004.JPEG" in err


def test_the_whole_official_set_takes_seconds(tmp_path):
    if not all(p.is_file() for p in OFFICIAL_LISTS):
        pytest.skip("official ImageNet-100 lists not found (../shared/reference is absent on this machine)")
    r = fake_imagenet.make(tmp_path / "in", *OFFICIAL_LISTS, odd=1)
    assert r.n_train == 127_720 and r.encoded == 100 * 4 + 3 + 1000
    assert r.seconds < 60  # 2.5 s measured on 2 busy cores (2026-12-05)
