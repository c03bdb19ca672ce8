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

Resuming: the checkpoint holds the weights, α, β, widths (supernet extra state) and channel order
(the weights themselves), both optimisers, the scheduler, T, the torch / numpy / python RNGs and
the Gumbel generator, and the data position (the next epoch: each epoch's batches are a function
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
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core import stats
from tfnas_core.arch import spec as arch_spec
from tfnas_core.nn import flops
from tfnas_core.runs import loop as run_loop
from tfnas_core.search import samplers
from tfnas_core.search import scaling
from tfnas_core.search import config as search_config
from tfnas_core.runs import tb_log
from tfnas_core.latency import lut as latency
from tfnas_core.search import data as search_data
from tfnas_core.utils.atomic import atomic_write_text
from tfnas_core.utils.checks import parse_json
from tfnas_core.search.objectives import latency_loss
from tfnas_core.search.config import SearchConfig
from tfnas_core.arch.space import Proxy, get_space
from tfnas_core.nn.supernet import Supernet
from tfnas_core.latency import drift as fingerprint
from tfnas_core.latency.timing import cpu_threads

cross_entropy = F.cross_entropy  # module-level so tests can make a loss non-finite
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


def temperature(cfg: SearchConfig, epoch: int) -> float:
    """T of (0-based) ``epoch`` under ``cfg.t_schedule``."""
    kw = {k: getattr(cfg, f) for k, f in search_config.SCHEDULE_FIELDS[cfg.t_schedule].items()}
    return samplers.temperature(cfg.t_schedule, epoch, cfg.epochs, t0=cfg.t0, warmup=cfg.warmup_epochs, **kw)


# ----------------------------------------------------------------------------- steps


def _finite(loss: torch.Tensor, where: Callable[[], str]) -> None:
    if not bool(torch.isfinite(loss)):
        raise SearchDiverged(f"loss is {loss.item()} {where()}")


def weight_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, cfg: SearchConfig,
                gen: torch.Generator, bi: bool, where: Callable[[], str] = lambda: "", sync: bool = True) -> dict:
    """One ω update (Eq. 8): Gumbel path (+ second path when ``bi``), summed losses, one backward.

    ``sync=False`` (the search loop on a GPU) reads nothing back from the device: ``loss`` and
    ``correct`` stay 0-d tensors, ``finite`` says whether the loss was finite, and the update is
    applied either way (the loop checks ``finite`` at the end of the epoch, before it saves)."""
    net.train()
    first, second = samplers.bi_sample(list(net.alphas), cfg.second_path if bi else "none", gen)
    depths = [w.detach() for w in net.depth_weights()]
    if cfg.fast:  # the stem and stage-2 block do not depend on the path: run them once for both paths
        h = net.features_in(x)
        logits = net.forward_from(h, first, depths)
        loss = cross_entropy(logits, y)
        if second is not None:
            loss = loss + cross_entropy(net.forward_from(h, second, depths), y)
    else:
        logits = net(x, first, depths)
        loss = cross_entropy(logits, y)
        if second is not None:
            loss = loss + cross_entropy(net(x, second, depths), y)
    if sync:
        _finite(loss, where)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], cfg.w_grad_clip)
    opt.step()
    correct = (logits.argmax(1) == y).sum()
    if not sync:
        return {"loss": loss.detach(), "correct": correct, "n": int(y.numel()), "finite": torch.isfinite(loss.detach())}
    return {"loss": loss.item(), "correct": int(correct), "n": int(y.numel())}


@contextmanager
def _weighted_outputs(net: Supernet, weights: Sequence[torch.Tensor], choices: Sequence[int]):
    """Multiply each layer's output by its straight-through weight of the chosen op (GDAS)."""
    handles = [layer.register_forward_hook(lambda m, args, out, w=w[c]: out * w)
               for layer, w, c in zip(net.layers, weights, choices)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def arch_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, lut, cfg: SearchConfig,
              temp: float, gen: torch.Generator, where: Callable[[], str] = lambda: "", sync: bool = True) -> dict:
    """One α/β update: CE + C(LAT) (Eq. 7) under Gumbel-softmax weights (Eq. 3-6).

    With ``cfg.cuda_graphs`` on a CUDA device the relaxed step is replayed from a CUDA graph
    (``cuda_graph.StepGraph`` over ``relaxed_body``: the same computation, captured once per widths and T).
    ``sync=False``: as ``weight_step``'s (0-d tensors and ``finite``, nothing read back)."""
    if cfg.cuda_graphs and cfg.arch_step == "relaxed" and x.device.type == "cuda":
        from tfnas_core.search import cuda_graph

        if not opt.defaults.get("capturable"):
            raise ValueError("cuda_graphs needs a capturable Adam for α/β (search.build_optimizers builds one "
                             "when cfg.cuda_graphs is on and the supernet is on a GPU)")
        noise = samplers.relaxed_noise(list(net.alphas), gen)  # the eager step's draws, on the host
        key = (tuple(map(tuple, net.mids)), float(temp), tuple(x.shape), x.dtype, tuple(y.shape), id(opt), id(lut),
               repr(cfg))  # what a captured graph is valid for
        vec = cuda_graph.for_net(net).run(
            key, lambda x, y, noise: relaxed_body(net, x, y, noise, opt, lut, cfg, temp), {"x": x, "y": y, "noise": noise},
            x.device, before_capture=lambda: opt.zero_grad(set_to_none=True))  # α/β grads: allocated by the capture
        out = {**dict(zip(ARCH_OUTPUTS, vec.unbind())), "n": int(y.numel())}
        if sync:
            _finite(out["loss"], where)  # after the update: the run stops all the same, its last checkpoint kept
        return _arch_result(out, sync)
    net.train()
    hard = cfg.arch_step == "hard"
    if hard:
        ops = samplers.relaxed_weights(list(net.alphas), temp, gen, hard=True)
        depths = net.depth_weights()
        choices = [int(w.detach().argmax()) for w in ops]
        with _weighted_outputs(net, ops, choices):
            logits = net(x, choices, depths)
        loss, ce, lat, lat_loss = arch_loss(net, logits, y, lut, cfg, ops, depths)
    else:
        ops = samplers.relaxed_weights(list(net.alphas), temp, gen)
        logits, loss, ce, lat, lat_loss = relaxed_loss(net, x, y, lut, cfg, ops)
    if sync:
        _finite(loss, where)
    arch_update(net, opt, cfg, loss)
    return _arch_result({"loss": loss.detach(), "ce": ce.detach(), "lat_loss": lat_loss.detach(), "lat_ms": lat.detach(),
                         "correct": (logits.argmax(1) == y).sum(), "n": int(y.numel())}, sync)


ARCH_OUTPUTS = ("loss", "ce", "lat_loss", "lat_ms", "correct")  # the order of relaxed_body's output vector


def relaxed_body(net: Supernet, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, opt: torch.optim.Optimizer,
                 lut, cfg: SearchConfig, temp: float) -> torch.Tensor:
    """The relaxed arch step from given Gumbel ``noise`` (``samplers.relaxed_noise``, on ``x``'s
    device) - what ``cuda_graph`` captures: the update, and its outputs stacked in ``ARCH_OUTPUTS``
    order.  Reads nothing back from the device and builds no tensor from host data."""
    alphas = list(net.alphas)
    parts = noise.split([a.numel() for a in alphas])
    ops = [samplers.relax(a, g.view(a.shape), temp) for a, g in zip(alphas, parts)]
    logits, loss, ce, lat, lat_loss = relaxed_loss(net, x, y, lut, cfg, ops)
    arch_update(net, opt, cfg, loss)
    correct = (logits.argmax(1) == y).sum()
    return torch.stack([loss.detach(), ce.detach(), lat_loss.detach(), lat.detach().to(loss.dtype),
                        correct.to(loss.dtype)])


def _arch_result(out: dict, sync: bool) -> dict:
    """An arch step's outputs: Python numbers (``correct`` an int), or with ``sync=False`` the
    device tensors and ``finite``."""
    if not sync:
        return {**out, "finite": torch.isfinite(out["loss"])}
    return {**{k: float(out[k]) for k in ("loss", "ce", "lat_loss", "lat_ms")}, "correct": int(out["correct"]),
            "n": out["n"]}


def arch_loss(net: Supernet, logits: torch.Tensor, y: torch.Tensor, lut, cfg: SearchConfig,
              ops: Sequence[torch.Tensor], depths: Sequence[torch.Tensor]):
    """Eq. 7 from the logits: (loss, CE, expected latency LAT, C(LAT))."""
    ce = cross_entropy(logits, y)
    lat = net.expected_latency(lut, ops, depths)
    lat_loss = latency_loss(lat, cfg.target_ms, cfg.objective, cfg.lam, cfg.lam2)
    return ce + lat_loss, ce, lat, lat_loss


def relaxed_loss(net: Supernet, x: torch.Tensor, y: torch.Tensor, lut, cfg: SearchConfig, ops: Sequence[torch.Tensor]):
    """The relaxed forward (every op mixed by ``ops``, depths by softmax(β)) and Eq. 7:
    (logits, loss, CE, LAT, C(LAT)).  Reads nothing back from the device."""
    net.train()
    depths = net.depth_weights()
    logits = net(x, ops, depths)
    return (logits, *arch_loss(net, logits, y, lut, cfg, ops, depths))


def arch_update(net: Supernet, opt: torch.optim.Optimizer, cfg: SearchConfig, loss: torch.Tensor) -> None:
    """Backward to α/β only (ω is not updated here), clip, the optimiser's step, re-normalise."""
    params = net.arch_parameters()
    opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    nn.utils.clip_grad_norm_(params, cfg.a_grad_clip)
    opt.step()
    net.renormalize_arch()


@torch.no_grad()
def validate(net: Supernet, batches, gen: torch.Generator, device, max_batches: int | None) -> dict:
    """Supernet accuracy on the arch split: Gumbel-sampled path per batch, training mode (released code)."""
    net.train()
    loss = correct = n = 0.0
    depths = [w.detach() for w in net.depth_weights()]
    for b, (x, y) in enumerate(batches):
        if max_batches is not None and b >= max_batches:
            break
        x, y = x.to(device), y.to(device)
        logits = net(x, samplers.gumbel_path(list(net.alphas), gen), depths)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += int((logits.argmax(1) == y).sum())
        n += y.numel()
    return {"val_loss": loss / max(n, 1), "val_acc": 100 * correct / max(n, 1)}


def elasticity(net: Supernet, lut, target: float, opt: torch.optim.SGD | None, enabled: bool) -> dict:
    """Alg. 1 on the derived net; write the widths back, permuting SGD momentum with the channels."""
    spec = net.derive()
    before = lut.predict(spec)
    if not enabled:
        return {"lut_ms_before": before, "lut_ms_after": before, "es_changed": 0}
    res = scaling.scale(spec, lut, target)
    changed = net.set_widths(res.spec, reorder=False)
    for l, i in changed:
        block = net.layers[l].candidates[i]
        perm = block.reorder_channels()  # the released code's re-selection, for the ops that changed
        if opt is not None:
            for p, dim in block.coupled_tensors():  # the tensors reorder_channels permuted, with their dim
                buf = opt.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    buf.copy_(buf.index_select(dim, perm))
    return {"lut_ms_before": before, "lut_ms_after": res.lut_ms_after, "es_changed": len(changed)}


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
        "expected_ms": float(net.expected_latency(lut, alphas, depths)),
        "mids": list(spec.mids),
    }


# ----------------------------------------------------------------------------- state on disk


def _rng_state(gen: torch.Generator) -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {"torch": torch.get_rng_state(), "gumbel": gen.get_state(), "python": random.getstate(),
          "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict, gen: torch.Generator) -> None:
    torch.set_rng_state(st["torch"])
    gen.set_state(st["gumbel"])
    version, internal, gauss_next = st["python"]
    random.setstate((version, tuple(internal), gauss_next))
    kind, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


CHECKPOINT_KEYS = ("net", "w_opt", "w_sched", "a_opt", "rng", "records", "data_position", "split_sha256", "wall_s")


def _load_state(st: dict, net: Supernet, w_opt, w_sched, a_opt, gen: torch.Generator) -> None:
    net.load_state_dict(st["net"])
    w_opt.load_state_dict(st["w_opt"])
    w_sched.load_state_dict(st["w_sched"])
    a_opt.load_state_dict(st["a_opt"])
    _set_rng_state(st["rng"], gen)
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

    Resumes from ``out/checkpoint.pt`` when it exists (same config required); the folder, the
    resume, the records, the stop, the progress events (``events``, default ``log.event`` or step
    lines through ``log``) and the TensorBoard files are ``run_loop.RunLoop``'s."""
    say = log or run_loop.default_say
    cfg = search_config.resolve(cfg, torch.cuda.is_available())
    out = Path(out)
    resume_free = search_config.RESUME_FREE_KEYS | search_data.resume_free_keys(cfg)  # imagenet-100 may move
    with cpu_threads(cfg.threads), run_loop.out_lock(out, say):
        loop = run_loop.RunLoop(out, "search", search_config.to_dict(cfg), resume_free, cfg.epochs,
                                cfg.stop_after_epoch, "records.jsonl", write_records, "summary.json", say,
                                what="search", ckpt_what="search", events=events, log_every=cfg.log_every,
                                log_every_s=cfg.log_every_s, tensorboard=cfg.tensorboard,
                                step_lines=not run_loop.bars_shown(cfg.progress))
        try:
            return _run(cfg, loop)
        finally:
            loop.close()


def _run(cfg: SearchConfig, loop: run_loop.RunLoop) -> dict | None:
    out = loop.out
    lut = latency.load(search_config.resolve_path(cfg.lut))
    missing = lut.check_covers(get_space(cfg.space))  # before the split file is written
    if missing:
        raise latency.LUTError(f"LUT {cfg.lut} does not cover space {cfg.space!r}: lacks {missing[0]}"
                               + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    data = search_data.make(cfg, out)  # before writing anything: a missing dataset leaves no trace
    device = torch.device(cfg.device)
    if cfg.cuda_graphs and device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # autotuned in each graph's eager warm-up step
    net = build_supernet(cfg, data.num_classes, data.in_chans, device)
    w_opt, w_sched, a_opt = build_optimizers(net, cfg)
    gen = samplers.make_generator(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)

    def same_split(st: dict) -> None:
        if st["split_sha256"] != data.split.sha256:
            raise ValueError(f"{loop.ckpt_path} was made with another data split ({str(st['split_sha256'])[:12]}); "
                             f"{data.split.path} is {data.split.sha256[:12]}")

    loop.resume(device, CHECKPOINT_KEYS, _load_state, net, w_opt, w_sched, a_opt, gen,
                epoch_of=lambda st: st["data_position"]["epoch"], check=same_split)
    lut_check = fingerprint.record(lut)  # the machine's speed vs the LUT's, this session (issue 9)
    done = loop.begin({"lut_check.json": lut_check} if lut_check is not None else None)
    if done is not None:
        return done
    steps = len(data.weights) if cfg.steps_per_epoch is None else min(cfg.steps_per_epoch, len(data.weights))
    if steps < 1:
        raise ValueError(f"the weights split ({data.n_weights} images) cannot fill one batch of {cfg.batch_size}")
    loop.open_log(steps)

    for epoch in run_loop.progress_bar(loop.epoch_range(), cfg.progress, dynamic_ncols=True, desc="search",
                                       initial=loop.start, total=cfg.epochs):
        t0 = time.perf_counter()
        rec = search_epoch(net, data, lut, cfg, epoch, steps, w_opt, w_sched, a_opt, gen, device, loop.kept, loop)
        rec["epoch_s"] = time.perf_counter() - t0
        loop.end_epoch(rec, lambda: {
            "net": net.state_dict(), "w_opt": w_opt.state_dict(), "w_sched": w_sched.state_dict(),
            "a_opt": a_opt.state_dict(), "temperature": rec["temperature"], "rng": _rng_state(gen),
            "data_position": {"epoch": epoch + 1, "step": 0}, "split_sha256": data.split.sha256,
        }, f"epoch {epoch + 1}/{cfg.epochs} [{rec['phase']}] T {rec['temperature']:.3f} lr {rec['lr']:.4f} | train loss "
           f"{rec['train_loss']:.3f} acc {rec['train_acc']:.1f} | val acc {rec['val_acc']:.1f} | LUT "
           f"{rec['lut_ms_before']:.3f} -> {rec['lut_ms_after']:.3f} ms (target {cfg.target_ms:.3f}) | "
           f"depths {rec['derived_depths']} | {rec['epoch_s']:.1f} s", rec["phase"])
        if loop.tb is not None:
            tb_log.arch_epoch(loop.tb, rec, (epoch + 1) * steps)
        if loop.stopping(epoch):
            return None
    summary = _summary(net, lut, cfg, data, loop)
    loop.say(f"derived net: LUT {summary['lut_ms']:.3f} ms, target {cfg.target_ms:.3f} ms: {summary['target_status']}")
    return loop.finish(summary)


def search_epoch(net: Supernet, data, lut, cfg: SearchConfig, epoch: int, steps: int, w_opt, w_sched, a_opt,
                 gen: torch.Generator, device, kept: Callable[[], str], loop: run_loop.RunLoop | None = None) -> dict:
    """One epoch (0-based ``epoch``): weight steps, arch steps after warm-up, validation and
    elasticity scaling; its record (without ``epoch_s``).  After every step ``loop.step`` (progress
    events; every ``log_every``-th step the scalars of ``step_values``, the only reads it adds)."""
    searching = epoch >= cfg.warmup_epochs
    temp = temperature(cfg, epoch)
    lr = w_sched.get_last_lr()[0]
    data.weights.set_epoch(epoch)
    arch_batches = data.arch_stream(epoch) if searching else None
    sums = EpochSums(device if defer_host_reads(device) else None)
    bar = run_loop.progress_bar(zip(range(steps), data.weights), cfg.progress, dynamic_ncols=True,
                                desc=f"epoch {epoch + 1}/{cfg.epochs}", total=steps, leave=False)
    phase, window = "search" if searching else "warmup", run_loop.Window()
    values = lambda: step_values(window.delta(sums.totals()), net, lut, cfg, temp, lr)  # noqa: E731
    for step, (x, y) in bar:
        where = lambda: (f"at epoch {epoch + 1} step {step + 1}; search stopped, {kept()}")  # noqa: E731
        r = weight_step(net, x.to(device), y.to(device), w_opt, cfg, gen, bi=searching, where=where,
                        sync=not sums.defer)
        sums.add_weight(r, epoch, step)
        if searching and (step + 1) % cfg.arch_every == 0:
            xa, ya = next(arch_batches)
            a = arch_step(net, xa.to(device), ya.to(device), a_opt, lut, cfg, temp, gen, where=where,
                          sync=not sums.defer)
            sums.add_arch(a, epoch, step)
        if loop is not None:
            loop.step(epoch, step, phase, values)
    sums = sums.read(kept)
    w_sched.step()
    va = validate(net, data.val, gen, device, cfg.val_batches)
    es = elasticity(net, lut, cfg.target_ms, w_opt, enabled=searching and cfg.elasticity)
    na = max(sums["a_steps"], 1)
    return {
        "epoch": epoch + 1, "phase": "search" if searching else "warmup", "temperature": temp, "lr": lr,
        "train_loss": sums["w_loss"] / sums["w_n"], "train_acc": 100 * sums["w_correct"] / sums["w_n"],
        **va, "arch_steps": sums["a_steps"],
        "arch_loss": sums["a_loss"] / na if sums["a_steps"] else None,
        "arch_ce": sums["a_ce"] / na if sums["a_steps"] else None,
        "lat_loss": sums["a_lat_loss"] / na if sums["a_steps"] else None,
        "arch_expected_ms": sums["a_lat_ms"] / na if sums["a_steps"] else None,
        **arch_state(net, lut), **es, "es_applied": searching and cfg.elasticity,
        "target_ms": cfg.target_ms,
    }


def step_values(d: dict, net: Supernet, lut, cfg: SearchConfig, temp: float, lr: float) -> dict[str, float]:
    """The scalars of a logging point (``tb_log``) from ``d``, the ``EpochSums`` totals since the
    previous one."""
    out = {"train/loss": d["w_loss"] / max(d["w_n"], 1), "train/acc": 100 * d["w_correct"] / max(d["w_n"], 1),
           "schedule/temperature": temp, "schedule/lr": lr}
    if d["a_steps"]:
        out.update({f"arch/{k}": d[f"a_{k}"] / d["a_steps"] for k in ("loss", "ce", "lat_loss")})
        out["arch/sampled_ms"] = d["a_lat_ms"] / d["a_steps"]
    return {**out, **tb_log.arch_scalars(net, lut, cfg.target_ms)}


def defer_host_reads(device: torch.device) -> bool:  # a function, so tests can defer on the CPU
    """Keep the steps' metrics on the device until the epoch ends: on a GPU (no step waits for the
    device to report its loss); on the CPU reading a number costs nothing and the check is at once."""
    return device.type == "cuda"


class EpochSums:
    """An epoch's sums of the step metrics: Python numbers, or (``device`` given) float64 / int64
    tensors on it, read once by ``read``, which also raises ``SearchDiverged`` for the first
    non-finite loss.  Deferred sums add in the same order and precision as the Python numbers
    (each float32 loss widened to float64, times the batch size, then added), so the records
    are the same."""

    FLOATS = ("w_loss", "a_loss", "a_ce", "a_lat_loss", "a_lat_ms")

    def __init__(self, device: torch.device | None = None) -> None:
        self.defer = device is not None
        zero = (lambda dt: torch.zeros((), dtype=dt, device=device)) if self.defer else (lambda dt: dt(0))
        self.v = {k: zero(torch.float64 if self.defer else float) for k in self.FLOATS}
        self.v["w_correct"] = zero(torch.int64 if self.defer else int)
        self.v["w_n"] = self.v["a_steps"] = 0
        self.checks: list[tuple] = []  # deferred: (finite flag, loss, epoch, step, which) per step

    def _f(self, value):
        return value.to(torch.float64) if self.defer else value

    def add_weight(self, r: dict, epoch: int, step: int) -> None:
        self.v["w_loss"] = self.v["w_loss"] + self._f(r["loss"]) * r["n"]
        self.v["w_correct"] = self.v["w_correct"] + r["correct"]
        self.v["w_n"] += r["n"]
        if self.defer:
            self.checks.append((r["finite"], r["loss"], epoch, step, "weight"))

    def add_arch(self, a: dict, epoch: int, step: int) -> None:
        for k in ("loss", "ce", "lat_loss", "lat_ms"):
            self.v[f"a_{k}"] = self.v[f"a_{k}"] + self._f(a[k])
        self.v["a_steps"] += 1
        if self.defer:
            self.checks.append((a["finite"], a["loss"], epoch, step, "arch"))

    def totals(self) -> dict:
        """The sums so far as Python numbers (deferred: read from the device now, unchecked)."""
        return {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in self.v.items()}

    def read(self, kept: Callable[[], str]) -> dict:
        """The sums as Python numbers; deferred: first the losses' finiteness, in step order."""
        if self.checks:
            finite = torch.stack([c[0] for c in self.checks]).cpu()
            if not bool(finite.all()):
                _, loss, epoch, step, which = self.checks[int((~finite).nonzero()[0])]
                raise SearchDiverged(f"loss is {float(loss)} ({which} step) at epoch {epoch + 1} step {step + 1}; "
                                     f"search stopped, {kept()}")
        out = {k: (v.item() if isinstance(v, torch.Tensor) else v) for k, v in self.v.items()}
        out["w_correct"] = int(out["w_correct"])
        return out


def _summary(net: Supernet, lut, cfg: SearchConfig, data, loop: run_loop.RunLoop) -> dict:
    """Derive the final spec, write ``spec.json``; the content of ``summary.json``."""
    spec = net.derive(f"search-{cfg.profile}-seed{cfg.seed}")
    lut_ms = lut.predict(spec)
    spec = arch_spec.Spec(spec.name, spec.space, spec.stages,
                          {**spec.meta, "profile": cfg.profile, "seed": cfg.seed, "lut": cfg.lut,
                           "lut_ms": round(lut_ms, 6), "target_ms": cfg.target_ms})
    arch_spec.save(spec, loop.out / "spec.json")
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


__all__ = ["ARCH_OUTPUTS", "EpochSums", "SearchDiverged", "arch_loss", "arch_state", "arch_step", "arch_update",
           "build_optimizers", "build_supernet", "defer_host_reads", "elasticity", "read_records", "relaxed_body",
           "relaxed_loss", "run", "search_epoch", "step_values", "temperature", "validate", "weight_step",
           "write_records"]
