"""Latency lookup tables: formats, the restricted unpickler, prediction, building and resuming."""
import json
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch

from tfnas_core.latency import lut as latency
from tfnas_core.latency import build as lut_build
from tfnas_core.latency import fit as lut_fit
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.arch import zoo
from tfnas_core.latency.lut import LUT, LUTError
from tfnas_core.arch.space import get_space, layer_geometry


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_restricted_unpickler_refuses_and_never_executes(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps(OrderedDict(base=1.0, x=_Evil(str(marker)))))
    # the plain unpickler *would* run it: that is what we protect against
    pickle.loads(evil.read_bytes())
    assert marker.exists()
    marker.unlink()
    with pytest.raises(LUTError, match="refusing to load this pickle: it references pathlib"):
        latency.load(evil)
    assert not marker.exists()


def test_pickle_with_wrong_shape_is_refused(tmp_path):
    p = tmp_path / "bad.pkl"
    p.write_bytes(pickle.dumps({"base": 1.0, "k": {"a": 1.0}}))
    with pytest.raises(LUTError, match="integer widths"):
        latency.load(p)
    p.write_bytes(pickle.dumps({"nobase": 1.0}))
    with pytest.raises(LUTError, match="base"):
        latency.load(p)
    p.write_bytes(b"\x80\x04garbage")
    with pytest.raises(LUTError, match="not a readable latency pickle"):
        latency.load(p)


def test_official_lut_covers_tfnas_space(official_lut):
    assert official_lut.check_covers(get_space("tfnas")) == []
    assert len(official_lut.entries) == 66
    assert official_lut.base == pytest.approx(1.9858, abs=1e-4)
    assert official_lut.check_covers(get_space("mbv2"))  # the GPU table has no ReLU6 keys


def test_key_format_is_the_official_one():
    g = layer_geometry(get_space("tfnas"), 4, 0)
    assert latency.layer_key(get_space("tfnas"), g, "k5_e6_se") == "MBInvertedResBlock_56_24_48_40_k5_s2_swish"
    g = layer_geometry(get_space("tfnas"), 7, 2)
    assert latency.layer_key(get_space("tfnas"), g, "k3_e3") == "MBInvertedResBlock_7_192_0_192_k3_s1_swish"


def test_json_round_trip_and_missing_key(tmp_path, official_lut):
    p = official_lut.__class__(official_lut.base, official_lut.entries, {"device": "test"}).save(tmp_path / "l.json")
    again = latency.load(p)
    spec = zoo.load("TF-NAS-B")
    assert again.predict(spec) == pytest.approx(official_lut.predict(spec), abs=1e-5)
    d = json.loads(p.read_text())
    assert d["format"] == "tfnas-lut/1" and d["provenance"]["device"] == "test"
    small = LUT(1.0, {k: v for k, v in list(official_lut.entries.items())[:3]})
    with pytest.raises(LUTError, match="no entry for key .*needed by stage 3 layer 0"):
        small.predict(spec)


def test_expected_latency_reduces_to_predict_for_one_hot(official_lut):
    spec = zoo.load("TF-NAS-C")
    space = spec.search_space
    probs, lats = [], []
    for geom, layer in spec.layers():
        mids = [layer.mid if n == layer.op else space.op(n).init_width(geom.cin) for n in space.ops]
        lats.append(torch.tensor(relaxed_latency.op_latencies(official_lut, space, geom, mids)))
        probs.append(torch.nn.functional.one_hot(torch.tensor(space.ops.index(layer.op)), len(space.ops)).float())
    exp = relaxed_latency.expected_latency(official_lut.base, probs, lats)
    assert float(exp) == pytest.approx(official_lut.predict(spec), abs=1e-5)


def test_expected_latency_with_sink_depths_is_differentiable():
    base = 1.0
    lats = [torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]), torch.tensor([4.0, 0.0])]
    logits = [torch.zeros(2, requires_grad=True) for _ in lats]
    beta = [torch.tensor([0.0, 0.0], requires_grad=True), torch.tensor([5.0], requires_grad=True)]
    probs = [l.softmax(0) for l in logits]
    v = [b.softmax(0) for b in beta]
    out = relaxed_latency.expected_latency(base, probs, lats, v, stage_sizes=[2, 1])
    # stage 1: 0.5 * 2 + 0.5 * (2 + 2) = 3; stage 2: 2; base 1
    assert float(out.detach()) == pytest.approx(6.0)
    out.backward()
    assert beta[0].grad is not None and beta[0].grad[1] > 0 and logits[0].grad is not None


def test_interpolation_is_exact_on_measured_points_and_linear_between():
    t = lut_fit.interpolate({8: 1.0, 16: 2.0, 20: 4.0}, 8, 20)
    assert t[8] == 1.0 and t[16] == 2.0 and t[20] == 4.0
    assert t[12] == pytest.approx(1.5) and t[18] == pytest.approx(3.0)
    assert lut_fit.measured_widths(32, 128, 8)[-1] == 128
    assert lut_fit.measured_widths(32, 130, 8)[-2:] == [128, 130]


def test_build_measures_interpolates_and_resumes(tmp_path):
    keys = ["MBInvertedResBlock_7_192_0_320_k3_s1_swish", "MBInvertedResBlock_14_112_112_192_k3_s2_swish"]
    out = tmp_path / "lut.json"

    def interrupt(key):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        lut_build.build("tfnas", out, keys=keys, step=64, repeats=2, warmup=1, progress=False, on_key=interrupt, calib=0)
    partial = json.loads((tmp_path / "lut.json.partial").read_text())
    assert list(partial["points"]) == keys[:1] and not out.exists()
    first = partial["points"][keys[0]]
    with pytest.raises(LUTError, match="other settings"):
        lut_build.build("tfnas", out, keys=keys, step=32, repeats=2, warmup=1, progress=False, calib=0)
    with pytest.raises(LUTError, match="calibration needs every key"):
        lut_build.build("tfnas", out, keys=keys, step=64, repeats=2, warmup=1, progress=False)
    lut = lut_build.build("tfnas", out, keys=keys, step=64, repeats=2, warmup=1, progress=False, calib=0)
    assert not (tmp_path / "lut.json.partial").exists()
    ref = lut.provenance["drift_reference"]
    assert set(ref["ms"]) == {"base", *keys} and ref["level_ms"] > 0
    unscaled = {str(w): v * ref["ms"][keys[0]] / ref["level_ms"] for w, v in lut.measured[keys[0]].items()}
    assert unscaled == pytest.approx(first)  # resumed, not re-timed
    assert min(lut.entries[keys[1]]) == 224 and max(lut.entries[keys[1]]) == 448  # e3_se at cin 112
    assert min(lut.entries[keys[0]]) == 384 and max(lut.entries[keys[0]]) == 1536  # no-SE key: e3 and e6
    assert all(v > 0 for v in lut.entries[keys[0]].values()) and lut.base > 0
    again = latency.load(out)
    assert again.provenance["batch_size"] == 1 and again.provenance["threads"] == 1
    assert sorted(again.measured[keys[0]]) == [384, 448, 512, 576, 640, 704, 768, 832, 896, 960,
                                               1024, 1088, 1152, 1216, 1280, 1344, 1408, 1472, 1536]
    assert again.provenance["fit"] == "aligned" and again.provenance["statistic"] == "min"
    assert again.provenance["clock"] == "thread" and "calibration" not in again.provenance and not again.drift_sentinels
    assert "torch" in again.provenance and "date" in again.provenance
    interp = again.refit("interp")
    assert all(interp.entries[keys[0]][w] == pytest.approx(v, abs=1e-6) for w, v in again.measured[keys[0]].items())


@pytest.mark.parametrize("text, message", [(b'{"settings": {"spa', "not valid JSON"), (b"[1, 2]", "not a partial latency"),
                                           (b'{"settings": {}, "points": []}', "not a partial latency")])
def test_build_refuses_a_broken_partial_file_in_one_line(tmp_path, text, message):
    out = tmp_path / "lut.json"
    (tmp_path / "lut.json.partial").write_bytes(text)
    with pytest.raises(LUTError, match=message) as e:
        lut_build.build("tfnas", out, keys=["MBInvertedResBlock_7_192_0_320_k3_s1_swish"], step=64, repeats=2,
                        warmup=1, progress=False, calib=0)
    assert "lut.json.partial" in str(e.value) and "\n" not in str(e.value) and not out.exists()


def test_linear_fit_ignores_a_timing_spike():
    pts = {w: 0.01 * w + 0.5 for w in range(32, 129, 8)}
    pts[64] = 50.0  # a spike from a busy machine
    t = lut_fit.fit_points(pts, 32, 128, "linear")
    assert t[64] == pytest.approx(0.01 * 64 + 0.5, abs=1e-6) and t[100] == pytest.approx(1.5, abs=1e-6)
    assert lut_fit.fit_points(pts, 32, 128, "interp")[64] == 50.0
    with pytest.raises(ValueError, match="unknown LUT fit"):
        lut_fit.fit_points(pts, 32, 128, "cubic")


@pytest.mark.parametrize("drop", ["lo", "hi", "middle"])
def test_check_covers_wants_every_width_of_a_key(official_lut, drop):
    """A table lacking its lower bound, its upper bound or a width between is reported, naming the
    key, its range and the first width it lacks (elasticity scaling visits every width of the range)."""
    import copy

    from tfnas_core.latency.keys import space_keys

    space = get_space("tfnas")
    key, info = next(iter(space_keys(space).items()))
    width = {"lo": info.lo, "hi": info.hi, "middle": (info.lo + info.hi) // 2}[drop]
    lut = copy.deepcopy(official_lut)
    del lut.entries[key][width]
    assert lut.check_covers(space) == [f"{key}[{info.lo}..{info.hi}] (no width {width})"]
    del lut.entries[key]
    assert lut.check_covers(space) == [key]


# The released CPU table summed over the published nets (ms), and the paper's measured CPU latency.
OFFICIAL_CPU_SUMS = {"TF-NAS-A": 74.34, "TF-NAS-B": 64.94, "TF-NAS-C": 58.05, "TF-NAS-D": 49.00,
                     "TF-NAS-CPU-A": 65.24, "TF-NAS-CPU-B": 46.84}


def test_the_original_cpu_table_is_a_first_class_lut(capsys):
    """latency_cpu.pkl works wherever a LUT does: lut show (a CPU table at batch 1), profile and zoo
    (with the paper's measured CPU latency beside it); a net outside its space says which key it lacks."""
    import json

    from conftest import SHARED
    from tfnas_core.cli import main as cli
    from tfnas_core.arch import zoo

    pkl = SHARED / "reference" / "official" / "latency_cpu.pkl"
    if not pkl.is_file():
        pytest.skip(f"the original CPU table is not at {pkl}")
    assert cli.main(["lut", "show", str(pkl), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["keys"] == 66 and shown["covers_space"] == "tfnas" and shown["measured_on"]["device"] == "cpu"
    for name, ms in OFFICIAL_CPU_SUMS.items():
        assert cli.main(["profile", f"zoo:{name}", "--lut", str(pkl), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["lut_ms"] == pytest.approx(ms, abs=0.006)
    assert cli.main(["zoo", "--lut", str(pkl), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name, ms in OFFICIAL_CPU_SUMS.items():
        assert rows[name]["lut_ms"] == pytest.approx(ms, abs=0.006) and rows[name]["paper_cpu_ms"] == zoo.PAPER[name].cpu_ms
    assert rows["TF-NAS-MBV2-A"]["lut_ms"] is None and "no entry for key" in rows["TF-NAS-MBV2-A"]["lut_note"]
    assert cli.main(["zoo", "--lut", str(pkl)]) == 0
    assert "paper CPU ms" in capsys.readouterr().out.splitlines()[0]
