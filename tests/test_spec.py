"""Spec round-trip and validation errors (the JSON contract)."""
import json

import pytest

from tfnas_core.arch import spec as arch_spec
from tfnas_core.arch import zoo
from tfnas_core.arch.spec import SpecError
from tfnas_core.arch.space import OPS, SPACES, all_layer_geometries, get_space


def _b():
    return zoo.load("TF-NAS-B").to_dict()


def test_round_trip_every_zoo_spec(tmp_path, zoo_specs):
    for name, spec in zoo_specs.items():
        p = arch_spec.save(spec, tmp_path / f"{name}.json")
        again = arch_spec.load(p)
        assert again == spec
        assert again.to_dict() == spec.to_dict()
        assert json.loads(p.read_text())["stages"] == spec.to_dict()["stages"]


def test_issue_example_matches_table14():
    a = zoo.load("TF-NAS-A")
    assert a.to_dict()["stages"][0] == [{"op": "k3_e6_se", "mid": 83}, {"op": "k5_e6", "mid": 128}]
    assert a.meta["source"] == "paper appendix Table 14"


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d["stages"][1].__setitem__(0, {"op": "k7_e3", "mid": 96}), "stages[1][0].op"),
        (lambda d: d["stages"][1][1].__setitem__("mid", 30), "stages[1][1].mid"),
        (lambda d: d["stages"][2][0].__setitem__("mid", 10_000), "stages[2][0].mid"),
        (lambda d: d["stages"][0].append({"op": "k3_e3", "mid": 72}), "stages[0] (paper stage 3): depth 3"),
        (lambda d: d["stages"].__setitem__(5, []), "stages[5] (paper stage 8): depth 0"),
        (lambda d: d.__setitem__("space", "darts"), "space"),
        (lambda d: d["stages"].pop(), "stages: expected 6"),
        (lambda d: d["stages"][3][0].__setitem__("mid", 400.5), "stages[3][0].mid: expected an integer"),
        (lambda d: d.__setitem__("extra", 1), "unknown field"),
        (lambda d: d["stages"][0][0].__setitem__("se", 1), "stages[0][0]"),
    ],
)
def test_validation_names_the_offending_field(mutate, field):
    d = _b()
    mutate(d)
    with pytest.raises(SpecError) as e:
        arch_spec.validate(d)
    assert field in str(e.value)


def test_se_op_refused_in_wose_and_mbv2_spaces():
    d = _b()
    d["space"] = "tfnas-wose"
    with pytest.raises(SpecError, match=r"unknown op 'k3_e6_se' for space 'tfnas-wose'"):
        arch_spec.validate(d)


def test_width_range_boundaries_are_inclusive():
    d = _b()
    d["stages"][1][1] = {"op": "k3_e3", "mid": 80}  # cin 40: e3 takes [80, 160]
    arch_spec.validate(d)
    d["stages"][1][1] = {"op": "k3_e3", "mid": 160}
    arch_spec.validate(d)
    d["stages"][1][1] = {"op": "k3_e3", "mid": 161}
    with pytest.raises(SpecError):
        arch_spec.validate(d)


def test_not_json_and_missing_file(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        arch_spec.load(p)
    with pytest.raises(SpecError, match="no such spec file"):
        arch_spec.load(tmp_path / "missing.json")


def test_spaces_follow_tables_1_and_10():
    t = get_space("tfnas")
    assert [s.out_chs for s in t.stages[:9]] == [32, 16, 24, 40, 80, 112, 192, 320, 1280]
    assert [t.stage(i).act for i in range(1, 10)] == ["relu"] * 3 + ["swish"] * 6
    assert [t.stage(i).depth for i in range(3, 9)] == [(1, 2), (1, 3), (1, 4), (1, 4), (1, 4), (1, 1)]
    m = get_space("mbv2")
    assert [s.out_chs for s in m.stages[:9]] == [32, 16, 24, 32, 64, 96, 160, 320, 1280]
    assert {m.stage(i).act for i in range(1, 10)} == {"relu6"}
    assert m.ops == ("k3_e3", "k3_e6", "k5_e3", "k5_e6")
    assert get_space("tfnas-wose").stage2.se == 0 and t.stage2.se == 8
    assert t.ops == ("k3_e3", "k3_e6", "k5_e3", "k5_e6", "k3_e3_se", "k3_e6_se", "k5_e3_se", "k5_e6_se")
    assert len(all_layer_geometries(t)) == 18
    assert OPS["k5_e6_se"].width_range(40) == (160, 320) and OPS["k5_e6_se"].se_width(40) == 80
    assert OPS["k3_e3_se"].init_width(24) == 72 and OPS["k3_e3_se"].se_width(24) == 24
    assert set(SPACES) == {"tfnas", "tfnas-wose", "mbv2"}
