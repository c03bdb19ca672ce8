"""The evidence report: claims evaluated from the notebooks' tables, verdicts by the stated rules
(paired intervals, per-run latency checks, premises, the budget that decides latency claims)."""
from __future__ import annotations

import pandas as pd
import pytest

from tfnas_core.report import claims, forest, paper_tables, render, verdicts

# "paper" decides latency claims on its own searches; "mini" on its -long tables (verdicts.LATENCY_BUDGET)
OWN = "paper"


def _write(root, experiment, name, rows, profile=OWN):
    d = root / experiment
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(d / f"{name}-{profile}.csv", index=False)


def _t5(obj, es):
    return f"{paper_tables.TABLE5_NAMES[obj]} {'w/' if es else 'w/o'} ES"


def _tuned(root, status="converged", profile=OWN):
    _write(root, "table5-latency-objectives", "tuned",
           [{"objective": o, "lam": 1e-7 if status == "unreachable" else 0.01, "lam2": 0.6 if o == "c1" else None,
             "mean_ms": 12.0, "target_ms": 20.0, "gap_pct": -40.0 if status == "unreachable" else 1.0,
             "seeds": "1 2 3", "status": status} for o in ("c1", "c2")], profile)


def _table5(root, profile=OWN, es_err=lambda s: 0.002 * (s - 2), seeds=(1, 2, 3)):
    """ES runs within 0.2 % of the target; C1 w/o ES 10 % under, C2 10 % over; top-1 straddles 0."""
    rows = []
    for obj in ("c1", "c2", "eq9", "abs"):
        for es in (False, True):
            for s in seeds:
                err = es_err(s) if es else (-0.1 if obj == "c1" else 0.1) + 0.01 * s
                rows.append({"variant": _t5(obj, es), "seed": s, "top1": 80.0 + (s - 2) * (1 if obj == "eq9" else -1),
                             "lut_ms": 20.0 * (1 + err), "target_ms": 20.0, "paper_top1": 76.0})
    _write(root, "table5-latency-objectives", "per_seed", rows, profile)


def _curves(root, experiment, series_depths, profile=OWN, **cols):
    """per_seed_curves: one row per (series, seed, epoch); ``series_depths``: series -> depth per epoch."""
    _write(root, experiment, "per_seed_curves",
           [{**cols, "series": k, "seed": s, "epoch": e + 1, "depth": d,
             "lut_ms": 20.0, "target_ms": 20.0, "warmup_epochs": 1}
            for k, ds in series_depths.items() for s in (1, 2, 3) for e, d in enumerate(ds)], profile)


@pytest.fixture()
def results(tmp_path):
    seeds = (1, 2, 3)
    # Table 3: Random clearly best, every other clearly worse than Gumbel -> reproduced claims;
    # bi-sampling's search 1.25x as long
    t3 = {"Gumbel": 80.0, "Gumbel+Gumbel": 78.0, "Gumbel+min α": 79.0, "Gumbel+max α": 77.0, "Gumbel+Random": 82.0}
    _write(tmp_path, "table3-sampling", "per_seed",
           [{"variant": v, "seed": s, "top1": t + 0.1 * s, "lut_ms": 20.0, "target_ms": 20.0,
             "search_min": (5.0 if v == "Gumbel+Random" else 4.0) + 0.01 * s,
             "paper_top1": dict((n, p) for _, n, p, *_ in paper_tables.TABLE3)[v]}
            for v, t in t3.items() for s in seeds])
    # Table 4: skip-in best (the paper's opposite) -> not reproduced; skip-in shallow (6 layers) and
    # sink deep (12-14) -> reproduced
    t4 = {"skip in candidates": 82.0, "skip out candidates": 80.0, "sink-connecting": 79.0}
    depths = {"skip in candidates": "1-1-1-1-1-1", "skip out candidates": "1-2-2-2-3-1", "sink-connecting": "2-2-2-3-{}-1"}
    _write(tmp_path, "table4-depth-space", "per_seed",
           [{"variant": v, "seed": s, "top1": t + (0.3 if s == 2 else 0.0), "depths": depths[v].format(s + 1),
             "lut_ms": 20.0 * (1 + 0.001 * (s - 2)), "target_ms": 20.0} for v, t in t4.items() for s in seeds])
    # Fig. 4a per epoch: skip in jitters (6, 9, 5, 8), sink-connecting is stable (12 throughout)
    _curves(tmp_path, "fig4-depth-and-latency", {"skip in candidates": [18, 6, 9, 5, 8], "sink-connecting": [18, 12, 12, 12, 12]},
            panel="a")
    _table5(tmp_path)
    _tuned(tmp_path)
    _write(tmp_path, "fig2-operation-collapse", "collapse",
           [{"sampling": sp, "seed": s, "layer": l, "top_op": "k3_e3", "top_share": share + s + l / 10, "distinct_ops": 2}
            for sp, share in (("Gumbel", 80.0), ("bi-sampling", 50.0)) for s in seeds for l in (12, 17)])
    return tmp_path


def test_verdicts_follow_the_rule(results):
    t = claims.evaluate(results, OWN).set_index("id")["verdict"].to_dict()
    assert t["op-collapse"] == "reproduced"
    assert t["bi-beats-gumbel"] == "reproduced" and t["random-best"] == "reproduced"
    assert t["collapse-variants-worse"] == "reproduced" and t["bi-search-cost"] == "reproduced"
    assert t["sink-best"] == "not reproduced" and t["mutual-exclusion"] == "not reproduced"
    assert t["exclusion-over-redundancy"] == "not reproduced"  # (80 - 82) - (79 - 80) = -1 at every seed
    assert t["skip-in-shallow"] == "reproduced"  # shallow AND jittery
    assert t["es-precise"] == "reproduced" and t["c1-c2-miss"] == "reproduced"
    assert t["ours-beats-c1"] == "inconclusive"  # the paired differences straddle 0
    assert t["lambda-es-precise"] == "inconclusive" and t["lambda-0.1-best"] == "inconclusive"  # no table


def test_mutual_exclusion_over_redundancy_is_its_own_check(results):
    c = claims.evaluate_checks(results, OWN).set_index("id").loc["exclusion-over-redundancy"]
    # per seed: (skip out - skip in) - (sink - skip out) = (80 - 82) - (79 - 80) = -1
    assert c["n"] == 3 and c["mean"] == pytest.approx(-1.0) and c["verdict"] == "not reproduced"


def test_one_seed_and_missing_tables_are_inconclusive(tmp_path):
    _write(tmp_path, "table3-sampling", "per_seed",
           [{"variant": v, "seed": 2, "top1": 90.0 if v == "Gumbel+Random" else 10.0}
            for v in ("Gumbel", "Gumbel+Gumbel", "Gumbel+min α", "Gumbel+max α", "Gumbel+Random")])
    t = claims.evaluate(tmp_path, OWN)
    assert set(t["verdict"]) == {"inconclusive"}
    row = t.set_index("id").loc["bi-beats-gumbel"]
    assert row["min_n"] == 1 and "+80.00 (n=1)" in row["ours"]
    assert "no results/table4-depth-space" in t.set_index("id").loc["sink-best", "ours"]


def test_latency_precision_is_judged_per_run_not_on_the_mean(tmp_path):
    # |errors| 0.1, 0.1, 3.0 %: the mean (1.07 %) hides a run that misses -> not reproduced;
    # 0.1, 0.1, 1.5 %: a run in the grey zone between 1 and 2 % -> inconclusive
    for errs, want in (((0.001, -0.001, -0.03), "not reproduced"), ((0.001, -0.001, -0.015), "inconclusive"),
                       ((0.001, -0.001, -0.005), "reproduced")):
        _table5(tmp_path, es_err=lambda s: errs[s - 1])
        _tuned(tmp_path)
        checks = claims.evaluate_checks(tmp_path, OWN)
        es = checks[checks["id"] == "es-precise"]
        assert set(es["verdict"]) == {want}
        # every run's signed error is shown, not an interval on |error|
        row = es.iloc[0]
        assert pd.isna(row["ci95_low"]) and row["values"].startswith("1:0.100 2:-0.100")
        assert "+0.10, -0.10" in row["text"] and "(seeds 1, 2, 3)" in row["text"]


@pytest.mark.parametrize("err, want", [(-0.0099, "reproduced"), (0.0099, "reproduced"),
                                       (-0.0101, "inconclusive"), (0.0101, "inconclusive")])
def test_the_report_meets_the_target_as_scaling_and_search_do(tmp_path, err, want):
    """One tolerance (stats.TARGET_TOLERANCE_PCT) on both sides: a run 0.99 % under or over the
    target meets it, 1.01 % does not (the grey zone up to MISSES decides neither way)."""
    from tfnas_core import stats

    assert verdicts.PRECISE == stats.TARGET_TOLERANCE_PCT == 1.0
    _table5(tmp_path, es_err=lambda s: err if s == 3 else 0.001 * (s - 2))
    _tuned(tmp_path)
    checks = claims.evaluate_checks(tmp_path, OWN)
    assert set(checks[checks["id"] == "es-precise"]["verdict"]) == {want}
    assert stats.meets_target(20.0 * (1 + err), 20.0) is (want == "reproduced")


def test_an_unreachable_tuning_leaves_c1_c2_claims_not_tested(results):
    _tuned(results, "unreachable")
    checks = claims.evaluate_checks(results, OWN)
    t = claims.evaluate(results, OWN, checks).set_index("id")["verdict"].to_dict()
    assert t["c1-c2-miss"] == "not tested"  # the misses are real, but not the paper's effect
    assert t["ours-beats-c1"] == "not tested" and t["ours-beats-c2"] == "not tested"
    es = checks[checks["id"] == "es-precise"].set_index("what")["verdict"]
    assert {v for w, v in es.items() if "C1" in w or "C2" in w} == {"not tested"}
    assert {v for w, v in es.items() if "Ours" in w} == {"reproduced"}
    assert t["es-precise"] == "inconclusive"  # part tested and reproduced, part not tested: never reproduced
    assert "unreachable" in checks[checks["id"] == "c1-c2-miss"]["text"].iloc[0]
    # no tuning table at all: nothing to say about the premise -> inconclusive, not "not tested"
    (results / "table5-latency-objectives" / f"tuned-{OWN}.csv").unlink()
    t = claims.evaluate(results, OWN).set_index("id")["verdict"].to_dict()
    assert t["c1-c2-miss"] == "inconclusive"


def test_mini_decides_latency_claims_on_its_longer_searches(tmp_path):
    # the 8-epoch searches undershoot by 20-40 % (context); the longer ones land within 0.2 %
    _table5(tmp_path, "mini", es_err=lambda s: -0.2 * s)
    _tuned(tmp_path, profile="mini")
    t = claims.evaluate(tmp_path, "mini").set_index("id")["verdict"].to_dict()
    assert t["es-precise"] == "inconclusive"  # nothing at the deciding budget yet
    checks = claims.evaluate_checks(tmp_path, "mini")
    short = checks[(checks["id"] == "es-precise") & ~checks["decides"]]
    assert len(short) == 4 and set(short["verdict"]) == {"not reproduced"} and short["text"].str.contains("context").all()
    _table5(tmp_path, "mini-long")
    _tuned(tmp_path, profile="mini-long")
    t = claims.evaluate(tmp_path, "mini").set_index("id")["verdict"].to_dict()
    assert t["es-precise"] == "reproduced" and t["c1-c2-miss"] == "reproduced"
    # a tuning that is unreachable at the longer budget: C1/C2 claims not tested there
    _tuned(tmp_path, "unreachable", profile="mini-long")
    assert claims.evaluate(tmp_path, "mini").set_index("id").loc["c1-c2-miss", "verdict"] == "not tested"


def test_a_variant_missing_from_the_deciding_table_is_inconclusive(tmp_path):
    _table5(tmp_path)
    _tuned(tmp_path)
    df = pd.read_csv(tmp_path / "table5-latency-objectives" / f"per_seed-{OWN}.csv")
    df[df["variant"] != _t5("eq9", True)].to_csv(tmp_path / "table5-latency-objectives" / f"per_seed-{OWN}.csv", index=False)
    checks = claims.evaluate_checks(tmp_path, OWN)
    miss = checks[checks["what"].str.contains("Eq. 9") & (checks["id"] == "es-precise")]
    assert miss["verdict"].tolist() == ["inconclusive"] and miss["note"].tolist() == ["no finished run yet"]
    assert claims.evaluate(tmp_path, OWN, checks).set_index("id").loc["es-precise", "verdict"] == "inconclusive"


def test_both_halves_of_a_two_part_claim_are_checked(results):
    # sink-connecting jitters and skip in is stable: shallow yes, jitter reversed -> not reproduced
    _curves(results, "fig4-depth-and-latency", {"skip in candidates": [18, 6, 6, 6, 6], "sink-connecting": [18, 10, 14, 9, 13]},
            panel="a")
    checks = claims.evaluate_checks(results, OWN)
    mine = checks[checks["id"] == "skip-in-shallow"].set_index("what")["verdict"]
    assert sorted(mine) == ["not reproduced", "reproduced"]
    assert claims.evaluate(results, OWN, checks).set_index("id").loc["skip-in-shallow", "verdict"] == "not reproduced"


def test_c1_around_and_c2_above_the_target(results):
    rows = []
    for obj, lat in (("c1", [25, 21, 19, 21, 19, 21, 19, 21, 19]), ("c2", [25, 24, 23, 22, 21, 21, 21.5, 21, 22])):
        for s in (1, 2, 3):
            rows += [{"objective": obj, "series": "w/o elasticity scaling", "seed": s, "epoch": e + 1, "depth": 10,
                      "lut_ms": v, "target_ms": 20.0, "warmup_epochs": 1} for e, v in enumerate(lat)]
    _write(results, "fig5-latency-objectives", "per_seed_curves", rows)
    checks = claims.evaluate_checks(results, OWN)
    mine = checks[checks["id"] == "c1-around-c2-above"]
    assert mine["verdict"].tolist() == ["reproduced", "reproduced"]
    assert mine["values"].tolist() == ["1:50.000 2:50.000 3:50.000", "1:100.000 2:100.000 3:100.000"]
    _tuned(results, "max_probes")
    mine = claims.evaluate_checks(results, OWN).query("id == 'c1-around-c2-above'")
    assert set(mine["verdict"]) == {"not tested"}


def test_top1_checks_say_what_deciding_them_would_need(results):
    checks = claims.evaluate_checks(results, OWN)
    c = checks[checks["what"] == "top1 Gumbel+Random − Gumbel (> 0)"].iloc[0]
    assert c["effect"] == pytest.approx(0.5)  # the paper: 76.3 - 75.8
    assert c["sd_pooled"] == pytest.approx(0.1)  # every variant: t + 0.1 * seed -> SD 0.1
    assert c["seeds_needed"] == 3 and c["seeds_needed_80"] >= c["seeds_needed"]
    assert c["dlut_ms"] == pytest.approx(0.0)
    nt = render.needs_table(checks)
    assert (nt["id"].isin(["bi-beats-gumbel", "random-best", "sink-best"])).any() and nt["seeds_needed"].notna().any()


def test_markdown_and_figure(results, tmp_path):
    checks = claims.evaluate_checks(results, OWN)
    table = claims.evaluate(results, OWN, checks)
    md = render.to_markdown(table, OWN, checks=checks, scope_text="SCOPE LINE")
    assert md.startswith(f"# Evidence report ({OWN} profile)") and "SCOPE LINE" in md
    rows = [l for l in md.splitlines() if l.startswith("| ")]
    assert len([l for l in rows if l.endswith("** |")]) == len(claims.CLAIMS)
    counts = table["verdict"].value_counts().to_dict()
    assert ", ".join(f"{v}: {counts.get(v, 0)}" for v in ("reproduced", "not reproduced", "inconclusive", "not tested")) in md
    assert "## What an inconclusive top-1 verdict would need" in md
    fig = forest.figure(checks)
    fig.savefig(tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 0


def test_scope_states_what_the_profile_measures(results):
    text = render.scope(results, "mini")
    assert "fashion-mnist" in text and "2 epochs" in text and "not ImageNet" in text


def test_combine():
    assert verdicts.combine(["reproduced", "reproduced"]) == "reproduced"
    assert verdicts.combine(["reproduced", "not reproduced", "inconclusive"]) == "not reproduced"
    assert verdicts.combine(["reproduced", "inconclusive"]) == "inconclusive"
    assert verdicts.combine(["not tested", "not tested"]) == "not tested"
    assert verdicts.combine(["reproduced", "not tested"]) == "inconclusive"
    assert verdicts.combine(["not tested", "not reproduced"]) == "not reproduced"
    assert verdicts.combine([]) == "inconclusive"


def test_longer_fig2_searches_join_claims_only_where_they_ran(results):
    before = claims.evaluate_checks(results, OWN)
    assert not before["what"].str.contains("longer search|Fig. 2, linear T").any()
    # the longer searches: off the target by 5 % (ES not precise there) and no collapse difference
    pd.DataFrame([{"variant": v, "seed": s, "lut_ms": 21.0 + 0.01 * s, "target_ms": 20.0, "val_acc": 30.0 + s}
                  for v in ("Gumbel", "bi-sampling") for s in (1, 2, 3)]).to_csv(
        results / "fig2-operation-collapse" / f"per_seed-{OWN}-long.csv", index=False)
    pd.DataFrame([{"sampling": sp, "seed": s, "layer": l, "top_share": 50.0 + s * (1 if sp == "Gumbel" else -1)}
                  for sp in ("Gumbel", "bi-sampling") for s in (1, 2, 3) for l in (12, 17)]).to_csv(
        results / "fig2-operation-collapse" / f"collapse-{OWN}-long.csv", index=False)
    after = claims.evaluate_checks(results, OWN)
    fig2_es = after[(after["id"] == "es-precise") & after["what"].str.contains("Fig. 2")]
    assert len(fig2_es) == 2 and set(fig2_es["verdict"]) == {"not reproduced"}
    assert (after["id"] == "op-collapse").sum() == 2 and (after["id"] == "bi-supernet-acc").sum() == 2
    t = claims.evaluate(results, OWN, after).set_index("id")["verdict"].to_dict()
    assert t["es-precise"] == "not reproduced"  # any check not reproduced decides the claim


def test_depth_jitter_needs_two_searching_epochs(results):
    _curves(results, "fig4-depth-and-latency", {"skip in candidates": [18, 6], "sink-connecting": [18, 12]}, panel="a")
    c = claims.evaluate_checks(results, OWN)
    jit = c[c["what"].str.contains("jitter")].iloc[0]
    assert jit["verdict"] == "inconclusive" and "fewer than two searching epochs" in jit["note"]


def test_depth_jitter_says_when_skip_in_sits_at_the_floor(results):
    # the fixture's skip in jitters (ends at 8 layers): nothing to remark
    c = claims.evaluate_checks(results, OWN)
    assert "floor" not in c[c["what"].str.contains("jitter")].iloc[0]["text"]
    # skip in collapses onto the all-skip net (6 layers) from epoch 3 and stays: less jitter than
    # sink-connecting (-> not reproduced), and the row says it is a collapse at the floor
    _curves(results, "fig4-depth-and-latency", {"skip in candidates": [18, 9, 6, 6, 6], "sink-connecting": [18, 12, 14, 12, 14]},
            panel="a")
    jit = claims.evaluate_checks(results, OWN).query("what.str.contains('jitter')", engine="python").iloc[0]
    assert jit["verdict"] == "not reproduced"
    assert "floor of 6 layers" in jit["text"] and "by epoch 3 of 5" in jit["text"]


def test_the_forest_plot_comes_in_pages_readable_at_page_width(results):
    """Issue 32: one 1639x3906 px figure with 6 pt labels was unreadable at page width.  Pages of
    whole units, at most PAGE_ROWS checks each (a larger unit alone), 7.5 in wide, 8 pt labels."""
    import matplotlib.pyplot as plt

    checks = claims.evaluate_checks(results, OWN)
    figs = forest.figures(checks, page_rows=4)
    units = list(dict.fromkeys(checks["unit"]))
    drawn = [ax.get_xlabel().replace("\n", " ") for f in figs for ax in f.axes]
    assert drawn == units  # every unit once, in order, none split across pages
    for f in figs:
        sizes = [int((checks["unit"] == ax.get_xlabel().replace("\n", " ")).sum()) for ax in f.axes]
        assert sum(sizes) <= 4 or len(sizes) == 1
        assert f.get_size_inches()[0] == forest.FIGURE_WIDTH_IN
        assert all(t.get_fontsize() >= 8 for ax in f.axes for t in ax.get_yticklabels())
        plt.close(f)
    assert len(forest.figures(checks, page_rows=10_000)) == 1


def test_the_claims_retype_no_paper_number():
    """Issue 30: the paper's evidence in every claim is formatted from ``paper_tables``: no number
    in the text of a claim's statement or evidence (figure panels like "Fig. 2c" aside), and none
    in the module but directions and indices (±1, 0) and the percent's 100 (the evaluation
    functions aside)."""
    import ast
    import inspect
    import os
    import re

    if "MUTANT_UNDER_TEST" in os.environ:  # mutmut rewrote the module's text; its mutants change behaviour, not text
        pytest.skip("reads claims.py's text, which mutmut replaced with its mutants and their trampolines")
    body = [n for n in ast.parse(inspect.getsource(claims)).body
            if not (isinstance(n, ast.FunctionDef) and n.name in ("evaluate", "evaluate_checks"))]
    numbers = {n.value for node in body for n in ast.walk(node)
               if isinstance(n, ast.Constant) and type(n.value) in (int, float)}
    assert numbers <= {0, 1, 100}, sorted(numbers - {0, 1, 100})
    table = next(n.value for n in body if isinstance(n, ast.AnnAssign) and n.target.id == "CLAIMS")
    texts = [n.value for call in table.elts for arg in call.args[2:4] for n in ast.walk(arg)
             if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert len(texts) >= 2 * len(claims.CLAIMS)
    typed = [t for t in texts if re.search(r"(?<![\w.-])\d+(\.\d+)?(?![a-z\d])", t)]
    assert not typed, typed


def test_the_claims_quote_the_paper_tables(monkeypatch):
    """Change the paper's numbers and the claims' evidence follows (Table 3's Gumbel row, the target)."""
    import importlib

    rows = [r if r[1] != "Gumbel" else (*r[:2], 74.2, *r[3:5], 1.2) for r in paper_tables.TABLE3]
    monkeypatch.setattr(paper_tables, "TABLE3", rows)
    monkeypatch.setattr(paper_tables, "TARGET_MS", 20.0)
    try:
        quoted = {c.id: c.paper for c in importlib.reload(claims).CLAIMS}
    finally:
        monkeypatch.undo()
        importlib.reload(claims)
    assert quoted["bi-beats-gumbel"] == "76.3 vs 74.2 % top-1"
    assert quoted["bi-search-cost"] == "1.8 vs 1.2 GPU days (+0.6, x1.5)"
    assert quoted["collapse-variants-worse"] == "75.7 and 75.5 vs 74.2 %"
    assert quoted["es-precise"] == "15.05, 15.08, 15.06 ms at a 20 ms target"
    assert quoted["c1-c2-miss"] == "C1 14.32 ms (−28.4 %), C2 15.76 ms (−21.2 %) at 20 ms"
    assert {c.id: c.paper for c in claims.CLAIMS}["bi-beats-gumbel"] == "76.3 vs 75.8 % top-1"
