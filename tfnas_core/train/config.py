"""Retraining profiles: the paper's recipe (Appendix B) and two CPU-sized versions of it.

``TrainConfig`` holds every knob of a retraining run; a profile is a function returning one.
``--set key=value`` overrides go through ``apply_overrides`` (coerced to the field's type, unknown
keys refused).  ``None`` in ``lr``/``dropout``/``device``/``amp`` means "derive it" and
``resolve`` turns it into a number before the run starts, so ``OUT/config.json`` always holds
the values actually used.

Paper recipe (Appendix B; docs/official_behaviour.md, "Deriving and retraining"): SGD, lr 0.2
for batch 512 scaled linearly with the batch, momentum 0.9, weight decay 1e-5, 250 epochs, cosine
to 0 after 5 linear warm-up epochs, label smoothing 0.1, dropout 0.2 (0.1 for the 10 ms models),
drop-connect 0.2 scaled with block index, gradient clipping 5, random-resized crop + flip.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from tfnas_core.utils import checks as _checks
from tfnas_core import config as _config
from tfnas_core.runs import keys as run_keys
from tfnas_core.utils.checks import (AT_LEAST_1, BATCH, EPOCHS, FRACTION, IMAGES, NON_NEGATIVE, POSITIVE, RESOLUTION, SEED, THREADS,
                     WORKERS, Range)

PAPER_LR, PAPER_BATCH = 0.2, 512  # Appendix B: lr 0.2 at batch 512, linear scaling rule
DEFAULT_DROPOUT = 0.2  # Appendix B, for specs that are not a published model


_setting = _config.setting  # a field and its meaning, listed by ``train --help``


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a retraining run.  Sizes and the batch are global (over all ranks).

    Each field's meaning is its ``metadata["help"]`` (``_setting``), the one text ``train --help``
    lists; a field without one fails tests/test_cli_help.py."""

    profile: str = _setting("custom", "where the defaults came from: paper | mini | smoke (set by --profile or "
                                      "--config, not by --set)")
    dataset: str = _setting("imagenet", "imagenet | fashion-mnist | synthetic")
    data_root: str | None = _setting(None, "imagenet: ImageFolder root with train/ and val/; fashion-mnist: the "
                                           "folder of its idx files (none: the usual places)")
    train_subset: int | None = _setting(None, "use this many training images (seeded choice); none: all")
    val_subset: int | None = _setting(None, "first N validation images; none: all")
    resolution: int = _setting(224, "proxy input side in pixels (crop size)")
    width_mult: float = _setting(1.0, "proxy channel multiplier")
    stem_stride: int = _setting(2, "proxy stem stride: 2 (the paper's) or 1 (small images)")
    crop_min_scale: float = _setting(0.08, "random-resized crop area range [crop_min_scale, 1]")
    batch_size: int = _setting(512, "training batch over all ranks (Appendix B: 512)")
    eval_batch_size: int = _setting(500, "validation batch over all ranks")
    epochs: int = _setting(250, "training epochs (Appendix B: 250)")
    warmup_epochs: float = _setting(5.0, "linear learning-rate warm-up, in epochs (fractions allowed), then cosine "
                                         "to 0")
    lr: float | None = _setting(None, "SGD learning rate for the actual batch; none: 0.2 * batch_size / 512 "
                                      "(linear scaling rule)")
    momentum: float = _setting(0.9, "SGD momentum")
    wd: float = _setting(1e-5, "SGD weight decay")
    label_smoothing: float = _setting(0.1, "label smoothing of the cross-entropy")
    dropout: float | None = _setting(None, "dropout before the classifier; none: the paper's value for a zoo "
                                           "model, else 0.2")
    drop_connect: float = _setting(0.2, "drop-connect rate of the last block; earlier blocks scaled by index")
    grad_clip: float = _setting(5.0, "gradient-norm clip")
    amp: bool = _setting(True, "mixed precision; only ever on for cuda")
    channels_last: bool = _setting(True, "NHWC weights and inputs (same function, faster kernels: "
                                         "results/bench/train_speed_cpu.md)")
    seed: int = _setting(0, "seed of the subset choice, the weights and the data order")
    num_workers: int = _setting(8, "imagenet loader worker processes (in-memory datasets need none)")
    device: str | None = _setting(None, "cpu | cuda; none: cuda when available")
    threads: int | None = _setting(None, "torch intra-op threads; none: torch's default")
    stop_after_epoch: int | None = _setting(None, "stop cleanly after this epoch (rerun the command to resume)")
    progress: bool = _setting(True, "tqdm bars (only on a TTY, only on rank 0)")
    # -- logging (tb_log.py, progress.py): never part of the run key (RESUME_FREE_KEYS) ---------------
    tensorboard: bool = _setting(True, "TensorBoard event files in the run folder (never archived)")
    log_every: int = _setting(50, "steps between logging points: TensorBoard scalars and a progress line")
    log_every_s: float = _setting(60.0, "seconds after which a progress line is written between logging points")


# Allowed values of every numeric field (``check`` refuses NaN, infinities and anything outside;
# a numeric field missing here is a TypeError, so every new field must be declared).
LIMITS: dict[str, Range] = {
    "train_subset": IMAGES, "val_subset": IMAGES,  # sizes bounded as checks.SIZE_LIMITS (refused at --set time)
    "resolution": RESOLUTION, "width_mult": Range(0, 4, lo_open=True), "stem_stride": Range(1, 2),  # as space.Proxy
    "crop_min_scale": Range(0, 1, lo_open=True), "batch_size": BATCH, "eval_batch_size": BATCH,
    "epochs": EPOCHS, "warmup_epochs": NON_NEGATIVE, "lr": POSITIVE, "momentum": FRACTION, "wd": NON_NEGATIVE,
    "label_smoothing": FRACTION, "dropout": FRACTION, "drop_connect": FRACTION, "grad_clip": POSITIVE,
    "seed": SEED, "num_workers": WORKERS, "threads": THREADS, "stop_after_epoch": AT_LEAST_1,
    "log_every": AT_LEAST_1, "log_every_s": POSITIVE,
}

# Keys that may differ between an interrupted run and its resumption.
# Logging settings: how a run is watched, not what it computes (a run's numbers are the same with any).
LOGGING_KEYS = run_keys.LOGGING_KEYS
RESUME_FREE_KEYS = run_keys.KEY_FREE["train"]


def paper() -> TrainConfig:
    """Appendix B on ImageNet: 250 epochs, batch 512, 224 px, AMP on a GPU."""
    return TrainConfig(profile="paper", dataset="imagenet", data_root=_config.IMAGENET_ROOT)


def mini() -> TrainConfig:
    """The paper's recipe shrunk to real Fashion-MNIST on two CPU cores in under five minutes.

    The timings these choices rest on (one machine, when they were made) are in
    ``results/bench/profile_choices.md``; ``make bench`` measures this machine.  Choices:

    * ``resolution=28, stem_stride=1``: the native 28 px with a stride-1 stem leaves a 2x2 map
      at stage 8 (224 px / stride 2 leaves 7x7); upsampling 28 px images would cost compute and
      add no information.
    * ``width_mult=0.25``: the one knob that buys the time.  Stage 3..8's relative widths,
      kernels, SE and depths are kept, so the architectures still differ the way the paper's do.
    * ``threads=1``: these small layers gain little from a second thread, and under contention a
      two-thread pool spin-waits.
    * ``epochs=2`` over the full 60 k training set (no subset): more distinct images beat more
      passes over fewer at equal compute; the whole 10 k test set is the validation set.
    * ``batch_size=256``: lr follows the paper's linear rule, 0.2 * 256 / 512 = 0.1; warm-up is
      0.2 epoch (the paper's 5 of 250 is 2 %; a tenth of a short run keeps early BN stable).
    * ``crop_min_scale=0.35``: 0.08 of a 28 px image is an 8 px patch, too little to classify.
    """
    return TrainConfig(
        profile="mini", dataset="fashion-mnist", resolution=28, width_mult=0.25, stem_stride=1,
        crop_min_scale=0.35, batch_size=256, eval_batch_size=1000, epochs=2, warmup_epochs=0.2,
        amp=False, num_workers=0, device="cpu", threads=1,
    )


def smoke() -> TrainConfig:
    """Seconds: learnable synthetic data (``data.synthetic``), tiny proxy, 3 epochs; for tests/CI.

    One thread: these tiny layers gain nothing from a second one, and under CPU contention a
    two-thread pool spin-waits (see ``results/bench/profile_choices.md``)."""
    return TrainConfig(
        profile="smoke", dataset="synthetic", train_subset=512, val_subset=256, resolution=16,
        width_mult=0.25, stem_stride=1, crop_min_scale=0.5, batch_size=32, eval_batch_size=256,
        epochs=3, warmup_epochs=0.5, lr=0.1, amp=False, num_workers=0, device="cpu", threads=1,
        progress=False,
    )


PROFILES: dict[str, Callable[[], TrainConfig]] = _config.profile_registry(paper=paper, mini=mini, smoke=smoke)


get_profile: Callable[[str], TrainConfig] = functools.partial(_config.get_profile, PROFILES, error=ValueError,
                                                              what="profile")


# ----------------------------------------------------------------------------- overrides

def apply_overrides(cfg: TrainConfig, pairs: list[str] | None) -> TrainConfig:
    """Apply ``key=value`` strings, each coerced to its field's type; unknown keys are refused."""
    return check(_config.apply_overrides(cfg, pairs, ValueError, "config key"))


def check(cfg: TrainConfig) -> TrainConfig:
    """Validate the values (dataset, device, types, ``LIMITS``); raise ``ValueError`` naming the field."""
    if cfg.dataset not in ("imagenet", "fashion-mnist", "synthetic"):
        raise ValueError(f"dataset: unknown {cfg.dataset!r}; known: imagenet, fashion-mnist, synthetic")
    if cfg.device not in (None, "cpu", "cuda"):
        raise ValueError(f"device must be cpu or cuda, got {cfg.device!r}")
    _checks.check_fields(cfg, LIMITS, ValueError)
    if cfg.warmup_epochs > cfg.epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs={cfg.epochs}], got {cfg.warmup_epochs}")
    return cfg


def resolve(cfg: TrainConfig, spec, cuda_available: bool) -> TrainConfig:
    """Fill the derived fields: lr by the linear rule, dropout per model, device, amp."""
    from tfnas_core.arch import zoo

    lr = cfg.lr if cfg.lr is not None else PAPER_LR * cfg.batch_size / PAPER_BATCH
    dropout = cfg.dropout
    if dropout is None:
        dropout = DEFAULT_DROPOUT
        if spec.name in zoo.PAPER and zoo.load(spec.name) == spec:
            dropout = zoo.PAPER[spec.name].dropout
    device = _config.resolve_device(cfg.device, cfg.profile, cuda_available, "retraining", "weeks")
    return check(replace(cfg, lr=lr, dropout=dropout, device=device, amp=cfg.amp and device == "cuda"))


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(d: dict[str, Any]) -> TrainConfig:
    """The config a run's ``config.json`` holds (``to_dict``'s inverse: the same values, so the same
    run key); an unknown key or a bad value is a ``ValueError`` naming it, a missing key its default."""
    unknown = sorted(set(d) - {f.name for f in fields(TrainConfig)})
    if unknown:
        raise ValueError(f"unknown retraining setting(s) {', '.join(map(repr, unknown))} "
                         "(is it a retraining's config.json?)")
    return check(TrainConfig(**d))


def differences(a: dict[str, Any], b: dict[str, Any], ignore=RESUME_FREE_KEYS) -> list[str]:
    return _config.differences(a, b, ignore)
