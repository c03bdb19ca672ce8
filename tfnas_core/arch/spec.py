"""Architecture specs: the JSON contract every tool of tfnas_core reads and writes.

A spec is always paper-scale::

    {"name": "TF-NAS-A", "space": "tfnas",
     "stages": [[{"op": "k3_e6_se", "mid": 83}, {"op": "k5_e6", "mid": 128}], ...]}

``stages`` lists paper stages 3..8 in order; each is the list of derived layers (depth = its
length).  Loading validates op names (against the space's candidates), widths (inside the op's
range at that layer's ``cin``) and depths (inside the stage's range), and names the offending
field in the error.  ``meta`` (optional, free-form) carries provenance such as the paper table.

``layout(spec, proxy)`` turns a spec into flat block arguments (``space.NetLayout``) for any
training proxy: a pure function, before any ``nn.Module`` exists.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.arch.space import (
    PAPER_SCALE,
    SEARCHABLE_STAGES,
    SPACES,
    BlockArgs,
    LayerGeom,
    NetLayout,
    Proxy,
    SearchSpace,
    conv_out,
    get_space,
    layer_geometry,
)


class SpecError(ValueError):
    """An invalid architecture spec; the message names the offending field."""


@dataclass(frozen=True)
class Layer:
    op: str
    mid: int


@dataclass(frozen=True)
class Spec:
    name: str
    space: str
    stages: tuple[tuple[Layer, ...], ...]
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    # -- conversions ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "space": self.space,
            "stages": [[{"op": l.op, "mid": l.mid} for l in st] for st in self.stages],
        }
        if self.meta:
            d["meta"] = self.meta
        return d

    def to_json(self) -> str:
        """Canonical text form: one line per stage, so diffs read like the paper's tables."""
        lines = [
            "{",
            f'  "name": {json.dumps(self.name)},',
            f'  "space": {json.dumps(self.space)},',
            '  "stages": [',
        ]
        for i, st in enumerate(self.stages):
            row = ", ".join(f'{{"op": "{l.op}", "mid": {l.mid}}}' for l in st)
            lines.append(f"    [{row}]" + ("," if i < len(self.stages) - 1 else ""))
        lines.append("  ]" + ("," if self.meta else ""))
        if self.meta:
            lines.append(f'  "meta": {json.dumps(self.meta, sort_keys=True)}')
        lines.append("}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_dict(cls, d: Any) -> "Spec":
        return validate(d)

    # -- views ---------------------------------------------------------------------------------
    @property
    def search_space(self) -> SearchSpace:
        return get_space(self.space)

    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(st) for st in self.stages)

    def layers(self) -> Iterator[tuple[LayerGeom, Layer]]:
        """Each derived layer with its paper-scale geometry, in network order."""
        space = self.search_space
        for stage, layers in zip(SEARCHABLE_STAGES, self.stages):
            for i, layer in enumerate(layers):
                yield layer_geometry(space, stage, i), layer

    def with_mids(self, mids: list[int] | tuple[int, ...]) -> "Spec":
        """The same architecture with new widths (flat, in layer order)."""
        it = iter(mids)
        stages = tuple(tuple(Layer(l.op, int(next(it))) for l in st) for st in self.stages)
        return Spec(self.name, self.space, stages, dict(self.meta))

    @property
    def mids(self) -> tuple[int, ...]:
        return tuple(l.mid for st in self.stages for l in st)


def validate(d: Any) -> Spec:
    """Check a decoded JSON object and return a ``Spec``; raise ``SpecError`` naming the field."""
    if not isinstance(d, dict):
        raise SpecError(f"spec: expected a JSON object, got {type(d).__name__}")
    unknown = set(d) - {"name", "space", "stages", "meta"}
    if unknown:
        raise SpecError(f"spec: unknown field(s) {sorted(unknown)}; allowed: name, space, stages, meta")
    name = d.get("name", "unnamed")
    if not isinstance(name, str):
        raise SpecError(f"name: expected a string, got {name!r}")
    space_name = d.get("space")
    if not isinstance(space_name, str):
        raise SpecError(f"space: {'missing' if space_name is None else f'expected a string, got {space_name!r}'} "
                        f"(one of {', '.join(SPACES)})")
    try:
        space = get_space(space_name)
    except ValueError as e:
        raise SpecError(f"space: {e}") from None
    stages = d.get("stages")
    if not isinstance(stages, list):
        raise SpecError("stages: missing or not a list (paper stages 3..8, each a list of layers)")
    if len(stages) != len(SEARCHABLE_STAGES):
        raise SpecError(f"stages: expected {len(SEARCHABLE_STAGES)} stages (paper stages 3..8), got {len(stages)}")
    meta = d.get("meta", {})
    if not isinstance(meta, dict):
        raise SpecError("meta: expected an object")
    out = []
    for si, (stage_no, layers) in enumerate(zip(SEARCHABLE_STAGES, stages)):
        where = f"stages[{si}] (paper stage {stage_no})"
        sdef = space.stage(stage_no)
        if not isinstance(layers, list):
            raise SpecError(f"{where}: expected a list of layers")
        lo, hi = sdef.depth
        if not lo <= len(layers) <= hi:
            raise SpecError(f"{where}: depth {len(layers)} outside the stage's range [{lo}, {hi}]")
        parsed = []
        for li, layer in enumerate(layers):
            lw = f"stages[{si}][{li}]"
            if not isinstance(layer, dict) or set(layer) != {"op", "mid"}:
                raise SpecError(f"{lw}: expected an object with exactly the keys 'op' and 'mid', got {layer!r}")
            op_name, mid = layer["op"], layer["mid"]
            if op_name not in space.ops:
                raise SpecError(f"{lw}.op: unknown op {op_name!r} for space {space.name!r}; candidates: {', '.join(space.ops)}")
            if isinstance(mid, bool) or not isinstance(mid, int):
                raise SpecError(f"{lw}.mid: expected an integer, got {mid!r}")
            geom = layer_geometry(space, stage_no, li)
            wlo, whi = space.op(op_name).width_range(geom.cin)
            if not wlo <= mid <= whi:
                raise SpecError(
                    f"{lw}.mid: width {mid} outside {op_name}'s range [{wlo}, {whi}] at cin={geom.cin}"
                )
            parsed.append(Layer(op_name, mid))
        out.append(tuple(parsed))
    return Spec(name, space.name, tuple(out), dict(meta))


def loads(text: str | bytes, source: str = "spec") -> Spec:
    from tfnas_core.utils.checks import parse_json

    d = parse_json(text, source, SpecError)
    try:
        return validate(d)
    except SpecError as e:
        raise SpecError(f"{source}: {e}" if source != "spec" else str(e)) from None


def load(path: str | os.PathLike) -> Spec:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{p}: no such spec file")
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise SpecError(f"{p}: cannot read ({e.strerror or e})") from None
    return loads(raw, str(p))


def save(spec: Spec, path: str | os.PathLike) -> Path:
    """Write atomically (temp file + rename): never a half-written spec."""
    return atomic_write_text(Path(path), spec.to_json())


def infer_op(space: SearchSpace, kernel: int, cin: int, mid: int, se: int) -> str:
    """Name the candidate op of a published table row (kernel, ``mid``, SE width).

    The SE width decides the family where there is SE (``cin`` → e3_se, ``2·cin`` → e6_se).
    Without SE the width decides; at ``mid == 4·cin`` both families fit and we name ``e3`` (its
    maximum), which changes nothing measurable: FLOPs, the block and the LUT key are the same.
    """
    if se:
        if se == cin:
            fam = "e3"
        elif se == 2 * cin:
            fam = "e6"
        else:
            raise SpecError(f"SE width {se} at cin={cin} matches no op (expected {cin} or {2 * cin})")
        name = f"k{kernel}_{fam}_se"
    else:
        name = f"k{kernel}_{'e3' if mid <= 4 * cin else 'e6'}"
    if name not in space.ops:
        raise SpecError(f"row k={kernel} cin={cin} mid={mid} se={se}: op {name} is not in space {space.name}")
    return name


# ----------------------------------------------------------------------------- layout (proxy)


def layout(spec: Spec, proxy: Proxy = PAPER_SCALE) -> NetLayout:
    """Flat block arguments of the stand-alone network for ``spec`` under ``proxy``."""
    space = spec.search_space
    ch = proxy.channels
    s1, s2 = space.stage(1), space.stage(2)
    hw = conv_out(proxy.resolution, proxy.stem_stride)
    stem = ch(s1.out_chs)
    # stage 2 is k3_e1 (mid == stem channels, no expansion conv) at every proxy
    blocks = [BlockArgs(stem, stem, ch(s2.out_chs), space.stage2.kernel, 1, proxy.width(space.stage2.se), s2.act, hw)]
    stages = [2]
    hws = [hw]
    for geom, layer in spec.layers():
        op = space.op(layer.op)
        blocks.append(BlockArgs(
            in_chs=ch(geom.cin), mid_chs=proxy.width(layer.mid), out_chs=ch(geom.cout),
            kernel=op.kernel, stride=geom.stride, se_chs=proxy.width(op.se_width(geom.cin)),
            act=geom.act, in_hw=hw,
        ))
        stages.append(geom.stage)
        hw = conv_out(hw, geom.stride)
        hws.append(hw)
    return NetLayout(
        in_chans=proxy.in_chans, resolution=proxy.resolution, stem_chs=stem, stem_stride=proxy.stem_stride,
        stem_act=s1.act, blocks=tuple(blocks), stage_of_block=tuple(stages),
        head_chs=ch(space.head_chs), head_act=space.stage(9).act, num_classes=proxy.num_classes,
        blocks_hw_out=tuple(hws),
    )
