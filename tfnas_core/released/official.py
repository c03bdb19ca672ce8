"""The original TF-NAS code's released models: ``model.config`` + ``.pth.tar`` <-> our spec + weights.

The authors released TF-NAS-A, B, C, D, CPU-A and CPU-B as two files each: ``model.config`` (the
JSON of the evaluation network's ``config``, ``json.dump(..., indent=4)``) and a ``.pth.tar``
whose ``state_dict`` comes from ``nn.DataParallel`` (every key starts with ``module.``).  Its
stages ``stage1..stage6`` are paper stages 3..8.  The same network in our layout is
``model.build(spec)`` (``EvalNet``); module by module (docs/official_behaviour.md, "MBInvRes")::

    original                                  ours (EvalNet)
    first_stem.{conv,bn}                      stem.{0,1}
    second_stem.*                             blocks.0.*           (the fixed stage-2 block)
    stageS.I.inverted_bottleneck.{conv,bn}    blocks.K.expand.{0,1}   (absent when mid == cin)
    stageS.I.depth_conv.{conv,bn}             blocks.K.depthwise.{0,1}
    stageS.I.squeeze_excite.conv_reduce       blocks.K.se.reduce   (with bias; only with SE)
    stageS.I.squeeze_excite.conv_expand       blocks.K.se.expand
    stageS.I.point_linear.{conv,bn}           blocks.K.project.{0,1}
    feature_mix_layer.{conv,bn}               head.{0,1}
    classifier.linear                         classifier

``K`` counts the searchable layers in network order from 1.  Everything is checked before
anything is written: a config or checkpoint that does not describe the same network raises
``OfficialError`` (a ``ValueError``: one line, exit 2 in the CLI) naming the first offending key.
Checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain containers, never code.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from tfnas_core.arch import zoo
from tfnas_core.arch.spec import Layer, Spec, SpecError, infer_op, layout, validate
from tfnas_core.runs import files as run_files
from tfnas_core.utils.atomic import write_error
from tfnas_core.utils.checks import read_json
from tfnas_core.arch.space import PAPER_SCALE, SEARCHABLE_STAGES, SPACES, BlockArgs, SearchSpace, layer_geometry

# The original's names of paper stages 3..8, and the top-level keys of its model.config in order.
CONFIG_STAGES = tuple(f"stage{i}" for i in range(1, len(SEARCHABLE_STAGES) + 1))
CONFIG_KEYS = ("first_stem", "second_stem", *CONFIG_STAGES, "feature_mix_layer", "classifier")
DATA_PARALLEL_PREFIX = "module."
BN_TENSORS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
# What import writes into its --out folder, and what export writes into its folder: the spec under the
# name a search's run folder gives it (runs.files.SPEC), so a SPEC argument may be either folder.
SPEC_FILE, WEIGHTS_FILE = run_files.SPEC, "weights.pt"
CONFIG_FILE, CHECKPOINT_FILE = "model.config", "model.pth.tar"


class OfficialError(ValueError):
    """A model.config or checkpoint that does not match; the message names the file and the key."""


# ----------------------------------------------------------------------------- model.config


def _conv_layer(cin: int, cout: int, kernel: int, stride: int, act: str) -> dict[str, Any]:
    """The original's ``ConvLayer.config`` (stem and 1x1 head conv), keys in its order."""
    return {"name": "ConvLayer", "kernel_size": kernel, "stride": stride, "groups": 1, "has_shuffle": False,
            "bias": False, "in_channels": cin, "out_channels": cout, "use_bn": True, "affine": True,
            "act_func": act, "ops_order": "weight_bn_act"}


def _block_layer(b: BlockArgs) -> dict[str, Any]:
    """The original's ``MBInvertedResBlock.config``, keys in its order."""
    return {"name": "MBInvertedResBlock", "in_channels": b.in_chs, "mid_channels": b.mid_chs,
            "se_channels": b.se_chs, "out_channels": b.out_chs, "kernel_size": b.kernel, "stride": b.stride,
            "groups": 1, "has_shuffle": False, "bias": False, "use_bn": True, "affine": True, "act_func": b.act}


def config_from_spec(spec: Spec, num_classes: int = 1000) -> dict[str, Any]:
    """The ``model.config`` the original code writes for this network (1000 classes: ImageNet)."""
    p = layout(spec, PAPER_SCALE.with_(num_classes=num_classes))
    cfg: dict[str, Any] = {
        "first_stem": _conv_layer(p.in_chans, p.stem_chs, 3, p.stem_stride, p.stem_act),
        "second_stem": _block_layer(p.blocks[0]),
    }
    layers = iter(p.blocks[1:])
    for key, depth in zip(CONFIG_STAGES, spec.depths):
        cfg[key] = [_block_layer(next(layers)) for _ in range(depth)]
    cfg["feature_mix_layer"] = _conv_layer(p.blocks[-1].out_chs, p.head_chs, 1, 1, p.head_act)
    cfg["classifier"] = {"name": "LinearLayer", "in_features": p.head_chs, "out_features": p.num_classes,
                         "bias": True, "use_bn": False, "affine": False, "act_func": None,
                         "ops_order": "weight_bn_act"}
    return cfg


def config_text(cfg: Mapping[str, Any]) -> str:
    """The file text, as the original's ``json.dump(config, f, indent=4)`` writes it."""
    return json.dumps(cfg, indent=4)


def _space_of(cfg: Mapping[str, Any]) -> SearchSpace:
    """The space whose fixed parts the config has: stage-2 SE width and stem activation decide
    (tfnas: SE 8, ReLU; tfnas-wose: SE 0, ReLU; mbv2: SE 0, ReLU6).  Otherwise ``tfnas``, whose
    expected config then names the first difference."""
    se = cfg["second_stem"].get("se_channels") if isinstance(cfg["second_stem"], Mapping) else None
    act = cfg["first_stem"].get("act_func") if isinstance(cfg["first_stem"], Mapping) else None
    for space in SPACES.values():
        if space.stage2.se == se and space.stage(1).act == act:
            return space
    return SPACES["tfnas"]


def _int_field(layer: Mapping[str, Any], key: str, where: str, source: str) -> int:
    v = layer.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise OfficialError(f"{source}: {where}.{key}: {'missing' if v is None else f'expected an integer, got {v!r}'}")
    return v


def _name_from_path(path: Path) -> str:
    """``TF-NAS-A.model.config`` -> ``TF-NAS-A``; a plain ``model.config`` -> its folder's name."""
    n = path.name
    if n == CONFIG_FILE:
        return path.resolve().parent.name or n
    for suffix in (".model.config", ".config", ".json"):
        if n.endswith(suffix) and len(n) > len(suffix):
            return n[: -len(suffix)]
    return path.resolve().parent.name or n


def spec_from_config(cfg: Any, source: str = CONFIG_FILE, name: str | None = None) -> tuple[Spec, int]:
    """Our spec and the class count of a decoded ``model.config`` read from ``source``.

    The ops are named from each layer's kernel, ``mid`` and SE width (``arch_spec.infer_op``);
    a network equal to a zoo entry gets that entry (its name and provenance).  Any other gets
    ``name``, else the file's (``TF-NAS-X.model.config`` -> ``TF-NAS-X``; a plain ``model.config``
    -> its folder's name); so does a zoo network when ``name`` is given.  The config must
    then be exactly what ``config_from_spec`` writes for it: the first key that differs (a wrong
    value, a missing or unknown key, another layer type) is named.
    """
    if not isinstance(cfg, Mapping):
        raise OfficialError(f"{source}: expected a JSON object with the keys {', '.join(CONFIG_KEYS)}")
    for key in cfg:
        if key not in CONFIG_KEYS:
            raise OfficialError(f"{source}: unknown key {key!r}; a model.config has {', '.join(CONFIG_KEYS)}")
    for key in CONFIG_KEYS:
        if key not in cfg:
            raise OfficialError(f"{source}: missing key {key!r}")
    space = _space_of(cfg)
    stages = []
    for stage_no, key in zip(SEARCHABLE_STAGES, CONFIG_STAGES):
        layers = cfg[key]
        if not isinstance(layers, list) or not all(isinstance(l, Mapping) for l in layers):
            raise OfficialError(f"{source}: {key}: expected a list of layer objects")
        lo, hi = space.stage(stage_no).depth
        if not lo <= len(layers) <= hi:
            raise OfficialError(f"{source}: {key}: {len(layers)} layers, paper stage {stage_no} takes {lo}..{hi}")
        parsed = []
        for i, layer in enumerate(layers):
            where = f"{key}[{i}]"
            kernel, mid, se = (_int_field(layer, k, where, source) for k in ("kernel_size", "mid_channels", "se_channels"))
            geom = layer_geometry(space, stage_no, i)
            try:
                op = infer_op(space, kernel, geom.cin, mid, se)
            except SpecError as e:
                raise OfficialError(f"{source}: {where}: {e}") from None
            wlo, whi = space.op(op).width_range(geom.cin)
            if not wlo <= mid <= whi:
                raise OfficialError(f"{source}: {where}.mid_channels: {mid} outside {op}'s range [{wlo}, {whi}] "
                                    f"at in_channels={geom.cin} (space {space.name})")
            parsed.append(Layer(op, mid))
        stages.append(tuple(parsed))
    classifier = cfg["classifier"]
    classes = classifier.get("out_features") if isinstance(classifier, Mapping) else None
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise OfficialError(f"{source}: classifier.out_features: expected a positive integer, got {classes!r}")
    spec = _zoo_entry(space.name, tuple(stages))
    if spec is None or name is not None:
        spec = validate(Spec(name or _name_from_path(Path(source)), space.name, tuple(stages),
                             {"source": f"the original code's model.config ({Path(source).name})"}).to_dict())
    diff = _first_difference(cfg, config_from_spec(spec, classes), "")
    if diff:
        raise OfficialError(f"{source}: {diff}")
    return spec, classes


def _zoo_entry(space: str, stages: tuple[tuple[Layer, ...], ...]) -> Spec | None:
    for spec in zoo.load_all().values():
        if spec.space == space and spec.stages == stages:
            return spec
    return None


def _first_difference(got: Any, want: Any, path: str) -> str | None:
    """The first place (in the file's order) where ``got`` is not ``want``, as ``key: why``."""
    here = path or "model.config"
    if isinstance(want, dict):
        if not isinstance(got, Mapping):
            return f"{here}: expected an object, got {json.dumps(got)}"
        for k in got:
            sub = f"{path}.{k}" if path else k
            if k not in want:
                return f"{sub}: unknown key (a {want.get('name', 'layer')} has {', '.join(want)})"
            d = _first_difference(got[k], want[k], sub)
            if d:
                return d
        missing = [k for k in want if k not in got]
        return f"{path + '.' if path else ''}{missing[0]}: missing" if missing else None
    if isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{here}: expected a list of {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            d = _first_difference(g, w, f"{path}[{i}]")
            if d:
                return d
        return None
    if type(got) is not type(want) or got != want:
        return f"{here}: expected {json.dumps(want)}, got {json.dumps(got)}"
    return None


def read_config(path: str | os.PathLike, name: str | None = None) -> tuple[Spec, int]:
    """``spec_from_config`` of a ``model.config`` file."""
    p = Path(path)
    return spec_from_config(read_json(p, OfficialError, "model.config"), str(p), name)


# ----------------------------------------------------------------------------- tensor names


@dataclass(frozen=True)
class TensorName:
    official: str  # without the DataParallel prefix
    ours: str  # EvalNet state_dict key
    shape: tuple[int, ...]


def _bn(official: str, ours: str, n: int) -> list[TensorName]:
    return [TensorName(f"{official}.{t}", f"{ours}.{t}", () if t == "num_batches_tracked" else (n,)) for t in BN_TENSORS]


def _conv_bn(official: str, ours: str, shape: tuple[int, ...], bn_first: bool) -> list[TensorName]:
    conv = [TensorName(f"{official}.conv.weight", f"{ours}.0.weight", shape)]
    bn = _bn(f"{official}.bn", f"{ours}.1", shape[0])
    return bn + conv if bn_first else conv + bn


def _block(official: str, ours: str, b: BlockArgs) -> list[TensorName]:
    out = []
    if b.mid_chs != b.in_chs:
        out += _conv_bn(f"{official}.inverted_bottleneck", f"{ours}.expand", (b.mid_chs, b.in_chs, 1, 1), False)
    out += _conv_bn(f"{official}.depth_conv", f"{ours}.depthwise", (b.mid_chs, 1, b.kernel, b.kernel), False)
    if b.se_chs:
        se, our_se = f"{official}.squeeze_excite", f"{ours}.se"
        out += [TensorName(f"{se}.conv_reduce.weight", f"{our_se}.reduce.weight", (b.se_chs, b.mid_chs, 1, 1)),
                TensorName(f"{se}.conv_reduce.bias", f"{our_se}.reduce.bias", (b.se_chs,)),
                TensorName(f"{se}.conv_expand.weight", f"{our_se}.expand.weight", (b.mid_chs, b.se_chs, 1, 1)),
                TensorName(f"{se}.conv_expand.bias", f"{our_se}.expand.bias", (b.mid_chs,))]
    out += _conv_bn(f"{official}.point_linear", f"{ours}.project", (b.out_chs, b.mid_chs, 1, 1), False)
    return out


def tensor_names(spec: Spec, num_classes: int = 1000, official_order: bool = True) -> list[TensorName]:
    """Every tensor of the network: its original name, our name, its shape.

    ``official_order``: the released checkpoint's order (its ``ConvLayer`` registers BN before
    the conv), else ``EvalNet.state_dict()``'s."""
    p = layout(spec, PAPER_SCALE.with_(num_classes=num_classes))
    out = _conv_bn("first_stem", "stem", (p.stem_chs, p.in_chans, 3, 3), official_order)
    out += _block("second_stem", "blocks.0", p.blocks[0])
    k = 1
    for key, depth in zip(CONFIG_STAGES, spec.depths):
        for i in range(depth):
            out += _block(f"{key}.{i}", f"blocks.{k}", p.blocks[k])
            k += 1
    out += _conv_bn("feature_mix_layer", "head", (p.head_chs, p.blocks[-1].out_chs, 1, 1), official_order)
    out += [TensorName("classifier.linear.weight", "classifier.weight", (p.num_classes, p.head_chs)),
            TensorName("classifier.linear.bias", "classifier.bias", (p.num_classes,))]
    return out


# ----------------------------------------------------------------------------- checkpoints


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """The state dict of a checkpoint file and the prefix its keys carried (``module.`` or "").

    Accepted: a dict with the weights under ``state_dict`` (the original's ``.pth.tar``) or
    ``model`` (our retraining checkpoint), or the state dict itself; with or without the prefix
    ``nn.DataParallel`` adds to every key."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise OfficialError(f"{p}: no such checkpoint file")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or a pickle of more than tensors and containers
        why = (str(e).strip().splitlines() or [""])[0][:120]
        raise OfficialError(f"{p}: not a checkpoint torch.load(weights_only=True) reads ({type(e).__name__}: {why})") from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise OfficialError(f"{p}: holds no state dict (expected one under 'state_dict', or at the top level)")
    for k, v in obj.items():
        if not isinstance(k, str) or not torch.is_tensor(v):
            raise OfficialError(f"{p}: entry {k!r} is {type(v).__name__}, not a tensor (expected a state dict "
                                "under 'state_dict', or at the top level)")
    prefix = DATA_PARALLEL_PREFIX if all(k.startswith(DATA_PARALLEL_PREFIX) for k in obj) else ""
    return {k[len(prefix):]: v for k, v in obj.items()}, prefix


def _check(sd: Mapping[str, Any], want: Mapping[str, tuple[int, ...]], source: str, prefix: str, what: str) -> dict:
    """``sd`` holds exactly the tensors of ``want`` (name -> shape); a missing ``num_batches_tracked``
    (checkpoints of PyTorch < 0.4.1; eval mode never reads it) becomes 0.  Names the first bad key."""
    import torch

    for k, v in sd.items():
        if k not in want:
            raise OfficialError(f"{source}: unexpected key '{prefix}{k}' (not in the network {what} describes)")
        if not torch.is_tensor(v):
            raise OfficialError(f"{source}: '{prefix}{k}' is {type(v).__name__}, not a tensor")
        if tuple(v.shape) != want[k]:
            raise OfficialError(f"{source}: '{prefix}{k}' has shape {list(v.shape)}, {what} wants {list(want[k])}")
        if v.is_floating_point() == k.endswith("num_batches_tracked"):
            raise OfficialError(f"{source}: '{prefix}{k}' has dtype {v.dtype}, "
                                f"expected {'an integer' if k.endswith('num_batches_tracked') else 'a floating point'} type")
    out = dict(sd)
    for k in want:
        if k not in sd:
            if not k.endswith(".num_batches_tracked"):
                raise OfficialError(f"{source}: missing key '{prefix}{k}' (shape {list(want[k])}, {what} has it)")
            out[k] = torch.tensor(0, dtype=torch.long)
    return out


def to_ours(spec: Spec, official_sd: Mapping[str, Any], num_classes: int = 1000, source: str = "state_dict",
            prefix: str = "", what: str = "the model.config") -> OrderedDict:
    """The original's state dict (without its prefix) renamed to ``EvalNet``'s, in its order."""
    names = tensor_names(spec, num_classes, official_order=False)
    sd = _check(official_sd, {t.official: t.shape for t in names}, source, prefix, what)
    return OrderedDict((t.ours, sd[t.official].detach().contiguous()) for t in names)


def to_official(spec: Spec, our_sd: Mapping[str, Any], num_classes: int = 1000, source: str = "state_dict",
                prefix: str = DATA_PARALLEL_PREFIX, what: str = "the spec") -> OrderedDict:
    """``EvalNet``'s state dict renamed to the original's (with ``prefix``), in its checkpoint's order."""
    names = tensor_names(spec, num_classes, official_order=True)
    sd = _check(our_sd, {t.ours: t.shape for t in names}, source, "", what)
    return OrderedDict((prefix + t.official, sd[t.ours].detach().contiguous()) for t in names)


def load_weights(path: str | os.PathLike, spec: Spec, num_classes: int = 1000) -> OrderedDict:
    """``EvalNet`` weights for ``spec`` from a file in either layout: ours (``weights.pt`` of
    import, or a retraining checkpoint's ``model``) or the original's (a ``.pth.tar``, its keys
    with or without ``module.``).  The tensors must be exactly the network's (first bad key named)."""
    sd, prefix = read_checkpoint(path)
    return weights_of(sd, prefix, spec, num_classes, str(path))


def weights_of(sd: Mapping[str, Any], prefix: str, spec: Spec, num_classes: int, source: str) -> OrderedDict:
    """``load_weights`` on a checkpoint already read (``read_checkpoint``: its state dict and prefix)."""
    if any(k.startswith("first_stem.") for k in sd):
        return to_ours(spec, sd, num_classes, source, prefix, spec.name)
    names = tensor_names(spec, num_classes, official_order=False)
    checked = _check(sd, {t.ours: t.shape for t in names}, source, prefix, spec.name)
    return OrderedDict((t.ours, checked[t.ours]) for t in names)


def classes_of(state_dict: Mapping[str, Any]) -> int | None:
    """The classifier's output count of a state dict in our layout or the original's; None without one."""
    for key in ("classifier.weight", "classifier.linear.weight"):
        w = state_dict.get(key)
        if w is not None and getattr(w, "ndim", 0) == 2:
            return int(w.shape[0])
    return None


# ----------------------------------------------------------------------------- import / export


def _write_folder(out: Path, writers: list[tuple[str, Callable[[Path], None]]]) -> Path:
    """Write every file into a fresh temp folder beside ``out``, then rename it to ``out``: the
    folder appears whole or not at all.  ``out`` must not exist, or be an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OfficialError(f"{out}: exists and is not an empty folder; use another --out, or delete it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as e:
        raise write_error(out, e) from None
    failed = None
    try:
        for name, write in writers:
            write(tmp / name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; results are for everyone to read
        os.replace(tmp, out)  # onto nothing or an empty folder
    except BaseException as e:
        if not isinstance(e, (OSError, RuntimeError)):  # torch's writer reports a full disk as RuntimeError
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        failed = write_error(out, e)  # before the temp folder frees its blocks
    if failed is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        raise failed
    return out


def _text_writer(text: str) -> Callable[[Path], None]:
    return lambda p: p.write_text(text)


def _torch_writer(obj: Any) -> Callable[[Path], None]:
    import torch

    return lambda p: torch.save(obj, p)


@dataclass(frozen=True)
class Imported:
    spec: Spec
    num_classes: int
    out: Path
    files: tuple[str, ...]
    zoo_entry: bool  # the network is a published one (spec.json is its zoo entry)
    tensors: int  # 0 without weights
    parameters: int

    def summary(self) -> dict[str, Any]:
        return {"name": self.spec.name, "space": self.spec.space, "num_classes": self.num_classes,
                "out": str(self.out), "files": list(self.files), "zoo_entry": self.zoo_entry,
                "tensors": self.tensors, "parameters": self.parameters}

    def line(self) -> str:
        what = f"{self.spec.name} ({'the zoo entry' if self.zoo_entry else 'not a zoo entry'}, {self.num_classes} classes)"
        weights = f", {self.tensors} tensors / {self.parameters / 1e6:.2f} M parameters" if self.tensors else " (spec only)"
        return f"{what}: {', '.join(self.files)} written to {self.out}{weights}"


def import_official(config: str | os.PathLike, weights: str | os.PathLike | None, out: str | os.PathLike,
                    name: str | None = None) -> Imported:
    """Write ``out/spec.json`` (our spec) and, with ``weights``, ``out/weights.pt`` (the
    ``EvalNet`` state dict, readable with ``torch.load(weights_only=True)``) from the original's
    ``model.config`` and checkpoint.  Everything is checked before ``out`` is written."""
    spec, classes = read_config(config, name)
    out = Path(out)
    writers = [(SPEC_FILE, _text_writer(spec.to_json()))]
    tensors = params = 0
    if weights is not None:
        sd, prefix = read_checkpoint(weights)
        ours = to_ours(spec, sd, classes, str(weights), prefix, str(config))
        writers.append((WEIGHTS_FILE, _torch_writer(ours)))
        tensors = len(ours)
        params = sum(v.numel() for k, v in ours.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    _write_folder(out, writers)
    in_zoo = _zoo_entry(spec.space, spec.stages) is not None and spec.name in zoo.PAPER
    return Imported(spec, classes, out, tuple(n for n, _ in writers), in_zoo, tensors, params)


def export(spec: Spec, state_dict: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write ``out_dir/model.config`` and ``out_dir/model.pth.tar`` (the ``module.``-prefixed state
    dict under ``state_dict``), what the original's ``test.py`` loads: the inverse of
    ``import_official``.  ``state_dict`` is ``EvalNet``'s; the class count is its classifier's."""
    classes = classes_of(state_dict) or 1000
    official = to_official(spec, state_dict, classes, what=f"spec {spec.name}")
    return _write_folder(Path(out_dir), [(CONFIG_FILE, _text_writer(config_text(config_from_spec(spec, classes)))),
                                         (CHECKPOINT_FILE, _torch_writer({"state_dict": official}))])


def hub_name(name: str) -> str:
    """The torch.hub entry point of a zoo net: ``TF-NAS-CPU-A`` -> ``tfnas_cpu_a``."""
    return name.lower().replace("tf-nas-", "tfnas_").replace("-", "_")


__all__ = ["CHECKPOINT_FILE", "CONFIG_FILE", "CONFIG_STAGES", "Imported", "OfficialError", "SPEC_FILE",
           "TensorName", "WEIGHTS_FILE", "classes_of", "config_from_spec", "config_text", "export", "hub_name",
           "import_official", "load_weights", "read_checkpoint", "read_config", "spec_from_config",
           "tensor_names", "to_official", "to_ours", "weights_of"]
