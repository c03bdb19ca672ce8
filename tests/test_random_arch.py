"""The random-architecture sampler: valid, seeded, covering the space."""
from __future__ import annotations

import pytest

from tfnas_core.arch import spec as arch_spec
from tfnas_core.arch import random_arch
from tfnas_core.arch.space import SEARCHABLE_STAGES, get_space, layer_geometry


@pytest.mark.parametrize("space", ["tfnas", "tfnas-wose", "mbv2"])
def test_samples_are_valid_and_round_trip(space):
    for name, spec in random_arch.sample_specs(space, 25, seed=3).items():
        assert spec.name == name and spec.space == space
        again = arch_spec.loads(spec.to_json())  # full validation: ops, widths, depths
        assert again == spec


def test_same_seed_same_specs_other_seed_other_specs():
    a = random_arch.sample_specs("tfnas", 5, seed=0)
    assert a == random_arch.sample_specs("tfnas", 5, seed=0)
    b = random_arch.sample_specs("tfnas", 5, seed=1)
    assert [s.stages for s in a.values()] != [s.stages for s in b.values()]
    assert list(random_arch.sample_specs("tfnas", 3, seed=0).values()) == list(a.values())[:3]  # a prefix


def test_samples_cover_depths_ops_and_width_range():
    space = get_space("tfnas")
    specs = list(random_arch.sample_specs("tfnas", 200, seed=7).values())
    for si, stage_no in enumerate(SEARCHABLE_STAGES):
        lo, hi = space.stage(stage_no).depth
        assert {s.depths[si] for s in specs} == set(range(lo, hi + 1))
    ops = {l.op for s in specs for st in s.stages for l in st}
    assert ops == set(space.ops)
    rel = []  # where each width sits in its op's range: both ends are reached, not only the middle
    for s in specs:
        for geom, layer in s.layers():
            wlo, whi = space.op(layer.op).width_range(geom.cin)
            rel.append((layer.mid - wlo) / (whi - wlo))
    assert min(rel) < 0.02 and max(rel) > 0.98
    assert layer_geometry(space, 3, 0).cin == 16


def test_bad_count_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        random_arch.sample_specs("tfnas", -1, seed=0)
    with pytest.raises(ValueError, match="unknown search space"):
        random_arch.sample_specs("nope", 1, seed=0)
