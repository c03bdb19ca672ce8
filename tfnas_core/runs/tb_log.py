"""TensorBoard event files of a search or a retraining run (``torch.utils.tensorboard``).

``run_loop.RunLoop`` opens a ``Writer`` in the run folder (``tensorboard=true``, the default; main
rank only) and writes, at global step ``epoch * steps_per_epoch + step``:

* every ``log_every`` steps, the means since the previous logging point: ``train/loss``,
  ``train/acc`` (search) or ``train/top1`` (retraining), a search's ``arch/loss``, ``arch/ce``,
  ``arch/lat_loss`` and ``arch/sampled_ms`` (the expected latency under the arch steps' sampled
  weights, Eq. 4/6), ``schedule/lr`` and a search's ``schedule/temperature``; and a search's
  state then (``arch_scalars``): ``latency/expected_ms`` (softmax α, β), ``latency/derived_ms``
  (the LUT latency of the derived net), ``latency/target_ms``, ``depth/stageN`` (derived depth of
  each searchable stage), ``alpha_entropy/layerNN`` (nats) and ``alpha_top/layerNN`` (the largest
  softmax α share);
* after every epoch, the numbers of its record as ``epoch/<field>`` and, for a search
  (``arch_epoch``), histograms of softmax α per layer and softmax β per stage and the derived
  architecture as text.

Logging reads numbers only at those points, draws no random number and writes nothing the run
reads back: a run's records are the same with it on or off (tests/test_tensorboard.py).  The
event files (``events.out.tfevents.*``) are never archived (``run_archive``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

EVENT_PREFIX = "events.out.tfevents."  # the names torch's SummaryWriter gives its event files


def is_event_file(name: str) -> bool:
    return name.startswith(EVENT_PREFIX)


class Writer:
    """One session's event file in ``out``; ``purge_step``: a resumed session's first global step
    (TensorBoard then drops what earlier files logged from it on: the steps after the checkpoint)."""

    def __init__(self, out: str | Path, purge_step: int | None = None, flush_secs: int = 60):
        from torch.utils.tensorboard import SummaryWriter

        self.w = SummaryWriter(log_dir=str(out), purge_step=purge_step, flush_secs=flush_secs)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for tag, v in values.items():
            self.w.add_scalar(tag, v, step)

    def histogram(self, tag: str, values: Sequence[float], step: int) -> None:
        import numpy as np

        self.w.add_histogram(tag, np.asarray(values, dtype=np.float64), step)

    def text(self, tag: str, text: str, step: int) -> None:
        self.w.add_text(tag, text, step)

    def flush(self) -> None:
        self.w.flush()

    def close(self) -> None:
        self.w.close()


def entropy_and_top(probs) -> tuple[list[float], list[float]]:
    """(entropy in nats, largest share) of each probability vector of ``probs`` (tensors), read
    from the device at once."""
    import torch

    ent = torch.stack([-(p * p.clamp_min(1e-30).log()).sum() for p in probs])
    top = torch.stack([p.max() for p in probs])
    vals = torch.cat([ent, top]).tolist()
    return vals[:len(probs)], vals[len(probs):]


def arch_scalars(net, lut, target_ms: float) -> dict[str, float]:
    """The search's architecture state as scalars (see the module docstring)."""
    import torch
    import torch.nn.functional as F

    from tfnas_core.latency import relaxed as relaxed_latency

    with torch.no_grad():
        probs = [F.softmax(a, -1) for a in net.alphas]
        expected = float(relaxed_latency.supernet_latency(net, lut, probs, net.depth_weights()))
        ent, top = entropy_and_top(probs)
    spec = net.derive()
    out = {"latency/expected_ms": expected, "latency/derived_ms": float(lut.predict(spec)),
           "latency/target_ms": float(target_ms)}
    out.update({f"depth/stage{s + 1}": float(d) for s, d in enumerate(spec.depths)})
    out.update({f"alpha_entropy/layer{l:02d}": v for l, v in enumerate(ent)})
    out.update({f"alpha_top/layer{l:02d}": v for l, v in enumerate(top)})
    return out


def arch_epoch(writer: Writer, rec: Mapping, step: int) -> None:
    """A search epoch's softmax α / β histograms and derived architecture (from its record)."""
    for l, p in enumerate(rec["alpha_softmax"]):
        writer.histogram(f"alpha/layer{l:02d}", p, step)
    for s, p in enumerate(rec["beta_softmax"]):
        writer.histogram(f"beta/stage{s + 1}", p, step)
    ops = " ".join(rec["derived_ops"])
    text = (f"epoch {rec['epoch']}: depths {rec['derived_depths']}, LUT {rec['lut_ms_after']:.3f} ms "
            f"(target {rec['target_ms']:.3f} ms)\n\n    ops: {ops}\n    mids: {rec['mids']}")
    writer.text("derived/architecture", text, step)


def read_scalars(run_dir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the event files in ``run_dir``: tag -> [(step, value)], as TensorBoard reads
    them (``EventAccumulator``: a resumed session's purge applied)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def plot_search(run_dir: str | Path, png: str | Path, note: str = "") -> Path:
    """A matplotlib rendering of a search's logged scalars (a figure for the README where no browser
    can take a screenshot of TensorBoard): losses, accuracy, latency against the target, T, derived
    depths, α entropy and top share per layer.  ``figures/tensorboard-scalars.png`` is this for a search
    of the smoke profile with ``--set epochs=8 warmup_epochs=2 steps_per_epoch=30 synthetic_n=1000
    log_every=2`` (``search --profile smoke --set ... --out R``, then ``plot_search(R, png, note)``)."""
    import matplotlib.pyplot as plt

    from tfnas_core.utils.atomic import atomic_write

    sc = read_scalars(run_dir)

    def line(ax, tag, **kw):
        if tag in sc:
            steps, vals = zip(*sc[tag])
            ax.plot(steps, vals, **kw)

    fig, axes = plt.subplots(2, 3, figsize=(13, 6.6))
    panels = [
        ("loss", [("train/loss", "train (weights; 2 paths summed after warm-up)"), ("arch/loss", "arch (CE + C(LAT))"),
                  ("arch/ce", "arch CE")]),
        ("accuracy (%)", [("train/acc", "train"), ("epoch/val_acc", "supernet val (epoch)")]),
        ("latency (ms)", [("latency/expected_ms", "expected (softmax α, β)"), ("latency/derived_ms", "derived net (LUT)"),
                          ("latency/target_ms", "target")]),
        ("temperature T", [("schedule/temperature", "T")]),
    ]
    for ax, (ylabel, tags) in zip(axes.flat, panels):
        for tag, label in tags:
            line(ax, tag, label=label, marker="o" if tag.startswith("epoch/") else None, ms=4)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    ax = axes.flat[4]
    for tag in sorted(t for t in sc if t.startswith("depth/")):
        line(ax, tag, label=tag.split("/")[1], lw=1.2)
    ax.set_ylabel("derived depth per stage")
    ax.legend(fontsize=7, ncol=2)
    ax = axes.flat[5]
    top = ax.twinx()
    for tag in sorted(t for t in sc if t.startswith("alpha_entropy/")):
        line(ax, tag, color="tab:blue", lw=0.6, alpha=0.5)
    for tag in sorted(t for t in sc if t.startswith("alpha_top/")):
        line(top, tag, color="tab:red", lw=0.6, alpha=0.5)
    ax.set_ylabel("α entropy per layer (nats)", color="tab:blue")
    top.set_ylabel("α top share per layer", color="tab:red")
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.suptitle("A rendering of the scalars a search logs to TensorBoard (read from its event file with "
                 "EventAccumulator, drawn with matplotlib; not a screenshot)" + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout()
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(png, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
    return png


__all__ = ["EVENT_PREFIX", "Writer", "arch_epoch", "arch_scalars", "entropy_and_top", "is_event_file", "plot_search",
           "read_scalars"]
