"""python -m tfnas_core evaluate: the original's transforms, top-1/top-5 counted right, classes
found from wnids (sorted, or a --wnids file), progress on stderr, one JSON line, bad input one line."""
import json
from pathlib import Path

import pytest
import torch

from tfnas_core.data import datasets as data
from tfnas_core.released import evaluate
from tfnas_core.nn import model
from tfnas_core.released import official
from tfnas_core.arch import zoo
from tfnas_core.cli.main import main
from tfnas_core.arch.space import PAPER_SCALE


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """TF-NAS-D weights, random: 100 classes (as many as the fake val/ holds) in our layout, and
    1000 classes in the original's layout (export --format official)."""
    d = tmp_path_factory.mktemp("weights")
    spec = zoo.load("TF-NAS-D")
    torch.manual_seed(0)
    torch.save(model.build(spec, PAPER_SCALE.with_(num_classes=100)).state_dict(), d / "d100.pt")
    official.export(spec, model.build(spec).state_dict(), d / "TF-NAS-D")
    return {"100": d / "d100.pt", "1000": d / "TF-NAS-D" / "model.pth.tar", "dir": d}


def run_cli(argv, capsys):
    rc = main(["evaluate", *argv, "--workers", "0"])
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_transform_is_the_originals_and_data_py_s():
    from torchvision import transforms as T

    tf = evaluate.eval_transform()
    kinds = [type(t) for t in tf.transforms]
    assert kinds == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert tf.transforms[0].size == 256 and list(tf.transforms[1].size) == [224, 224]
    assert tf.transforms[3].mean == data.IMAGENET_MEAN == (0.485, 0.456, 0.406)
    assert tf.transforms[3].std == data.IMAGENET_STD == (0.229, 0.224, 0.225)


def test_the_transform_is_what_retraining_validates_with(fake_imagenet_root):
    _, val, _, _ = data.imagenet(fake_imagenet_root, 224, 2, 2, 0, 0, 1, 0, 0.08, check=False)
    assert repr(val.loader.dataset.dataset.transform) == repr(evaluate.eval_transform())


def test_top1_and_top5_are_counted_per_image():
    # the "net" returns its input: image i's logits rank class i % 7 first, then 0, 1, 2, ...
    logits = torch.arange(10.0).flip(0).repeat(6, 1)  # class 0 best, then 1, ..., 9 worst
    logits[[0, 1], [7, 8]] = 100.0  # images 0, 1 rank class 7, 8 first
    labels = torch.tensor([7, 0, 3, 4, 6, 9])
    # image 0: top-1 hit; 1: label 0 second -> top-5; 2: 3 is 4th -> top-5; 3: 4 is 5th -> top-5;
    # 4: 6 is 7th -> miss; 5: 9 is last -> miss
    seen = []
    c1, c5, n = evaluate.accuracy(torch.nn.Identity(), [(logits[:4], labels[:4]), (logits[4:], labels[4:])],
                                  torch.device("cpu"), on_batch=lambda *a: seen.append(a))
    assert (c1, c5, n) == (1, 4, 6)
    assert seen == [(1, 4, 1), (2, 6, 1)]


def test_classes_are_sorted_wnids_or_the_wnids_files_order(tmp_path):
    assert evaluate.class_map(["n3", "n1", "n2", "n1"], 3) == {"n1": 0, "n2": 1, "n3": 2}
    with pytest.raises(evaluate.EvalError, match="--wnids"):
        evaluate.class_map(["n1", "n2"], 1000)
    f = tmp_path / "synsets.txt"
    f.write_text("n9 tench, Tinca tinca\n\nn3 goldfish\nn1 x\n")
    names = evaluate.read_wnids(f)
    assert names == ["n9", "n3", "n1"]
    assert evaluate.class_map(["n1", "n9"], 3, names) == {"n1": 2, "n9": 0}
    with pytest.raises(evaluate.EvalError, match="2 classes, the net has 3"):
        evaluate.class_map(["n1"], 3, names[:2])
    with pytest.raises(evaluate.EvalError, match="not in"):
        evaluate.class_map(["n7"], 3, names)
    f.write_text("n1\nn1\n")
    with pytest.raises(evaluate.EvalError, match="named twice"):
        evaluate.read_wnids(f)


def test_evaluate_prints_progress_and_one_json_line(fake_imagenet_root, weights, capsys):
    rc, out, err = run_cli(["zoo:TF-NAS-D", "--weights", str(weights["100"]), "--imagenet", str(fake_imagenet_root),
                            "--limit", "6", "--batch", "2"], capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert {"top1", "top5", "images", "wall_s", "spec", "weights", "device"} <= set(r)
    assert r["images"] == 6 and r["spec"] == "TF-NAS-D" and r["classes"] == 100 and r["device"] == "cpu"
    assert 0 <= r["top1"] <= r["top5"] <= 100 and r["images_from"] == str(fake_imagenet_root / "val")
    progress = err.strip().splitlines()
    assert len(progress) == 3 and "2/6 images" in progress[0] and "ETA" in progress[0] and progress[-1].endswith("done")


def _labels_seen(monkeypatch):
    """Make ``evaluate.accuracy`` record the (image, label) pairs it is given instead of running."""
    seen = []

    def fake(net, batches, device, amp=True, on_batch=None):
        ds = batches.dataset
        seen.extend(ds.entries)
        return 0, 0, len(ds)

    monkeypatch.setattr(evaluate, "accuracy", fake)
    return seen


def test_a_1000_class_net_on_100_folders_takes_classes_from_wnids(fake_imagenet_root, weights, tmp_path, capsys,
                                                                   monkeypatch):
    present = sorted(p.name for p in (fake_imagenet_root / "val").iterdir())
    rc, _, err = run_cli(["zoo:TF-NAS-D", "--weights", str(weights["1000"]), "--imagenet", str(fake_imagenet_root)],
                         capsys)
    assert rc == 2 and "100 classes, the net has 1000" in err and "--wnids" in err and err.count("\n") == 1
    # a class list of 1000 in which the 100 present wnids sit at known places
    names = [f"n{90000000 + i}" for i in range(1000)]
    for j, w in enumerate(present):
        names[7 * j + 3] = w
    (tmp_path / "wnids.txt").write_text("".join(f"{w} a class\n" for w in names))
    seen = _labels_seen(monkeypatch)
    rc, out, err = run_cli(["zoo:TF-NAS-D", "--weights", str(weights["1000"]), "--imagenet", str(fake_imagenet_root),
                            "--wnids", str(tmp_path / "wnids.txt"), "--quiet"], capsys)
    assert rc == 0, err
    assert len(seen) == 10 * len(present) and json.loads(out)["classes"] == 1000
    for rel, label in seen:
        assert label == 7 * present.index(rel.split("/")[0]) + 3


def test_a_list_is_read_relative_to_the_root_its_files_are_under(fake_imagenet_root, weights, tmp_path, capsys,
                                                                 monkeypatch):
    """The official val list names files under train/ with ImageNet-100 labels; the label column is
    not used: the class comes from the wnid (here sorted: the net has 100 classes)."""
    from conftest import OFFICIAL_LISTS

    lines = OFFICIAL_LISTS[1].read_text().splitlines()
    firsts = {}
    for line in lines:
        firsts.setdefault(line.split("/")[0], line)
    picked = list(firsts.values())
    picked[0] = picked[0].rsplit(" ", 1)[0] + " 99"  # a wrong label column changes nothing
    (tmp_path / "val.txt").write_text("\n".join(picked) + "\n")
    seen = _labels_seen(monkeypatch)
    rc, out, err = run_cli(["zoo:TF-NAS-D", "--weights", str(weights["100"]), "--imagenet", str(fake_imagenet_root),
                            "--list", str(tmp_path / "val.txt"), "--quiet"], capsys)
    assert rc == 0, err
    r = json.loads(out)
    assert r["images"] == 100 and r["images_from"] == str(tmp_path / "val.txt")
    wnids = sorted(firsts)
    assert [label for _, label in seen] == [wnids.index(rel.split("/")[0]) for rel, _ in seen] == list(range(100))
    assert (fake_imagenet_root / "train" / seen[0][0]).is_file()


def test_zoo_accuracy_finds_weights_and_sets_the_paper_beside(fake_imagenet_root, weights):
    # (the 1000-class file would need a --wnids list on the 100-class root: the 100-class one, by a zoo name)
    d = weights["dir"] / "zoo"
    d.mkdir(exist_ok=True)
    (d / "TF-NAS-D.pt").write_bytes(weights["100"].read_bytes())
    df = evaluate.zoo_accuracy(d, fake_imagenet_root, limit=4, batch=4, workers=0, progress=False)
    assert list(df["architecture"]) == ["TF-NAS-D"] and df.loc[0, "weights"] == "TF-NAS-D.pt"
    assert df.loc[0, "paper_top1"] == zoo.PAPER["TF-NAS-D"].top1 and df.loc[0, "images"] == 4
    assert df.loc[0, "top1_minus_paper"] == pytest.approx(df.loc[0, "top1"] - 74.2)
    assert evaluate.find_weights(weights["dir"], "TF-NAS-D") == weights["1000"]
    assert evaluate.find_weights(weights["dir"], "TF-NAS-C") is None
    with pytest.raises(evaluate.EvalError, match="no weights for any"):
        evaluate.zoo_accuracy(d, fake_imagenet_root, names=["TF-NAS-A"])


@pytest.mark.parametrize("case, says", [
    ("no-root", "no such folder"),
    ("no-val", "no val/ folder"),
    ("wrong-net", "has shape"),
    ("no-weights-file", "no such checkpoint file"),
    ("missing-listed", "1 of 2 files missing"),
    ("list-nowhere", "is in none of"),
    ("bad-list", "expected 'wnid/file.JPEG label'"),
    ("no-list", "absent.txt: no such file"),
    ("wnids-count", "3 classes, the net has 100"),
    ("cuda", "CUDA is not available"),
    ("no-weights-flag", "--weights: required"),
])
def test_bad_input_is_one_line(case, says, fake_imagenet_root, weights, tmp_path, capsys, monkeypatch):
    root, w = fake_imagenet_root, weights["100"]
    spec, extra = "zoo:TF-NAS-D", []
    first = sorted((root / "val").iterdir())[0]
    if case == "no-root":
        root = tmp_path / "absent"
    elif case == "no-val":
        root = tmp_path
    elif case == "wrong-net":
        spec = "zoo:TF-NAS-C"
    elif case == "no-weights-file":
        w = tmp_path / "none.pt"
    elif case in ("missing-listed", "list-nowhere", "bad-list"):
        rel = f"{first.name}/{sorted(first.iterdir())[0].name}"
        text = {"missing-listed": f"{rel} 0\n{first.name}/gone.JPEG 0\n", "list-nowhere": "n0/x.JPEG 0\n",
                "bad-list": f"{rel}\n"}[case]
        (tmp_path / "l.txt").write_text(text)
        extra = ["--list", str(tmp_path / "l.txt")]
    elif case == "no-list":
        extra = ["--list", str(tmp_path / "absent.txt")]
    elif case == "wnids-count":
        (tmp_path / "w.txt").write_text("a\nb\nc\n")
        extra = ["--wnids", str(tmp_path / "w.txt")]
    elif case == "cuda":
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        extra = ["--device", "cuda"]
    weights_flag = [] if case == "no-weights-flag" else ["--weights", str(w)]
    rc, out, err = run_cli([spec, *weights_flag, "--imagenet", str(root), *extra], capsys)
    assert rc == 2 and out == "" and err.startswith("error: ") and says in err and err.count("\n") == 1, err


def test_a_batch_of_zero_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "zoo:TF-NAS-D", "--weights", "w", "--imagenet", "r", "--batch", "0"])
    assert e.value.code == 2 and "--batch" in capsys.readouterr().err
