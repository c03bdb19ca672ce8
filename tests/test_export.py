"""python -m tfnas_core export: every format gives the eager network's logits, for any spec, and
nothing half-written stays behind when an export fails."""
import json
import os
import random
from pathlib import Path

import pytest
import torch

from tfnas_core.arch import spec as arch_spec
from tfnas_core.released import export
from tfnas_core.nn import model
from tfnas_core.released import official
from tfnas_core.arch import zoo
from tfnas_core.cli.main import main
from tfnas_core.arch.random_arch import sample_spec
from tfnas_core.arch.space import PAPER_SCALE

ONNX_ABSENT = [m for m in ("onnx", "onnxscript", "onnxruntime") if not export._importable(m)]


def random_weights(spec, seed: int, num_classes: int = 1000) -> dict:
    """Weights and BN statistics away from their initial values, so that a wrong export shows
    (at initialisation BN is the identity and the logits are nearly zero)."""
    g = torch.Generator().manual_seed(seed)
    net = model.build(spec, PAPER_SCALE.with_(num_classes=num_classes))
    sd = net.state_dict()
    for k, v in sd.items():
        if k.endswith("running_var"):
            v.copy_(0.5 + torch.rand(v.shape, generator=g))
        elif k.endswith(("running_mean", ".bias")):
            v.copy_(0.1 * torch.randn(v.shape, generator=g))
        elif v.is_floating_point() and v.ndim == 1:  # BN weight
            v.copy_(0.8 + 0.4 * torch.rand(v.shape, generator=g))
        elif k == "classifier.weight":
            v.copy_(0.05 * torch.randn(v.shape, generator=g))
    return sd


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """An import-official folder of TF-NAS-D (spec.json + weights.pt) with random weights."""
    d = tmp_path_factory.mktemp("imported")
    spec = zoo.load("TF-NAS-D")
    official.export(spec, random_weights(spec, 0), d / "official")
    official.import_official(d / "official" / "model.config", d / "official" / "model.pth.tar", d / "net")
    return d / "net"


def run_cli(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def eager(folder: Path, x):
    spec = arch_spec.load(folder / "spec.json")
    net = model.build(spec).eval()
    net.load_state_dict(torch.load(folder / "weights.pt", weights_only=True))
    with torch.no_grad():
        return net(x)


def reload(fmt: str, out: Path, x):
    """The written file, run by its own reader (not export's)."""
    with torch.no_grad():
        if fmt == "torchscript":
            return torch.jit.load(str(out))(x)
        if fmt == "exported":
            return torch.export.load(str(out)).module()(x)
        if fmt == "onnx":
            import onnxruntime as ort

            return torch.from_numpy(ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
                                    .run(None, {"input": x.numpy()})[0])
        spec, _ = official.read_config(out / "model.config")
        net = model.build(spec).eval()
        net.load_state_dict(official.load_weights(out / "model.pth.tar", spec))
        return net(x)


FORMAT_PARAMS = [pytest.param(f, marks=pytest.mark.skipif(
    f == "onnx" and bool(ONNX_ABSENT),
    reason=f"onnx export needs the 'export' extra: {', '.join(ONNX_ABSENT)} not installed "
           f"(pip install -e '.[export]')")) for f in export.FORMATS]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.load in reload()
@pytest.mark.parametrize("fmt", FORMAT_PARAMS)
def test_each_format_gives_the_eager_logits(fmt, imported, tmp_path, capsys):
    out = tmp_path / {"torchscript": "d.ts", "exported": "d.pt2", "onnx": "d.onnx", "official": "d"}[fmt]
    rc, stdout, err = run_cli(["export", str(imported), "--format", fmt, "--out", str(out)], capsys)
    assert rc == 0, err
    r = json.loads(stdout)  # one JSON line: the onnx exporter's chatter went to stderr
    assert r["format"] == fmt and r["checked"] and r["weights"] == str(imported / "weights.pt")
    assert r["max_abs_diff"] <= export.ATOL + export.RTOL * 100 and r["bytes"] > 1e6
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temp file left
    x = torch.randn(5, 3, 224, 224, generator=torch.Generator().manual_seed(7))  # a batch seen by neither
    want = eager(imported, x)
    got = reload(fmt, out, x)
    diff = (got - want).abs().max().item()
    print(f"{fmt}: max |logit diff| {diff:.3g} (max |logit| {want.abs().max():.3g}), export {r['seconds']} s")
    assert want.std() > 0.1 and diff <= export.ATOL + export.RTOL * want.abs().max().item()


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_a_searched_spec_exports(tmp_path, capsys):
    """Any spec: a search's spec.json (here a random valid architecture), without weights."""
    spec = sample_spec("tfnas", random.Random(5), name="searched")
    arch_spec.save(spec, tmp_path / "spec.json")
    rc, stdout, err = run_cli(["export", str(tmp_path / "spec.json"), "--format", "torchscript",
                               "--out", str(tmp_path / "s.ts")], capsys)
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["spec"] == "searched" and r["weights"] is None and "no --weights: random weights" in r["notes"]
    ts = torch.jit.load(str(tmp_path / "s.ts"))
    assert ts(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_the_check_compares_outputs():
    want = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    assert export.max_diff(want + 1e-6, want, "x") == pytest.approx(1e-6, rel=0.05)
    for bad in (want + 1e-2, want[:1], torch.full_like(want, float("nan"))):
        with pytest.raises(export.ExportError):
            export.max_diff(bad, want, "x")


def _no_debris(folder: Path, keep=()):
    return sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


def test_a_failed_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    def half(net, example, path):
        Path(path).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(export.WRITERS, "torchscript", (half, export.WRITERS["torchscript"][1]))
    out = tmp_path / "out" / "d.ts"
    rc, stdout, err = run_cli(["export", "zoo:TF-NAS-D", "--format", "torchscript", "--out", str(out)], capsys)
    assert rc == 2 and stdout == "" and err.startswith("error: ") and err.count("\n") == 1 and str(out) in err
    assert _no_debris(out.parent)


def test_an_export_whose_output_differs_is_not_written(tmp_path, capsys, monkeypatch):
    write, run = export.WRITERS["torchscript"]
    monkeypatch.setitem(export.WRITERS, "torchscript", (write, lambda path, x: run(path, x) + 1.0))
    out = tmp_path / "d.ts"
    rc, stdout, err = run_cli(["export", "zoo:TF-NAS-D", "--format", "torchscript", "--out", str(out)], capsys)
    assert rc == 2 and "output differs from the eager network's" in err and err.count("\n") == 1
    assert _no_debris(tmp_path)


def test_onnx_without_its_modules_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "_importable", lambda name: name not in ("onnxscript",))
    rc, _, err = run_cli(["export", "zoo:TF-NAS-D", "--format", "onnx", "--out", str(tmp_path / "d.onnx")], capsys)
    assert rc == 2 and "onnxscript" in err and "[export]" in err and err.count("\n") == 1
    assert _no_debris(tmp_path)


@pytest.mark.parametrize("argv, says", [
    (["zoo:TF-NAS-Z", "--format", "torchscript", "--out", "{tmp}/x.ts"], "unknown published architecture"),
    (["{tmp}/none.json", "--format", "torchscript", "--out", "{tmp}/x.ts"], "none.json"),
    (["zoo:TF-NAS-D", "--format", "torchscript", "--out", "{tmp}"], "is a folder"),
    (["zoo:TF-NAS-D", "--weights", "{tmp}/none.pt", "--format", "official", "--out", "{tmp}/o"], "no such checkpoint"),
    (["{tmp}", "--format", "official", "--out", "{tmp}/o"], "a folder without spec.json"),
])
def test_bad_input_is_one_line(argv, says, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, stdout, err = run_cli(["export", *argv], capsys)
    assert rc == 2 and stdout == "" and says in err and err.startswith("error: ") and err.count("\n") == 1
    assert _no_debris(tmp_path)


def test_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export", "zoo:TF-NAS-D", "--format", "tflite", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_official_export_keeps_a_non_1000_class_count(tmp_path, capsys):
    spec = zoo.load("TF-NAS-C")
    torch.save(random_weights(spec, 1, num_classes=10), tmp_path / "w.pt")
    rc, stdout, err = run_cli(["export", "zoo:TF-NAS-C", "--weights", str(tmp_path / "w.pt"), "--format", "official",
                               "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["classes"] == 10 and r["max_abs_diff"] == 0.0
    assert json.loads((tmp_path / "o" / "model.config").read_text())["classifier"]["out_features"] == 10
    assert sorted(os.listdir(tmp_path)) == ["o", "w.pt"]


@pytest.mark.parametrize("fmt", ["official", "torchscript"])
def test_no_check_says_so(fmt, tmp_path, capsys):
    out = tmp_path / ("o" if fmt == "official" else "d.ts")
    rc, stdout, err = run_cli(["export", "zoo:TF-NAS-D", "--format", fmt, "--out", str(out), "--no-check"], capsys)
    assert rc == 0, err
    r = json.loads(stdout)
    assert r["checked"] is False and r["max_abs_diff"] is None and "output not checked (--no-check)" in r["notes"]
