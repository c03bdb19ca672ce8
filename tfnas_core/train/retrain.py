"""Retraining a derived architecture from scratch (paper Appendix B) on one process or many.

``run(spec, cfg, out)`` trains ``model.build(spec, proxy)`` with the recipe in ``cfg``
(``profiles.TrainConfig``): SGD + momentum, linear warm-up then cosine to 0 (stepped every
iteration), label smoothing, dropout before the classifier, drop-connect scaled with block
index, gradient clipping, mixed precision on CUDA.  It writes, on rank 0 only:

* ``OUT/config.json`` - the resolved config (every derived value filled in);
* ``OUT/checkpoint.pt`` - after every epoch, atomically: model, optimizer, scheduler, scaler,
  epoch, every rank's RNG state, the records so far, the config hash (``checkpoint``).  Rerunning
  the same command resumes; another config is refused (``OUT`` is locked while a run writes it);
* ``OUT/records.csv`` - one row per epoch; ``OUT/result.json`` - top-1/top-5, FLOPs, params, wall.
* TensorBoard event files (``tb_log``): ``train/loss``, ``train/top1`` and ``schedule/lr`` every
  ``log_every`` steps (rank 0's batches), the record's numbers every epoch; none with
  ``tensorboard=false``.  Progress lines with an ETA come from the loop's events (``progress``).

Distributed: launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in the environment)
it runs DDP, NCCL on CUDA and Gloo on CPU; the batch in ``cfg`` is global.  A non-finite loss on
any rank stops every rank with ``TrainingDiverged``, leaving the last good checkpoint in place.

Sizes are checked before ``OUT`` exists (``check_sizes``): upper bounds (``checks.SIZE_LIMITS``),
a lower bound of the memory a step needs against the machine's, threads against its cores.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from tfnas_core.utils import checks as _checks
from tfnas_core.data import datasets as data_mod
from tfnas_core.nn import flops
from tfnas_core.nn import model
from tfnas_core.train import config as profiles
from tfnas_core.runs import checkpoint
from tfnas_core.runs import loop as run_loop
from tfnas_core.arch.spec import Spec
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.train.config import TrainConfig
from tfnas_core.arch.space import Proxy
from tfnas_core.latency.timing import cpu_threads

RECORD_FIELDS = ("epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "epoch_s")


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """Rank, world size and local rank as ``torchrun`` sets them (one process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return Dist(rank, world, int(os.environ.get("LOCAL_RANK", str(rank))))


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to 0 at ``total`` (Appendix B)."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def make_criterion(cfg: TrainConfig) -> nn.Module:
    return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)


def _all_sum(t: torch.Tensor, d: Dist) -> torch.Tensor:
    if d.world > 1:
        dist.all_reduce(t)
    return t


def _any_rank(flag: bool, device: torch.device, d: Dist) -> bool:
    if d.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _layout(cfg: "profiles.TrainConfig") -> torch.memory_format:
    """``channels_last`` (NHWC) or the default layout: the same function, other kernels (on CPU the
    depthwise convolutions run 2-3x faster in NHWC)."""
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def train_epoch(net, batches, opt, sched, scaler, criterion, cfg, device, d: Dist, epoch: int,
                on_diverged: Callable[[str], str], loop: run_loop.RunLoop | None = None) -> dict:
    """One epoch; after every step ``loop.step`` (progress events; every ``log_every``-th step
    the means since the previous logging point of this rank's batches: ``train/loss``,
    ``train/top1``, ``schedule/lr``)."""
    net.train()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss * n, correct, n
    window = run_loop.Window()

    def values() -> dict[str, float]:
        dl = window.delta(dict(zip(("loss", "correct", "n"), sums.tolist())))
        n = max(dl["n"], 1)
        return {"train/loss": dl["loss"] / n, "train/top1": 100 * dl["correct"] / n,
                "schedule/lr": opt.param_groups[0]["lr"]}

    for step, (x, y) in enumerate(run_loop.progress_bar(batches, cfg.progress and d.main, desc=f"epoch {epoch + 1}",
                                                       leave=False)):
        x, y = x.to(device, non_blocking=True, memory_format=_layout(cfg)), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=cfg.amp):
            logits = net(x)
            loss = criterion(logits.float(), y)
        if _any_rank(not bool(torch.isfinite(loss)), device, d):
            raise TrainingDiverged(on_diverged(f"loss is {loss.item()} at epoch {epoch + 1} step {step + 1}"))
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
        nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        scaler.step(opt)
        scaler.update()
        sched.step()
        n = y.numel()
        sums += torch.stack([loss.detach().double() * n, (logits.argmax(1) == y).sum().double(),
                             torch.tensor(float(n), dtype=torch.float64, device=device)])
        if loop is not None:
            loop.step(epoch, step, "train", values)
    loss_sum, correct, n = _all_sum(sums, d).tolist()
    return {"train_loss": loss_sum / n, "train_top1": 100 * correct / n}


@torch.no_grad()
def evaluate(net: nn.Module, batches, cfg: TrainConfig, device, d: Dist) -> dict:
    """Cross-entropy (no smoothing), top-1 and top-5 (%) over this rank's shard, summed over ranks."""
    net.eval()
    sums = torch.zeros(4, dtype=torch.float64, device=device)  # loss sum, top1, top5, n
    for x, y in batches:
        x, y = x.to(device, non_blocking=True, memory_format=_layout(cfg)), y.to(device, non_blocking=True)
        with torch.autocast(device.type, enabled=cfg.amp):
            logits = net(x).float()
        hit = logits.topk(min(5, logits.shape[1]), dim=1).indices == y[:, None]
        sums += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(), hit[:, 0].sum().double(),
                             hit.any(1).sum().double(), torch.tensor(float(y.numel()), dtype=torch.float64, device=device)])
    loss, top1, top5, n = _all_sum(sums, d).tolist()
    return {"val_loss": loss / n, "val_top1": 100 * top1 / n, "val_top5": 100 * top5 / n}


# ----------------------------------------------------------------------------- state on disk


def _gather(obj, d: Dist) -> list:
    if d.world == 1:
        return [obj]
    out = [None] * d.world
    dist.all_gather_object(out, obj)
    return out


def write_records(records: list[dict], path: Path) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=RECORD_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in records:
        w.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue())


def weights_digest(net: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in state-dict order (equal iff bitwise equal)."""
    h = hashlib.sha256()
    for k, v in net.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "rng", "records", "wall_s")


def _load_state(st: dict, core: nn.Module, opt, sched, scaler, d: Dist) -> None:
    core.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    sched.load_state_dict(st["scheduler"])
    scaler.load_state_dict(st["scaler"])
    int(st["epoch"]), float(st["wall_s"])  # readable, or a CheckpointError
    if len(st["rng"]) == d.world:
        checkpoint.set_rng_state(st["rng"][d.rank])  # also a checkpoint from before issue 30 ("cpu")


# ----------------------------------------------------------------------------- sizes

# Image channels of each dataset (``data``): what the stem reads.
IN_CHANS = {"imagenet": 3, "fashion-mnist": 1, "synthetic": 1}


def memory_floor(cfg: TrainConfig, spec: Spec, world: int = 1) -> list[tuple[str, int, str]]:
    """Lower bounds of what one rank of a retraining with ``cfg`` allocates at once: ``(what,
    bytes, device)``.  The synthetic pools (``train_subset`` or 1024, then ``val_subset`` or 512
    images of ``resolution``² pixels; ``data.synthetic`` holds three float32 copies of a pool at
    once, 12 bytes a pixel, and keeps it as uint8) on the host;
    a training step's and an evaluation step's float32 input and stem output at this rank's share
    of the global batch (``checks.batch_floor_bytes``) on ``cfg.device``.  Weights, the other
    activations and what backward keeps come on top."""
    from tfnas_core.arch.space import get_space

    out = []
    r2 = cfg.resolution ** 2
    if cfg.dataset == "synthetic":
        n_train, n_val = cfg.train_subset or 1024, cfg.val_subset or 512
        out.append((f"the synthetic data ({n_train} + {n_val} images at resolution={cfg.resolution})",
                    max(12 * n_train, n_train + 12 * n_val) * r2, "cpu"))
    proxy = Proxy(cfg.resolution, cfg.width_mult, cfg.stem_stride)
    stem = proxy.channels(get_space(spec.space).stage(1).out_chs)
    for name, batch in (("batch_size", cfg.batch_size), ("eval_batch_size", cfg.eval_batch_size)):
        per_rank = -(-batch // world)
        need = _checks.batch_floor_bytes(per_rank, IN_CHANS.get(cfg.dataset, 3), cfg.resolution, stem, cfg.stem_stride)
        out.append((f"a step at {name}={batch} and resolution={cfg.resolution}"
                    + (f" ({per_rank} per rank)" if world > 1 else ""), need, cfg.device or "cpu"))
    return out


def check_sizes(cfg: TrainConfig, spec: Spec, d: Dist = Dist()) -> None:
    """Refuse, naming the setting, a size past ``checks.SIZE_LIMITS`` or a run whose
    ``memory_floor`` exceeds all the memory where it would live; threads beyond this process's
    cores are refused where they are set (``timing.cpu_threads``)."""
    _checks.check_sizes(cfg)
    for what, need, device in memory_floor(cfg, spec, d.world):
        _checks.check_memory(need, what, device)


# ----------------------------------------------------------------------------- the run


def run(spec: Spec, cfg: TrainConfig, out: str | os.PathLike, log: Callable[[str], None] | None = None,
        events: run_loop.Events | None = None) -> dict | None:
    """Train ``spec`` with ``cfg`` into ``out``; return the result dict, or ``None`` when the run
    stopped early on purpose (``stop_after_epoch``).  Resumes from ``out/checkpoint.pt``; the
    folder, the resume, the records, the stop, the progress events (``events``, default
    ``log.event`` or step lines through ``log``; rank 0) and the TensorBoard files are
    ``run_loop.RunLoop``'s."""
    d = dist_from_env()
    cfg = profiles.resolve(cfg, spec, torch.cuda.is_available())
    say = (log or run_loop.default_say) if d.main else (lambda m: None)
    out = Path(out)
    device = torch.device("cuda", d.local_rank) if cfg.device == "cuda" else torch.device("cpu")
    if cfg.device == "cuda":
        torch.cuda.set_device(device)
    check_sizes(cfg, spec, d)  # before the folder exists: a refused run leaves nothing behind
    own_group = d.world > 1 and not dist.is_initialized()
    if own_group:
        dist.init_process_group("nccl" if cfg.device == "cuda" else "gloo", rank=d.rank, world_size=d.world)
    try:  # rank 0 writes; the other ranks only read
        with cpu_threads(cfg.threads), run_loop.out_lock(out, say, enabled=d.main):
            return _run(spec, cfg, out, device, d, say, events)
    finally:
        if own_group:
            dist.destroy_process_group()


def _run(spec: Spec, cfg: TrainConfig, out: Path, device, d: Dist, say, events) -> dict | None:
    resume_free = profiles.RESUME_FREE_KEYS | data_mod.resume_free_keys(cfg)  # ImageNet may move
    loop = run_loop.RunLoop(out, "train", profiles.to_dict(cfg), resume_free, cfg.epochs, cfg.stop_after_epoch,
                            write_records, say, main=d.main,  # every rank reads; the folder is shared
                            events=events if d.main else None, log=run_loop.LogSettings.of(cfg))
    try:
        return _train(spec, cfg, device, d, say, loop)
    finally:
        loop.close()


def _train(spec: Spec, cfg: TrainConfig, device, d: Dist, say, loop: run_loop.RunLoop) -> dict | None:
    if d.world > 1:
        dist.barrier()
    data = data_mod.make(cfg, d.rank, d.world)  # before writing anything: a missing dataset leaves no trace
    for note in data.notes:
        say(note)

    torch.manual_seed(cfg.seed)
    proxy = Proxy(cfg.resolution, cfg.width_mult, cfg.stem_stride, data.num_classes, data.in_chans)
    net = model.build(spec, proxy, dropout=cfg.dropout, drop_connect=cfg.drop_connect).to(device, memory_format=_layout(cfg))
    core = net
    if d.world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.wd)
    iters = len(data.train)
    total, warm = iters * cfg.epochs, round(cfg.warmup_epochs * iters)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warm))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp)
    criterion = make_criterion(cfg)

    loop.resume(device, CHECKPOINT_KEYS, _load_state, core, opt, sched, scaler, d, epoch_of=lambda st: st["epoch"])
    done = loop.begin()
    if done is not None:
        return done
    loop.open_log(iters)

    def diverged(what: str) -> str:
        return f"{what}; training stopped, {loop.kept()} (try a lower lr, or amp=false)"

    for epoch in loop.epoch_range():
        t0 = time.perf_counter()
        data.train.set_epoch(epoch)
        tr = train_epoch(net, data.train, opt, sched, scaler, criterion, cfg, device, d, epoch, diverged, loop)
        if d.world > 1:  # the model rank 0 saves is the one every rank evaluates
            for b in core.buffers():
                dist.broadcast(b, 0)
        va = evaluate(core, data.val, cfg, device, d)
        rec = {"epoch": epoch + 1, **tr, **va, "lr": opt.param_groups[0]["lr"], "epoch_s": time.perf_counter() - t0}
        rngs = _gather(checkpoint.rng_state(), d)
        loop.end_epoch(rec, lambda: {
            "model": core.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch + 1, "rng": rngs,
        }, f"epoch {epoch + 1}/{cfg.epochs}: train loss {tr['train_loss']:.4f} top-1 {tr['train_top1']:.2f} | "
           f"val loss {va['val_loss']:.4f} top-1 {va['val_top1']:.2f} top-5 {va['val_top5']:.2f} | {rec['epoch_s']:.1f} s",
           "train")
        if d.world > 1:
            dist.barrier()
        if loop.stopping(epoch):
            return None

    last = loop.records[-1]
    return loop.finish({
        "name": spec.name, "profile": cfg.profile, "dataset": cfg.dataset, "epochs": cfg.epochs,
        "top1": round(last["val_top1"], 4), "top5": round(last["val_top5"], 4), "val_loss": round(last["val_loss"], 6),
        "flops_m": round(flops.count_flops(spec), 3), "proxy_flops_m": round(flops.count_flops(spec, proxy), 4),
        "params_m": round(sum(p.numel() for p in core.parameters()) / 1e6, 5),
        "wall_s": round(loop.wall_s(), 2),
        "world_size": d.world, "device": cfg.device,
        "rank_digests": _gather(weights_digest(core), d),
    })
