"""The latency table pinned on tiny hand-built tables: ms/predict/check_covers, the JSON file
format byte for byte, refit's numbers, and every one-line refusal of a malformed table (pickle
and JSON) with the exact message the user sees.  (tests/test_latency.py covers the official
tables, the key format and building; this file is what mutation testing of ``latency`` leans on.)"""
import io
import json
import math
import pickle
import struct
from collections import Counter, OrderedDict
from pathlib import Path

import pytest

from tfnas_core.latency import lut as latency
from tfnas_core.arch import zoo
from tfnas_core.latency.lut import LUT, LUTError
from tfnas_core.latency.keys import space_keys
from tfnas_core.arch.space import get_space

# TF-NAS-B (tfnas space): every layer's LUT key and mid, in layer order (stage 3 layer 0 first);
# three keys are used twice, at different mids
TFNAS_B = [
    ("MBInvertedResBlock_112_16_32_24_k3_s2_relu", 64), ("MBInvertedResBlock_56_24_48_24_k3_s1_relu", 118),
    ("MBInvertedResBlock_56_24_48_40_k5_s2_swish", 96), ("MBInvertedResBlock_28_40_80_40_k3_s1_swish", 203),
    ("MBInvertedResBlock_28_40_80_40_k5_s1_swish", 161), ("MBInvertedResBlock_28_40_0_80_k3_s2_swish", 224),
    ("MBInvertedResBlock_14_80_160_80_k5_s1_swish", 361), ("MBInvertedResBlock_14_80_160_80_k3_s1_swish", 323),
    ("MBInvertedResBlock_14_80_160_80_k3_s1_swish", 320), ("MBInvertedResBlock_14_80_160_112_k3_s1_swish", 324),
    ("MBInvertedResBlock_14_112_0_112_k3_s1_swish", 581), ("MBInvertedResBlock_14_112_224_112_k3_s1_swish", 482),
    ("MBInvertedResBlock_14_112_0_112_k3_s1_swish", 667), ("MBInvertedResBlock_14_112_0_192_k3_s2_swish", 579),
    ("MBInvertedResBlock_7_192_0_192_k3_s1_swish", 738), ("MBInvertedResBlock_7_192_384_192_k3_s1_swish", 1028),
    ("MBInvertedResBlock_7_192_384_192_k3_s1_swish", 1161), ("MBInvertedResBlock_7_192_384_320_k5_s1_swish", 881),
]
STAGE3_KEY = TFNAS_B[0][0]  # stage 3 of the tfnas space
STAGE4_KEY = TFNAS_B[2][0]  # stage 4


def _tfnas_b_table(ms_of_mid) -> dict[str, dict[int, float]]:
    entries: dict[str, dict[int, float]] = {}
    for key, mid in TFNAS_B:
        entries.setdefault(key, {})[mid] = ms_of_mid(mid)
    return entries


# ----------------------------------------------------------------------------- ms / predict / covers


def test_ms_reads_the_table_and_names_what_is_missing_in_one_line():
    lut = LUT(1.0, {"k": {4: 0.4, 2: 0.2, 3: 0.3}}, source="t.json")
    assert lut.ms("k", 3) == 0.3 and lut.ms("k", 2, where="x") == 0.2
    cases = [
        (lambda: lut.ms("q", 3), "LUT t.json has no entry for key q"),
        (lambda: lut.ms("q", 3, "stage 3 layer 0"), "LUT t.json has no entry for key q (needed by stage 3 layer 0)"),
        (lambda: LUT(1.0, {}).ms("q", 3), "LUT has no entry for key q"),  # no source: one space, not two
        (lambda: LUT(1.0, {}).ms("q", 3, "here"), "LUT has no entry for key q (needed by here)"),
        (lambda: lut.ms("k", 5), "LUT key k covers widths 2..4, not mid=5"),
        (lambda: lut.ms("k", 1, "stage 4 layer 2"), "LUT key k covers widths 2..4, not mid=1 (needed by stage 4 layer 2)"),
    ]
    for call, message in cases:
        with pytest.raises(LUTError) as e:
            call()
        assert str(e.value) == message


def test_predict_is_base_plus_each_layers_entry_at_its_mid():
    """Eq. 4 for a derived net on a hand-built table: entry(key, mid) = mid / 1000 ms, so TF-NAS-B
    (mids summing to 8311) costs base + 8.311 ms."""
    spec = zoo.load("TF-NAS-B")
    lut = LUT(1.5, _tfnas_b_table(lambda mid: mid / 1000), source="t.json")
    assert lut.layer_ms(spec) == [mid / 1000 for _, mid in TFNAS_B]
    assert lut.predict(spec) == pytest.approx(1.5 + 8.311, abs=1e-12)
    # the first layer the table lacks is named with its stage, index, op and mid
    del lut.entries[STAGE3_KEY]
    with pytest.raises(LUTError) as e:
        lut.predict(spec)
    assert str(e.value) == (f"LUT t.json has no entry for key {STAGE3_KEY} "
                            "(needed by stage 3 layer 0 (k3_e6_se, mid 64))")
    lut.entries[STAGE3_KEY] = {63: 1.0, 65: 1.0}
    with pytest.raises(LUTError) as e:
        lut.predict(spec)
    assert str(e.value) == f"LUT key {STAGE3_KEY} covers widths 63..65, not mid=64 (needed by stage 3 layer 0 (k3_e6_se, mid 64))"


@pytest.mark.parametrize("base, total", [(-9.0, "0"), (-9.5, "-0.5"), (-10.23456, "-1.235")])
def test_predict_refuses_a_total_that_is_not_positive(base, total):
    spec = zoo.load("TF-NAS-B")
    lut = LUT(base, _tfnas_b_table(lambda mid: 0.5), source="t.json")  # 18 layers x 0.5 ms = 9 ms
    with pytest.raises(LUTError) as e:
        lut.predict(spec)
    assert str(e.value) == f"LUT t.json predicts {total} ms for TF-NAS-B; a network must cost a positive time"


def test_predict_accepts_a_small_positive_total():
    spec = zoo.load("TF-NAS-B")
    assert LUT(-8.5, _tfnas_b_table(lambda mid: 0.5)).predict(spec) == 0.5


def test_check_covers_on_a_table_of_exactly_the_spaces_widths():
    """A table holding exactly lo..hi of every key covers the space; each key it lacks is listed,
    in the space's key order, all of them (not only the first)."""
    space = get_space("tfnas")
    keys = space_keys(space)
    names = list(keys)
    assert len(names) == 66 and names[:3] == ["MBInvertedResBlock_112_16_0_24_k3_s2_relu",
                                              "MBInvertedResBlock_112_16_0_24_k5_s2_relu",
                                              "MBInvertedResBlock_112_16_16_24_k3_s2_relu"]
    assert (keys[names[0]].lo, keys[names[0]].hi, keys[names[2]].lo, keys[names[2]].hi) == (32, 128, 32, 64)
    lut = LUT(1.0, {k: {w: 1.0 for w in range(i.lo, i.hi + 1)} for k, i in keys.items()})
    assert lut.check_covers(space) == []
    del lut.entries[names[0]], lut.entries[names[2]]
    del lut.entries[names[1]][128]
    assert lut.check_covers(space) == [names[0], f"{names[1]}[32..128] (no width 128)", names[2]]


# ----------------------------------------------------------------------------- our JSON format

# a LUT with everything the format holds: an entry with measured points (given out of order, one to
# be rounded), one without, provenance and drift sentinels (the JSON field "fingerprint")
def _full_lut() -> LUT:
    return LUT(1.23456789, {"kB": {3: 0.5, 2: 0.1234567}, "kA": {7: 1.0}}, {"device": "cpu", "threads": 1},
               "x.json", {"kB": {3: 0.5, 2: 0.2500004}}, {"sentinels": {"s": 2.0}})


SAVED = """{
 "format": "tfnas-lut/1",
 "provenance": {
  "device": "cpu",
  "threads": 1
 },
 "base": 1.234568,
 "fingerprint": {
  "sentinels": {
   "s": 2.0
  }
 },
 "entries": {
  "kB": {"widths": [2, 3], "ms": [0.123457, 0.5], "measured": {"2": 0.25, "3": 0.5}},
  "kA": {"widths": [7, 7], "ms": [1.0]}
 }
}
"""


def test_to_json_dict_rounds_to_a_microsecond_and_lists_every_width():
    assert _full_lut().to_json_dict() == {
        "format": "tfnas-lut/1", "provenance": {"device": "cpu", "threads": 1}, "base": 1.234568,
        "entries": {"kB": {"widths": [2, 3], "ms": [0.123457, 0.5], "measured": {"2": 0.25, "3": 0.5}},
                    "kA": {"widths": [7, 7], "ms": [1.0]}},
        "fingerprint": {"sentinels": {"s": 2.0}}}
    assert LUT(2.0, {"k": {5: 1.0, 4: 0.5}}).to_json_dict() == {
        "format": "tfnas-lut/1", "provenance": {}, "base": 2.0, "entries": {"k": {"widths": [4, 5], "ms": [0.5, 1.0]}}}


def test_save_writes_the_format_byte_for_byte_and_loads_back(tmp_path):
    p = tmp_path / "lut.json"
    assert _full_lut().save(p) == p
    assert p.read_text() == SAVED
    again = latency.load(p)
    assert (again.base, again.entries, again.measured, again.drift_sentinels, again.provenance, again.source) == (
        1.234568, {"kB": {2: 0.123457, 3: 0.5}, "kA": {7: 1.0}}, {"kB": {2: 0.25, 3: 0.5}}, {"sentinels": {"s": 2.0}},
        {"device": "cpu", "threads": 1}, str(p))
    assert latency.load_json(p) == again
    # no fingerprint, no measured points: neither key is written
    LUT(2.0, {"k": {4: 0.5, 5: 1.0}}).save(p)
    assert p.read_text() == ('{\n "format": "tfnas-lut/1",\n "provenance": {},\n "base": 2.0,\n "entries": {\n'
                             '  "k": {"widths": [4, 5], "ms": [0.5, 1.0]}\n }\n}\n')
    assert latency.load(p) == LUT(2.0, {"k": {4: 0.5, 5: 1.0}}, {}, str(p), {}, {})


# ----------------------------------------------------------------------------- refit


def _measured_lut(provenance: dict) -> LUT:
    stale = {w: 9.0 for w in range(2, 6)}
    return LUT(1.5, {STAGE3_KEY: dict(stale), STAGE4_KEY: {10: 9.0, 11: 9.0, 12: 9.0}}, provenance, "m.json",
               {STAGE3_KEY: {2: 1.0, 4: 2.0}, STAGE4_KEY: {10: 1.0, 12: 1.0}}, {"sentinels": {"s": 3.0}})


def test_refit_recomputes_the_entries_from_the_measured_points_only():
    """Points (2, 1.0), (4, 2.0) over widths 2..5: a line is 0.5 w; interpolation holds the last point."""
    lut = _measured_lut({"fit": "aligned", "device": "cpu"})
    lin = lut.refit("linear")
    assert lin.entries[STAGE3_KEY] == pytest.approx({2: 1.0, 3: 1.5, 4: 2.0, 5: 2.5}, abs=1e-12)
    assert lin.entries[STAGE4_KEY] == pytest.approx({10: 1.0, 11: 1.0, 12: 1.0}, abs=1e-12)
    assert (lin.base, lin.provenance, lin.source, lin.measured, lin.drift_sentinels) == (
        1.5, {"fit": "linear", "device": "cpu"}, "m.json", lut.measured, {"sentinels": {"s": 3.0}})
    interp = lut.refit("interp")
    assert interp.entries[STAGE3_KEY] == {2: 1.0, 3: 1.5, 4: 2.0, 5: 2.0} and interp.provenance["fit"] == "interp"
    assert lut.entries[STAGE3_KEY] == {w: 9.0 for w in range(2, 6)}  # the original is left alone


def test_refit_of_a_calibrated_table_applies_the_stage_factors_again():
    """A calibrated LUT's entries are the fit times its stage's factor: a refit multiplies alike
    (stage 3 by 2, stage 4 by 3)."""
    cal = {"factors": {"3": 2.0, "4": 3.0}}
    lut = _measured_lut({"space": "tfnas", "calibration": cal})
    lin = lut.refit("linear")
    assert lin.entries[STAGE3_KEY] == pytest.approx({2: 2.0, 3: 3.0, 4: 4.0, 5: 5.0}, abs=1e-12)
    assert lin.entries[STAGE4_KEY] == pytest.approx({10: 3.0, 11: 3.0, 12: 3.0}, abs=1e-12)
    assert lin.provenance == {"space": "tfnas", "calibration": cal, "fit": "linear"}


def test_refit_without_measured_points_is_refused():
    with pytest.raises(LUTError) as e:
        LUT(1.0, {"k": {2: 1.0}}, source="official.pkl").refit("linear")
    assert str(e.value) == "LUT official.pkl holds no measured points to refit"


def test_file_sha256_is_the_sha256_of_the_bytes_and_none_without_a_file(tmp_path):
    """The LUT's identity in a search's run key (``experiments.runs.search_key``): FIPS 180-2's
    test vector for "abc", and ``None`` for a path that is not a file (missing, or a folder)."""
    p = tmp_path / "t.json"
    p.write_bytes(b"abc")
    assert latency.file_sha256(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert latency.file_sha256(str(p)) == latency.file_sha256(p)
    assert latency.file_sha256(tmp_path / "missing.json") is None
    assert latency.file_sha256(tmp_path) is None
