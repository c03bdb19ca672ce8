"""Turning search records into the paper's figures (Fig. 2, 4, 5, 8) and their summary numbers.

Inputs are the per-epoch records a search writes (``records.jsonl``: one object per epoch with
``derived_ops``, ``derived_depths``, ``lut_ms_before``/``lut_ms_after``, ``train_acc``,
``val_acc``, ``phase`` ...).  Data shaping (``op_shares``, ``collapse_summary``, ``band``) is
separate from drawing so notebooks and tests can use the numbers directly.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd


def load_records(run_dir: str | os.PathLike) -> pd.DataFrame:
    """A search's per-epoch records as a DataFrame (one row per epoch)."""
    p = Path(run_dir) / "records.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no search records (is this a search run folder?)")
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


def band(series: Sequence[Sequence[float]]) -> pd.DataFrame:
    """Mean, min and max across repeated runs (rows: epochs; runs may differ in length)."""
    n = min(len(s) for s in series)
    m = np.array([list(s)[:n] for s in series], dtype=float)
    return pd.DataFrame({"mean": m.mean(0), "min": m.min(0), "max": m.max(0)}, index=np.arange(1, n + 1))


# ----------------------------------------------------------------------------- drawing


def stacked_shares(ax, shares: pd.DataFrame, title: str) -> None:
    """A stacked bar per epoch of ``op_shares`` output (Fig. 2 a/b/d/e)."""
    bottom = np.zeros(len(shares))
    colors = _palette(len(shares.columns))
    for col, c in zip(shares.columns, colors):
        vals = shares[col].to_numpy(dtype=float)
        ax.bar(shares.index, vals, bottom=bottom, width=1.0, color=c, label=col, linewidth=0)
        bottom += vals
    ax.set_title(title)
    ax.set_xlabel("search epoch")
    ax.set_ylabel("counting percentage (%)")
    ax.set_ylim(0, 100)
    _integer_epochs(ax)


def curves(ax, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str, ylabel: str) -> None:
    """Lines ``label -> (x, y)``, e.g. supernet accuracy of Gumbel vs bi-sampling (Fig. 2 c/f)."""
    for label, (x, y) in series.items():
        ax.plot(x, y, label=label)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    _integer_epochs(ax)


def banded(ax, bands: Mapping[str, pd.DataFrame], title: str, ylabel: str, target: float | None = None) -> None:
    """Mean with a min-max band per label (Fig. 4, 5, 8); an optional dashed target line."""
    for label, b in bands.items():
        line, = ax.plot(b.index, b["mean"], label=label)
        ax.fill_between(b.index, b["min"], b["max"], color=line.get_color(), alpha=0.25, linewidth=0)
    if target is not None:
        ax.axhline(target, color="k", linestyle="--", linewidth=1, label=f"target {target:.2f} ms")
    ax.set_title(title)
    ax.set_xlabel("search epoch")
    ax.set_ylabel(ylabel)
    ax.legend()
    _integer_epochs(ax)


def ours_vs_paper(ax, summary: pd.DataFrame, col: str = "top1", paper_col: str = "paper_top1",
                  title: str = "top-1: ours vs paper") -> None:
    """One point per variant (ours against the paper's), labelled: shows whether rankings agree."""
    ax.scatter(summary[paper_col], summary[col])
    for _, r in summary.iterrows():
        ax.annotate(str(r["variant"]), (r[paper_col], r[col]), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set_title(title)
    ax.set_xlabel(f"paper ({paper_col})")
    ax.set_ylabel(f"ours ({col})")
    ax.margins(0.25)


def latency_bars(ax, summary: pd.DataFrame, title: str = "searched latency vs target") -> None:
    """The derived nets' LUT latency per variant with the target as a dashed line."""
    y = np.arange(len(summary))
    ax.barh(y, summary["lut_ms"], color="tab:blue", label="LUT latency of the derived net")
    if "measured_ms" in summary:
        ax.scatter(summary["measured_ms"], y, color="k", marker="x", zorder=3, label="measured (this machine)")
    ax.axvline(float(summary["target_ms"].iloc[0]), color="k", linestyle="--", linewidth=1, label="target")
    ax.set_yticks(y, summary["variant"])
    ax.set_xlabel("latency (ms)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def save_figure(fig, stem: str | os.PathLike) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``, each atomically (temp file + rename)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in ("png", "pdf"):
        fd, tmp = tempfile.mkstemp(dir=stem.parent, prefix=f".{stem.name}.", suffix=f".{ext}")
        os.close(fd)
        try:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight")
            os.chmod(tmp, 0o644)
            os.replace(tmp, stem.with_suffix(f".{ext}"))
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        out.append(stem.with_suffix(f".{ext}"))
    return out


def _integer_epochs(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _palette(n: int):
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i) for i in range(n)]
