"""Search settings: ``SearchConfig``, the profiles ``paper`` / ``mini`` / ``smoke`` and ``--set``.

Every knob of an architecture search (paper Sec. 3.3 "Overall Algorithm", Sec. 4, Appendix B;
docs/official_behaviour.md, "Search loop") is a field of ``SearchConfig``; a profile is a
function returning one.  ``apply_overrides(cfg, ["key=value", ...])`` coerces each value to its
field's type and refuses unknown keys (``SearchConfigError``, a ``ValueError``, so the CLI exits
2 with one line).  ``resolve`` fills the derived fields (``target_ms`` when it is ``None``, from
the LUT the run loaded - ``load_lut``, once per run; resolving reads no file - and ``device``) so
that ``OUT/config.json`` holds the values the run actually used.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Callable

from tfnas_core.utils import checks as _checks
from tfnas_core import config as _config
from tfnas_core.runs import keys as run_keys
from tfnas_core.utils.checks import AT_LEAST_1, BATCH, EPOCHS, FRACTION, IMAGES, NON_NEGATIVE, POSITIVE, RESOLUTION, SEED, THREADS, \
    WORKERS, Range

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # tfnas_core/
OFFICIAL_DIR = "../shared/reference/official"
CPU_LUT = "tfnas_core/luts/cpu_local.json"

DATASETS = ("imagenet-100", "fashion-mnist", "cifar10", "cifar100", "synthetic")
ARCH_STEPS = ("relaxed", "hard")


class SearchConfigError(ValueError):
    """A bad search setting; the message names the field and the value."""


_setting = _config.setting  # a field and its meaning, listed by ``search --help``


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of one search.  Defaults are the paper's (Appendix B) where it has one.

    Each field's meaning is its ``metadata["help"]`` (``_setting``), the one text ``search --help``
    lists; a field without one fails tests/test_cli_help.py."""

    profile: str = _setting("custom", "where the defaults came from: paper | mini | smoke (set by --profile or "
                                      "--config, not by --set)")
    # -- data (search_data.py) -------------------------------------------------------------
    dataset: str = _setting("imagenet-100", "imagenet-100 | fashion-mnist | cifar10 | cifar100 | synthetic")
    data_root: str | None = _setting(None, "imagenet-100: ImageNet root with train/ (or the train/ folder itself); "
                                           "fashion-mnist: the folder of its idx files; cifar: torchvision's root; "
                                           "none: the usual places")
    train_list: str = _setting(f"{OFFICIAL_DIR}/ImageNet-100-effb0_train_cls_ratio0.8.txt",
                               "imagenet-100: the weights split (the official 80 % list)")
    val_list: str = _setting(f"{OFFICIAL_DIR}/ImageNet-100-effb0_val_cls_ratio0.8.txt",
                             "imagenet-100: the architecture split (the official 20 % list)")
    missing_ok: bool = _setting(False, "imagenet-100: search on the listed files that exist and open, leaving out "
                                       "the missing and unreadable ones (recorded in the run folder); false: any "
                                       "such file stops the search before it starts")
    download: bool = _setting(False, "cifar: let torchvision download into data_root")
    split_dir: str = _setting("data_splits", "where the weights/architecture split <dataset>-<seed>.json is written")
    split_ratio: float = _setting(0.8, "fraction of the training set for the weights (Appendix B: 80 %)")
    subset: int | None = _setting(None, "use this many training images (seeded, from both parts of the split); "
                                        "none: all")
    synthetic_n: int = _setting(512, "synthetic: images in the pool")
    crop_min_scale: float = _setting(0.08, "random-resized crop area range [crop_min_scale, 1]")
    num_workers: int = _setting(8, "imagenet-100 loader worker processes")
    # -- proxy (space.Proxy) ---------------------------------------------------------------
    space: str = _setting("tfnas", "search space: tfnas | tfnas-wose (no SE) | mbv2")
    depth_space: str = _setting("sink", "sink (Sec. 3.3, Eq. 5/6) | skip-in (Fig. 3a) | skip-out (Fig. 3b)")
    resolution: int = _setting(224, "proxy input side in pixels (crop size)")
    width_mult: float = _setting(1.0, "proxy channel multiplier (relative widths are kept)")
    stem_stride: int = _setting(2, "proxy stem stride: 2 (the paper's) or 1 (small images)")
    # -- schedule ---------------------------------------------------------------------------
    epochs: int = _setting(90, "search epochs, warm-up included (Appendix B)")
    warmup_epochs: int = _setting(10, "first epochs that train the weights only, one path (Appendix B)")
    batch_size: int = _setting(32, "images per weight step and per architecture step (Appendix B)")
    steps_per_epoch: int | None = _setting(None, "cap on weight steps per epoch; none: the whole weights split")
    arch_every: int = _setting(2, "an architecture step after every arch_every-th weight step (released code: 2)")
    val_batches: int | None = _setting(None, "cap on arch-split batches of the per-epoch supernet validation; "
                                             "none: all")
    # -- weights: SGD, cosine over all epochs ----------------------------------------------
    w_lr: float = _setting(0.025, "weights: SGD learning rate, cosine to 0 over all epochs")
    w_momentum: float = _setting(0.9, "weights: SGD momentum")
    w_wd: float = _setting(1e-5, "weights: SGD weight decay")
    w_grad_clip: float = _setting(5.0, "weights: gradient-norm clip")
    # -- architecture: Adam ----------------------------------------------------------------
    a_lr: float = _setting(0.01, "architecture (alpha, beta): Adam learning rate")
    a_beta1: float = _setting(0.5, "architecture: Adam beta1")
    a_beta2: float = _setting(0.999, "architecture: Adam beta2")
    a_wd: float = _setting(5e-4, "architecture: Adam weight decay")
    a_grad_clip: float = _setting(5.0, "architecture: gradient-norm clip")
    # -- method variants -------------------------------------------------------------------
    second_path: str = _setting("random", "none | gumbel | min_alpha | max_alpha | random (Sec. 3.3, Tab. 3)")
    arch_step: str = _setting("relaxed", "relaxed (soft Gumbel-softmax, every op) | hard (straight-through, one op)")
    objective: str = _setting("abs", "latency objective: abs (released code) | eq9 (paper Eq. 9) | c1 | c2 (Tab. 5)")
    lam: float | None = _setting(None, "lambda (Appendix B); lambda1 for c1/c2; none: the objective's "
                                       "(objectives.DEFAULTS)")
    lam2: float | None = _setting(None, "lambda2 of c1 only; none: c1's default (objectives.DEFAULTS), unused "
                                        "otherwise")
    lut: str = _setting(f"{OFFICIAL_DIR}/latency_gpu.pkl", "latency lookup table the objective and target use")
    target_ms: float | None = _setting(15.0, "target latency in ms; none: TF-NAS-B's latency under lut "
                                             "(resolved at start)")
    elasticity: bool = _setting(True, "elasticity scaling after every post-warm-up epoch (Alg. 1)")
    t_schedule: str = _setting("exponential", "Gumbel temperature: exponential (x t_decay per epoch after warm-up) "
                                              "| linear (t0 -> t_final)")
    t0: float = _setting(5.0, "Gumbel temperature at the first architecture epoch")
    t_decay: float = _setting(0.96, "exponential schedule: factor per epoch")
    t_final: float = _setting(0.2, "linear schedule: temperature at the last epoch")
    # -- run ----------------------------------------------------------------------------------
    seed: int = _setting(2, "seed of the data split and of the search's random draws (released code: 2)")
    device: str | None = _setting(None, "cpu | cuda; none: cuda when available")
    threads: int | None = _setting(None, "torch intra-op threads; none: torch's default")
    stop_after_epoch: int | None = _setting(None, "stop cleanly after this epoch (rerun the command to resume)")
    progress: bool = _setting(True, "tqdm bars (on a TTY)")
    fast: bool = _setting(True, "fast_ops path (same losses/gradients up to float rounding); false: the plain "
                                "reference path")
    # Off until measured on a GPU; no effect on a CPU.
    cuda_graphs: bool = _setting(False, "CUDA only: replay the relaxed arch step from a CUDA graph (cuda_graph.py; "
                                        "capturable Adam) and keep each step's metrics on the device until the "
                                        "epoch ends")
    # -- logging (tb_log.py, progress.py): never part of the run key (RESUME_FREE_KEYS) ---------------
    tensorboard: bool = _setting(True, "TensorBoard event files in the run folder (never archived)")
    log_every: int = _setting(50, "steps between logging points: TensorBoard scalars and a progress line")
    log_every_s: float = _setting(60.0, "seconds after which a progress line is written between logging points")


# Allowed values of every numeric field (``check`` refuses NaN, infinities and anything outside;
# a numeric field missing here is a TypeError, so every new field must be declared).
# Size-like fields have upper bounds (checks.SIZE_LIMITS: why each); ``steps_per_epoch`` and
# ``val_batches`` are caps on the data's length (a larger one is no cap), ``stop_after_epoch`` a
# stop that a value past ``epochs`` never reaches: none of them allocates or costs anything.
LIMITS: dict[str, Range] = {
    "split_ratio": Range(0, 1, lo_open=True, hi_open=True), "subset": IMAGES, "synthetic_n": IMAGES,
    "crop_min_scale": Range(0, 1, lo_open=True), "num_workers": WORKERS,
    "resolution": RESOLUTION, "width_mult": Range(0, 4, lo_open=True), "stem_stride": Range(1, 2),  # as space.Proxy
    "epochs": EPOCHS, "warmup_epochs": NON_NEGATIVE, "batch_size": BATCH, "steps_per_epoch": AT_LEAST_1,
    "arch_every": AT_LEAST_1, "val_batches": AT_LEAST_1,
    "w_lr": POSITIVE, "w_momentum": FRACTION, "w_wd": NON_NEGATIVE, "w_grad_clip": POSITIVE,
    "a_lr": POSITIVE, "a_beta1": FRACTION, "a_beta2": FRACTION, "a_wd": NON_NEGATIVE, "a_grad_clip": POSITIVE,
    "lam": NON_NEGATIVE, "lam2": NON_NEGATIVE, "target_ms": POSITIVE,
    "t0": POSITIVE, "t_decay": Range(0, 1, lo_open=True), "t_final": POSITIVE,
    "seed": SEED, "threads": THREADS, "stop_after_epoch": AT_LEAST_1,
    "log_every": AT_LEAST_1, "log_every_s": POSITIVE,
}

# The hyper-parameters of each temperature schedule (``samplers.TEMPERATURE_SCHEDULES``) beyond
# t0 and warm-up: the schedule's keyword -> the field that sets it.
SCHEDULE_FIELDS: dict[str, dict[str, str]] = {"exponential": {"decay": "t_decay"}, "linear": {"t1": "t_final"}}

# Keys that may differ between an interrupted run and its resumption.
# Logging settings: how a run is watched, not what it computes (a run's numbers are the same with any).
LOGGING_KEYS = run_keys.LOGGING_KEYS
RESUME_FREE_KEYS = run_keys.KEY_FREE["search"]


def paper() -> SearchConfig:
    """Appendix B: ImageNet-100 (the official 80/20 lists), 224 px, batch 32, 90 epochs with 10
    warm-up, the official GPU LUT and a 15 ms target (TF-NAS-B's setting)."""
    return SearchConfig(profile="paper")


def mini() -> SearchConfig:
    """The search on real Fashion-MNIST, one whole search in <= 10 minutes on 2 busy CPU cores.

    The timings these choices rest on (one machine, when they were made) are in
    ``results/bench/profile_choices.md``; ``make bench`` measures this machine.  Choices:

    * ``resolution=28, stem_stride=1``: the native 28 px; stage maps 28-14-7-4-4-2-2 keep some
      spatial extent to the end (a stride-2 stem leaves 1x1 maps in stages 7-8, where k3 and k5
      compute the same function).  Upsampling would add compute, not information.
    * ``width_mult=0.25``: the knob that buys the time; relative widths, kernels, SE and depths
      (what the search chooses between) are kept.
    * ``subset=6400`` (-> 5120 weights / 1280 arch images, per-class 80/20), ``batch_size=64``
      -> 80 weight steps and 40 arch steps per epoch.
    * ``epochs=8, warmup_epochs=3``: a supernet trained on random single paths learns slowly, so
      the warm-up is 3/8 of the epochs instead of the paper's 1/9 - warm-up steps are the cheap
      ones - and 5 epochs update α/β with elasticity scaling after each.
    * ``w_lr`` stays the paper's 0.025 (0.1 was measured worse).
    * ``crop_min_scale=0.35``: 8 % of a 28 px image is too little to classify.
    * ``threads=1``: predictable under contention; benchmarks/bench_search.py records both.
    * LUT: this machine's CPU table (tfnas_core/luts/cpu_local.json); target ``None`` = TF-NAS-B's
      latency under it, computed at start and written to config.json.
    The temperature keeps the paper's per-epoch constants (T0 5, x0.96), so T only falls to ~4.2.
    """
    return SearchConfig(
        profile="mini", dataset="fashion-mnist", subset=6400, resolution=28, width_mult=0.25, stem_stride=1,
        crop_min_scale=0.35, epochs=8, warmup_epochs=3, batch_size=64, lut=CPU_LUT,
        target_ms=None, device="cpu", threads=1, num_workers=0,
    )


def smoke() -> SearchConfig:
    """Seconds: 128 synthetic 16 px images, a tiny proxy, 2 epochs (1 warm-up), 4 steps each."""
    return SearchConfig(
        profile="smoke", dataset="synthetic", synthetic_n=160, resolution=16, width_mult=0.25, stem_stride=1,
        crop_min_scale=0.5, epochs=2, warmup_epochs=1, batch_size=16, steps_per_epoch=4, val_batches=2,
        lut=CPU_LUT, target_ms=None, device="cpu", threads=1, num_workers=0, progress=False,
    )


PROFILES: dict[str, Callable[[], SearchConfig]] = _config.profile_registry(paper=paper, mini=mini, smoke=smoke)


get_profile: Callable[[str], SearchConfig] = functools.partial(_config.get_profile, PROFILES, error=SearchConfigError,
                                                               what="search profile")


# ----------------------------------------------------------------------------- overrides

def apply_overrides(cfg: SearchConfig, pairs: list[str] | None) -> SearchConfig:
    """Apply ``key=value`` strings, each coerced to its field's type; unknown keys are refused."""
    return check(_config.apply_overrides(cfg, pairs, SearchConfigError, "search setting"))


def check(cfg: SearchConfig) -> SearchConfig:
    """Validate the values (names of variants, types, ``LIMITS``); raise ``SearchConfigError`` naming the field."""
    from tfnas_core.search.objectives import OBJECTIVES
    from tfnas_core.search.samplers import SECOND_PATH_STRATEGIES, TEMPERATURE_SCHEDULES
    from tfnas_core.arch.space import DEPTH_SPACES, SPACES

    choices = {
        "dataset": DATASETS, "space": tuple(SPACES), "depth_space": DEPTH_SPACES, "arch_step": ARCH_STEPS,
        "second_path": SECOND_PATH_STRATEGIES, "objective": tuple(OBJECTIVES),
        "t_schedule": tuple(TEMPERATURE_SCHEDULES), "device": (None, "cpu", "cuda"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            shown = ", ".join(str(a) for a in allowed if a is not None)
            raise SearchConfigError(f"{name}: unknown {getattr(cfg, name)!r}; known: {shown}")
    _checks.check_fields(cfg, LIMITS, SearchConfigError)
    if cfg.warmup_epochs > cfg.epochs:
        raise SearchConfigError(f"warmup_epochs must be in [0, epochs={cfg.epochs}], got {cfg.warmup_epochs}")
    return cfg


def resolve_path(path: str) -> Path:
    """A relative path as given (from the working directory), else from the repository root."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    alt = PACKAGE_DIR.parent / p
    return alt if alt.exists() else p


def fill_objective_defaults(cfg: SearchConfig) -> SearchConfig:
    """``lam`` / ``lam2`` left ``None`` take the objective's defaults (``objectives.DEFAULTS``).

    Filled from the *final* objective, so ``replace(profile, objective="c1")`` gets c1's λ1, and
    written into the config (hence ``config.json`` and the run key) as used.  ``lam2`` is kept
    only for ``c1``, the one objective that reads it."""
    from tfnas_core.search.objectives import DEFAULTS

    if cfg.objective not in DEFAULTS:
        return cfg  # check() names the unknown objective
    d = DEFAULTS[cfg.objective]
    if cfg.lam2 is not None and "lam2" not in d:
        users = ", ".join(name for name, hyper in DEFAULTS.items() if "lam2" in hyper)
        raise SearchConfigError(f"lam2: a hyper-parameter of objective {users} only, not of {cfg.objective!r}")
    lam = d["lam"] if cfg.lam is None else cfg.lam
    lam2 = (d["lam2"] if cfg.lam2 is None else cfg.lam2) if "lam2" in d else None
    return replace(cfg, lam=float(lam), lam2=None if lam2 is None else float(lam2))


def load_lut(cfg: SearchConfig):
    """The latency table ``cfg.lut`` names (``resolve_path``), read from its file: what a search
    loads once (``search.run``) and hands to ``resolve`` and to the steps."""
    from tfnas_core.latency import lut as latency

    return latency.load(resolve_path(cfg.lut))


def default_target(lut) -> float:
    """The target of ``target_ms=None``: TF-NAS-B's latency under the loaded ``lut`` (ms, 6 places)."""
    from tfnas_core.arch import zoo

    return round(lut.predict(zoo.load("TF-NAS-B")), 6)


def resolve(cfg: SearchConfig, cuda_available: bool, lut=None) -> SearchConfig:
    """Fill the derived fields: ``target_ms`` when it is ``None`` (``default_target`` of ``lut``, the
    table the run loaded; without one it stays ``None``), ``device`` (``config.resolve_device``) and
    the objective's ``lam``/``lam2`` (``fill_objective_defaults``).  Reads no file."""
    cfg = fill_objective_defaults(cfg)
    target = cfg.target_ms
    if target is None and lut is not None:
        target = default_target(lut)
    device = _config.resolve_device(cfg.device, cfg.profile, cuda_available, "search", "days", SearchConfigError)
    cfg = check(replace(cfg, target_ms=None if target is None else float(target), device=device))
    check_memory(cfg)
    return cfg


# Image channels of each dataset's pool (search_data): what the supernet's stem reads.
IN_CHANS = {"imagenet-100": 3, "cifar10": 3, "cifar100": 3, "fashion-mnist": 1, "synthetic": 1}


def memory_floor(cfg: SearchConfig) -> list[tuple[str, int, str]]:
    """Lower bounds of what a search with ``cfg`` allocates at once: ``(what, bytes, device)``.

    * the synthetic pool: ``synthetic_n`` images of ``resolution``² pixels, made in float32 by
      ``data.synthetic``, whose ``128 + 60 * template + 25 * noise`` holds three float32 copies at
      once (the scaled templates, the scaled noise, their sum): 12 bytes a pixel;
    * one weight step: the float32 input batch and the stem's output (``checks.batch_floor_bytes``),
      on ``cfg.device`` (``None``: the host).
    Weights, the other activations and what the backward pass keeps come on top; the paper's
    setting (batch 32, 224 px) floors at 0.07 GB and peaks near 15 GB on a CPU."""
    from tfnas_core.arch.space import Proxy, get_space

    out = []
    if cfg.dataset == "synthetic":
        out.append((f"the synthetic pool (synthetic_n={cfg.synthetic_n} at resolution={cfg.resolution})",
                    12 * cfg.synthetic_n * cfg.resolution ** 2, "cpu"))
    stem = Proxy(cfg.resolution, cfg.width_mult, cfg.stem_stride).channels(get_space(cfg.space).stage(1).out_chs)
    need = _checks.batch_floor_bytes(cfg.batch_size, IN_CHANS.get(cfg.dataset, 3), cfg.resolution, stem, cfg.stem_stride)
    out.append((f"a search step (batch_size={cfg.batch_size} at resolution={cfg.resolution})", need, cfg.device or "cpu"))
    return out


def check_memory(cfg: SearchConfig) -> None:
    """Refuse, naming the settings, a search whose ``memory_floor`` exceeds all the memory of the
    machine (or GPU) it would run on: before anything is allocated or written."""
    for what, need, device in memory_floor(cfg):
        _checks.check_memory(need, what, device, SearchConfigError)


# Fields added after runs were archived, with their defaults: ``to_dict`` leaves such a field
# out while it holds its default, so config.json, run keys and checkpoint hashes of the runs made
# before it existed stay what they were (``from_dict`` fills the default back in).
LATE_FIELDS: dict[str, Any] = {"missing_ok": False, "tensorboard": True, "log_every": 50, "log_every_s": 60.0}


def to_dict(cfg: SearchConfig) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    for name, default in LATE_FIELDS.items():
        if d[name] == default:
            del d[name]
    return d


def from_dict(d: dict[str, Any]) -> SearchConfig:
    unknown = sorted(set(d) - {f.name for f in fields(SearchConfig)})
    if unknown:
        raise SearchConfigError(f"unknown search setting(s) {', '.join(map(repr, unknown))} "
                                "(is it a search's config.json?)")
    return check(SearchConfig(**d))


def differences(a: dict[str, Any], b: dict[str, Any], ignore=RESUME_FREE_KEYS) -> list[str]:
    return _config.differences(a, b, ignore)


__all__ = ["ARCH_STEPS", "DATASETS", "LATE_FIELDS", "LOGGING_KEYS", "PROFILES", "RESUME_FREE_KEYS", "SearchConfig", "SearchConfigError",
           "apply_overrides", "check", "check_memory", "default_target", "differences", "fill_objective_defaults", "from_dict", "get_profile", "load_lut", "memory_floor", "mini", "paper", "resolve",
           "resolve_path", "smoke", "to_dict"]
