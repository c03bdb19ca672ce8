"""Issue 31 (items 1, 2): the released TF-NAS models load into our network and compute the same function.

The six released nets (TF-NAS-A, B, C, D, CPU-A, CPU-B) are read from
``../shared/reference/official/release/``: their ``model.config`` and the tensor names and shapes
of their checkpoints.  Checkpoints are built to those shapes with random weights and random
BatchNorm statistics, imported, and the logits of our ``EvalNet`` compared with an independent
forward of the original network written below straight from the model.config and the
original-named tensors (``F.conv2d``, ``F.batch_norm``, the activations, SE and the residual as
the facts describe), not through our modules.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED, refused, run_cli
from tfnas_core.nn import model
from tfnas_core.released import official
from tfnas_core.arch import zoo
from tfnas_core.arch.spec import Layer, Spec

RELEASE = SHARED / "reference" / "official" / "release"
RELEASED = ("TF-NAS-A", "TF-NAS-B", "TF-NAS-C", "TF-NAS-D", "TF-NAS-CPU-A", "TF-NAS-CPU-B")
LOGIT_RTOL = 1e-4  # max |ours - original| over max |logit|, float32


def release_file(name: str, kind: str) -> Path:
    p = RELEASE / f"{name}.{kind}"
    if not p.is_file():
        pytest.skip(f"{p} not found (../shared/reference is absent on this machine)")
    return p


def random_state(shapes: dict, seed: int) -> dict[str, torch.Tensor]:
    """Random tensors of the given names and shapes: fan-in scaled conv/linear weights, random BN
    affine parameters and running statistics, any ``num_batches_tracked``."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, shape in shapes.items():
        shape = tuple(shape)
        if k.endswith("num_batches_tracked"):
            sd[k] = torch.tensor(int(torch.randint(1, 10**6, (), generator=g)))
        elif k.endswith("running_var") or (".bn." in k and k.endswith(".weight")):
            sd[k] = 0.5 + torch.rand(shape, generator=g)
        elif k.endswith(("running_mean", "bias")):
            sd[k] = 0.2 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            sd[k] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
    return sd


def release_checkpoint(name: str, seed: int = 0) -> tuple[dict, dict[str, torch.Tensor]]:
    """(model.config, a state dict with the released checkpoint's names and shapes).

    Random weights; each BN's running mean and variance are random (mean within half a standard
    deviation, variance within x0.5..x1.5) around the statistics of one random batch, so that
    activations neither vanish nor explode through 20 blocks (with free random statistics the
    logits reach 1e4 or stop depending on the input) and the logits are O(1)."""
    cfg = json.loads(release_file(name, "model.config").read_text())
    shapes = json.loads(release_file(name, "state_dict_shapes.json").read_text())
    sd = random_state(shapes, seed)
    with torch.no_grad():
        original_forward(cfg, sd, torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(seed)), True)
    return cfg, sd


# ----------------------------------------------------------------------------- the original, functionally


def _act(x: torch.Tensor, name: str | None) -> torch.Tensor:
    if name is None:
        return x
    if name == "relu":
        return F.relu(x)
    if name == "swish":
        return x * torch.sigmoid(x)
    raise AssertionError(f"activation {name!r} not in the released nets")


def _conv_bn_act(x, sd, prefix: str, stride: int, groups: int, act: str | None, calibrate: bool = False):
    w = sd[f"{prefix}.conv.weight"]
    x = F.conv2d(x, w, None, stride, w.shape[-1] // 2, 1, groups)  # 'same' padding, no bias
    bn = f"{prefix}.bn"
    if calibrate:  # running statistics near this batch's, as a trained net's: activations stay O(1)
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
        sd[f"{bn}.running_mean"] = mean + 0.5 * var.sqrt() * sd[f"{bn}.running_mean"]
        sd[f"{bn}.running_var"] = var * sd[f"{bn}.running_var"]
    x = F.batch_norm(x, sd[f"{bn}.running_mean"], sd[f"{bn}.running_var"], sd[f"{bn}.weight"], sd[f"{bn}.bias"],
                     training=False, eps=1e-5)
    return _act(x, act)


def _mb_block(x, sd, prefix: str, layer: dict, calibrate: bool = False):
    """MBInvertedResBlock: [1x1 expand → BN → act] (mid > cin); kxk depthwise (stride) → BN → act;
    [SE: pool → 1x1+b → act → 1x1+b → sigmoid → scale]; 1x1 project → BN; + input if shape kept."""
    cin, mid, se, cout = (layer[k] for k in ("in_channels", "mid_channels", "se_channels", "out_channels"))
    k, s, act = layer["kernel_size"], layer["stride"], layer["act_func"]
    y = x
    if mid > cin:
        y = _conv_bn_act(y, sd, f"{prefix}.inverted_bottleneck", 1, 1, act, calibrate)
    assert sd[f"{prefix}.depth_conv.conv.weight"].shape[-1] == k
    y = _conv_bn_act(y, sd, f"{prefix}.depth_conv", s, mid, act, calibrate)
    if se > 0:
        z = y.mean((2, 3), keepdim=True)
        z = _act(F.conv2d(z, sd[f"{prefix}.squeeze_excite.conv_reduce.weight"],
                          sd[f"{prefix}.squeeze_excite.conv_reduce.bias"]), act)
        z = F.conv2d(z, sd[f"{prefix}.squeeze_excite.conv_expand.weight"], sd[f"{prefix}.squeeze_excite.conv_expand.bias"])
        y = y * torch.sigmoid(z)
    y = _conv_bn_act(y, sd, f"{prefix}.point_linear", 1, 1, None, calibrate)
    return x + y if s == 1 and cin == cout else y


def original_forward(cfg: dict, state_dict: dict, x: torch.Tensor, calibrate: bool = False) -> torch.Tensor:
    """The original evaluation network in eval mode, from its model.config and checkpoint names.

    ``calibrate``: first move each BN's running statistics (in ``state_dict``) near those of this
    batch, keeping their random spread (see ``release_checkpoint``)."""
    sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
    for key in ("first_stem", "feature_mix_layer"):
        assert cfg[key]["ops_order"] == "weight_bn_act" and cfg[key]["use_bn"]
    stem = cfg["first_stem"]
    x = _conv_bn_act(x, sd, "first_stem", stem["stride"], stem["groups"], stem["act_func"], calibrate)
    x = _mb_block(x, sd, "second_stem", cfg["second_stem"], calibrate)
    for s in range(1, 7):
        for i, layer in enumerate(cfg[f"stage{s}"]):
            x = _mb_block(x, sd, f"stage{s}.{i}", layer, calibrate)
    x = _conv_bn_act(x, sd, "feature_mix_layer", 1, 1, cfg["feature_mix_layer"]["act_func"], calibrate)
    if calibrate:
        prefix = "module." if all(k.startswith("module.") for k in state_dict) else ""
        state_dict.update({prefix + k: v for k, v in sd.items() if k.endswith(("running_mean", "running_var"))})
    x = x.mean((2, 3))
    return F.linear(x, sd["classifier.linear.weight"], sd["classifier.linear.bias"])


# ----------------------------------------------------------------------------- CLI harness


def run(argv: list, capsys, monkeypatch) -> tuple[int, str, str]:
    """``python -m tfnas_core ARGV`` through ``cli.main`` (cli.py registers this module's commands)."""
    return run_cli(argv, capsys)


def assert_nothing_written(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt.pth.tar", "model.config"], list(folder.iterdir())


# ----------------------------------------------------------------------------- the same function


@pytest.mark.parametrize("name", RELEASED)
def test_imported_weights_give_the_original_logits(name, tmp_path, capsys, monkeypatch):
    cfg, sd = release_checkpoint(name, seed=RELEASED.index(name))
    cfg_path = release_file(name, "model.config")
    ckpt = tmp_path / f"{name}.pth.tar"
    torch.save({"state_dict": sd, "epoch": 250, "optimizer": {"state": {}, "param_groups": [{"lr": 0.2}]}}, ckpt)
    code, out, err = run(["import-official", "--config", cfg_path, "--weights", ckpt, "--out", tmp_path / "imp"],
                         capsys, monkeypatch)
    assert code == 0 and err == "", err
    assert f"{name} (the zoo entry, 1000 classes)" in out
    spec_text = (tmp_path / "imp" / "spec.json").read_text()
    assert spec_text == zoo.load(name).to_json()
    weights = torch.load(tmp_path / "imp" / "weights.pt", weights_only=True)
    net = model.build(zoo.load(name)).eval()
    net.load_state_dict(weights)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        t0 = time.perf_counter()
        ours = net(x)
        want = original_forward(cfg, sd, x)
        secs = time.perf_counter() - t0
    scale = want.abs().max().item()
    diff = (ours - want).abs().max().item()
    print(f"{name}: max |logit diff| {diff:.3g} (max |logit| {scale:.3g}, std {want.std():.3g}), both forwards {secs:.2f} s")
    assert want.std() > 0.1 and (want[0] - want[1]).abs().max() > 0.1  # logits that depend on weights and input
    assert diff <= LOGIT_RTOL * scale, (diff, scale)


def test_random_bn_statistics_make_the_comparison_sharp():
    """Swapping the statistics of two same-sized BNs of one block (a plausible mapping error)
    moves the original's logits far beyond the tolerance: the test above would see it."""
    cfg, sd = release_checkpoint("TF-NAS-D", seed=3)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    swapped = dict(sd)
    a, b = "module.stage3.1.inverted_bottleneck.bn", "module.stage3.1.depth_conv.bn"
    for t in ("running_mean", "running_var"):
        swapped[f"{a}.{t}"], swapped[f"{b}.{t}"] = sd[f"{b}.{t}"], sd[f"{a}.{t}"]
    with torch.no_grad():
        want, moved = original_forward(cfg, sd, x), original_forward(cfg, swapped, x)
    assert (want - moved).abs().max() > 100 * LOGIT_RTOL * want.abs().max()


# ----------------------------------------------------------------------------- spec and names


@pytest.mark.parametrize("name", RELEASED)
def test_released_config_is_our_zoo_entry_and_back(name):
    path = release_file(name, "model.config")
    spec, classes = official.read_config(path)
    assert spec == zoo.load(name) and spec.to_json() == zoo.load(name).to_json() and classes == 1000
    # what the original's json.dump(config, indent=4) wrote, byte for byte
    assert official.config_text(official.config_from_spec(zoo.load(name))) == path.read_text()


@pytest.mark.parametrize("name", RELEASED)
def test_tensor_names_are_the_released_checkpoints(name):
    shapes = json.loads(release_file(name, "state_dict_shapes.json").read_text())
    names = official.tensor_names(zoo.load(name))
    assert [("module." + t.official, list(t.shape)) for t in names] == list(shapes.items())
    ours = model.build(zoo.load(name)).state_dict()
    assert [(t.ours, t.shape) for t in official.tensor_names(zoo.load(name), official_order=False)] == \
        [(k, tuple(v.shape)) for k, v in ours.items()]


@pytest.mark.parametrize("name", zoo.names())
def test_every_zoo_net_round_trips_through_a_model_config(name):
    spec = zoo.load(name)
    back, classes = official.spec_from_config(official.config_from_spec(spec, 100))
    assert back == spec and back.to_json() == spec.to_json() and classes == 100


def test_a_net_outside_the_zoo_is_named_after_its_file(tmp_path):
    d = zoo.load("TF-NAS-D")
    stages = list(d.stages)
    stages[5] = (Layer("k3_e3_se", 500),)  # paper stage 8: cin 192, e3 range [384, 768]
    spec = Spec("x", d.space, tuple(stages))
    (tmp_path / "My-Net.model.config").write_text(official.config_text(official.config_from_spec(spec)))
    got, _ = official.read_config(tmp_path / "My-Net.model.config")
    assert got.name == "My-Net" and got.stages == spec.stages and got.space == "tfnas"
    (tmp_path / "run7").mkdir()
    (tmp_path / "run7" / "model.config").write_text(official.config_text(official.config_from_spec(spec)))
    assert official.read_config(tmp_path / "run7" / "model.config")[0].name == "run7"
    assert official.read_config(tmp_path / "run7" / "model.config", name="mine")[0].name == "mine"


# ----------------------------------------------------------------------------- checkpoint layouts


@pytest.fixture(scope="module")
def released_d_state():
    return release_checkpoint("TF-NAS-D", seed=11)


@pytest.fixture
def released_d(tmp_path, released_d_state):
    """TF-NAS-D's config and a random checkpoint with its released names, in tmp_path."""
    cfg, sd = released_d_state
    (tmp_path / "model.config").write_text(json.dumps(cfg, indent=4))
    torch.save({"state_dict": sd, "epoch": 1}, tmp_path / "ckpt.pth.tar")
    return tmp_path, sd


@pytest.mark.parametrize("layout", ["plain-without-prefix", "plain-with-prefix", "under-state_dict-without-prefix",
                                    "without-num_batches_tracked"])
def test_other_checkpoint_layouts_give_the_same_weights(layout, released_d, capsys, monkeypatch):
    tmp, sd = released_d
    stripped = {k.removeprefix("module."): v for k, v in sd.items()}
    obj = {"plain-without-prefix": stripped, "plain-with-prefix": sd,
           "under-state_dict-without-prefix": {"state_dict": stripped, "epoch": 3},
           "without-num_batches_tracked": {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}}[layout]
    torch.save(obj, tmp / "other.pth.tar")
    for ckpt, out in (("ckpt.pth.tar", "a"), ("other.pth.tar", "b")):
        code, _, err = run(["import-official", "--config", tmp / "model.config", "--weights", tmp / ckpt,
                            "--out", tmp / out], capsys, monkeypatch)
        assert code == 0, err
    a = torch.load(tmp / "a" / "weights.pt", weights_only=True)
    b = torch.load(tmp / "b" / "weights.pt", weights_only=True)
    assert list(a) == list(b)
    for k in a:
        if k.endswith("num_batches_tracked") and layout == "without-num_batches_tracked":
            assert int(b[k]) == 0
        else:
            assert torch.equal(a[k], b[k]), k


def test_without_weights_only_the_spec_is_written(released_d, capsys, monkeypatch):
    tmp, _ = released_d
    code, out, err = run(["import-official", "--config", tmp / "model.config", "--out", tmp / "o", "--json"],
                         capsys, monkeypatch)
    assert code == 0, err
    assert json.loads(out)["files"] == ["spec.json"] and json.loads(out)["zoo_entry"] is True
    assert [p.name for p in (tmp / "o").iterdir()] == ["spec.json"]
    assert (tmp / "o" / "spec.json").read_text() == zoo.load("TF-NAS-D").to_json()


# ----------------------------------------------------------------------------- refusals


def _edit_checkpoint(sd: dict, case: str) -> tuple[dict, str]:
    sd = dict(sd)
    key = "module.stage3.1.depth_conv.conv.weight"
    if case == "wrong shape":
        sd[key] = torch.zeros(219, 1, 5, 5)
        return sd, f"'{key}' has shape [219, 1, 5, 5]"
    if case == "missing key":
        del sd[key]
        return sd, f"missing key '{key}'"
    if case == "unknown key":
        sd["module.stage3.1.shortcut.conv.weight"] = torch.zeros(80, 80, 1, 1)
        return sd, "unexpected key 'module.stage3.1.shortcut.conv.weight'"
    if case == "extra layer":
        sd["module.stage5.1.depth_conv.conv.weight"] = torch.zeros(10, 1, 3, 3)
        return sd, "unexpected key 'module.stage5.1.depth_conv.conv.weight'"
    if case == "not a tensor":
        sd[key] = [1.0, 2.0]
        return {"state_dict": sd}, "is list, not a tensor"
    if case == "integer weights":
        sd[key] = sd[key].long()
        return sd, f"'{key}' has dtype torch.int64"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["wrong shape", "missing key", "unknown key", "extra layer", "not a tensor",
                                  "integer weights"])
def test_a_checkpoint_that_does_not_match_is_refused_naming_the_key(case, released_d, capsys, monkeypatch):
    tmp, sd = released_d
    obj, needle = _edit_checkpoint(sd, case)
    torch.save(obj if "state_dict" in obj else {"state_dict": obj}, tmp / "ckpt.pth.tar")
    refused(run(["import-official", "--config", tmp / "model.config", "--weights", tmp / "ckpt.pth.tar",
                 "--out", tmp / "out"], capsys, monkeypatch), "ckpt.pth.tar", needle)
    assert_nothing_written(tmp)


def _edit_config(cfg: dict, case: str) -> tuple[dict, str]:
    cfg = json.loads(json.dumps(cfg))
    layer = cfg["stage3"][1]
    if case == "unknown layer name":
        layer["name"] = "ZeroLayer"
        return cfg, 'stage3[1].name: expected "MBInvertedResBlock", got "ZeroLayer"'
    if case == "extra layer key":
        layer["dilation"] = 2
        return cfg, "stage3[1].dilation: unknown key"
    if case == "missing layer key":
        del layer["act_func"]
        return cfg, "stage3[1].act_func: missing"
    if case == "wrong activation":
        layer["act_func"] = "relu"
        return cfg, 'stage3[1].act_func: expected "swish", got "relu"'
    if case == "wrong in_channels":
        layer["in_channels"] = 40
        return cfg, "stage3[1].in_channels: expected 80, got 40"
    if case == "SE width of no op":
        layer["se_channels"] = 7
        return cfg, "stage3[1]: SE width 7"
    if case == "width out of range":
        layer["mid_channels"] = 700
        return cfg, "stage3[1].mid_channels: 700 outside"
    if case == "unknown top-level key":
        cfg["stage7"] = []
        return cfg, "unknown key 'stage7'"
    if case == "missing stage":
        del cfg["stage6"]
        return cfg, "missing key 'stage6'"
    if case == "too deep":
        cfg["stage6"].append(cfg["stage6"][0])
        return cfg, "stage6: 2 layers, paper stage 8 takes 1..1"
    if case == "head width":
        cfg["feature_mix_layer"]["out_channels"] = 1536
        return cfg, "feature_mix_layer.out_channels: expected 1280, got 1536"
    if case == "bool for int":
        layer["stride"] = True
        return cfg, "stage3[1].stride: expected 1, got true"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["unknown layer name", "extra layer key", "missing layer key", "wrong activation",
                                  "wrong in_channels", "SE width of no op", "width out of range",
                                  "unknown top-level key", "missing stage", "too deep", "head width", "bool for int"])
def test_a_config_that_does_not_match_is_refused_naming_the_key(case, released_d, capsys, monkeypatch):
    tmp, _ = released_d
    cfg, needle = _edit_config(json.loads((tmp / "model.config").read_text()), case)
    (tmp / "model.config").write_text(json.dumps(cfg, indent=4))
    refused(run(["import-official", "--config", tmp / "model.config", "--weights", tmp / "ckpt.pth.tar",
                 "--out", tmp / "out"], capsys, monkeypatch), "model.config: ", needle)
    assert_nothing_written(tmp)


class NotATensor:  # a pickled object weights_only refuses to build
    pass


@pytest.mark.parametrize("case", ["pickled object", "truncated", "not a state dict", "no such file"])
def test_an_unreadable_checkpoint_is_refused(case, released_d, capsys, monkeypatch):
    tmp, _ = released_d
    ckpt = tmp / "ckpt.pth.tar"
    if case == "pickled object":
        torch.save({"state_dict": NotATensor()}, ckpt)
        needle = "weights_only"
    elif case == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
        needle = "not a checkpoint"
    elif case == "not a state dict":
        torch.save({"epoch": 3, "state_dict": 4}, ckpt)
        needle = "not a tensor"
    else:
        ckpt.unlink()
        needle = "no such checkpoint file"
    err = refused(run(["import-official", "--config", tmp / "model.config", "--weights", ckpt, "--out", tmp / "out"],
                      capsys, monkeypatch), str(ckpt), needle)
    assert not (tmp / "out").exists(), err


def test_a_non_empty_out_is_refused_and_an_empty_one_filled(released_d, capsys, monkeypatch):
    tmp, _ = released_d
    (tmp / "full").mkdir()
    (tmp / "full" / "keep.txt").write_text("x")
    argv = ["import-official", "--config", tmp / "model.config", "--weights", tmp / "ckpt.pth.tar"]
    refused(run(argv + ["--out", tmp / "full"], capsys, monkeypatch), "full: exists and is not an empty folder")
    assert [p.name for p in (tmp / "full").iterdir()] == ["keep.txt"]
    (tmp / "empty").mkdir()
    assert run(argv + ["--out", tmp / "empty"], capsys, monkeypatch)[0] == 0
    assert sorted(p.name for p in (tmp / "empty").iterdir()) == ["spec.json", "weights.pt"]


def test_a_failed_write_leaves_no_folder_and_no_debris(released_d, capsys, monkeypatch):
    tmp, _ = released_d

    def full_disk(obj, f, *a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    refused(run(["import-official", "--config", tmp / "model.config", "--weights", tmp / "ckpt.pth.tar",
                 "--out", tmp / "out"], capsys, monkeypatch), "writing", "out")
    assert_nothing_written(tmp)


# ----------------------------------------------------------------------------- export (the inverse)


@pytest.mark.parametrize("name", ["TF-NAS-D", "TF-NAS-C-wose", "TF-NAS-MBV2-B"])
def test_export_then_import_gives_the_same_spec_and_tensors(name, tmp_path):
    spec = zoo.load(name)
    shapes = {t.ours: t.shape for t in official.tensor_names(spec, official_order=False)}
    sd = random_state(shapes, seed=5)
    official.export(spec, sd, tmp_path / "exp")
    assert sorted(p.name for p in (tmp_path / "exp").iterdir()) == ["model.config", "model.pth.tar"]
    ckpt = torch.load(tmp_path / "exp" / "model.pth.tar", weights_only=True)
    assert list(ckpt) == ["state_dict"] and all(k.startswith("module.") for k in ckpt["state_dict"])
    imp = official.import_official(tmp_path / "exp" / "model.config", tmp_path / "exp" / "model.pth.tar", tmp_path / "imp")
    assert imp.spec == spec and imp.zoo_entry and imp.spec.to_json() == spec.to_json()
    back = torch.load(tmp_path / "imp" / "weights.pt", weights_only=True)
    assert list(back) == list(shapes)
    for k, v in sd.items():
        assert torch.equal(back[k], v), k


def test_export_keeps_the_class_count(tmp_path):
    spec = zoo.load("TF-NAS-CPU-B")
    sd = model.build(spec, official.PAPER_SCALE.with_(num_classes=100)).state_dict()
    official.export(spec, sd, tmp_path / "exp")
    cfg = json.loads((tmp_path / "exp" / "model.config").read_text())
    assert cfg["classifier"]["out_features"] == 100
    imp = official.import_official(tmp_path / "exp" / "model.config", tmp_path / "exp" / "model.pth.tar", tmp_path / "i")
    assert imp.num_classes == 100 and imp.spec == spec


def test_export_refuses_weights_of_another_net(tmp_path):
    sd = model.build(zoo.load("TF-NAS-C")).state_dict()
    with pytest.raises(official.OfficialError, match="'blocks.1.expand.0.weight' has shape"):
        official.export(zoo.load("TF-NAS-D"), sd, tmp_path / "exp")
    assert not list(tmp_path.iterdir())
