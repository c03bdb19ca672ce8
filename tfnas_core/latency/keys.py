"""LUT keys: the one definition of the key format and of the keys a search space needs.

::

    MBInvertedResBlock_{in_hw}_{cin}_{se}_{cout}_k{k}_s{stride}_{act}

Ops of the same kernel, stride and SE width share a key whatever their family (e3/e6); the
table is indexed by ``mid`` under each key (docs/official_behaviour.md, "SE width is fixed by
the op family").  ``latency`` (the table), ``calibration``, ``scaling`` and ``lut_build`` use it.
"""
from __future__ import annotations

from dataclasses import dataclass

from tfnas_core.arch.space import LayerGeom, SearchSpace, all_layer_geometries


def block_key(geom: LayerGeom, kernel: int, se: int) -> str:
    return f"MBInvertedResBlock_{geom.in_hw}_{geom.cin}_{se}_{geom.cout}_k{kernel}_s{geom.stride}_{geom.act}"


def layer_key(space: SearchSpace, geom: LayerGeom, op_name: str) -> str:
    op = space.op(op_name)
    return block_key(geom, op.kernel, op.se_width(geom.cin))


@dataclass(frozen=True)
class KeyInfo:
    """What a LUT key covers: the block geometry and the widths any op using it can take."""

    key: str
    geom: LayerGeom
    kernel: int
    se: int
    lo: int  # smallest valid mid over the ops sharing the key
    hi: int  # largest valid mid


def space_keys(space: SearchSpace) -> dict[str, KeyInfo]:
    """Every key a search over ``space`` can ask for, with the width range it must cover."""
    out: dict[str, KeyInfo] = {}
    for geom in all_layer_geometries(space):
        for name in space.ops:
            op = space.op(name)
            key = layer_key(space, geom, name)
            lo, hi = op.width_range(geom.cin)
            if key in out:
                prev = out[key]
                lo, hi = min(lo, prev.lo), max(hi, prev.hi)
            out[key] = KeyInfo(key, geom, op.kernel, op.se_width(geom.cin), lo, hi)
    return out
