"""The steps of a TF-NAS search (paper Sec. 3.3 "Overall Algorithm", Eq. 3-9, Alg. 1; Appendix B).

Each step takes flat, typed arguments (the tensors, the optimiser, the few numbers it uses) and
runs one straight path; none reads a config.  The loop (``search.loop``) maps its
``SearchConfig`` onto them.

* ``weight_step``: one ω update (Eq. 8): a Gumbel-sampled path (``samplers.gumbel_path``) plus,
  with ``second_path`` other than ``"none"``, a second path from the other ops (bi-sampling,
  Sec. 3.3, Tab. 3); depths mixed by softmax(β), detached; the two cross-entropies summed and
  back-propagated once, the gradient clipped, the optimiser's step.
* ``arch_step``: one α/β update: ``CE + C(LAT)`` (Eq. 7) with LAT the expected latency (Eq. 4/6)
  under soft Gumbel-softmax weights at temperature T (Eq. 3; ``relaxed``, the released code), or
  under one sampled op per layer whose output is multiplied by its straight-through weight
  (``hard``, GDAS); ``arch_update`` is the update itself (DARTS: one small function).  On a GPU
  the relaxed step can replay from a CUDA graph (``uses_graph``, ``graphed_arch_step`` over
  ``relaxed_body``, captured per ``graph_key``).
* ``validate``: the supernet's accuracy on the arch split; ``elasticity``: Alg. 1 (Appendix C)
  on the derived net, written back.

A step returns its metrics as 0-d tensors on the step's device (``WeightOut`` / ``ArchOut``)
and reads nothing back, whatever the device: the caller decides when to read them
(``loop.EpochSums``: at once on the CPU, at the end of the epoch on a GPU) and checks the loss
is finite.  The update is applied either way; a non-finite loss stops the run before it saves.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from tfnas_core.latency import relaxed as relaxed_latency
from tfnas_core.nn.supernet import Supernet
from tfnas_core.search import samplers
from tfnas_core.search import scaling
from tfnas_core.search.objectives import LatencyCost


class WeightOut(NamedTuple):
    """A weight step's metrics, on the step's device: the summed loss of its paths, the first
    path's correct predictions (int64) and the batch size."""

    loss: torch.Tensor
    correct: torch.Tensor
    n: int

    def numbers(self) -> dict:
        """Read from the device: ``loss`` a float, ``correct`` an int."""
        return {"loss": float(self.loss), "correct": int(self.correct), "n": self.n}


ARCH_OUTPUTS = ("loss", "ce", "lat_loss", "lat_ms", "correct")  # the order of relaxed_body's output vector


class ArchOut(NamedTuple):
    """An arch step's metrics, on the step's device: Eq. 7's loss, its CE and C(LAT), the
    expected latency LAT (ms), the correct predictions and the batch size."""

    loss: torch.Tensor
    ce: torch.Tensor
    lat_loss: torch.Tensor
    lat_ms: torch.Tensor
    correct: torch.Tensor
    n: int

    def numbers(self) -> dict:
        """Read from the device: the losses and ``lat_ms`` floats, ``correct`` an int."""
        return {**{k: float(getattr(self, k)) for k in ARCH_OUTPUTS[:4]}, "correct": int(self.correct), "n": self.n}


def weight_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, gen: torch.Generator,
                *, second_path: str = "none", grad_clip: float) -> WeightOut:
    """One ω update (Eq. 8): Gumbel path, plus a ``second_path`` one (``"none"``: one path, as in
    warm-up), summed cross-entropies, one backward, ``grad_clip`` on the gradient norm."""
    net.train()
    first, second = samplers.bi_sample(list(net.alphas), second_path, gen)
    depths = [w.detach() for w in net.depth_weights()]
    if net.fast:  # the stem and stage-2 block do not depend on the path: run them once for both paths
        h = net.features_in(x)
        logits = net.forward_from(h, first, depths)
        loss = F.cross_entropy(logits, y)
        if second is not None:
            loss = loss + F.cross_entropy(net.forward_from(h, second, depths), y)
    else:
        logits = net(x, first, depths)
        loss = F.cross_entropy(logits, y)
        if second is not None:
            loss = loss + F.cross_entropy(net(x, second, depths), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], grad_clip)
    opt.step()
    return WeightOut(loss.detach(), (logits.argmax(1) == y).sum(), int(y.numel()))


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


def arch_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, lut, gen: torch.Generator,
              *, temperature: float, cost: LatencyCost, grad_clip: float, hard: bool, graphed: bool) -> ArchOut:
    """One α/β update: CE + ``cost``(LAT) (Eq. 7) under Gumbel-softmax weights at ``temperature``
    (Eq. 3-6): every op mixed (relaxed), or with ``hard`` one sampled op per layer (straight-through).

    ``graphed`` on a CUDA device replays the relaxed step from the net's CUDA graph
    (``graphed_arch_step``: the same computation, captured once per ``graph_key``; ``correct`` then
    comes back as a float)."""
    if uses_graph(graphed, hard, x.device):
        from tfnas_core.search import cuda_graph

        return graphed_arch_step(net, x, y, opt, lut, gen, cuda_graph.for_net(net), temperature=temperature,
                                 cost=cost, grad_clip=grad_clip)
    net.train()
    if hard:
        ops = samplers.relaxed_weights(list(net.alphas), temperature, gen, hard=True)
        depths = net.depth_weights()
        choices = [int(w.detach().argmax()) for w in ops]
        with _weighted_outputs(net, ops, choices):
            logits = net(x, choices, depths)
        loss, ce, lat, lat_loss = arch_loss(net, logits, y, lut, cost, ops, depths)
    else:
        ops = samplers.relaxed_weights(list(net.alphas), temperature, gen)
        logits, loss, ce, lat, lat_loss = relaxed_loss(net, x, y, lut, cost, ops)
    arch_update(net, opt, loss, grad_clip)
    return ArchOut(loss.detach(), ce.detach(), lat_loss.detach(), lat.detach(), (logits.argmax(1) == y).sum(),
                   int(y.numel()))


def uses_graph(graphed: bool, hard: bool, device: torch.device) -> bool:
    """Whether ``arch_step`` replays from a CUDA graph: asked for, relaxed (a hard step reads its
    sampled path back to the host, which a capture cannot) and on a CUDA device."""
    return graphed and not hard and device.type == "cuda"


def graph_key(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, lut, *,
              temperature: float, cost: LatencyCost, grad_clip: float) -> tuple:
    """What a captured relaxed step is valid for: the widths (elasticity scaling changes them), T,
    the batch's shapes and dtype, the optimiser, the LUT, the objective and the clip; any change
    re-captures."""
    return (tuple(map(tuple, net.mids)), temperature, tuple(x.shape), x.dtype, tuple(y.shape), id(opt), id(lut), cost,
            grad_clip)


def graphed_arch_step(net: Supernet, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer, lut,
                      gen: torch.Generator, graph, *, temperature: float, cost: LatencyCost,
                      grad_clip: float) -> ArchOut:
    """The relaxed arch step through ``graph`` (a ``cuda_graph.StepGraph``): ``relaxed_body`` from
    the Gumbel draws the eager step takes from ``gen`` (drawn on the host), run or replayed at
    ``graph_key``; α/β's gradients are dropped before a capture, so the capture allocates them."""
    if not opt.defaults.get("capturable"):
        raise ValueError("cuda_graphs needs a capturable Adam for α/β (search.loop.build_optimizers builds one "
                         "when cfg.cuda_graphs is on and the supernet is on a GPU)")
    noise = samplers.relaxed_noise(list(net.alphas), gen)
    key = graph_key(net, x, y, opt, lut, temperature=temperature, cost=cost, grad_clip=grad_clip)
    vec = graph.run(
        key, lambda x, y, noise: relaxed_body(net, x, y, noise, opt, lut, temperature=temperature, cost=cost,
                                              grad_clip=grad_clip),
        {"x": x, "y": y, "noise": noise}, x.device, before_capture=lambda: opt.zero_grad(set_to_none=True))
    return ArchOut(*vec.unbind(), int(y.numel()))


def relaxed_body(net: Supernet, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor, opt: torch.optim.Optimizer,
                 lut, *, temperature: float, cost: LatencyCost, grad_clip: float) -> torch.Tensor:
    """The relaxed arch step from given Gumbel ``noise`` (``samplers.relaxed_noise``, on ``x``'s
    device) - what ``cuda_graph`` captures: the update, and its outputs stacked in ``ARCH_OUTPUTS``
    order.  Reads nothing back from the device and builds no tensor from host data."""
    alphas = list(net.alphas)
    parts = noise.split([a.numel() for a in alphas])
    ops = [samplers.relax(a, g.view(a.shape), temperature) for a, g in zip(alphas, parts)]
    logits, loss, ce, lat, lat_loss = relaxed_loss(net, x, y, lut, cost, ops)
    arch_update(net, opt, loss, grad_clip)
    correct = (logits.argmax(1) == y).sum()
    return torch.stack([loss.detach(), ce.detach(), lat_loss.detach(), lat.detach().to(loss.dtype),
                        correct.to(loss.dtype)])


def arch_loss(net: Supernet, logits: torch.Tensor, y: torch.Tensor, lut, cost: LatencyCost,
              ops: Sequence[torch.Tensor], depths: Sequence[torch.Tensor]):
    """Eq. 7 from the logits: (loss, CE, expected latency LAT, C(LAT))."""
    ce = F.cross_entropy(logits, y)
    lat = relaxed_latency.supernet_latency(net, lut, ops, depths)
    lat_loss = cost(lat)
    return ce + lat_loss, ce, lat, lat_loss


def relaxed_loss(net: Supernet, x: torch.Tensor, y: torch.Tensor, lut, cost: LatencyCost, ops: Sequence[torch.Tensor]):
    """The relaxed forward (every op mixed by ``ops``, depths by softmax(β)) and Eq. 7:
    (logits, loss, CE, LAT, C(LAT)).  Reads nothing back from the device."""
    net.train()
    depths = net.depth_weights()
    logits = net(x, ops, depths)
    return (logits, *arch_loss(net, logits, y, lut, cost, ops, depths))


def arch_update(net: Supernet, opt: torch.optim.Optimizer, loss: torch.Tensor, grad_clip: float) -> None:
    """Backward to α/β only (ω is not updated here), clip to ``grad_clip``, the optimiser's step,
    re-normalise α/β to log-probabilities."""
    params = net.arch_parameters()
    opt.zero_grad(set_to_none=True)
    loss.backward(inputs=params)
    nn.utils.clip_grad_norm_(params, grad_clip)
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


__all__ = ["ARCH_OUTPUTS", "ArchOut", "WeightOut", "arch_loss", "arch_step", "arch_update", "elasticity",
           "graph_key", "graphed_arch_step", "relaxed_body", "relaxed_loss", "uses_graph", "validate", "weight_step"]
