"""The TF-NAS search loop (paper Sec. 3.3 "Overall Algorithm", Eq. 7-9, Alg. 1; Appendix B).

``run(cfg, out)`` searches with the settings of ``search_config.SearchConfig`` and writes to
``out``: ``config.json`` (resolved config), ``records.jsonl`` (one JSON object per epoch),
``checkpoint.pt`` (after every epoch), TensorBoard event files (``tb_log``: every ``log_every``
steps and every epoch; none with ``tensorboard=false``), and at the end ``spec.json`` (``arch_spec.save``) and
``summary.json``.  One epoch, as the released code (docs/official_behaviour.md, "Search loop"):

* **Weight step** on every batch of the 80 % split (Eq. 8): the first path is Gumbel-sampled
  (``samplers.gumbel_path``: log_softmax(α) + Gumbel noise, argmax); after warm-up a second
  path is drawn from the *other* ops by ``second_path`` (``random`` default, Tab. 3; ``none`` is
  plain one-path Gumbel search).  Depths are mixed with softmax(β), detached.  The two
  cross-entropies are summed and back-propagated once; SGD (lr 0.025, momentum 0.9, wd 1e-5,
  cosine over all epochs, grad-clip 5).  Warm-up epochs: weights only, one path.
* **Architecture step** after every ``arch_every``-th (2nd) weight step, one batch of the 20 %
  split: ``relaxed`` (default, the released code) runs every op mixed with soft Gumbel-softmax
  weights at temperature T (Eq. 3) and depths with softmax(β) (Eq. 5); ``hard`` samples one op
  per layer and runs only it, its output multiplied by the straight-through one-hot weight
  (``hard - soft.detach() + soft``, value 1) so every α still gets a gradient (GDAS).  Loss =
  CE + C(LAT) (Eq. 7) with LAT the expected latency under the same weights (Eq. 4/6) and C one
  of ``objectives.OBJECTIVES`` (``abs`` default, ``eq9`` = Eq. 9, ``c1``/``c2`` = Tab. 5).  Adam
  (lr 0.01, betas (0.5, 0.999), wd 5e-4, grad-clip 5); then α, β are re-normalised to
  log-probabilities (``Supernet.renormalize_arch``).
* **Supernet validation** for the records: the arch split, Gumbel-sampled paths, training mode.
* **Elasticity scaling** (Alg. 1, Appendix C) after every post-warm-up epoch: derive, scale
  the derived widths toward the target with ``scaling.scale``, write them back.

Temperature T: ``exponential`` (T0 = 5, x0.96 per epoch after warm-up; released code) or
``linear`` (5 -> 0.2 over the arch epochs; Fig. 2).

Optimisers are built once (the released code rebuilds both every epoch, losing momentum and Adam
state; that is not part of the method).  Consequently, when elasticity scaling re-ranks an op's
middle channels (``ElasticMBInvRes.reorder_channels`` permutes the weights in place), the SGD
momentum buffers of the permuted tensors are permuted the same way, so every buffer stays with
its channel.  (Adam state belongs to α/β, which are never permuted.)

The steps themselves (flat, typed arguments; device tensors back) are ``search.steps``; this module
maps the config onto them (``weight_step_args`` / ``arch_step_args``), runs the epochs, sums the
steps' metrics (``EpochSums``: read at once on the CPU, at the epoch's end on a GPU, the same
records either way) and keeps the run's state.  The LUT is read once per run (``run``) and passed
to the config's resolution (the target) and to every step.

Resuming: the checkpoint holds the weights, α, β, widths (supernet extra state) and channel order
(the weights themselves), both optimisers, the scheduler, T, the torch / numpy / python RNGs and
the Gumbel generator (``checkpoint.rng_state``), and the data position (the next epoch: each epoch's batches are a function
of the seed and the epoch alone), and the config hash (``checkpoint``).  Rerunning the same command
resumes after the last finished epoch and ends with the same spec and records as an uninterrupted
run; a different config is refused, by ``config.json`` and by the checkpoint's hash, before
anything is written.  ``out`` is locked for the run (``runs.out_lock``): a second process waits.
A NaN/inf loss stops the run (``SearchDiverged``) and keeps the last good checkpoint.
"""
from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from tfnas_core import stats
from tfnas_core.arch import spec as arch_spec
from tfnas_core.arch.space import Proxy, get_space
from tfnas_core.latency import drift
from tfnas_core.latency import lut as latency
from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.latency.timing import cpu_threads
from tfnas_core.nn import flops
from tfnas_core.nn.supernet import Supernet
from tfnas_core.runs import checkpoint
from tfnas_core.runs import files as run_files
from tfnas_core.runs import loop as run_loop
from tfnas_core.runs import tb_log
from tfnas_core.search import config as search_config
from tfnas_core.search import data as search_data
from tfnas_core.search import samplers
from tfnas_core.search import steps
from tfnas_core.search.config import SearchConfig
from tfnas_core.search.objectives import LatencyCost
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.checks import parse_json

TIME_FIELDS = ("epoch_s",)


class SearchDiverged(ValueError):
    """A search loss became NaN or infinite."""


# ----------------------------------------------------------------------------- building


def build_supernet(cfg: SearchConfig, num_classes: int, in_chans: int, device: torch.device) -> Supernet:
    torch.manual_seed(cfg.seed)
    proxy = Proxy(cfg.resolution, cfg.width_mult, cfg.stem_stride, num_classes, in_chans)
    return Supernet(cfg.space, proxy, cfg.depth_space).to(device).set_fast(cfg.fast)


def build_optimizers(net: Supernet, cfg: SearchConfig):
    """SGD + cosine (per epoch, over all epochs) for ω; Adam for α, β (Appendix B); with
    ``cfg.cuda_graphs`` on a GPU the Adam is ``capturable`` (``cuda_graph``)."""
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=cfg.w_lr, momentum=cfg.w_momentum, weight_decay=cfg.w_wd)
    w_sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=cfg.epochs, eta_min=0.0)
    graphed = cfg.cuda_graphs and net.arch_parameters()[0].device.type == "cuda"
    a_opt = torch.optim.Adam(net.arch_parameters(), lr=cfg.a_lr, betas=(cfg.a_beta1, cfg.a_beta2),
                             weight_decay=cfg.a_wd, capturable=graphed)  # capturable: its step count stays on the GPU
    return w_opt, w_sched, a_opt


@dataclass
class SearchState:
    """What a search trains and checkpoints: the supernet, the SGD on ω with its cosine schedule,
    the Adam on α/β, and the Gumbel generator of every draw (``samplers.make_generator``)."""

    net: Supernet
    w_opt: torch.optim.SGD
    w_sched: torch.optim.lr_scheduler.CosineAnnealingLR
    a_opt: torch.optim.Adam
    gen: torch.Generator

    @classmethod
    def build(cls, cfg: SearchConfig, num_classes: int, in_chans: int, device: torch.device) -> "SearchState":
        """The state at the start of a search: weights seeded by ``cfg.seed``, fresh optimisers."""
        net = build_supernet(cfg, num_classes, in_chans, device)
        return cls(net, *build_optimizers(net, cfg), samplers.make_generator(cfg.seed))

    @property
    def device(self) -> torch.device:
        return self.net.arch_parameters()[0].device

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "w_opt": self.w_opt.state_dict(), "w_sched": self.w_sched.state_dict(),
                "a_opt": self.a_opt.state_dict(), "rng": checkpoint.rng_state({"gumbel": self.gen}, host=True)}

    def load_state_dict(self, st: dict[str, Any]) -> None:
        self.net.load_state_dict(st["net"])
        self.w_opt.load_state_dict(st["w_opt"])
        self.w_sched.load_state_dict(st["w_sched"])
        self.a_opt.load_state_dict(st["a_opt"])
        checkpoint.set_rng_state(st["rng"], {"gumbel": self.gen})


def temperature(cfg: SearchConfig, epoch: int) -> float:
    """T of (0-based) ``epoch`` under ``cfg.t_schedule``."""
    kw = {k: getattr(cfg, f) for k, f in search_config.SCHEDULE_FIELDS[cfg.t_schedule].items()}
    return samplers.temperature(cfg.t_schedule, epoch, cfg.epochs, t0=cfg.t0, warmup=cfg.warmup_epochs, **kw)


def weight_step_args(cfg: SearchConfig, searching: bool) -> dict[str, Any]:
    """``steps.weight_step``'s keyword arguments under ``cfg``: one path in warm-up (``searching``
    false), else ``cfg.second_path`` too (bi-sampling)."""
    return {"second_path": cfg.second_path if searching else "none", "grad_clip": cfg.w_grad_clip}


def arch_step_args(cfg: SearchConfig) -> dict[str, Any]:
    """``steps.arch_step``'s keyword arguments under a resolved ``cfg`` (all but the temperature)."""
    return {"cost": LatencyCost(cfg.objective, cfg.target_ms, cfg.lam, cfg.lam2), "grad_clip": cfg.a_grad_clip,
            "hard": cfg.arch_step == "hard", "graphed": cfg.cuda_graphs}


# ----------------------------------------------------------------------------- records


@torch.no_grad()
def arch_state(net: Supernet, lut) -> dict:
    """What the figures are made of: α / β softmax, derived ops and depths, expected latency."""
    alphas = [F.softmax(a, -1) for a in net.alphas]
    depths = net.depth_weights()
    spec = net.derive()
    return {
        "derived_ops": [net.choice_names(l)[int(a.argmax())] for l, a in enumerate(alphas)],
        "alpha_softmax": [[round(v, 6) for v in a.tolist()] for a in alphas],
        "beta_softmax": [[round(v, 6) for v in d.tolist()] for d in depths],
        "derived_depths": list(spec.depths),
        "expected_ms": float(relaxed_latency.supernet_latency(net, lut, alphas, depths)),
        "mids": list(spec.mids),
    }


CHECKPOINT_KEYS = ("net", "w_opt", "w_sched", "a_opt", "rng", "records", "data_position", "split_sha256", "wall_s")


def _load_state(st: dict, state: SearchState) -> None:
    state.load_state_dict(st)
    int(st["data_position"]["epoch"]), float(st["wall_s"])  # readable, or a CheckpointError


def write_records(records: list[dict], path: Path) -> None:
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def read_records(path: str | Path, hint: str = "") -> list[dict]:
    """The per-epoch records of ``records.jsonl``: one JSON object a line.  A torn line or one that
    is no object is a ``ValueError`` of one line naming the file and the line, then ``hint``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ValueError(f"{p}: cannot read search records ({e.strerror or e})") from None
    out = []
    try:
        for i, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            rec = parse_json(line, f"{p} line {i}")
            if not isinstance(rec, dict):
                raise ValueError(f"{p} line {i}: expected a JSON object (one epoch's record), got {type(rec).__name__}")
            out.append(rec)
    except ValueError as e:
        raise ValueError(f"{e}; {hint}" if hint else str(e)) from None
    return out


# ----------------------------------------------------------------------------- the run


def run(cfg: SearchConfig, out: str | os.PathLike, log: Callable[[str], None] | None = None,
        events: run_loop.Events | None = None) -> dict | None:
    """Search with ``cfg`` into ``out``; return the summary, or ``None`` after ``stop_after_epoch``.

    Reads the LUT once (``search_config.load_lut``): the config's target resolves from it and the
    steps use it.  Resumes from ``out/checkpoint.pt`` when it exists (same config required); the
    folder, the resume, the records, the stop, the progress events (``events``, default ``log.event``
    or step lines through ``log``) and the TensorBoard files are ``run_loop.RunLoop``'s."""
    say = log or run_loop.default_say
    lut = search_config.load_lut(cfg)
    cfg = search_config.resolve(cfg, torch.cuda.is_available(), lut)
    out = Path(out)
    resume_free = search_config.RESUME_FREE_KEYS | search_data.resume_free_keys(cfg)  # imagenet-100 may move
    with cpu_threads(cfg.threads), run_loop.out_lock(out, say):
        loop = run_loop.RunLoop(out, "search", search_config.to_dict(cfg), resume_free, cfg.epochs,
                                cfg.stop_after_epoch, write_records, say, events=events,
                                log=run_loop.LogSettings.of(cfg))
        try:
            return _run(cfg, lut, loop)
        finally:
            loop.close()


def _run(cfg: SearchConfig, lut: latency.LUT, loop: run_loop.RunLoop) -> dict | None:
    out = loop.out
    missing = lut.check_covers(get_space(cfg.space))  # before the split file is written
    if missing:
        raise latency.LUTError(f"LUT {cfg.lut} does not cover space {cfg.space!r}: lacks {missing[0]}"
                               + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    data = search_data.make(cfg, out)  # before writing anything: a missing dataset leaves no trace
    device = torch.device(cfg.device)
    if cfg.cuda_graphs and device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # autotuned in each graph's eager warm-up step
    state = SearchState.build(cfg, data.num_classes, data.in_chans, device)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)

    def same_split(st: dict) -> None:
        if st["split_sha256"] != data.split.sha256:
            raise ValueError(f"{loop.ckpt_path} was made with another data split ({str(st['split_sha256'])[:12]}); "
                             f"{data.split.path} is {data.split.sha256[:12]}")

    loop.resume(device, CHECKPOINT_KEYS, _load_state, state, epoch_of=lambda st: st["data_position"]["epoch"],
                check=same_split)
    lut_check = drift.record(lut)  # the machine's speed vs the LUT's, this session (issue 9)
    done = loop.begin({run_files.LUT_CHECK: lut_check} if lut_check is not None else None)
    if done is not None:
        return done
    n_steps = len(data.weights) if cfg.steps_per_epoch is None else min(cfg.steps_per_epoch, len(data.weights))
    if n_steps < 1:
        raise ValueError(f"the weights split ({data.n_weights} images) cannot fill one batch of {cfg.batch_size}")
    loop.open_log(n_steps)

    for epoch in run_loop.progress_bar(loop.epoch_range(), cfg.progress, dynamic_ncols=True, desc="search",
                                       initial=loop.start, total=cfg.epochs):
        t0 = time.perf_counter()
        rec = search_epoch(state, lut, cfg, data, epoch, n_steps, loop)
        rec["epoch_s"] = time.perf_counter() - t0
        loop.end_epoch(rec, lambda: {
            **state.state_dict(), "temperature": rec["temperature"],
            "data_position": {"epoch": epoch + 1, "step": 0}, "split_sha256": data.split.sha256,
        }, f"epoch {epoch + 1}/{cfg.epochs} [{rec['phase']}] T {rec['temperature']:.3f} lr {rec['lr']:.4f} | train loss "
           f"{rec['train_loss']:.3f} acc {rec['train_acc']:.1f} | val acc {rec['val_acc']:.1f} | LUT "
           f"{rec['lut_ms_before']:.3f} -> {rec['lut_ms_after']:.3f} ms (target {cfg.target_ms:.3f}) | "
           f"depths {rec['derived_depths']} | {rec['epoch_s']:.1f} s", rec["phase"])
        if loop.tb is not None:
            tb_log.arch_epoch(loop.tb, rec, (epoch + 1) * n_steps)
        if loop.stopping(epoch):
            return None
    summary = _summary(state.net, lut, cfg, data, loop)
    loop.say(f"derived net: LUT {summary['lut_ms']:.3f} ms, target {cfg.target_ms:.3f} ms: {summary['target_status']}")
    return loop.finish(summary)


def search_epoch(state: SearchState, lut: latency.LUT, cfg: SearchConfig, data, epoch: int, n_steps: int,
                 loop: run_loop.RunLoop | None = None) -> dict:
    """One epoch (0-based ``epoch``) of ``n_steps`` weight steps: arch steps after warm-up,
    validation and elasticity scaling; its record (without ``epoch_s``).  After every step
    ``loop.step`` (progress events; every ``log_every``-th step the scalars of ``step_values``,
    the only reads it adds).  The steps' metrics are read at once on the CPU and at the end of
    the epoch on a GPU (``EpochSums``), the one place that is decided."""
    net, gen, device = state.net, state.gen, state.device
    searching = epoch >= cfg.warmup_epochs
    temp = temperature(cfg, epoch)
    lr = state.w_sched.get_last_lr()[0]
    w_args, a_args = weight_step_args(cfg, searching), arch_step_args(cfg)
    data.weights.set_epoch(epoch)
    arch_batches = data.arch_stream(epoch) if searching else None
    kept = loop.kept if loop is not None else (lambda: "no checkpoint was written yet")
    sums = EpochSums(device, check_each_step=device.type != "cuda", kept=kept)
    bar = run_loop.progress_bar(zip(range(n_steps), data.weights), cfg.progress, dynamic_ncols=True,
                                desc=f"epoch {epoch + 1}/{cfg.epochs}", total=n_steps, leave=False)
    phase, window = "search" if searching else "warmup", run_loop.Window()
    values = lambda: step_values(window.delta(sums.totals()), net, lut, cfg.target_ms, temp, lr)  # noqa: E731
    for step, (x, y) in bar:
        r = steps.weight_step(net, x.to(device), y.to(device), state.w_opt, gen, **w_args)
        sums.add_weight(r, epoch, step)
        if searching and (step + 1) % cfg.arch_every == 0:
            xa, ya = next(arch_batches)
            a = steps.arch_step(net, xa.to(device), ya.to(device), state.a_opt, lut, gen, temperature=temp, **a_args)
            sums.add_arch(a, epoch, step)
        if loop is not None:
            loop.step(epoch, step, phase, values)
    got = sums.read()
    state.w_sched.step()
    va = steps.validate(net, data.val, gen, device, cfg.val_batches)
    es = steps.elasticity(net, lut, cfg.target_ms, state.w_opt, enabled=searching and cfg.elasticity)
    na = max(got["a_steps"], 1)
    return {
        "epoch": epoch + 1, "phase": phase, "temperature": temp, "lr": lr,
        "train_loss": got["w_loss"] / got["w_n"], "train_acc": 100 * got["w_correct"] / got["w_n"],
        **va, "arch_steps": got["a_steps"],
        "arch_loss": got["a_loss"] / na if got["a_steps"] else None,
        "arch_ce": got["a_ce"] / na if got["a_steps"] else None,
        "lat_loss": got["a_lat_loss"] / na if got["a_steps"] else None,
        "arch_expected_ms": got["a_lat_ms"] / na if got["a_steps"] else None,
        **arch_state(net, lut), **es, "es_applied": searching and cfg.elasticity,
        "target_ms": cfg.target_ms,
    }


def step_values(d: dict, net: Supernet, lut, target_ms: float, temp: float, lr: float) -> dict[str, float]:
    """The scalars of a logging point (``tb_log``) from ``d``, the ``EpochSums`` totals since the
    previous one."""
    out = {"train/loss": d["w_loss"] / max(d["w_n"], 1), "train/acc": 100 * d["w_correct"] / max(d["w_n"], 1),
           "schedule/temperature": temp, "schedule/lr": lr}
    if d["a_steps"]:
        out.update({f"arch/{k}": d[f"a_{k}"] / d["a_steps"] for k in ("loss", "ce", "lat_loss")})
        out["arch/sampled_ms"] = d["a_lat_ms"] / d["a_steps"]
    return {**out, **tb_log.arch_scalars(net, lut, target_ms)}


class EpochSums:
    """An epoch's sums of the steps' metrics (``steps.WeightOut`` / ``ArchOut``): float64 / int64
    tensors on ``device``, each float32 loss widened to float64, times the batch size, then added
    (the order and precision of Python numbers, so reading them gives the same records whenever
    it happens).  Each step's loss must be finite: checked at once with ``check_each_step``
    (the CPU, where reading costs nothing), else for every step at ``read`` (a GPU: no step waits
    for the device); the first non-finite one raises ``SearchDiverged`` naming it and ``kept()``."""

    FLOATS = ("w_loss", "a_loss", "a_ce", "a_lat_loss", "a_lat_ms")

    def __init__(self, device: torch.device, check_each_step: bool, kept: Callable[[], str]) -> None:
        self.check_each_step, self.kept = check_each_step, kept
        self.v: dict[str, Any] = {k: torch.zeros((), dtype=torch.float64, device=device) for k in self.FLOATS}
        self.v["w_correct"] = torch.zeros((), dtype=torch.int64, device=device)
        self.v["w_n"] = self.v["a_steps"] = 0
        self.checks: list[tuple] = []  # (loss, epoch, step, which) not yet checked, in step order

    def add_weight(self, r: steps.WeightOut, epoch: int, step: int) -> None:
        self.v["w_loss"] = self.v["w_loss"] + r.loss.to(torch.float64) * r.n
        self.v["w_correct"] = self.v["w_correct"] + r.correct
        self.v["w_n"] += r.n
        self._check(r.loss, epoch, step, "weight")

    def add_arch(self, a: steps.ArchOut, epoch: int, step: int) -> None:
        for k in ("loss", "ce", "lat_loss", "lat_ms"):
            self.v[f"a_{k}"] = self.v[f"a_{k}"] + getattr(a, k).to(torch.float64)
        self.v["a_steps"] += 1
        self._check(a.loss, epoch, step, "arch")

    def _check(self, loss: torch.Tensor, epoch: int, step: int, which: str) -> None:
        self.checks.append((loss, epoch, step, which))
        if self.check_each_step:
            self.check()

    def check(self) -> None:
        """Raise ``SearchDiverged`` for the first non-finite loss not yet checked (one read)."""
        if not self.checks:
            return
        finite = torch.isfinite(torch.stack([c[0] for c in self.checks])).cpu()
        if not bool(finite.all()):
            loss, epoch, step, which = self.checks[int((~finite).nonzero()[0])]
            raise SearchDiverged(f"loss is {float(loss)} ({which} step) at epoch {epoch + 1} step {step + 1}; "
                                 f"search stopped, {self.kept()}")
        self.checks.clear()

    def totals(self) -> dict:
        """The sums so far as Python numbers (read from the device now, unchecked)."""
        return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in self.v.items()}

    def read(self) -> dict:
        """The sums as Python numbers, after checking every loss not yet checked."""
        self.check()
        out = self.totals()
        out["w_correct"] = int(out["w_correct"])
        return out


def _summary(net: Supernet, lut, cfg: SearchConfig, data, loop: run_loop.RunLoop) -> dict:
    """Derive the final spec, write ``spec.json``; the content of ``summary.json``."""
    spec = net.derive(f"search-{cfg.profile}-seed{cfg.seed}")
    lut_ms = lut.predict(spec)
    spec = arch_spec.Spec(spec.name, spec.space, spec.stages,
                          {**spec.meta, "profile": cfg.profile, "seed": cfg.seed, "lut": cfg.lut,
                           "lut_ms": round(lut_ms, 6), "target_ms": cfg.target_ms})
    arch_spec.save(spec, loop.out / run_files.SPEC)
    last = loop.records[-1]
    return {
        "name": spec.name, "profile": cfg.profile, "dataset": cfg.dataset, "epochs": cfg.epochs,
        "spec": spec.to_dict(), "depths": list(spec.depths), "lut_ms": lut_ms, "target_ms": cfg.target_ms,
        # met: within stats.TARGET_TOLERANCE_PCT of the target, under or over (summaries written before
        # 2026-12-05 hold the old "at or under the target": readers recompute it, stats.meets_target)
        "met": stats.meets_target(lut_ms, cfg.target_ms), "target_gap_pct": round(stats.target_gap_pct(lut_ms, cfg.target_ms), 4),
        "target_status": stats.target_status(lut_ms, cfg.target_ms), "flops_m": round(flops.count_flops(spec), 3),
        "final_train_acc": last["train_acc"], "final_val_acc": last["val_acc"],
        "search_wall_s": round(loop.wall_s(), 2),
        "split": str(data.split.path), "split_sha256": data.split.sha256, "device": cfg.device,
        "threads": torch.get_num_threads(),
    }


__all__ = ["CHECKPOINT_KEYS", "EpochSums", "SearchDiverged", "SearchState", "TIME_FIELDS", "arch_state",
           "arch_step_args", "build_optimizers", "build_supernet", "read_records", "run", "search_epoch",
           "step_values", "temperature", "weight_step_args", "write_records"]
