"""Issue 31 (item 5): ``hubconf.py`` serves every zoo net through ``torch.hub.load(..., source='local')``,
randomly initialised or with weights from a local file in our layout or the original's."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from tfnas_core.nn import model
from tfnas_core.released import official
from tfnas_core.arch import zoo
from tfnas_core.nn.model import EvalNet

ROOT = Path(__file__).resolve().parents[1]
HUB_NAMES = {official.hub_name(n): n for n in zoo.names()}


def hub_load(entry: str, **kw):
    return torch.hub.load(str(ROOT), entry, source="local", **kw)


def random_weights(spec, seed: int) -> dict[str, torch.Tensor]:
    """An EvalNet state dict with every tensor random (BN statistics included)."""
    g = torch.Generator().manual_seed(seed)
    sd = model.build(spec).state_dict()
    return {k: (torch.randint(0, 1000, (), generator=g) if k.endswith("num_batches_tracked")
                else torch.rand(v.shape, generator=g) + 0.1) for k, v in sd.items()}


def assert_same_tensors(net: torch.nn.Module, sd: dict) -> None:
    got = net.state_dict()
    assert list(got) == list(sd)
    for k, v in sd.items():
        assert torch.equal(got[k], v), k


def test_entry_points_are_the_zoo_names():
    spec = importlib.util.spec_from_file_location("hubconf_under_test", ROOT / "hubconf.py")
    hub = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hub)
    public = sorted(n for n in dir(hub) if callable(getattr(hub, n)) and not n.startswith("_"))
    assert public == sorted(HUB_NAMES)
    assert {"tfnas_a", "tfnas_b", "tfnas_c", "tfnas_d", "tfnas_cpu_a", "tfnas_cpu_b"} <= set(public)
    assert hub.dependencies == ["torch"]
    # the names are the zoo's file names (one spelling of each net's key)
    assert sorted(HUB_NAMES) == sorted(p.stem for p in (ROOT / "tfnas_core" / "arch" / "published").glob("*.json"))
    for entry, name in HUB_NAMES.items():
        doc = getattr(hub, entry).__doc__
        assert doc.startswith(name + " ") and "randomly initialised" in doc and "no download" in doc


@pytest.mark.parametrize("entry", sorted(HUB_NAMES))
def test_every_zoo_net_loads_randomly_initialised_and_with_weights(entry, tmp_path):
    spec = zoo.load(HUB_NAMES[entry])
    net = hub_load(entry)
    assert isinstance(net, EvalNet)
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == \
        [(t.ours, t.shape) for t in official.tensor_names(spec, official_order=False)]
    sd = random_weights(spec, seed=len(entry))
    official.export(spec, sd, tmp_path / "official")  # the original's .pth.tar, module.-prefixed
    assert_same_tensors(hub_load(entry, weights=tmp_path / "official" / "model.pth.tar"), sd)


def test_weights_in_our_layout_and_the_originals(tmp_path):
    spec = zoo.load("TF-NAS-A")
    sd = random_weights(spec, seed=1)
    official.export(spec, sd, tmp_path / "official")
    official.import_official(tmp_path / "official" / "model.config", tmp_path / "official" / "model.pth.tar",
                             tmp_path / "ours")
    for path in (tmp_path / "ours" / "weights.pt", tmp_path / "official" / "model.pth.tar"):
        net = hub_load("tfnas_a", weights=str(path))
        assert_same_tensors(net, sd)
    torch.save({"model": sd, "epoch": 3}, tmp_path / "train_checkpoint.pt")  # a retraining checkpoint
    assert_same_tensors(hub_load("tfnas_a", weights=tmp_path / "train_checkpoint.pt"), sd)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(hub_load("tfnas_a", weights=tmp_path / "ours" / "weights.pt").eval()(x),
                           hub_load("tfnas_a", weights=tmp_path / "official" / "model.pth.tar").eval()(x))


def test_weights_of_another_net_are_refused_naming_the_key(tmp_path):
    torch.save(random_weights(zoo.load("TF-NAS-B"), seed=2), tmp_path / "b.pt")
    with pytest.raises(ValueError, match=r"b\.pt: 'blocks\.1\.expand\.0\.weight' has shape \[64, 16, 1, 1\], TF-NAS-A wants \[83, 16, 1, 1\]"):
        hub_load("tfnas_a", weights=tmp_path / "b.pt")
    with pytest.raises(ValueError, match="no such checkpoint file"):
        hub_load("tfnas_a", weights=tmp_path / "absent.pth.tar")


def test_a_class_count_other_than_imagenets(tmp_path):
    spec = zoo.load("TF-NAS-D")
    sd = model.build(spec, official.PAPER_SCALE.with_(num_classes=100)).state_dict()
    torch.save(sd, tmp_path / "d100.pt")
    assert hub_load("tfnas_d", weights=tmp_path / "d100.pt", num_classes=100).classifier.out_features == 100
    with pytest.raises(ValueError, match="classifier.weight' has shape"):
        hub_load("tfnas_d", weights=tmp_path / "d100.pt")
