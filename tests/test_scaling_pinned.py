"""Elasticity scaling pinned by hand-computed cases (issue 33).

A hand-made net of six layers, one per searchable stage 3..8, under a linear LUT: every channel
costs 1 ms, so a net's latency is the sum of its widths and every comparison is exact.  Widths
range over ``[hi // 2, hi]`` with ``hi = 64, 96, 128, 192, 256, 384`` (the released code's bounds).
Each expected list below was worked out by hand from the released code's rules
(OFFICIAL_IMPLEMENTATION_FACTS.md, "Elasticity scaling"), pass by pass, and is written out in the
test's docstring: step = round(mid / m_min) with Python's round (1.5 -> 2, 1.457 -> 1), fixed for a
pass; a shrink returns the first widths strictly below the target; an expansion returns the last
widths whose successor was tried, never the bound-clipped ones.
"""
import pytest

from tfnas_core.search import scaling
from tfnas_core.latency.lut import LUT

HI = [64, 96, 128, 192, 256, 384]
LO = [h // 2 for h in HI]  # 32, 48, 64, 96, 128, 192
STAGES = [3, 4, 5, 6, 7, 8]


def _net() -> scaling.FlatLayers:
    keys = [f"L{i}" for i in range(6)]
    lut = LUT(base=0.0, entries={k: {m: float(m) for m in range(lo, hi + 1)} for k, lo, hi in zip(keys, LO, HI)})
    return scaling.FlatLayers.from_lists(keys, STAGES, LO, HI, lut)


def test_from_above_global_shrink_then_the_five_restricted_expansions():
    """From the upper bounds (1120 ms) to 900 ms.
    Global shrink, stages 3-8: m_min 64, steps round(64/64, 96/64=1.5, 2, 3, 4, 6) = 1, 2, 2, 3, 4, 6
      (18 ms a step); 1120 - 18k < 900 first at k = 13: 51 70 102 153 204 306 (886 ms).
    Stages 4-8: m_min 70, steps 1, round(1.457)=1, round(2.186)=2, round(2.914)=3, round(4.371)=4 (11):
      886 -> 897 (<= 900, kept) -> 908 (tried, over): 71 103 155 207 310 (897 ms).
    Stages 5-8: m_min 103, steps 1, round(1.505)=2, 2, 3 (8): 897 -> 905 over: unchanged.
    Stages 6-8: m_min 155, steps 1, 1, 2 (4): 897 -> 901 over: unchanged.
    Stages 7-8: m_min 207, steps 1, round(1.498)=1 (2): 899 kept, 901 over: 208 311 (899 ms).
    Stage 8: step 1: 900 kept (<= target), 901 over: 312 (900 ms)."""
    net = _net()
    out = scaling.scale_widths(net, HI, 900.0)
    assert out == [51, 71, 103, 155, 208, 312]
    assert net.latency(out) == 900.0


def test_from_below_global_expansion_then_the_restricted_expansions():
    """From the lower bounds (560 ms) to 700 ms.
    Global expansion: m_min 32, steps 1, round(1.5)=2, 2, 3, 4, 6 (18): 560 + 18k <= 700 up to k = 7:
      39 62 78 117 156 234 (686 ms); 704 tried, over.
    Stages 4-8: m_min 62, steps 1, round(1.258)=1, round(1.887)=2, round(2.516)=3, round(3.774)=4 (11):
      697 kept, 708 over: 63 79 119 159 238.
    Stages 5-8: m_min 79, steps 1, round(1.506)=2, 2, 3 (8): 705 over: unchanged.
    Stages 6-8: m_min 119, steps 1, 1, 2 (4): 701 over: unchanged.
    Stages 7-8: m_min 159, steps 1, round(1.497)=1: 699 kept, 701 over: 160 239.
    Stage 8: 700 kept, 701 over: 240."""
    net = _net()
    out = scaling.scale_widths(net, LO, 700.0)
    assert out == [39, 63, 79, 119, 160, 240]
    assert net.latency(out) == 700.0


def test_an_expansion_never_takes_the_bound_clipped_widths():
    """From the lower bounds toward an unreachable 2000 ms (the widest net is 1120 ms).
    Global expansion, steps 1 2 2 3 4 6: layer 1 reaches 96 at step 24 and stays clipped; at step 32
      every layer is at its bound, so the loop stops and returns step 31: 63 96 126 189 252 378.
    Stages 4-8: m_min 96, steps 1, round(1.3125)=1, round(1.97)=2, round(2.625)=3, round(3.9375)=4:
      96 127 191 255 382 kept; the next (96 128 192 256 384) has every layer at a bound: not taken.
    Stages 5-8 (steps 1 2 2 3) and 6-8 (1 1 2): the first step clips every layer: unchanged.
    Stages 7-8: m_min 255, steps 1, round(1.498)=1: 256 383 kept (383 < 384); then all at bounds.
    Stage 8: 384 would be at its bound: 383 stays."""
    net = _net()
    out = scaling.scale_widths(net, LO, 2000.0)
    assert out == [63, 96, 127, 191, 256, 383]
    assert net.latency(out) == 1116.0 < net.latency(HI)


def test_a_shrink_takes_the_bound_clipped_widths():
    """From the upper bounds toward an unreachable 100 ms: the global shrink steps until every layer
    is at its lower bound and returns those clipped widths (560 ms); every restricted expansion
    then starts above the target and does nothing."""
    net = _net()
    assert scaling.scale_widths(net, HI, 100.0) == LO


def test_at_the_target_nothing_moves():
    net = _net()
    mids = [40, 70, 100, 150, 200, 300]
    assert scaling.scale_widths(net, mids, float(sum(mids))) == mids


def test_round_is_pythons_round_half_to_even():
    """A pass whose m_min makes a step of exactly 2.5: Python's round gives 2 (half to even), not 3.
    One pass over layers at 64 and 160 (step 1 and 2) from 224 ms to 240 ms under a linear LUT:
    224 -> 227 -> 230 -> ... 239 kept (5 steps), 242 over: 69 170."""
    keys = ["a", "b"]
    lut = LUT(base=0.0, entries={"a": {m: float(m) for m in range(32, 129)}, "b": {m: float(m) for m in range(80, 321)}})
    net = scaling.FlatLayers.from_lists(keys, [8, 8], [32, 80], [128, 320], lut)
    assert scaling._pass(net, [64, 160], [0, 1], expand=True, target=240.0) == [69, 170]


def test_from_lists_checks_its_table():
    lut = LUT(base=0.0, entries={"a": {m: 1.0 for m in range(10, 20)}})
    with pytest.raises(ValueError, match="covers widths 10..19, not mid=20"):
        scaling.FlatLayers.from_lists(["a"], [3], [10], [20], lut)
    with pytest.raises(ValueError, match="one entry per layer"):
        scaling.FlatLayers.from_lists(["a"], [3, 4], [10], [19], lut)


def test_a_shrink_that_lands_on_the_target_takes_one_more_step():
    """The shrink runs while the latency is at or above the target, so landing exactly on it is not
    enough: from 1120 ms to 1084 ms the global shrink (steps 1 2 2 3 4 6, 18 ms) passes 1102 and 1084
    and stops at 1066: 61 90 122 183 244 366.
    Stages 4-8: m_min 90, steps 1, round(1.356)=1, round(2.033)=2, round(2.711)=3, round(4.067)=4 (11):
      1077 kept, 1088 over: 91 123 185 247 370.
    Stages 5-8: m_min 123, steps 1, round(1.504)=2, round(2.008)=2, round(3.008)=3 (8): 1085 over.
    Stages 6-8: m_min 185, steps 1, round(1.335)=1, 2 (4): 1081 kept, 1085 over: 186 248 372.
    Stages 7-8: m_min 248, steps 1, round(1.5)=2 (3): 1084 kept, 1087 over: 249 374.
    Stage 8: 1085 over: 374 stays."""
    net = _net()
    out = scaling.scale_widths(net, HI, 1084.0)
    assert out == [61, 91, 123, 186, 249, 374]
    assert net.latency(out) == 1084.0


def test_official_bounds_are_whole_channels():
    assert scaling.official_bounds(97) == (48, 97) and all(isinstance(b, int) for b in scaling.official_bounds(97))
    assert scaling.official_bounds(1) == (0, 1)


def test_a_table_lacking_a_width_names_the_layer(official_lut):
    """FlatLayers checks both bounds of every layer up front; the error names the stage, layer and op."""
    import copy
    import re

    from tfnas_core.arch import zoo

    spec = zoo.load("TF-NAS-A")
    lut = copy.deepcopy(official_lut)
    net = scaling.FlatLayers(spec, lut, scaling.official_bounds)
    key, lo = net.keys[0], net.lo[0]
    del lut.entries[key][lo]
    with pytest.raises(ValueError) as e:
        scaling.scale(spec, lut, 15.0)
    assert re.fullmatch(rf"LUT key {key} covers widths \d+\.\.\d+, not mid={lo} "
                        rf"\(needed by stage \d layer \d \(k\d_e\d(_se)?\)\)", str(e.value)), str(e.value)
    with pytest.raises(ValueError) as e:
        scaling.FlatLayers.from_lists([key], [3], [lo], [net.hi[0]], lut)
    assert str(e.value).endswith(f"not mid={lo} (needed by layer 0)")
    with pytest.raises(ValueError) as e:
        scaling.FlatLayers.from_lists(["a"], [3, 4], [10], [19], lut)
    assert str(e.value) == "keys, stage, lo and hi must have one entry per layer"


def test_a_scale_result_as_json():
    """ScaleResult.to_dict: the CLI's and the records' fields, by name and value."""
    from tfnas_core.arch import zoo

    spec = zoo.load("TF-NAS-D")
    res = scaling.ScaleResult(spec, 10.0, 14.85, 15.0, True, "msg")
    assert res.to_dict() == {"spec": spec.to_dict(), "lut_ms_before": 10.0, "lut_ms_after": 14.85, "target_ms": 15.0,
                             "met": True, "target_gap_pct": -1.0, "tolerance_pct": 1.0, "message": "msg"}


def test_from_lists_names_the_layer_lacking_its_upper_width():
    lut = LUT(base=0.0, entries={"a": {m: 1.0 for m in range(10, 20)}, "b": {m: 1.0 for m in range(10, 19)}})
    with pytest.raises(ValueError) as e:
        scaling.FlatLayers.from_lists(["a", "b"], [3, 4], [10, 10], [19, 19], lut)
    assert str(e.value) == "LUT key b covers widths 10..18, not mid=19 (needed by layer 1)"


# ----------------------------------------------------------------------------- scale() on TF-NAS-A, by hand
# A table with TF-NAS-A's 18 LUT keys (one per layer) in which every width costs 0 ms except at the
# last layer (stage 8, the only layer the last restricted pass moves, one channel a step), which
# costs k8 ms per channel above its lower bound 768; the net's latency is base + k8 * (mid8 - 768).


def _a_table(base: float, k8: float = 0.0, drop: tuple[str, int] | None = None):
    from tfnas_core.arch import zoo
    from tfnas_core.latency.keys import layer_key

    spec = zoo.load("TF-NAS-A")
    space = spec.search_space
    ranges = {}
    for geom, layer in spec.layers():
        mx = space.op(layer.op).max_width(geom.cin)
        ranges[layer_key(space, geom, layer.op)] = (geom.stage, mx // 2, mx)
    entries = {k: {m: (k8 * (m - lo) if stage == 8 else 0.0) for m in range(lo, hi + 1)} for k, (stage, lo, hi) in ranges.items()}
    if drop:
        del entries[drop[0]][drop[1]]
    lows = [ranges[layer_key(space, g, l.op)][1] for g, l in spec.layers()]
    return spec, LUT(base=base, entries=entries), lows


def test_scale_below_the_target_that_the_proportional_steps_stop_short_of():
    """From every layer at its lower bound (10 ms) toward 113 ms, stage 8 at 5 ms a channel: whatever
    the earlier passes do, the last one (stage 8 alone, step 1) ends at the last width <= 113 ms:
    768 + 20 = 788 (110 ms; 789 would be 115 ms).  110 ms is 2.65 % under: not met, although the
    widest net (10 + 5 * 768 ms) is far over the target, so the message blames the steps, not the bounds."""
    spec, lut, lows = _a_table(10.0, k8=5.0)
    res = scaling.scale(spec.with_mids(lows), lut, 113.0)
    assert (res.lut_ms_before, res.lut_ms_after, res.target_ms, res.met) == (10.0, 110.0, 113.0, False)
    assert res.spec.mids[-1] == 788
    assert res.message == ("scaled 10.000 -> 110.000 ms (target 113.000 ms): under by 2.65 %; the expansions stop at the "
                           "last widths their proportional steps reach below the target")
    assert res.to_dict()["target_gap_pct"] == round(100 * (110 / 113 - 1), 4) == -2.6549


def test_scale_toward_a_target_out_of_reach_from_below():
    """Every width costs nothing, base 10 ms: no width reaches 20 ms (nor 0.5 ms from 0.4 ms: a target
    under 1 ms is a target like any other)."""
    spec, lut, _ = _a_table(10.0)
    res = scaling.scale(spec, lut, 20.0)
    assert (res.lut_ms_before, res.lut_ms_after, res.met) == (10.0, 10.0, False)
    assert res.message == ("scaled 10.000 -> 10.000 ms (target 20.000 ms): under by 50.00 %; the target is out of reach "
                           "from below: every layer at its upper width bound gives only 10.000 ms")
    spec, lut, _ = _a_table(0.4)
    res = scaling.scale(spec, lut, 0.5)
    assert res.message == ("scaled 0.400 -> 0.400 ms (target 0.500 ms): under by 20.00 %; the target is out of reach "
                           "from below: every layer at its upper width bound gives only 0.400 ms")


def test_scale_toward_a_target_out_of_reach_from_above():
    """Base 10 ms toward 5 ms: the global shrink runs every layer down to its lower bound."""
    spec, lut, lows = _a_table(10.0)
    res = scaling.scale(spec, lut, 5.0)
    assert list(res.spec.mids) == lows and (res.lut_ms_before, res.lut_ms_after, res.met) == (10.0, 10.0, False)
    assert res.message == ("scaled 10.000 -> 10.000 ms (target 5.000 ms): over by 100.00 %; the target cannot be met "
                           "from above: with every layer at its lower width bound")


def test_scale_with_a_nan_latency_moves_nothing_and_claims_nothing():
    """A table whose base is NaN (every comparison false): no pass runs, the widths stay, the target
    is not met, and the message says the widths are where scaling left them (not at the bounds)."""
    spec, lut, _ = _a_table(float("nan"))
    res = scaling.scale(spec, lut, 10.0)
    assert res.spec.mids == spec.mids and res.met is False
    assert res.message.endswith("; the target cannot be met from above: with the widths scaling reached")


def test_scale_input_messages():
    """The target is checked first (before the table is read); a width outside the bounds names the layer."""
    spec, lut, _ = _a_table(1.0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError) as e:
            scaling.scale(spec, LUT(base=1.0, entries={}), bad)
        assert str(e.value) == f"target latency must be positive, got {bad}"
    with pytest.raises(ValueError) as e:  # bounds [max, max]: TF-NAS-A's first layer has 83 of 128 channels
        scaling.scale(spec, lut, 10.0, bounds=lambda w: (w, w))
    assert str(e.value) == "layer 0: width 83 outside the scaling bounds [128, 128]"


def test_a_table_lacking_an_upper_width_names_the_layer():
    """FlatLayers checks the upper bound of every layer too: TF-NAS-A's stage 4 layer 1 (k3_e6, up to
    320 channels) without width 320."""
    key = "MBInvertedResBlock_28_40_0_40_k3_s1_swish"
    spec, lut, _ = _a_table(1.0, drop=(key, 320))
    with pytest.raises(ValueError) as e:
        scaling.FlatLayers(spec, lut, scaling.official_bounds)
    assert str(e.value) == f"LUT key {key} covers widths 160..319, not mid=320 (needed by stage 4 layer 1 (k3_e6))"
