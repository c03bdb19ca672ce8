"""Figure data from search records: op shares (Fig. 2), bands (Fig. 4/5), files written."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.text import Text
import numpy as np
import pandas as pd
import pytest

from tfnas_core.report import plots

OPS = ["a", "b", "c"]


def _records():
    rows = []
    derived = ["a", "a", "b", "a", "c", "a"]
    for e, op in enumerate(derived, start=1):
        rows.append({"epoch": e, "phase": "warmup" if e <= 2 else "search", "derived_ops": [op, "b"],
                     "lut_ms_after": 10 + e, "val_acc": 10 * e})
    return pd.DataFrame(rows)


def test_op_shares_count_derivations_after_each_search_epoch():
    s = plots.op_shares(_records(), 0, OPS)
    assert list(s.index) == [3, 4, 5, 6]
    assert s.loc[3].tolist() == [0.0, 100.0, 0.0]
    assert s.loc[6].tolist() == pytest.approx([50.0, 25.0, 25.0])
    assert (s.sum(axis=1).round(6) == 100).all()
    all_epochs = plots.op_shares(_records(), 0, OPS, search_only=False)
    assert all_epochs.loc[6, "a"] == pytest.approx(100 * 4 / 6)


def test_collapse_summary():
    summ = plots.collapse_summary(_records(), [0, 1], OPS)
    assert summ[0] == {"top_op": "a", "top_share": 50.0, "distinct_ops": 3}
    assert summ[1]["top_share"] == 100.0 and summ[1]["distinct_ops"] == 1


def test_band_over_runs_of_different_length():
    b = plots.band([[1, 2, 3], [3, 4, 5, 6]])
    assert b["mean"].tolist() == [2, 3, 4] and b["min"].tolist() == [1, 2, 3] and b["max"].tolist() == [3, 4, 5]


def test_figures_are_written_as_png_and_pdf(tmp_path):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    plots.stacked_shares(axes[0], plots.op_shares(_records(), 0, OPS), "layer 12")
    plots.curves(axes[1], {"run": ([1, 2], [3, 4])}, "acc", "%")
    plots.banded(axes[2], {"ES": plots.band([[1, 2], [2, 3]])}, "latency", "ms", target=1.5)
    paths = plots.save_figure(fig, tmp_path / "figs" / "fig")
    plt.close(fig)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    assert paths[0].read_bytes()[:4] == b"\x89PNG" and paths[1].read_bytes()[:4] == b"%PDF"
    with pytest.raises(FileNotFoundError, match="no search records"):
        plots.load_records(tmp_path)


def test_table_panels(tmp_path):
    s = pd.DataFrame({"variant": ["a", "b"], "top1": [80.0, 82.0], "paper_top1": [76.0, 75.0],
                      "lut_ms": [10.0, 11.0], "measured_ms": [12.0, 9.0], "target_ms": [11.0, 11.0]})
    fig, axes = plt.subplots(1, 2)
    plots.ours_vs_paper(axes[0], s)
    plots.latency_bars(axes[1], s)
    assert [t.get_text() for t in axes[1].get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["a", "b"]
    assert plots.save_figure(fig, tmp_path / "t")[0].stat().st_size > 1000
    plt.close(fig)


def test_table_panels_explain_themselves():
    s = pd.DataFrame({"variant": ["a", "b"], "top1": [80.0, 82.0], "paper_top1": [76.0, 75.0],
                      "lut_ms": [10.0, 11.0], "measured_ms": [14.0, 22.0], "target_ms": [11.0, 11.0]})
    fig, axes = plt.subplots(1, 2)
    plots.ours_vs_paper(axes[0], s, ylabel="ours: top-1 on fashion-mnist (%)")
    plots.latency_bars(axes[1], s)
    assert axes[0].get_xlabel() == "paper: top-1 on ImageNet (%)"
    assert "paper_top1" not in axes[0].get_xlabel() + axes[0].get_ylabel()
    labels = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert "target 11.00 ms (LUT)" in labels
    assert any("is 1.40-2.00x the LUT's, in this machine's speed now" in t.get_text().replace("\n", " ") for t in axes[1].texts)
    plt.close(fig)


def test_epoch_axes_have_whole_ticks_and_a_shaded_warmup():
    fig, axes = plt.subplots(1, 3)
    plots.stacked_shares(axes[0], plots.op_shares(_records().iloc[:3], 0, OPS), "one search epoch")
    assert axes[0].get_xticks().tolist() == [3.0]
    plots.banded(axes[1], {"ES": plots.band([[1, 2, 3, 4], [2, 3, 4, 5]])}, "latency", "ms", target=1.5, warmup=2)
    assert axes[1].get_xticks().tolist() == [1.0, 2.0, 3.0, 4.0] and axes[1].get_xlabel() == "epoch"
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert "warm-up (epochs 1-2, α fixed)" in legend and "target 1.50 ms" in legend
    plots.banded(axes[2], {"ES": plots.band([[1, 2], [2, 3]])}, "latency", "ms", target=9.0, warmup=1)
    assert axes[2].get_ylim()[1] > 9.0 and "warm-up (epoch 1, α fixed)" in [
        t.get_text() for t in axes[2].get_legend().get_texts()]
    plots.op_legend(fig, axes[0])
    assert [t.get_text() for t in fig.legends[0].get_texts()] == OPS and axes[0].get_legend() is None
    plt.close(fig)


def test_alpha_movement_measures_distance_from_uniform():
    recs = pd.DataFrame([
        {"epoch": 1, "arch_steps": 0, "alpha_softmax": [[0.25] * 4, [0.5, 0.5]], "derived_ops": ["a", "x"]},
        {"epoch": 2, "arch_steps": 3, "alpha_softmax": [[1.0, 0.0, 0.0, 0.0], [0.5, 0.5]], "derived_ops": ["b", "x"]},
    ])
    m = plots.alpha_movement(recs)
    assert m["arch_steps"].tolist() == [0, 3]
    assert m["max_share"].tolist() == pytest.approx([0.375, 0.75])
    assert m["entropy"].tolist() == pytest.approx([1.0, 0.5])
    assert np.isnan(m["changed"].iloc[0]) and m["changed"].iloc[1] == pytest.approx(0.5)


def test_latency_panel_does_not_compare_a_measurement_made_elsewhere_than_the_lut():
    """A GPU LUT measured on a CPU-only machine: no crosses beside the LUT bars, and the caption
    says why; measured where the LUT was made, the crosses name where."""
    s = pd.DataFrame({"variant": ["a", "b"], "lut_ms": [15.0, 14.9], "measured_ms": [40.0, 41.0], "target_ms": [15.0, 15.0],
                      "measured_on": ["cpu b1, not the LUT's cuda b32"] * 2})
    assert not plots.measured_like_lut(s)
    fig, ax = plt.subplots()
    plots.latency_bars(ax, s)
    assert not ax.collections  # no scatter
    assert not any("measured" in t.get_text() for t in ax.get_legend().get_texts())
    caption = " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
    assert "not drawn" in caption and "cpu b1, not the LUT's cuda b32" in caption and "x the LUT's" not in caption
    plt.close(fig)
    s["measured_on"] = "cuda b32"
    s["measured_ms"] = [15.2, 15.1]
    assert plots.measured_like_lut(s) and plots.measured_like_lut(s.drop(columns="measured_on"))
    fig, ax = plt.subplots()
    plots.latency_bars(ax, s)
    assert len(ax.collections) == 1
    assert "derived net: measured at paper scale here (cuda b32), this machine's time now" in [
        t.get_text() for t in ax.get_legend().get_texts()]
    assert any("1.01x the LUT's" in t.get_text().replace("\n", " ") for t in ax.texts)
    plt.close(fig)


def test_latency_panel_draws_and_captions_the_luts_time_base():
    """With ``measured_ms_lut_base`` the crosses sit at measured ÷ speed factor and the caption gives
    the factor and the ratio computed from the drawn values (not fixed text)."""
    s = pd.DataFrame({"variant": ["a", "b"], "lut_ms": [10.0, 20.0], "measured_ms": [13.0, 25.0], "target_ms": [15.0, 15.0],
                      "measured_ms_lut_base": [10.1, 20.4], "speed_factor": [1.29, 1.29], "measured_on": ["cpu b1"] * 2})
    fig, ax = plt.subplots()
    plots.latency_bars(ax, s)
    assert ax.collections[0].get_offsets()[:, 0].tolist() == [10.1, 20.4]
    assert "derived net: measured at paper scale here (cpu b1), in the LUT's time base" in [
        t.get_text() for t in ax.get_legend().get_texts()]
    caption = " ".join(t.get_text().replace("\n", " ") for t in ax.texts)
    assert "speed factor 1.29: now against when the LUT was built), is 1.01-1.02x the LUT's" in caption
    assert "Measured latency of the 2 derived nets, in the LUT's time base" in caption
    plt.close(fig)
    s.loc[1, "measured_ms_lut_base"] = float("nan")  # one row without a time base: the panel falls back, and says so
    drawn, lut_base = plots.measured_in_lut_base(s)
    assert not lut_base and drawn.tolist() == [13.0, 25.0]
    assert "in this machine's speed now" in plots.latency_note(s)


def test_point_labels_do_not_overlap():
    """Table 3's mini summary put Gumbel, Gumbel+Gumbel and Gumbel+min α on one another: the
    variants are now told apart by colour and marker in a legend outside the data; the zoo's
    labels (plots.label_points) are pushed apart."""
    s = pd.DataFrame({"variant": ["Gumbel", "Gumbel+Gumbel", "Gumbel+min α", "Gumbel+max α", "Gumbel+Random"],
                      "paper_top1": [75.8, 75.7, 76.0, 75.5, 76.3], "top1": [85.37, 85.13, 85.53, 84.52, 84.87],
                      "top1_ci95": [1.5, 2.4, 1.8, 2.4, 3.4]})
    fig, ax = plt.subplots(figsize=(6, 4.2))
    plots.ours_vs_paper(ax, s)
    fig.canvas.draw()
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == s["variant"].tolist() and not ax.texts
    assert legend.get_window_extent().y1 < ax.get_window_extent().y0  # below the panel, covering no point
    markers = [line.get_marker() for line in ax.lines if line.get_marker() not in ("None", "_", "")]
    assert len(markers) == len(set(markers)) == len(s)  # one point each, each its own marker
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.scatter(s["paper_top1"], s["top1"])
    texts = plots.label_points(ax, s["paper_top1"].tolist(), s["top1"].tolist(), s["variant"].tolist())
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, r) for t in texts]  # the text, without the line to its point
    assert sorted(t.get_text() for t in texts) == sorted(s["variant"])
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two labels overlap"
    plt.close(fig)
