"""Turning search records into the paper's figures (Fig. 2, 4, 5, 8) and their summary numbers.

Inputs are the per-epoch records a search writes (``records.jsonl``: one object per epoch with
``derived_ops``, ``derived_depths``, ``lut_ms_before``/``lut_ms_after``, ``train_acc``,
``val_acc``, ``phase`` ...).  Data shaping (``op_shares``, ``collapse_summary``, ``band``) is
separate from drawing so notebooks and tests can use the numbers directly.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from tfnas_core.runs import files as run_files
from tfnas_core.utils.atomic import atomic_write


def load_records(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A search's per-epoch records as a DataFrame (one row per epoch)."""
    p = Path(run_dir) / run_files.SEARCH_RECORDS
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no search records (is this a search run folder?)")
    from tfnas_core.search.loop import read_records

    read_records(p)  # a torn or non-object line: one line naming the file and the line, not pandas' own
    return pd.read_json(p, lines=True)


def op_shares(records: pd.DataFrame, layer: int, ops: Sequence[str], search_only: bool = True) -> pd.DataFrame:
    """Fig. 2 (a, b, d, e): share (%) of each op among the derivations of ``layer`` so far.

    Row ``e`` counts the derived op after every epoch up to ``e`` (the paper counts "after each
    search epoch"); with ``search_only`` the warm-up epochs, where α does not move, are left out.
    """
    df = records[records["phase"] == "search"] if search_only and "phase" in records else records
    derived = [row[layer] for row in df["derived_ops"]]
    counts = pd.get_dummies(pd.Categorical(derived, categories=list(ops))).cumsum()
    shares = 100 * counts.div(counts.sum(axis=1), axis=0)
    shares.index = df["epoch"].to_numpy()
    shares.index.name = "epoch"
    return shares


def collapse_summary(records: pd.DataFrame, layers: Iterable[int], ops: Sequence[str]) -> dict[int, dict]:
    """Per layer: the most frequent derived op and its share (%) over the search epochs."""
    out = {}
    for layer in layers:
        final = op_shares(records, layer, ops).iloc[-1]
        out[layer] = {"top_op": str(final.idxmax()), "top_share": float(final.max()),
                      "distinct_ops": int((final > 0).sum())}
    return out


def alpha_movement(records: pd.DataFrame) -> pd.DataFrame:
    """How far α has moved from uniform after each epoch (the signal behind Fig. 2's collapse).

    Per epoch: ``max_share``, the mean over layers of the largest softmax(α) share (1/ops while α is
    uniform, 1 when a layer has settled on one op); ``entropy``, the mean normalised entropy of
    softmax(α) (1 uniform, 0 one op); ``changed``, the fraction of layers whose derived op differs
    from the epoch before; ``arch_steps``, the architecture steps taken so far."""
    rows, prev = [], None
    for r in records.itertuples(index=False):
        a = [np.asarray(x, dtype=float) for x in r.alpha_softmax]
        ent = [float(-(x * np.log(np.clip(x, 1e-300, None))).sum() / np.log(len(x))) for x in a if len(x) > 1]
        ops = list(r.derived_ops)
        rows.append({"epoch": int(r.epoch), "arch_steps": int(r.arch_steps or 0),
                     "max_share": float(np.mean([x.max() for x in a])), "entropy": float(np.mean(ent)),
                     "changed": float("nan") if prev is None else float(np.mean([p != o for p, o in zip(prev, ops)]))})
        prev = ops
    df = pd.DataFrame(rows)
    df["arch_steps"] = df["arch_steps"].cumsum()
    return df


def steps_axis(ax, steps_per_epoch: int, label: str = "weight steps") -> None:
    """A second x-axis on top of an epoch axis, counting ``steps_per_epoch`` per epoch."""
    ax.secondary_xaxis("top", functions=(lambda e: e * steps_per_epoch, lambda s: s / steps_per_epoch)).set_xlabel(label)


def band(series: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Mean, min and max across repeated runs (rows: epochs; runs may differ in length)."""
    n = min(len(s) for s in series)
    m = np.array([list(s)[:n] for s in series], dtype=float)
    return pd.DataFrame({"mean": m.mean(0), "min": m.min(0), "max": m.max(0)}, index=np.arange(1, n + 1))


# ----------------------------------------------------------------------------- drawing


def stacked_shares(ax, shares: pd.DataFrame, title: str) -> None:
    """A stacked bar per epoch of ``op_shares`` output (Fig. 2 a/b/d/e).  The legend is left to
    ``op_legend`` (one for the whole figure, outside the panels)."""
    bottom = np.zeros(len(shares))
    colors = _palette(len(shares.columns))
    for col, c in zip(shares.columns, colors):
        vals = shares[col].to_numpy(dtype=float)
        ax.bar(shares.index, vals, bottom=bottom, width=1.0, color=c, label=col, linewidth=0)
        bottom += vals
    ax.set_title(title)
    ax.set_xlabel("epoch (search epochs; warm-up left out)")
    ax.set_ylabel("counting percentage (%)")
    ax.set_ylim(0, 100)
    _integer_epochs(ax, shares.index)


def op_legend(fig, ax, title: str = "derived operation (the layer's argmax α)") -> None:
    """One legend of ``ax``'s ops for the whole figure, in a row below it, covering no data."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(labels), 8),
               title=title, frameon=False)


def shade_warmup(ax, warmup: int | None) -> None:
    """Grey out epochs ``1..warmup``: weights only, one Gumbel path, α does not move yet."""
    if warmup:
        span = "epoch 1" if warmup == 1 else f"epochs 1-{warmup}"
        ax.axvspan(0.5, warmup + 0.5, color="0.9", zorder=0, label=f"warm-up ({span}, α fixed)")


def curves(ax, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, ylabel: str,
           warmup: int | None = None) -> None:
    """Lines ``label -> (x, y)``, e.g. supernet accuracy of Gumbel vs bi-sampling (Fig. 2 c/f)."""
    shade_warmup(ax, warmup)
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    _integer_epochs(ax, next(iter(series.values()))[0] if series else None)


def banded(ax, bands: Mapping[str, pd.DataFrame], title: str, ylabel: str, target: float | None = None,
           warmup: int | None = None) -> None:
    """Mean with a min-max band per label (Fig. 4, 5, 8) over every epoch, warm-up shaded; an
    optional dashed target line labelled with its value."""
    shade_warmup(ax, warmup)
    for label, b in bands.items():
        line, = ax.plot(b.index, b["mean"], label=label)
        ax.fill_between(b.index, b["min"], b["max"], color=line.get_color(), alpha=0.25, linewidth=0)
    if target is not None:
        ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:.2f} ms")
        lo, hi = ax.get_ylim()
        pad = 0.05 * (max(hi, target) - min(lo, target))
        ax.set_ylim(min(lo, target - pad), max(hi, target + pad))  # the target is always in view
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    _integer_epochs(ax, next(iter(bands.values())).index if bands else None)


def _ci95(summary: pd.DataFrame, col: str) -> pd.Series | None:
    """The 95 % half-widths beside ``col`` (``{col}_ci95``, a mean over seeds), or None without any."""
    ci = summary.get(f"{col}_ci95")
    return ci.fillna(0) if ci is not None and ci.notna().any() else None


def ours_vs_paper(ax, summary: pd.DataFrame, col: str = "top1", paper_col: str = "paper_top1",
                  title: str = "top-1: ours vs paper", xlabel: str = "paper: top-1 on ImageNet (%)",
                  ylabel: str = "ours: top-1 (%)") -> None:
    """One point per variant (ours against the paper's), each its own colour and marker, named in a
    legend below the panel (point labels collided where variants lie close together): shows whether
    rankings agree.  With ``{col}_ci95`` in the summary (a mean over seeds), a vertical bar gives its
    95 % interval."""
    ci = _ci95(summary, col)
    colours = _palette(len(summary))
    markers = "osD^vP*Xhp"
    for i, (_, r) in enumerate(summary.iterrows()):
        ax.errorbar([r[paper_col]], [r[col]], yerr=None if ci is None else [[ci.iloc[i]], [ci.iloc[i]]],
                    fmt=markers[i % len(markers)], color=colours[i], capsize=3, label=str(r["variant"]))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.margins(0.15)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(3, len(summary)), frameon=False,
              title="ours: mean over seeds ± 95 % CI" if ci is not None else None, title_fontsize=8)


def label_points(ax, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], fontsize: float = 8) -> list:
    """Label each point so that no two labels overlap: labels of the right half go left of their
    point (inside the axes), each starts just above its point and, from the lowest point up, is
    pushed up past every label already placed that it would cover; a label moved off its point
    gets a thin line to it.  Freezes the axes' limits (the labels are placed in display space)."""
    ax.autoscale_view()
    ax.set_xlim(ax.get_xlim())
    ax.set_ylim(ax.get_ylim())
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72
    mid = (min(xs) + max(xs)) / 2 if len(xs) else 0.0
    placed, out = [], []  # placed: (x0, y0, x1, y1) in pixels
    for i in sorted(range(len(xs)), key=lambda k: (ys[k], xs[k])):
        right = xs[i] > mid
        px, py = ax.transData.transform((xs[i], ys[i]))
        probe = ax.text(0, 0, labels[i], fontsize=fontsize)
        bb = probe.get_window_extent(renderer)
        probe.remove()
        w, h = bb.width, bb.height
        x0 = px - 3 * px_per_pt - w if right else px + 3 * px_per_pt
        y0 = py + 3 * px_per_pt
        moved = True
        while moved:
            moved = False
            for a0, b0, a1, b1 in placed:
                if x0 < a1 and a0 < x0 + w and y0 < b1 and b0 < y0 + h:
                    y0, moved = b1 + 1, True
        placed.append((x0, y0, x0 + w, y0 + h))
        dx, dy = (x0 + (w if right else 0) - px) / px_per_pt, (y0 - py) / px_per_pt
        far = dy > 3 + h / px_per_pt / 2
        out.append(ax.annotate(labels[i], (xs[i], ys[i]), fontsize=fontsize, xytext=(dx, dy), textcoords="offset points",
                               ha="right" if right else "left", va="bottom",
                               arrowprops=dict(arrowstyle="-", color="0.5", linewidth=0.5) if far else None))
    return out


def measured_like_lut(summary: pd.DataFrame) -> bool:
    """Whether ``measured_ms`` was measured where the LUT was made, so the two may be compared:
    ``measured_on`` (``measure.measure_setting``'s label) names no other place (its labels hold
    ", " only when they are not the LUT's: ``"cpu b1, not the LUT's cuda b32"``); a table without
    the column (before it existed) counts as comparable, as it was drawn then."""
    if "measured_on" not in summary:
        return True
    return not any(", " in str(v) for v in summary["measured_on"].dropna())


def measured_in_lut_base(summary: pd.DataFrame) -> tuple[pd.Series, bool]:
    """The measured latency to draw beside the LUT's, and whether it is in the LUT's time base:
    ``measured_ms_lut_base`` (measured ÷ the speed factor of this machine now against when the LUT
    was built) where every row has it, else ``measured_ms`` as timed now."""
    base = summary.get("measured_ms_lut_base")
    if base is not None and len(base) and base.notna().all():
        return base, True
    return summary["measured_ms"], False


def _span(values: pd.Series, fmt: str = ".2f", unit: str = "x") -> str:
    lo, hi = format(values.min(), fmt), format(values.max(), fmt)
    return f"{lo}{unit}" if lo == hi else f"{lo}-{hi}{unit}"


def latency_note(summary: pd.DataFrame, what: str = "derived net") -> str:
    """The caption under a latency panel, computed from the numbers drawn: how the measured latency
    relates to the LUT's, in the LUT's time base when the table has it (with the speed factor it was
    converted by), and where it was measured elsewhere than the LUT was made, that it is not drawn."""
    if not measured_like_lut(summary):
        on = str(summary["measured_on"].dropna().iloc[0])
        return (f"Measured latency ({on}) is not drawn: it was not measured where the LUT was made, so "
                "the two are not comparable (measure on the LUT's device: Context.measure_device).")
    ms, lut_base = measured_in_lut_base(summary)
    ratio = (ms / summary["lut_ms"]).dropna()
    if ratio.empty:
        return ""
    n = len(ratio)
    nets = f"the {what}" if n == 1 else f"the {n} {what}s"
    if lut_base:
        factor = summary["speed_factor"].dropna()
        return (f"Measured latency of {nets}, in the LUT's time base (divided by this machine's speed factor "
                f"{_span(factor, unit='')}: now against when the LUT was built), is {_span(ratio)} the LUT's: "
                "what remains is the LUT's own error (per-layer sums against whole networks). The search sees only the LUT.")
    return (f"Measured latency of {nets} is {_span(ratio)} the LUT's, in this machine's speed now: the LUT has no "
            "drift sentinels to put it in the LUT's time base (`lut check`), so the ratio holds this machine's drift "
            "as well as the LUT's error. The search sees only the LUT.")


def latency_bars(ax, summary: pd.DataFrame, title: str = "searched latency vs target") -> None:
    """The derived nets' LUT latency per variant, their measured latency (in the LUT's time base when
    the table has it: ``measured_in_lut_base``) and the target, with a caption under the panel
    computed from them (``latency_note``)."""
    y = np.arange(len(summary))
    target = float(summary["target_ms"].iloc[0])
    xerr = _ci95(summary, "lut_ms")
    ax.barh(y, summary["lut_ms"], xerr=xerr, capsize=3, color="tab:blue",
            label="derived net: LUT latency (what the search optimises)"
                  + (", mean ± 95 % CI" if xerr is not None else ""))
    if "measured_ms" in summary and measured_like_lut(summary):
        ons = summary["measured_on"].dropna() if "measured_on" in summary else []
        on = f" ({ons.iloc[0]})" if len(ons) else ""
        ms, lut_base = measured_in_lut_base(summary)
        ax.scatter(ms, y, color="k", marker="x", zorder=3,
                   label=f"derived net: measured at paper scale here{on}"
                         + (", in the LUT's time base" if lut_base else ", this machine's time now"))
    ax.axvline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:.2f} ms (LUT)")
    ax.set_yticks(y, summary["variant"])
    ax.set_xlabel("latency (ms)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    if "measured_ms" in summary:
        note = latency_note(summary)
        ax.text(1.01, 0.0, textwrap.fill(note, 42), transform=ax.transAxes, fontsize=7, va="bottom", ha="left")


def collapse_panels(runs: Mapping[str, Sequence], layers: Sequence[int], idx: Sequence[int], ops: Sequence[str],
                    title: str):
    """Fig. 2's six panels for the first seed of two samplings: (a, b, d, e) the counting share of
    each derived op after every search epoch in two ``layers`` (paper numbers; ``idx`` their
    supernet indices), (c, f) supernet training and validation accuracy.  Returns the figure."""
    import matplotlib.pyplot as plt

    warmup = next(iter(runs.values()))[0].config.warmup_epochs
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5))
    for row, (label, rs) in enumerate(runs.items()):
        for col, (layer, i) in enumerate(zip(layers, idx)):
            stacked_shares(axes[row, col], op_shares(rs[0].records, i, ops),
                           f"({'abde'[2 * row + col]}) {label}: layer {layer}")
    for ax, col, name in ((axes[0, 2], "train_acc", "(c) supernet training accuracy"),
                          (axes[1, 2], "val_acc", "(f) supernet validation accuracy")):
        curves(ax, {label: (rs[0].records["epoch"], rs[0].records[col]) for label, rs in runs.items()}, name,
               "accuracy (%)", warmup=warmup)
    fig.suptitle(title)
    fig.tight_layout()
    op_legend(fig, axes[0, 0])
    return fig


def alpha_panels(runs: Mapping[str, Sequence], alpha: pd.DataFrame, n_ops: int, title: str):
    """Fig. 2's "signal behind collapse": supernet validation accuracy (weight steps on top), the
    largest softmax(α) share and the share of layers whose derived op changed, per sampling, as
    mean and min-max over seeds.  ``runs``: label -> search runs (``records``, ``config``);
    ``alpha``: ``experiments.fig2_alpha(runs)``.  Returns the figure."""
    import matplotlib.pyplot as plt

    first = next(iter(runs.values()))[0]
    warmup = first.config.warmup_epochs
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    banded(axes[0], {label: band([r.records["val_acc"] for r in rs]) for label, rs in runs.items()},
           "supernet validation accuracy", "accuracy (%)", warmup=warmup)
    steps_axis(axes[0], int(first.records["arch_steps"].max()) * first.config.arch_every)
    by = {label: alpha[alpha["sampling"] == label] for label in runs}
    banded(axes[1], {label: band([d["max_share"] for _, d in a.groupby("seed")]) for label, a in by.items()},
           "largest α share (mean over layers)", "softmax(α) share", warmup=warmup)
    axes[1].axhline(1 / n_ops, color="k", linestyle=":", linewidth=1)
    banded(axes[2], {label: band([d["changed"].fillna(0) for _, d in a.groupby("seed")]) for label, a in by.items()},
           "layers whose derived op changed", "fraction of layers", warmup=warmup)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _bands(curves: pd.DataFrame, **where) -> dict[str, pd.DataFrame]:
    """Series -> its band (mean/min/max by epoch) from a curves table (``experiments.fig4_curves`` /
    ``fig5_curves``), rows selected by ``where`` (column = value)."""
    for k, v in where.items():
        curves = curves[curves[k] == v]
    return {name: g.set_index("epoch")[["mean", "min", "max"]] for name, g in curves.groupby("series", sort=False)}


def fig4_figure(curves: pd.DataFrame, target: float, warmup: int, title: str):
    """Fig. 4: (a) the derived depth per epoch in each depth space, (b) its LUT latency with and
    without elasticity scaling; mean and min-max band over seeds."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    banded(axes[0], _bands(curves, panel="a"), "(a) searched depth", "depth (layers in stages 3-8)", warmup=warmup)
    banded(axes[1], _bands(curves, panel="b"), "(b) searched latency", "LUT latency of the derived net (ms)",
           target=target, warmup=warmup)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fig5_figure(curves: pd.DataFrame, warmup: int, title: str):
    """Fig. 5: C1's and C2's LUT latency per epoch with and without elasticity scaling, λ in the
    panel titles; mean and min-max band over seeds."""
    import matplotlib.pyplot as plt

    names = {"c1": "(a) C1 (FBNet-style)", "c2": "(b) C2 (ProxylessNAS-style)"}
    objs = [o for o in names if (curves["objective"] == o).any()]
    fig, axes = plt.subplots(1, max(1, len(objs)), figsize=(6 * max(1, len(objs)), 4), squeeze=False)
    for ax, obj in zip(axes[0], objs):
        c = curves[curves["objective"] == obj]
        lam = f"λ1 = {c['lam'].iloc[0]:g}" + (f", λ2 = {c['lam2'].iloc[0]:g}" if obj == "c1" else "")
        banded(ax, _bands(c), f"{names[obj]}, {lam}", "LUT latency of the derived net (ms)",
               target=float(c["target_ms"].iloc[0]), warmup=warmup)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def latency_errors(ax, per_seed: pd.DataFrame, title: str = "every run's latency error",
                   tolerances: Sequence[float] = (1.0, 2.0)) -> None:
    """One row per variant, one dot per run: the derived net's signed LUT latency error (% of
    the target; − under it, + over), the tolerance bands shaded (the report's 1 % / 2 %)."""
    variants = list(dict.fromkeys(per_seed["variant"]))
    for t, a in zip(sorted(tolerances, reverse=True), (0.08, 0.18)):
        ax.axvspan(-t, t, color="tab:green", alpha=a, linewidth=0)
    ax.axvline(0, color="k", linewidth=0.8)
    for i, v in enumerate(variants):
        rows = per_seed[per_seed["variant"] == v]
        err = 100 * (rows["lut_ms"] / rows["target_ms"] - 1)
        ax.plot(err, [len(variants) - 1 - i] * len(err), "o", alpha=0.8)
    ax.set_yticks(range(len(variants)))
    ax.set_yticklabels(variants[::-1], fontsize=8)
    ax.set_xscale("symlog", linthresh=2.0)
    ax.set_xlabel("LUT latency of the derived net − target (% of the target; symlog)")
    ax.set_title(title)


def save_figure(fig, stem: str | os.PathLike) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``, each atomically (``atomic.atomic_write``).

    The same figure gives the same bytes: the PDF carries no creation date (matplotlib's default
    would change every re-render's file)."""
    stem = Path(stem)
    meta = {"png": None, "pdf": {"CreationDate": None}}
    return [atomic_write(stem.with_suffix(f".{ext}"),
                         lambda tmp, ext=ext: fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=meta[ext]))
            for ext in ("png", "pdf")]


def _integer_epochs(ax, epochs: Sequence[float] | None = None) -> None:
    """Whole epochs on the x axis: every epoch when there are few (a single epoch would
    otherwise get fractional ticks), else integer ticks chosen by matplotlib."""
    from matplotlib.ticker import MaxNLocator

    epochs = [] if epochs is None else list(epochs)
    if 0 < len(epochs) <= 12:
        ax.set_xticks(epochs)
        ax.set_xlim(min(epochs) - 0.6, max(epochs) + 0.6)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _palette(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i) for i in range(n)]
