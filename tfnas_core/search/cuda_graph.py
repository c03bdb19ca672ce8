"""The relaxed architecture step replayed from a CUDA graph (issue 8: on a GPU the steps are launch-bound).

This module captures and replays any step function of tensors (``StepGraph``);
``steps.graphed_arch_step`` gives it the relaxed arch step (keyed by ``steps.graph_key``).  The
relaxed arch step (Eq. 3-7) is static: every candidate op runs, at widths that change only when
elasticity scaling runs after an epoch and at a temperature that changes once per epoch.  So it is
captured once per (widths, T, batch shape, objective) and replayed: one launch for the forward, the
expected latency, the backward to α/β, the clipping, Adam and the re-normalisation, instead of some
thousands of kernel launches, each with Python in front of it.

Why a replay computes what ``steps.arch_step`` computes:

* the body (``steps.relaxed_body``) is the eager step's own code (``steps.relaxed_loss`` and
  ``steps.arch_update``), fed the Gumbel noise that ``samplers.relaxed_weights`` would draw: the
  same generator, the same draws in the same order (``samplers.relaxed_noise``), moved to the GPU
  in one copy into the graph's input;
* nothing in the body reads a value back to the host or builds a tensor from host data (the LUT's
  latencies are cached on the device per widths: ``latency.relaxed.latency_tensors``) - the test suite
  checks both on the CPU, outside the optimiser;
* Adam is built ``capturable`` (``loop.build_optimizers``): its step count lives on the GPU and
  its bias corrections are computed there (float rounding may differ from the non-capturable Adam);
* the first call at a new key runs the step eagerly - the warm-up CUDA wants before a capture (cuDNN
  autotuning, lazy state), and it is that call's real step - then captures the graph for the next
  calls; capturing runs nothing.  Weights updated in place by SGD and channels permuted in place by
  elasticity scaling are read by the replay where they are; a change of widths changes the key;
* a non-finite loss is seen after the update, as in the eager step (the loop's ``EpochSums`` stops
  the run at the epoch's end, and the last good checkpoint is kept).

Written and checked on the CPU (the eager body); **not yet run on a GPU** (no device was lent when it
was written): ``SearchConfig.cuda_graphs`` is off by default until a GPU session measures it
(``make bench DEVICE=cuda``).
"""
from __future__ import annotations

from typing import Callable

import torch


class StepGraph:
    """A step function of tensors, captured in a CUDA graph per key and replayed while the key holds.

    ``run(key, fn, inputs, before_capture)``: ``inputs`` are tensors by name (on the GPU, or on the
    host: those are copied through a pinned buffer); ``fn(**inputs)`` returns one tensor.  At a new
    key ``fn`` runs eagerly on a side stream (the warm-up a capture needs; its result is this call's),
    then ``before_capture()`` runs and ``fn`` is captured on static copies of the inputs; at a known
    key the inputs are copied into those copies and the graph is replayed.  ``fn`` must not read
    values back to the host or build tensors from host data, and must do the same thing at every call
    with the same key."""

    def __init__(self) -> None:
        self.key = None
        self.graph = None
        self.static: dict = {}
        self.captures = 0  # graphs captured (one per key seen)
        self.replays = 0

    def release(self) -> None:
        """Drop the captured graph and its memory."""
        self.key, self.graph, self.static = None, None, {}

    def run(self, key, fn: Callable[..., torch.Tensor], inputs: dict[str, torch.Tensor], device: torch.device,
            before_capture: Callable[[], None] = lambda: None) -> torch.Tensor:
        if key != self.key:
            return self._capture(key, fn, inputs, device, before_capture)
        st = self.static
        host = [k for k, v in inputs.items() if v.device.type == "cpu"]
        if host:
            st["event"].synchronize()  # the previous copies out of the pinned buffers have run
            for k in host:
                st["pinned"][k].copy_(inputs[k])
                st["in"][k].copy_(st["pinned"][k], non_blocking=True)
            st["event"].record()
        for k, v in inputs.items():
            if k not in host:
                st["in"][k].copy_(v)
        self.graph.replay()
        self.replays += 1
        return st["out"].clone()

    def _capture(self, key, fn, inputs, device, before_capture) -> torch.Tensor:
        self.release()
        dev = {k: v.to(device) for k, v in inputs.items()}
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):  # warm-up = this call's real step
            out = fn(**dev)
        torch.cuda.current_stream(device).wait_stream(side)
        st = {"in": {k: v.clone() for k, v in dev.items()},
              "pinned": {k: v.pin_memory() for k, v in inputs.items() if v.device.type == "cpu"},
              "event": torch.cuda.Event()}
        st["event"].record()
        before_capture()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            st["out"] = fn(**st["in"])
        self.graph, self.key, self.static = graph, key, st
        self.captures += 1
        return out


def for_net(net) -> StepGraph:
    """The supernet's arch-step ``StepGraph`` (kept on the net, outside its modules and state_dict)."""
    g = net.__dict__.get("_arch_graph")
    if g is None:
        g = net.__dict__["_arch_graph"] = StepGraph()
    return g


__all__ = ["StepGraph", "for_net"]
