"""Random valid architectures of a search space, seeded: the held-out set of LUT fidelity checks.

Each searchable stage (paper stages 3-8, Table 1) draws its depth uniformly from the stage's
range, each layer its operation uniformly from the space's candidates and its width ``mid``
uniformly from that operation's range at the layer's ``cin`` (e3: [2·cin, 4·cin], e6:
[4·cin, 8·cin]).  This covers the whole space the search may derive (every depth, op and
width), not only the corners the published networks sit in.  Every spec passes
``arch_spec.validate``; the same ``seed`` gives the same specs on every machine.
"""
from __future__ import annotations

import random

from tfnas_core.arch.spec import Spec, validate
from tfnas_core.arch.space import SEARCHABLE_STAGES, get_space, layer_geometry


def sample_spec(space_name: str, rng: random.Random, name: str = "random") -> Spec:
    """One random valid architecture of ``space_name`` drawn with ``rng``."""
    space = get_space(space_name)
    stages = []
    for stage_no in SEARCHABLE_STAGES:
        lo, hi = space.stage(stage_no).depth
        layers = []
        for i in range(rng.randint(lo, hi)):
            op = rng.choice(space.ops)
            wlo, whi = space.op(op).width_range(layer_geometry(space, stage_no, i).cin)
            layers.append({"op": op, "mid": rng.randint(wlo, whi)})
        stages.append(layers)
    return validate({"name": name, "space": space.name, "stages": stages,
                     "meta": {"source": "random_arch.sample_spec"}})


def sample_specs(space_name: str, n: int, seed: int, prefix: str = "random") -> dict[str, Spec]:
    """``n`` random valid architectures, named ``{prefix}-s{seed}-{i}``, from one seeded stream."""
    if n < 0:
        raise ValueError(f"number of random architectures must be >= 0, got {n}")
    rng = random.Random(f"tfnas-random-arch/{space_name}/{seed}")
    specs = {}
    for i in range(n):
        name = f"{prefix}-s{seed}-{i:02d}"
        specs[name] = sample_spec(space_name, rng, name)
    return specs
