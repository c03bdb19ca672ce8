"""Search spaces as data: paper Table 1 (``tfnas``), its SE-free variant, and Table 10 (``mbv2``).

Everything here is plain data and pure functions; no ``nn.Module`` exists yet.  The one place
that knows

* the macro architecture (stages 1-11: input size, channels, activation, stride, depth range),
* the candidate operations, their order (the α index used everywhere), their width ranges,
* the training proxy (resolution, width multiplier, stem stride, classes, input channels).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

# Searchable stages are paper stages 3..8 (Table 1); a spec lists them in this order.
SEARCHABLE_STAGES = (3, 4, 5, 6, 7, 8)


@dataclass(frozen=True)
class OpDef:
    """One candidate operation (Table 1, right).

    ``family`` is the expansion family: ``e3`` takes ``mid in [2·cin, 4·cin]`` and starts the
    search at ``3·cin``; ``e6`` takes ``[4·cin, 8·cin]`` and starts at ``6·cin``.  ``se_ratio`` is
    the SE width over ``cin`` (0: no SE; 1 for e3_se, 2 for e6_se): it is fixed by the op, not by
    ``mid`` (docs/official_behaviour.md, "SE width is fixed by the op family").
    """

    name: str
    kernel: int
    family: str  # "e3" | "e6"
    se_ratio: int  # SE channels = se_ratio * cin

    @property
    def lo_ratio(self) -> int:
        return 2 if self.family == "e3" else 4

    @property
    def hi_ratio(self) -> int:
        return 4 if self.family == "e3" else 8

    @property
    def init_ratio(self) -> int:
        return 3 if self.family == "e3" else 6

    def width_range(self, cin: int) -> tuple[int, int]:
        """Inclusive ``(lo, hi)`` range of ``mid`` for this op at input channels ``cin``."""
        return self.lo_ratio * cin, self.hi_ratio * cin

    def max_width(self, cin: int) -> int:
        return self.hi_ratio * cin

    def init_width(self, cin: int) -> int:
        return self.init_ratio * cin

    def se_width(self, cin: int) -> int:
        return self.se_ratio * cin


# Candidate order of the released code (α index 0..7): k3_e3, k3_e6, k5_e3, k5_e6, then the SE
# versions in the same order.
_ALL_OPS = (
    OpDef("k3_e3", 3, "e3", 0),
    OpDef("k3_e6", 3, "e6", 0),
    OpDef("k5_e3", 5, "e3", 0),
    OpDef("k5_e6", 5, "e6", 0),
    OpDef("k3_e3_se", 3, "e3", 1),
    OpDef("k3_e6_se", 3, "e6", 2),
    OpDef("k5_e3_se", 5, "e3", 1),
    OpDef("k5_e6_se", 5, "e6", 2),
)
OPS: dict[str, OpDef] = {op.name: op for op in _ALL_OPS}


@dataclass(frozen=True)
class StageDef:
    """One row of the macro architecture table."""

    index: int  # paper stage number
    kind: str  # "conv" | "mbconv" | "ops" | "conv1x1" | "pool" | "fc"
    in_hw: int  # input resolution at 224x224 input
    in_chs: int
    out_chs: int
    act: str  # "relu" | "swish" | "relu6" | ""
    stride: int
    depth: tuple[int, int]  # inclusive (min, max) number of layers


@dataclass(frozen=True)
class FixedBlock:
    """The fixed stage-2 MBInvRes block (``k3_e1``, SE 0.25 in tfnas)."""

    kernel: int
    mid: int
    se: int


@dataclass(frozen=True)
class SearchSpace:
    name: str
    stages: tuple[StageDef, ...]
    ops: tuple[str, ...]  # candidate names in α order
    stage2: FixedBlock
    description: str = ""

    def stage(self, index: int) -> StageDef:
        for s in self.stages:
            if s.index == index:
                return s
        raise KeyError(f"space {self.name!r} has no stage {index}")

    @property
    def searchable(self) -> tuple[StageDef, ...]:
        return tuple(self.stage(i) for i in SEARCHABLE_STAGES)

    def op(self, name: str) -> OpDef:
        if name not in self.ops:
            raise KeyError(name)
        return OPS[name]

    @property
    def max_layers(self) -> int:
        return sum(s.depth[1] for s in self.searchable)

    @property
    def head_chs(self) -> int:
        return self.stage(9).out_chs


def _macro(acts: dict[int, str], chans: tuple[int, ...]) -> tuple[StageDef, ...]:
    """Stage rows shared by Table 1 and Table 10; only activations and channels differ."""
    c = chans  # stem, s2, s3, s4, s5, s6, s7, s8, s9
    # (index, kind, in_hw, in_chs, out_chs, stride, depth): paper Table 1 / Table 10, row by row.
    rows = (
        (1, "conv", 224, 3, c[0], 2, (1, 1)),
        (2, "mbconv", 112, c[0], c[1], 1, (1, 1)),
        (3, "ops", 112, c[1], c[2], 2, (1, 2)),
        (4, "ops", 56, c[2], c[3], 2, (1, 3)),
        (5, "ops", 28, c[3], c[4], 2, (1, 4)),
        (6, "ops", 14, c[4], c[5], 1, (1, 4)),
        (7, "ops", 14, c[5], c[6], 2, (1, 4)),
        (8, "ops", 7, c[6], c[7], 1, (1, 1)),
        (9, "conv1x1", 7, c[7], c[8], 1, (1, 1)),
        (10, "pool", 7, c[8], c[8], 1, (1, 1)),
        (11, "fc", 1, c[8], 1000, 1, (1, 1)),
    )
    return tuple(
        StageDef(i, kind, hw, cin, cout, acts.get(i, ""), s, d) for i, kind, hw, cin, cout, s, d in rows
    )


_TFNAS_CHANNELS = (32, 16, 24, 40, 80, 112, 192, 320, 1280)  # EfficientNet-B0 (Table 1)
_MBV2_CHANNELS = (32, 16, 24, 32, 64, 96, 160, 320, 1280)  # MobileNetV2 (Table 10)
_TFNAS_ACTS = {1: "relu", 2: "relu", 3: "relu", 4: "swish", 5: "swish", 6: "swish", 7: "swish", 8: "swish", 9: "swish"}
_MBV2_ACTS = {i: "relu6" for i in range(1, 10)}

SPACES: dict[str, SearchSpace] = {
    "tfnas": SearchSpace(
        "tfnas", _macro(_TFNAS_ACTS, _TFNAS_CHANNELS), tuple(op.name for op in _ALL_OPS),
        FixedBlock(kernel=3, mid=32, se=8),
        "Paper Table 1: EfficientNet-B0 shapes, ReLU in stages 1-3, Swish after, 8 ops (4 with SE).",
    ),
    "tfnas-wose": SearchSpace(
        "tfnas-wose", _macro(_TFNAS_ACTS, _TFNAS_CHANNELS), ("k3_e3", "k3_e6", "k5_e3", "k5_e6"),
        FixedBlock(kernel=3, mid=32, se=0),
        "Table 1 without any SE module (stage-2 block included): the -wose architectures.",
    ),
    "mbv2": SearchSpace(
        "mbv2", _macro(_MBV2_ACTS, _MBV2_CHANNELS), ("k3_e3", "k3_e6", "k5_e3", "k5_e6"),
        FixedBlock(kernel=3, mid=32, se=0),
        "Paper Table 10: MobileNetV2 shapes, ReLU6 everywhere, 4 ops without SE.",
    ),
}


def get_space(name: str) -> SearchSpace:
    try:
        return SPACES[name]
    except KeyError:
        raise ValueError(f"unknown search space {name!r}; known: {', '.join(SPACES)}") from None


# How a stage's depth is searched (paper Sec. 3.2 "Rethinking Depth-level Freedom", Fig. 3, Table 4):
# 'sink' (sink-connecting, Eq. 5/6; the method), 'skip-in' and 'skip-out' (Fig. 3(a, b)).
# ``supernet.Supernet`` builds each; config validation reads the names here, without torch.
DEPTH_SPACES = ("sink", "skip-in", "skip-out")


# ----------------------------------------------------------------------------- layer geometry


@dataclass(frozen=True)
class LayerGeom:
    """Shape of one searchable layer at paper scale (what the LUT key and FLOPs depend on)."""

    stage: int
    index: int  # position inside its stage, 0-based
    in_hw: int
    cin: int
    cout: int
    stride: int
    act: str

    @property
    def keeps_shape(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


def layer_geometry(space: SearchSpace, stage: int, index: int) -> LayerGeom:
    """Geometry of layer ``index`` of searchable ``stage``: the first layer changes the shape."""
    s = space.stage(stage)
    if not 0 <= index < s.depth[1]:
        raise ValueError(f"stage {stage} has at most {s.depth[1]} layers, got layer index {index}")
    if index == 0:
        return LayerGeom(stage, 0, s.in_hw, s.in_chs, s.out_chs, s.stride, s.act)
    return LayerGeom(stage, index, s.in_hw // s.stride, s.out_chs, s.out_chs, 1, s.act)


def all_layer_geometries(space: SearchSpace) -> list[LayerGeom]:
    """Every searchable layer of the supernet (all stages at maximum depth), in order."""
    return [layer_geometry(space, s.index, i) for s in space.searchable for i in range(s.depth[1])]


# ----------------------------------------------------------------------------- training proxy


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to the nearest multiple of ``divisor`` without going 10 % below it."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if new < 0.9 * value:
        new += divisor
    return new


@dataclass(frozen=True)
class Proxy:
    """How a paper-scale architecture is instantiated on small hardware.

    ``resolution`` is the input side, ``width_mult`` scales every channel count (stage channels
    are rounded to multiples of 8, ``mid`` and SE widths to the nearest integer, at least 1),
    ``stem_stride`` is the stride of the 3x3 stem conv (1 suits 28-32 px inputs), ``num_classes``
    the classifier size and ``in_chans`` the image channels.  ``Proxy()`` is paper scale.
    """

    resolution: int = 224
    width_mult: float = 1.0
    stem_stride: int = 2
    num_classes: int = 1000
    in_chans: int = 3

    def __post_init__(self) -> None:
        if self.resolution < 8:
            raise ValueError(f"proxy resolution must be >= 8, got {self.resolution}")
        if not 0 < self.width_mult <= 4:
            raise ValueError(f"proxy width_mult must be in (0, 4], got {self.width_mult}")
        if self.stem_stride not in (1, 2):
            raise ValueError(f"proxy stem_stride must be 1 or 2, got {self.stem_stride}")
        if self.num_classes < 1 or self.in_chans < 1:
            raise ValueError("proxy num_classes and in_chans must be positive")

    @property
    def is_paper_scale(self) -> bool:
        return self == PAPER_SCALE

    def channels(self, c: int) -> int:
        return c if self.width_mult == 1.0 else make_divisible(c * self.width_mult)

    def width(self, w: int) -> int:
        """Scale a free width (``mid``, SE): no divisor, at least 1 (0 stays 0)."""
        if w == 0 or self.width_mult == 1.0:
            return w
        return max(1, int(round(w * self.width_mult)))

    def with_(self, **kw) -> "Proxy":
        return replace(self, **kw)


PAPER_SCALE = Proxy()


@dataclass(frozen=True)
class BlockArgs:
    """Flat arguments of one MBInvRes block, after the proxy transform."""

    in_chs: int
    mid_chs: int
    out_chs: int
    kernel: int
    stride: int
    se_chs: int
    act: str
    in_hw: int  # input side at this proxy's resolution


@dataclass(frozen=True)
class NetLayout:
    """Every layer of a stand-alone network as plain data (built into modules by ``model``)."""

    in_chans: int
    resolution: int
    stem_chs: int
    stem_stride: int
    stem_act: str
    blocks: tuple[BlockArgs, ...]  # stage 2 block first, then the searchable layers
    stage_of_block: tuple[int, ...]
    head_chs: int
    head_act: str
    num_classes: int
    blocks_hw_out: tuple[int, ...] = field(default=())


def conv_out(hw: int, stride: int) -> int:
    """Output side of a 'same'-padded conv: ceil(hw / stride)."""
    return (hw + stride - 1) // stride
