"""ImageNet runs are keyed by what the data is, not where it is mounted; the data is checked
before any compute; loader errors name the file; the retraining head follows the root's classes."""
import json
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core.data import datasets as data
from tfnas_core.experiments import notebook as E
from tfnas_core.train import config as profiles
from tfnas_core.runs import archive as run_archive
from tfnas_core.runs import store as runs
from tfnas_core.search import config as search_config
from tfnas_core.search import data as search_data
from tfnas_core.arch import zoo
from tfnas_core.data.datasets import DataError, ImageReadError

from conftest import OFFICIAL_LISTS


@pytest.fixture(scope="module")
def two_copies(fake_imagenet_root, tmp_path_factory):
    """Two hard-linked copies of the fake set at different paths (each test may change ``b``'s
    file *names*, never file contents: the links share them)."""
    base = tmp_path_factory.mktemp("copies")
    a, b = base / "mnt1" / "imagenet", base / "elsewhere" / "in"
    for dst in (a, b):
        shutil.copytree(fake_imagenet_root, dst, copy_function=os.link)
    return a, b


def _search_hash(data_root, **kw):
    ctx = E.Context(profile="paper", search_overrides={"data_root": str(data_root), **kw})
    return runs.config_hash("search", E.search_key(E.search_cfg(ctx, 2)), search_config.RESUME_FREE_KEYS)


def _train_hash(data_root):
    ctx = E.Context(profile="paper", train_overrides={"data_root": str(data_root)})
    _, key = E.train_key(ctx, zoo.load("TF-NAS-B"), 0)
    return runs.config_hash("train", key, profiles.RESUME_FREE_KEYS)


@pytest.mark.slow
def test_moving_imagenet_keeps_the_run_keys(two_copies, tmp_path):
    a, b = two_copies
    assert _search_hash(a) == _search_hash(b) == _search_hash(b / "train")
    assert _train_hash(a) == _train_hash(b)
    key = E.search_key(E.search_cfg(E.Context(profile="paper", search_overrides={"data_root": str(a)}), 2))
    assert "data_root" not in key and str(a) not in json.dumps(key) and key["data"]["train_list_sha256"]
    # the lists elsewhere, same content: the same key; another list content: another key
    lists = [str(shutil.copyfile(p, tmp_path / p.name)) for p in OFFICIAL_LISTS]
    assert _search_hash(a, train_list=lists[0], val_list=lists[1]) == _search_hash(a)
    with open(lists[1], "a") as f:
        f.write("n01560419/n01560419_100.JPEG 0\n")
    assert _search_hash(a, train_list=lists[0], val_list=lists[1]) != _search_hash(a)


def test_a_missing_file_or_another_class_changes_the_key(two_copies):
    a, b = two_copies
    victim = b / "train" / "n01560419" / "n01560419_100.JPEG"
    os.rename(victim, victim.with_suffix(".gone"))
    try:
        assert _train_hash(a) != _train_hash(b)
        # a search that leaves missing files out is keyed by the files present; one that refuses them keeps its key
        assert _search_hash(a, missing_ok=True) != _search_hash(b, missing_ok=True)
        assert _search_hash(a) == _search_hash(b)
    finally:
        os.rename(victim.with_suffix(".gone"), victim)
    assert _train_hash(a) == _train_hash(b)
    cls = b / "val" / "n01560419"
    os.rename(cls, cls.with_name("n00000000"))
    try:
        assert _train_hash(a) != _train_hash(b)
        with pytest.raises(DataError, match=r"val/ has other classes than train/.*only in train/ \(first n01560419\)"):
            data.imagenet(b, 16, 4, 4, 0, 0, 1, 0, 0.5, check=False)
    finally:
        os.rename(cls.with_name("n00000000"), cls)


def test_mini_and_smoke_keys_are_unchanged_and_every_archived_search_rekeys():
    for profile in ("mini", "smoke"):
        key = E.search_key(E.search_cfg(E.Context(profile=profile), 2))
        assert "data" not in key and "missing_ok" not in key and "data_root" in key and "split_dir" in key
        _, tkey = E.train_key(E.Context(profile=profile), zoo.load("TF-NAS-B"), 0)
        assert "data" not in tkey and "data_root" in tkey
    archive = Path(run_archive.DEFAULT_ARCHIVE)
    searches = [d for d in sorted(archive.iterdir()) if (d / "store.json").is_file()
                and json.loads((d / "store.json").read_text())["kind"] == "search"] if archive.is_dir() else []
    if not searches:
        pytest.skip(f"no archived searches in {archive}")
    for d in searches:
        stored = json.loads((d / "store.json").read_text())["config"]
        cfg = search_config.from_dict({k: v for k, v in stored.items() if k != "lut_sha256"})
        key = {**E.search_key(cfg), "lut_sha256": stored["lut_sha256"]}
        assert runs.config_hash("search", key, search_config.RESUME_FREE_KEYS) == d.name, d.name


def test_missing_ok_is_left_out_of_config_dicts_at_its_default():
    cfg = search_config.mini()
    assert "missing_ok" not in search_config.to_dict(cfg)
    assert search_config.to_dict(replace(cfg, missing_ok=True))["missing_ok"] is True
    assert search_config.from_dict(search_config.to_dict(cfg)) == cfg
    assert search_config.apply_overrides(cfg, ["missing_ok=true"]).missing_ok is True


# ----------------------------------------------------------------------------- the pre-check


def _search_cfg(root, **kw):
    return replace(search_config.paper(), data_root=str(root), train_list=str(OFFICIAL_LISTS[0]),
                   val_list=str(OFFICIAL_LISTS[1]), resolution=16, batch_size=4, num_workers=0, device="cpu",
                   subset=40, **kw)


@pytest.mark.slow
def test_missing_and_unreadable_listed_files_stop_the_search_before_compute(two_copies, tmp_path):
    _, b = two_copies
    gone = [sorted((b / "train" / w).iterdir())[3] for w in ("n01560419", "n02086646")]
    bad = sorted((b / "train" / "n01729322").iterdir())[3]
    names = [f"{p.parent.name}/{p.name}" for p in gone + [bad]]
    for g in gone:
        os.rename(g, g.with_suffix(".gone"))
    os.rename(bad, bad.with_suffix(".keep"))
    bad.write_bytes(b"not an image at all")
    try:
        run = tmp_path / "run"
        with pytest.raises(DataError) as e:
            search_data.make(_search_cfg(b), run)
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith("ImageNet-100 lists: 2 of 127720 files missing (")
        assert names[0] in msg and names[1] in msg and f"1 unreadable ({names[2]} (" in msg and "missing_ok=true" in msg
        assert not run.exists()  # nothing written
        d = search_data.make(_search_cfg(b, missing_ok=True), run)
        split = json.loads((run / "split.json").read_text())
        assert split["left_out"] == {"missing": 2, "unreadable": 1, "first": sorted(names)}
        used = (run / "weights_list.txt").read_text() + (run / "arch_list.txt").read_text()
        assert used.count("\n") == 127_717 and not any(f"{n} " in used for n in names)
        import hashlib
        assert split["kept"]["weights_list.txt"]["sha256"] == hashlib.sha256((run / "weights_list.txt").read_bytes()).hexdigest()
        assert split["n_weights"] + split["n_arch"] == 127_717 == split["kept"]["weights_list.txt"]["entries"] + split["kept"]["arch_list.txt"]["entries"]
        x, y = next(iter(d.weights))
        assert x.shape == (4, 3, 16, 16)
    finally:
        bad.unlink()
        os.rename(bad.with_suffix(".keep"), bad)
        for g in gone:
            os.rename(g.with_suffix(".gone"), g)


@pytest.mark.slow
def test_retraining_refuses_unreadable_images_and_sizes_the_head(two_copies, tmp_path):
    a, _ = two_copies
    cfg = replace(profiles.paper(), data_root=str(a), resolution=16, batch_size=8, eval_batch_size=100,
                  num_workers=0, val_subset=100, device="cpu")
    d = data.make(cfg)
    assert d.num_classes == 100 and "100 classes" in d.notes[0]
    labels = [int(y) for _, yb in d.val for y in yb]
    assert sorted(labels) == list(range(100))  # val_subset: one image of every class, not the first 10 classes
    # the same images at another seed, another choice, still stratified
    other = data.make(replace(cfg, seed=1))
    assert sorted(int(y) for _, yb in other.val for y in yb) == list(range(100))
    assert other.val.loader.dataset.indices != d.val.loader.dataset.indices
    small = tmp_path / "small"
    for split in ("train", "val"):
        for c in ("n01560419", "n01729322"):
            shutil.copytree(a / split / c, small / split / c, copy_function=os.link)
    (small / "val" / "n01729322" / "broken.JPEG").write_bytes(b"")
    with pytest.raises(DataError, match=r"1 unreadable \(val/n01729322/broken.JPEG"):
        data.make(replace(cfg, data_root=str(small)))


def test_loader_errors_name_the_file_even_from_a_worker(two_copies, tmp_path):
    from torch.utils.data import DataLoader

    a, _ = two_copies
    small = tmp_path / "small"
    for split in ("train", "val"):
        for c in ("n01560419", "n01729322"):
            shutil.copytree(a / split / c, small / split / c, copy_function=os.link)
    rel = "n01560419/n01560419_100.JPEG"
    ds = search_data.ListImages(small / "train", [(rel, 0)], lambda im: torch.zeros(1))
    tr, va, nc, _ = data.imagenet(small, 16, 2, 2, 1, 0, 1, 0, 0.5)
    (small / "train" / rel).unlink()
    with pytest.raises(ImageReadError, match=f"^image {rel} under .*: cannot read"):
        ds[0]
    with pytest.raises(ImageReadError) as e:  # through a DataLoader worker process
        next(iter(DataLoader(ds, num_workers=1)))
    assert str(e.value).splitlines()[0].startswith(f"image {rel} under ") and "(in a DataLoader worker)" in str(e.value)
    victim = sorted((small / "val" / "n01729322").iterdir())[0]
    victim.unlink()
    with pytest.raises(ImageReadError) as e:
        for _ in va:
            pass
    assert str(e.value).splitlines()[0].startswith(f"image val/n01729322/{victim.name} under ")
    assert nc == 2


@pytest.mark.slow
def test_resume_after_moving_imagenet(two_copies, tmp_path):
    from tfnas_core.search import loop as search

    a, b = two_copies
    cfg = replace(_search_cfg(a), width_mult=0.25, stem_stride=1, epochs=2, warmup_epochs=1, steps_per_epoch=1,
                  val_batches=1, subset=32, lut=search_config.CPU_LUT, target_ms=None, threads=1, progress=False,
                  stop_after_epoch=1)
    out = tmp_path / "run"
    assert search.run(cfg, out, log=lambda m: None) is None
    assert (out / "split.json").is_file() and (out / "checkpoint.pt").is_file()
    lines = []
    summary = search.run(replace(cfg, data_root=str(b), stop_after_epoch=None), out, log=lines.append)
    assert summary["epochs"] == 2 and any("resuming" in line for line in lines)
    assert summary["split"] == str(out / "split.json")
