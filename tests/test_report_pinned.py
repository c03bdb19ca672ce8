"""The evidence report pinned by a small hand-made set of runs (issue 33).

Every table below is written out by hand, three seeds each, so that every number the report
prints can be worked out on paper.  The t quantile of a 3-seed interval is t(0.975, 2) = 4.3027,
so a per-seed difference with SD 1 has the half-width 4.3027 / sqrt(3) = 2.484; a constant
difference has SD 0 and the interval [d, d].  The hand computation of each check is in the comment
above its expected text.  Floats that come from ``stats`` are compared to 1e-9.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core import stats
from tfnas_core.report import claims, forest, paper_tables, render, verdicts

OWN = "paper"  # decides latency claims on its own searches (verdicts.LATENCY_BUDGET)
T3 = 4.302652729911275 / math.sqrt(3)  # half-width of a 3-seed interval per unit of SD
SEEDS = (1, 2, 3)


def _write(root: Path, experiment: str, name: str, rows: list[dict]) -> None:
    d = root / experiment
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(d / f"{name}.csv", index=False)


def _t5(obj: str, es: bool) -> str:
    return f"{paper_tables.TABLE5_NAMES[obj]} {'w/' if es else 'w/o'} ES"


# Table 3, top-1 by seed 1, 2, 3 (every variant's SD over seeds is 1 -> pooled SD 1)
T3_TOP1 = {"Gumbel": (70, 71, 72), "Gumbel+Gumbel": (71, 70, 72), "Gumbel+min α": (75, 76, 77),
           "Gumbel+max α": (69, 70, 71), "Gumbel+Random": (72, 73, 74)}
T3_LUT = {"Gumbel": 15.0, "Gumbel+Gumbel": 15.0, "Gumbel+min α": 15.1, "Gumbel+max α": 14.9, "Gumbel+Random": 15.3}
# Table 4: skip in 70 71 72, skip out 71 73 74, sink 72 72 75; depths 6 and 14, 13, 15
T4_TOP1 = {"skip in candidates": (70, 71, 72), "skip out candidates": (71, 73, 74), "sink-connecting": (72, 72, 75)}
T4_DEPTHS = {"skip in candidates": ("1-1-1-1-1-1",) * 3,
             "skip out candidates": ("1-2-2-2-2-1",) * 3,
             "sink-connecting": ("2-2-2-3-4-1", "2-2-2-3-3-1", "2-2-2-3-5-1")}
T4_LUT = {"skip in candidates": 15.0, "skip out candidates": 15.2, "sink-connecting": 15.1}
# Table 5: signed latency error (%) by seed, and top-1
T5_ERR = {("c1", True): (0.5, -0.5, 0.9), ("c2", True): (0.5, 1.5, 0.2), ("eq9", True): (0.1, 0.2, 2.5),
          ("abs", True): (-0.1, 0.0, 0.1), ("c1", False): (-4.5, -3.0, -2.5), ("c2", False): (5.1, 1.5, 3.0),
          ("eq9", False): (0.0, 0.0, 0.0), ("abs", False): (0.0, 0.0, 0.0)}
T5_TOP1 = {("eq9", True): (76, 77, 78), ("c1", True): (75, 76, 77), ("c2", True): (74, 75, 76),
           ("eq9", False): (75, 76, 77), ("c1", False): (76, 76, 76), ("c2", False): (77, 78, 79),
           ("abs", True): (76, 76, 76), ("abs", False): (76, 76, 76)}
T5_PAPER = {(o, es): p for o, es, p, _ in paper_tables.TABLE5}


def _tuned(root: Path, c2_status: str = "converged", profile: str = OWN) -> None:
    _write(root, "table5-latency-objectives", f"tuned-{profile}",
           [{"objective": "c1", "lam": 0.01, "lam2": 0.6, "mean_ms": 20.1, "target_ms": 20.0, "gap_pct": 0.5,
             "seeds": "1 2 3", "status": "converged"},
            {"objective": "c2", "lam": 2.5e-08, "lam2": None, "mean_ms": 12.0, "target_ms": 20.0, "gap_pct": -40.04,
             "seeds": "1 2", "status": c2_status}])


def _table5(root: Path, profile: str = OWN, err=T5_ERR) -> None:
    _write(root, "table5-latency-objectives", f"per_seed-{profile}",
           [{"variant": _t5(o, es), "seed": s, "top1": T5_TOP1[o, es][i], "lut_ms": 20.0 * (1 + err[o, es][i] / 100),
             "target_ms": 20.0, "paper_top1": T5_PAPER.get((o, es), T5_PAPER.get(("eq9", es)))}
            for (o, es) in err for i, s in enumerate(SEEDS)])


def _fig5(root: Path, profile: str = OWN) -> None:
    """9 epochs: the late ones (> 50/90 of 9 = 5) are 6..9.  C1 (every seed): 21 19 21 19 late ->
    50 % above; epoch 5 at 21 (counted, it would be 60 %).  C2: above in every late epoch -> 100 %;
    epoch 5 at 19 (counted, 80 %).  The rows with ES are far off and must be ignored."""
    c1 = [25, 24, 23, 22, 21, 21, 19, 21, 19]
    c2 = [25, 24, 23, 22, 19, 21, 22, 21, 21]
    rows = [{"objective": o, "series": ser, "seed": s, "epoch": e + 1, "lut_ms": v if ser.startswith("w/o") else 10.0,
             "target_ms": 20.0} for o, lat in (("c1", c1), ("c2", c2))
            for ser in ("w/o elasticity scaling", "w/ elasticity scaling") for s in SEEDS for e, v in enumerate(lat)]
    _write(root, "fig5-latency-objectives", f"per_seed_curves-{profile}", rows)


def _fig4(root: Path, profile: str = OWN) -> None:
    """Fig. 4a, warm-up 1 epoch of 5: the searching epochs are 2..5 (their 3 changes).  skip in:
    18 6 9 6 9 -> jitter 3 in every seed; sink-connecting: 18 12 12 12 12 (0), 18 12 13 12 12 (2/3),
    18 12 13 12 13 (1).  Panel b rows (depth 0/99 alternating) must be ignored."""
    series = {"skip in candidates": {s: [18, 6, 9, 6, 9] for s in SEEDS},
              "sink-connecting": {1: [18, 12, 12, 12, 12], 2: [18, 12, 13, 12, 12], 3: [18, 12, 13, 12, 13]}}
    rows = [{"panel": "a", "series": k, "seed": s, "epoch": e + 1, "depth": d, "lut_ms": 20.0, "target_ms": 20.0,
             "warmup_epochs": 1} for k, by in series.items() for s, ds in by.items() for e, d in enumerate(ds)]
    rows += [{"panel": "b", "series": k, "seed": s, "epoch": e + 1, "depth": 99 * (e % 2), "lut_ms": 20.0,
              "target_ms": 20.0, "warmup_epochs": 1} for k in series for s in SEEDS for e in range(5)]
    _write(root, "fig4-depth-and-latency", f"per_seed_curves-{profile}", rows)


@pytest.fixture()
def results(tmp_path: Path) -> Path:
    p3 = {n: p for _, n, p, *_ in paper_tables.TABLE3}
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": v, "seed": s, "top1": float(t[i]), "lut_ms": T3_LUT[v], "target_ms": 15.0,
             # search minutes: Gumbel 10, Gumbel+Random 12 13 14 (ratio 1.2 1.3 1.4), the rest 11
             "search_min": 10.0 if v == "Gumbel" else (12.0 + i if v == "Gumbel+Random" else 11.0),
             "paper_top1": p3[v], "epochs": 30}
            for v, t in T3_TOP1.items() for i, s in enumerate(SEEDS)])
    _write(tmp_path, "table4-depth-space", f"per_seed-{OWN}",
           [{"variant": v, "seed": s, "top1": float(t[i]), "depths": T4_DEPTHS[v][i], "lut_ms": T4_LUT[v],
             "target_ms": 15.0} for v, t in T4_TOP1.items() for i, s in enumerate(SEEDS)])
    _fig4(tmp_path)
    _table5(tmp_path)
    _tuned(tmp_path)
    _fig5(tmp_path)
    # Fig. 2: per seed, the top-op share of layers 12 and 17: Gumbel 80/70, 81/71, 82/72 (means 75 76 77),
    # bi-sampling 50/40, 52/42, 51/41 (45 47 46) -> differences 30 29 31
    _write(tmp_path, "fig2-operation-collapse", f"collapse-{OWN}",
           [{"sampling": sp, "seed": s, "layer": l, "top_op": "k3_e3", "top_share": share, "distinct_ops": 2}
            for sp, by in (("Gumbel", {1: (80, 70), 2: (81, 71), 3: (82, 72)}),
                           ("bi-sampling", {1: (50, 40), 2: (52, 42), 3: (51, 41)}))
            for s, shares in by.items() for l, share in zip((12, 17), shares)])
    # supernet val accuracy: Gumbel 40 40 40, bi-sampling 41 42 43; search minutes 10 and 15 (ratio 1.5)
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}",
           [{"variant": v, "seed": s, "val_acc": 40.0 + (s if v == "bi-sampling" else 0), "lut_ms": 15.0,
             "target_ms": 15.0, "search_min": 15.0 if v == "bi-sampling" else 10.0}
            for v in ("Gumbel", "bi-sampling") for s in SEEDS])
    # what the runs cost: two notebooks sharing the search "s1"
    _write(tmp_path, "table3-sampling", f"runs-{OWN}",
           [{"kind": "search", "key": "s1", "source": "computed now", "wall_min": 30.0},
            {"kind": "search", "key": "s2", "source": "run store", "wall_min": 20.4},
            {"kind": "train", "key": "t1", "source": "computed now", "wall_min": 100.0}])
    _write(tmp_path, "table5-latency-objectives", f"runs-{OWN}",
           [{"kind": "search", "key": "s1", "source": "run archive", "wall_min": 30.0},
            {"kind": "train", "key": "t2", "source": "computed now", "wall_min": 50.6}])
    return tmp_path


def _checks(root: Path, profile: str = OWN) -> pd.DataFrame:
    return claims.evaluate_checks(root, profile)


# ----------------------------------------------------------------------------- the claims


def test_each_claim_states_the_papers_numbers():
    """Every claim's id, place in the paper, statement and the paper's evidence, in the report's
    order; each number of the evidence is one the paper prints (checked against its text)."""
    want = [
        ("op-collapse", "Sec. 3.3, Fig. 2", "Gumbel-only sampling collapses onto few ops; bi-sampling explores more",
         "~80 % of derivations fall on one op in layers 12 and 17 with Gumbel only; fewer with bi-sampling"),
        ("bi-supernet-acc", "Sec. 3.3, Fig. 2c/f", "bi-sampling trains a more accurate supernet than Gumbel-only",
         "bi-sampling's supernet accuracy is higher on the training and the validation set (Fig. 2c vs 2f)"),
        ("bi-beats-gumbel", "Sec. 4.3, Table 3", "bi-sampling (Gumbel+Random) beats one-path Gumbel", "76.3 vs 75.8 % top-1"),
        ("bi-search-cost", "Sec. 4.3, Table 3", "bi-sampling's second forward pass makes the search dearer",
         "1.8 vs 1.5 GPU days (+0.3, x1.2)"),
        ("random-best", "Sec. 4.3, Table 3", "a random second path is the best of the four",
         "76.3 vs 75.7 (Gumbel), 76.0 (min α), 75.5 (max α)"),
        ("collapse-variants-worse", "Sec. 4.3, Table 3", "Gumbel+Gumbel and Gumbel+max α are worse than one path",
         "75.7 and 75.5 vs 75.8 %"),
        ("sink-best", "Sec. 4.4, Table 4", "the sink-connecting depth space finds the most accurate nets",
         "76.3 vs 76.1 (skip out) and 75.6 % (skip in)"),
        ("mutual-exclusion", "Sec. 4.4, Table 4", "skip out of the candidates beats skip in them", "76.1 vs 75.6 %"),
        ("exclusion-over-redundancy", "Sec. 4.4, Table 4",
         "mutual exclusion matters more than architecture redundancy (skip out gains more over skip in than sink over skip out)",
         "+0.5 (skip out − skip in) vs +0.2 points (sink − skip out)"),
        ("skip-in-shallow", "Sec. 3.3, Fig. 4a",
         "with skip in the candidates the derived net is shallow and jitters; sink-connecting is deeper and stable",
         "skip in candidates: 'relatively shallow' with a large jitter; sink-connecting stable (Fig. 4a, 5 repeats)"),
        ("es-precise", "Sec. 4.5, Table 5, Fig. 4b/5", "with elasticity scaling every objective meets the target precisely",
         "15.05, 15.08, 15.06 ms at a 15 ms target"),
        ("c1-c2-miss", "Sec. 4.5, Table 5, Fig. 5", "without scaling, C1 and C2 tuned to the target still miss it",
         "C1 14.32 ms (−4.5 %), C2 15.76 ms (+5.1 %) at 15 ms"),
        ("c1-around-c2-above", "Sec. 4.5, Fig. 5a/b",
         "without scaling, C1 ends up fluctuating around the target and C2 always above it",
         "after the first 50 of 90 epochs: C1 'fluctuates down and up around the target', C2 'always exceeds' it"),
        ("ours-beats-c1", "Sec. 4.5, Table 5", "the target-aware objective beats C1, with and without scaling",
         "76.3 vs 75.9 (w/ ES) and 75.6 % (w/o)"),
        ("ours-beats-c2", "Sec. 4.5, Table 5", "the target-aware objective beats C2, with and without scaling",
         "76.3 vs 76.1 (w/ ES) and 76.2 % (w/o)"),
        ("lambda-es-precise", "Appendix J, Table 13", "with scaling, every λ meets the target",
         "15.01-15.14 ms for λ from 0.01 to 0.5"),
        ("lambda-0.1-best", "Appendix J, Table 13", "λ = 0.1 gives the best accuracy", "76.3 % vs 75.7-76.2 %"),
    ]
    assert [(c.id, c.where, c.claim, c.paper) for c in claims.CLAIMS] == want
    import os
    root = Path(os.environ.get("TFNAS_SHARED") or Path(__file__).resolve().parents[1].parent / "shared") / "paper"
    files = [root / "tf-nas-eccv2020-plaintext.txt", root / "tf-nas-eccv2020.md"]  # the .md has the appendix tables
    if not all(f.is_file() for f in files):
        pytest.skip(f"the paper's text is not in {root}")
    text = "\n".join(f.read_text() for f in files)
    # the numbers the paper prints (x1.2 and the signed gaps are ours, derived: 1.8 / 1.5, 14.32 / 15 - 1)
    derived = {"1.2", "4.5", "5.1", "0.5", "0.2"}
    for c in claims.CLAIMS:
        for num in re.findall(r"\d+(?:\.\d+)?", c.paper):
            if num in derived or num in ("2", "4", "5"):  # Fig. 2c/2f, Fig. 4a, 5 repeats: names, not evidence
                continue
            assert re.search(rf"(?<![\d.]){re.escape(num)}(?![\d])", text), (c.id, num)


def test_the_paper_numbers_of_derived_claims_follow_from_the_paper_tables():
    t3 = {n: (p, days) for _, n, p, _ms, _f, days in paper_tables.TABLE3}
    t4 = {n: p for _, n, p, *_ in paper_tables.TABLE4}
    assert (t3["Gumbel+Random"][1], t3["Gumbel"][1]) == (1.8, 1.5) and round(1.8 / 1.5, 1) == 1.2
    assert round(t4["skip out candidates"] - t4["skip in candidates"], 1) == 0.5
    assert round(t4["sink-connecting"] - t4["skip out candidates"], 1) == 0.2
    t5 = {(o, es): ms for o, es, _p, ms in paper_tables.TABLE5}
    assert round(100 * (t5["c1", False] / 15 - 1), 1) == -4.5 and round(100 * (t5["c2", False] / 15 - 1), 1) == 5.1
    assert verdicts.FIG5_LATE == 50 / 90 and verdicts.PRECISE == 1.0 and verdicts.MISSES == 2.0


# ----------------------------------------------------------------------------- every check, by hand

# (claim, text, verdict) of every check of the fixture, in order.  t half-widths: SD x 2.484.
EXPECTED_CHECKS = [
    # per seed (80+70)/2 - (50+40)/2 = 30, 29, 31: mean 30, SD 1 -> 30 ± 2.48
    ("op-collapse", "top-op share (%, mean over the counted layers) Gumbel − bi-sampling (> 0): +30.00 [+27.52, +32.48] (n=3)",
     "reproduced"),
    # 1, 2, 3: mean 2, SD 1; the table has no epochs column -> the profile's 90
    ("bi-supernet-acc", "val_acc bi-sampling − Gumbel (90 epochs) (> 0): +2.00 [-0.48, +4.48] (n=3)", "inconclusive"),
    # 2, 2, 2: SD 0; LUT 15.3 - 15.0
    ("bi-beats-gumbel", "top1 Gumbel+Random − Gumbel (> 0): +2.00 [+2.00, +2.00] (n=3), LUT latency +0.30 ms apart",
     "reproduced"),
    # 12/10, 13/10, 14/10: mean 1.3, SD 0.1 -> [1.05, 1.55], wholly above 1; epochs column 30
    ("bi-search-cost", "search time Gumbel+Random / Gumbel (table3, 30 epochs) (> 1): +1.30 [+1.05, +1.55] (n=3)",
     "reproduced"),
    ("bi-search-cost", "search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1): +1.50 [+1.50, +1.50] (n=3)", "reproduced"),
    # 72-71, 73-70, 74-72 = 1, 3, 2
    ("random-best", "top1 Gumbel+Random − Gumbel+Gumbel (> 0): +2.00 [-0.48, +4.48] (n=3), LUT latency +0.30 ms apart",
     "inconclusive"),
    ("random-best", "top1 Gumbel+Random − Gumbel+min α (> 0): -3.00 [-3.00, -3.00] (n=3), LUT latency +0.20 ms apart",
     "not reproduced"),
    ("random-best", "top1 Gumbel+Random − Gumbel+max α (> 0): +3.00 [+3.00, +3.00] (n=3), LUT latency +0.40 ms apart",
     "reproduced"),
    # 1, -1, 0: mean 0, SD 1; the paper says < 0
    ("collapse-variants-worse", "top1 Gumbel+Gumbel − Gumbel (< 0): +0.00 [-2.48, +2.48] (n=3), LUT latency +0.00 ms apart",
     "inconclusive"),
    ("collapse-variants-worse", "top1 Gumbel+max α − Gumbel (< 0): -1.00 [-1.00, -1.00] (n=3), LUT latency -0.10 ms apart",
     "reproduced"),
    # sink - out = 1, -1, 1: mean 1/3, SD 1.155 -> ± 2.87
    ("sink-best", "top1 sink-connecting − skip out candidates (> 0): +0.33 [-2.54, +3.20] (n=3), LUT latency -0.10 ms apart",
     "inconclusive"),
    ("sink-best", "top1 sink-connecting − skip in candidates (> 0): +2.00 [-0.48, +4.48] (n=3), LUT latency +0.10 ms apart",
     "inconclusive"),
    # out - in = 1, 2, 2: mean 5/3, SD 0.577 -> ± 1.43
    ("mutual-exclusion",
     "top1 skip out candidates − skip in candidates (> 0): +1.67 [+0.23, +3.10] (n=3), LUT latency +0.20 ms apart",
     "reproduced"),
    # (out - in) - (sink - out) = 0, 3, 1: mean 4/3, SD 1.528 -> ± 3.79
    ("exclusion-over-redundancy", "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0): +1.33 [-2.46, +5.13] (n=3)",
     "inconclusive"),
    # 14 - 6, 13 - 6, 15 - 6
    ("skip-in-shallow", "depth sink-connecting − skip in candidates (> 0): +8.00 [+5.52, +10.48] (n=3)", "reproduced"),
    # jitter 3 - (0, 2/3, 1) = 3, 7/3, 2: mean 22/9, SD 0.509 -> ± 1.26
    ("skip-in-shallow",
     "depth jitter (layers per epoch, 90 epochs) skip in candidates − sink-connecting (> 0): +2.44 [+1.18, +3.71] (n=3)",
     "reproduced"),
    ("es-precise", "latency error of C1 [FBNet] w/ ES, 90 epochs, every run within 1 %: +0.50, -0.50, +0.90 (seeds 1, 2, 3)",
     "reproduced"),
    ("es-precise", "latency error of C2 [ProxylessNAS] w/ ES, 90 epochs, every run within 1 %: +0.50, +1.50, +0.20 "
                   "(seeds 1, 2, 3) - inconclusive: a run between 1 and 2 % decides neither way", "inconclusive"),
    ("es-precise", "latency error of Ours (Eq. 9, max) w/ ES, 90 epochs, every run within 1 %: +0.10, +0.20, +2.50 "
                   "(seeds 1, 2, 3)", "not reproduced"),
    ("es-precise", "latency error of Ours (released code, |.|) w/ ES, 90 epochs, every run within 1 %: -0.10, +0.00, +0.10 "
                   "(seeds 1, 2, 3)", "reproduced"),
    ("c1-c2-miss", "latency error of C1 [FBNet] w/o ES, 90 epochs, every run off by more than 2 %: -4.50, -3.00, -2.50 "
                   "(seeds 1, 2, 3)", "reproduced"),
    ("c1-c2-miss", "latency error of C2 [ProxylessNAS] w/o ES, 90 epochs, every run off by more than 2 %: +5.10, +1.50, "
                   "+3.00 (seeds 1, 2, 3) - inconclusive: a run between 1 and 2 % decides neither way", "inconclusive"),
    ("c1-around-c2-above", "C1 w/o ES, 90 epochs: % of late epochs above the target (between 0 and 100: around it): "
                           "+50.00, +50.00, +50.00 (seeds 1, 2, 3)", "reproduced"),
    ("c1-around-c2-above", "C2 w/o ES, 90 epochs: % of late epochs above the target (100: always above): "
                           "+100.00, +100.00, +100.00 (seeds 1, 2, 3)", "reproduced"),
    # 76 77 78 - 75 76 77 = 1; LUT 20.02 20.04 20.5 - 20.1 19.9 20.18 = -0.08 0.14 0.32 -> 0.127
    ("ours-beats-c1", "top1 Ours (Eq. 9, max) w/ ES − C1 [FBNet] w/ ES (> 0): +1.00 [+1.00, +1.00] (n=3), "
                      "LUT latency +0.13 ms apart", "reproduced"),
    # 75 76 77 - 76 76 76 = -1 0 1; LUT 20 - (19.1, 19.4, 19.5) -> 0.667
    ("ours-beats-c1", "top1 Ours (Eq. 9, max) w/o ES − C1 [FBNet] w/o ES (> 0): +0.00 [-2.48, +2.48] (n=3), "
                      "LUT latency +0.67 ms apart", "inconclusive"),
    # LUT 20.02 20.04 20.5 - 20.1 20.3 20.04 -> 0.04
    ("ours-beats-c2", "top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0): +2.00 [+2.00, +2.00] (n=3), "
                      "LUT latency +0.04 ms apart", "reproduced"),
    # LUT 20 - (21.02, 20.3, 20.6) -> -0.64
    ("ours-beats-c2", "top1 Ours (Eq. 9, max) w/o ES − C2 [ProxylessNAS] w/o ES (> 0): -2.00 [-2.00, -2.00] (n=3), "
                      "LUT latency -0.64 ms apart", "not reproduced"),
    ("lambda-es-precise", "latency error, every run within 1 %: no results/table13-lambda/per_seed-paper.csv yet "
                          "(run the notebook)", "inconclusive"),
    ("lambda-0.1-best", "top1 λ = 0.1 − λ = 0.5 (> 0) …: no results/table13-lambda/per_seed-paper.csv yet (run the notebook)",
     "inconclusive"),
]


def test_every_check_of_the_hand_made_runs(results):
    c = _checks(results)
    assert list(zip(c["id"], c["text"], c["verdict"])) == EXPECTED_CHECKS
    assert c["decides"].tolist() == [True] * len(EXPECTED_CHECKS)
    assert c["n"].tolist() == [3] * 28 + [0, 0]
    assert c["what"].iloc[0] == "top-op share (%, mean over the counted layers) Gumbel − bi-sampling (> 0)"
    assert c["what"].iloc[16] == "latency error of C1 [FBNet] w/ ES, 90 epochs, every run within 1 %"
    wall = "wall time on a shared 2-core machine, two searches at a time"
    grey = "a run between 1 and 2 % decides neither way"
    missing = "no results/table13-lambda/per_seed-paper.csv yet (run the notebook)"
    assert c["note"].tolist() == ["", "", "", wall, wall] + [""] * 12 + [grey, "", "", "", grey] + [""] * 6 + [missing] * 2


def test_check_rows_carry_the_numbers(results):
    c = _checks(results).set_index("text")
    row = c.loc[EXPECTED_CHECKS[0][1]]
    assert row["unit"] == "top-op share points" and row["margin"] == 0.0
    assert row["mean"] == pytest.approx(30.0, abs=1e-9)
    assert row["ci95_low"] == pytest.approx(30 - T3, abs=1e-9) and row["ci95_high"] == pytest.approx(30 + T3, abs=1e-9)
    assert row["values"] == ""
    cost = c.loc[EXPECTED_CHECKS[3][1]]
    assert cost["unit"] == "ratio of search wall times" and cost["margin"] == 1.0
    assert cost["ci95_low"] == pytest.approx(1.3 - 0.1 * T3, abs=1e-9)
    lat = c.loc[EXPECTED_CHECKS[16][1]]  # per-run check: the mean of the signed errors, no interval
    assert lat["unit"] == verdicts.LAT_UNIT == "signed latency error, % of the target (LUT / target - 1)"
    assert lat["margin"] == 1.0 and lat["values"] == "1:0.500 2:-0.500 3:0.900"
    assert lat["mean"] == pytest.approx(0.3, abs=1e-9) and pd.isna(lat["ci95_low"]) and pd.isna(lat["ci95_high"])
    miss = c.loc[EXPECTED_CHECKS[20][1]]
    assert miss["margin"] == 2.0 and miss["values"] == "1:-4.500 2:-3.000 3:-2.500"
    late = c.loc[EXPECTED_CHECKS[22][1]]
    assert late["unit"] == verdicts.LATE_UNIT == "% of late epochs above the target" and late["margin"] == 0.0
    assert late["values"] == "1:50.000 2:50.000 3:50.000" and late["mean"] == 50.0
    depth = c.loc[EXPECTED_CHECKS[14][1]]
    assert depth["unit"] == "layers"
    none = c.loc[EXPECTED_CHECKS[29][1]]
    assert none["n"] == 0 and pd.isna(none["mean"]) and pd.isna(none["ci95_low"]) and none["unit"] == verdicts.TOP1
    assert c.loc[EXPECTED_CHECKS[28][1]]["margin"] == 1.0


# what deciding each top-1 check would need: (effect, pooled SD, observed SD, seeds, seeds at 80 %, LUT ms apart).
# Pooled SDs: Table 3 every variant SD 1 -> 1; Table 4 sqrt((2 + 14/3 + 6) / 6) = 1.4530; Table 5 sqrt(5 x 2 / 16).
# Seeds: the smallest n with t(0.975, n-1) x sqrt(2) x SD / sqrt(n) <= |effect| (and + t(0.8, n-1) for power),
# worked out with scipy's t quantiles, e.g. n = 34: 2.0345 x 1.4142 / 5.831 = 0.493 <= 0.5 < 0.501 at n = 33.
SD4 = math.sqrt(38 / 18)
SD5 = math.sqrt(10 / 16)
EXPECTED_NEEDS = {
    "top1 Gumbel+Random − Gumbel (> 0)": (0.5, 1.0, 0.0, 34, 65, 0.3),
    "top1 Gumbel+Random − Gumbel+Gumbel (> 0)": (0.6, 1.0, 1.0, 24, 46, 0.3),
    "top1 Gumbel+Random − Gumbel+min α (> 0)": (0.3, 1.0, 0.0, 88, 177, 0.2),
    "top1 Gumbel+Random − Gumbel+max α (> 0)": (0.8, 1.0, 0.0, 15, 27, 0.4),
    "top1 Gumbel+Gumbel − Gumbel (< 0)": (-0.1, 1.0, 1.0, 771, 1572, 0.0),
    "top1 Gumbel+max α − Gumbel (< 0)": (-0.3, 1.0, 0.0, 88, 177, -0.1),
    "top1 sink-connecting − skip out candidates (> 0)": (math.nan, SD4, math.sqrt(4 / 3), None, None, -0.1),
    "top1 sink-connecting − skip in candidates (> 0)": (math.nan, SD4, 1.0, None, None, 0.1),
    "top1 skip out candidates − skip in candidates (> 0)": (math.nan, SD4, math.sqrt(1 / 3), None, None, 0.2),
    # the three-variant contrast: SD sqrt(6) x pooled
    "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0)": (0.3, SD4, math.sqrt(7 / 3), 544, 1107, math.nan),
    "top1 Ours (Eq. 9, max) w/ ES − C1 [FBNet] w/ ES (> 0)": (0.4, SD5, 0.0, 33, 64, 0.38 / 3),
    "top1 Ours (Eq. 9, max) w/o ES − C1 [FBNet] w/o ES (> 0)": (0.7, SD5, 1.0, 13, 23, 2.0 / 3),
    "top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0)": (0.2, SD5, 0.0, 123, 248, 0.04),
    "top1 Ours (Eq. 9, max) w/o ES − C2 [ProxylessNAS] w/o ES (> 0)": (0.1, SD5, 0.0, 483, 984, -0.64),
}


def _same(a, b) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None or pd.isna(a)
    return a == pytest.approx(b, abs=1e-9)


def test_top1_checks_need_what_the_hand_computation_says(results):
    c = _checks(results)
    top1 = c[c["unit"] == verdicts.TOP1].set_index("what")
    for what, want in EXPECTED_NEEDS.items():
        got = tuple(top1.loc[what, k] for k in verdicts.NEEDS_COLUMNS)
        assert all(_same(g, w) for g, w in zip(got, want)), (what, got, want)
    other = c[c["unit"] != verdicts.TOP1]
    assert other[list(verdicts.NEEDS_COLUMNS)].isna().all().all()  # only top-1 checks say what they need
    nt = render.needs_table(c)
    assert list(nt.columns) == ["id", "what", "verdict", "mean", "ci95_low", "ci95_high", *verdicts.NEEDS_COLUMNS]
    assert nt["what"].tolist() == list(EXPECTED_NEEDS)  # top-1 checks with a run; not the missing λ table
    assert verdicts.NEEDS_COLUMNS == ("effect", "sd_pooled", "sd_diff_observed", "seeds_needed", "seeds_needed_80",
                                    "dlut_ms")


# ----------------------------------------------------------------------------- claims and the markdown


CLAIM_VERDICTS = {"op-collapse": "reproduced", "bi-supernet-acc": "inconclusive", "bi-beats-gumbel": "reproduced",
                  "bi-search-cost": "reproduced", "random-best": "not reproduced",
                  "collapse-variants-worse": "inconclusive", "sink-best": "inconclusive",
                  "mutual-exclusion": "reproduced", "exclusion-over-redundancy": "inconclusive",
                  "skip-in-shallow": "reproduced", "es-precise": "not reproduced", "c1-c2-miss": "inconclusive",
                  "c1-around-c2-above": "reproduced", "ours-beats-c1": "inconclusive", "ours-beats-c2": "not reproduced",
                  "lambda-es-precise": "inconclusive", "lambda-0.1-best": "inconclusive"}


def test_claim_rows(results):
    c = _checks(results)
    t = claims.evaluate(results, OWN, c)
    assert list(t.columns) == ["id", "where", "claim", "paper", "ours", "min_n", "verdict"]
    assert dict(zip(t["id"], t["verdict"])) == CLAIM_VERDICTS
    assert t["min_n"].tolist() == [3] * 15 + [0, 0]
    ours = dict(zip(t["id"], t["ours"]))
    assert ours["bi-search-cost"] == EXPECTED_CHECKS[3][1] + "; " + EXPECTED_CHECKS[4][1]
    assert ours["op-collapse"] == EXPECTED_CHECKS[0][1]
    assert list(t["where"]) == [cl.where for cl in claims.CLAIMS] and list(t["paper"]) == [cl.paper for cl in claims.CLAIMS]
    assert list(t["claim"]) == [cl.claim for cl in claims.CLAIMS]
    # evaluate() computes the checks itself when not given them
    pd.testing.assert_frame_equal(claims.evaluate(results, OWN), t)


def test_min_n_counts_only_the_deciding_checks(results):
    """A context check (decides=False) with fewer runs neither lowers min_n nor decides the verdict."""
    c = _checks(results)
    extra = c[c["id"] == "op-collapse"].assign(decides=False, n=1, verdict="not reproduced", text="ctx")
    t = claims.evaluate(results, OWN, pd.concat([c, extra], ignore_index=True)).set_index("id")
    assert t.loc["op-collapse", "min_n"] == 3 and t.loc["op-collapse", "verdict"] == "reproduced"
    assert t.loc["op-collapse", "ours"] == EXPECTED_CHECKS[0][1] + "; ctx"


HEADER = ("One row per claim of the paper. Verdict rules (tfnas_core/report/verdicts.py, stats.py): a paired comparison is "
          "reproduced when the 95 % Student-t interval of the per-seed difference lies wholly on the paper's side, "
          "not reproduced when wholly on the other, inconclusive otherwise or with fewer than 2 seeds. A claim about "
          "every run (meets the target: within 1 %; misses it: off by more than 2 %) is judged run by run, each run's "
          "signed error printed (− under the target, + over). A check whose premise failed (C1/C2 not tunable to the "
          "target) is not tested. ")


def test_markdown_of_the_hand_made_runs(results):
    c = _checks(results)
    t = claims.evaluate(results, OWN, c)
    md = render.to_markdown(t, OWN, render.compute_costs(results, OWN), c, scope_text="SCOPE.")
    lines = md.split("\n")
    assert md.endswith("|\n") and lines[:6] == [
        "# Evidence report (paper profile)", "",
        HEADER + "A claim needs every deciding check. reproduced: 6, not reproduced: 3, inconclusive: 8, not tested: 0.",
        "", "SCOPE.", ""]
    assert lines[6:8] == ["| claim | where | paper | ours (check: mean difference [95 % CI] (n), or every run) | verdict |",
                          "| --- | --- | --- | --- | --- |"]
    rows = lines[8:8 + len(claims.CLAIMS)]
    assert rows[0] == ("| Gumbel-only sampling collapses onto few ops; bi-sampling explores more | Sec. 3.3, Fig. 2 | "
                       "~80 % of derivations fall on one op in layers 12 and 17 with Gumbel only; fewer with bi-sampling | "
                       + EXPECTED_CHECKS[0][1] + " | **reproduced** |")
    # a "|" in a cell is escaped (the |.| objective's name)
    assert rows[10] == ("| with elasticity scaling every objective meets the target precisely | Sec. 4.5, Table 5, Fig. 4b/5 | "
                        "15.05, 15.08, 15.06 ms at a 15 ms target | "
                        + "; ".join(x[1] for x in EXPECTED_CHECKS[16:20]).replace("|", "\\|") + " | **not reproduced** |")
    assert [r.rsplit("| **", 1)[1] for r in rows] == [f"{v}** |" for v in CLAIM_VERDICTS.values()]
    i = 8 + len(claims.CLAIMS)
    assert lines[i:i + 7] == [
        "", "## What an inconclusive top-1 verdict would need", "",
        "Per top-1 check: the paper's difference (its effect), ours, the observed SD of our per-seed differences, the "
        "per-run SD of top-1 over seeds pooled over the table's variants, and the seeds at which a paired 95 % interval "
        "(per-pair SD √2 × the pooled SD; √6 × for the three-variant contrast of exclusion over redundancy) would be as "
        "narrow as the paper's effect - and at which a true effect of that size would be found with 80 % power. 'LUT ms "
        "apart': how much larger the first variant's nets are (they are not latency-matched; 'What the numbers are' "
        "above gives how top-1 goes with latency at this scale).", "",
        "| claim | check | paper effect | ours [95 % CI] | SD of differences | pooled per-run SD | seeds: interval ≤ "
        "effect | seeds: 80 % power | LUT ms apart | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    needs = lines[i + 7:i + 7 + len(EXPECTED_NEEDS)]
    assert needs == [
        "| bi-beats-gumbel | top1 Gumbel+Random − Gumbel (> 0) | +0.50 | +2.00 [+2.00, +2.00] | 0.00 | 1.00 | 34 | 65 | "
        "+0.30 | reproduced |",
        "| random-best | top1 Gumbel+Random − Gumbel+Gumbel (> 0) | +0.60 | +2.00 [-0.48, +4.48] | 1.00 | 1.00 | 24 | 46 | "
        "+0.30 | inconclusive |",
        "| random-best | top1 Gumbel+Random − Gumbel+min α (> 0) | +0.30 | -3.00 [-3.00, -3.00] | 0.00 | 1.00 | 88 | 177 | "
        "+0.20 | not reproduced |",
        "| random-best | top1 Gumbel+Random − Gumbel+max α (> 0) | +0.80 | +3.00 [+3.00, +3.00] | 0.00 | 1.00 | 15 | 27 | "
        "+0.40 | reproduced |",
        "| collapse-variants-worse | top1 Gumbel+Gumbel − Gumbel (< 0) | -0.10 | +0.00 [-2.48, +2.48] | 1.00 | 1.00 | 771 | "
        "1572 | +0.00 | inconclusive |",
        "| collapse-variants-worse | top1 Gumbel+max α − Gumbel (< 0) | -0.30 | -1.00 [-1.00, -1.00] | 0.00 | 1.00 | 88 | 177 "
        "| -0.10 | reproduced |",
        "| sink-best | top1 sink-connecting − skip out candidates (> 0) | – | +0.33 [-2.54, +3.20] | 1.15 | 1.45 | – | – | "
        "-0.10 | inconclusive |",
        "| sink-best | top1 sink-connecting − skip in candidates (> 0) | – | +2.00 [-0.48, +4.48] | 1.00 | 1.45 | – | – | "
        "+0.10 | inconclusive |",
        "| mutual-exclusion | top1 skip out candidates − skip in candidates (> 0) | – | +1.67 [+0.23, +3.10] | 0.58 | 1.45 | "
        "– | – | +0.20 | reproduced |",
        "| exclusion-over-redundancy | top1 (skip out − skip in) − (sink-connecting − skip out) (> 0) | +0.30 | "
        "+1.33 [-2.46, +5.13] | 1.53 | 1.45 | 544 | 1107 | – | inconclusive |",
        "| ours-beats-c1 | top1 Ours (Eq. 9, max) w/ ES − C1 [FBNet] w/ ES (> 0) | +0.40 | +1.00 [+1.00, +1.00] | 0.00 | "
        "0.79 | 33 | 64 | +0.13 | reproduced |",
        "| ours-beats-c1 | top1 Ours (Eq. 9, max) w/o ES − C1 [FBNet] w/o ES (> 0) | +0.70 | +0.00 [-2.48, +2.48] | 1.00 | "
        "0.79 | 13 | 23 | +0.67 | inconclusive |",
        "| ours-beats-c2 | top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0) | +0.20 | +2.00 [+2.00, +2.00] | "
        "0.00 | 0.79 | 123 | 248 | +0.04 | reproduced |",
        "| ours-beats-c2 | top1 Ours (Eq. 9, max) w/o ES − C2 [ProxylessNAS] w/o ES (> 0) | +0.10 | -2.00 [-2.00, -2.00] | "
        "0.00 | 0.79 | 483 | 984 | -0.64 | not reproduced |"]
    j = i + 7 + len(EXPECTED_NEEDS)
    # costs: table3 searches 30 + 20.4, training 100; table5 search 30 (shared "s1"), training 50.6;
    # distinct runs: searches s1 s2 (50.4), trainings t1 t2 (150.6)
    assert lines[j:] == [
        "", "## What the evidence cost", "",
        "Wall minutes of the runs each notebook's tables rest on, as each run took when it was computed (one after "
        "another on one core; `make -j2` runs two at once), read from `results/<notebook>/runs-paper.csv`. Notebooks "
        "share runs: the last row counts each run once. `runs_computed_now`: runs the notebook's last execution "
        "computed (the others came from the run store or the committed run archive).", "",
        "| notebook | searches | retrainings | search min | retrain min | compute min | computed at last execution |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        "| table3-sampling | 2 | 1 | 50 | 100 | 150 | 2 |",
        "| table5-latency-objectives | 1 | 1 | 30 | 51 | 81 | 1 |",
        "| all notebooks (distinct runs) | 2 | 2 | 50 | 151 | 201 | 3 |", ""]


def test_markdown_without_checks_costs_or_scope(results):
    """Only the claim table: no scope paragraph, no needs section, no costs section; the counts
    line gives every verdict, 0 where none."""
    t = pd.DataFrame([{"claim": "a | b", "where": "w", "paper": "p", "ours": "o", "verdict": "not tested"},
                      {"claim": "c", "where": "w", "paper": "p", "ours": "o", "verdict": "not tested"},
                      {"claim": "d", "where": "w", "paper": "p", "ours": "o", "verdict": "reproduced"}])
    md = render.to_markdown(t, OWN)
    assert md == "\n".join([
        "# Evidence report (paper profile)", "",
        HEADER + "A claim needs every deciding check. reproduced: 1, not reproduced: 0, inconclusive: 0, not tested: 2.",
        "", "| claim | where | paper | ours (check: mean difference [95 % CI] (n), or every run) | verdict |",
        "| --- | --- | --- | --- | --- |",
        "| a \\| b | w | p | o | **not tested** |", "| c | w | p | o | **not tested** |", "| d | w | p | o | **reproduced** |",
        ""])
    # checks without a top-1 check with runs, and empty costs: still no sections
    checks = pd.DataFrame([{"id": "x", "what": "w", "verdict": "inconclusive", "unit": verdicts.TOP1, "n": 0, "mean": None,
                            "ci95_low": None, "ci95_high": None, **{k: None for k in verdicts.NEEDS_COLUMNS}}])
    assert render.to_markdown(t, OWN, costs=render.compute_costs(Path("/nonexistent"), OWN), checks=checks) == md


def test_markdown_of_a_mini_report_says_latency_is_decided_on_the_longer_searches():
    t = pd.DataFrame([{"claim": "c", "where": "w", "paper": "p", "ours": "o", "verdict": "inconclusive"}])
    md = render.to_markdown(t, "mini")
    assert md.split("\n")[2] == (
        HEADER + "Latency claims are decided on the longer searches (`-long` tables): this profile's own searches are "
        "too short for latency and are shown as context. A claim needs every deciding check. reproduced: 0, "
        "not reproduced: 0, inconclusive: 1, not tested: 0.")
    assert md.startswith("# Evidence report (mini profile)\n")


def test_needs_rows_print_missing_numbers_as_dashes():
    checks = pd.DataFrame([{"id": "x", "what": "w", "verdict": "inconclusive", "unit": verdicts.TOP1, "n": 1, "mean": 2.0,
                            "ci95_low": None, "ci95_high": None, "effect": math.nan, "sd_pooled": math.nan,
                            "sd_diff_observed": math.nan, "seeds_needed": None, "seeds_needed_80": None,
                            "dlut_ms": math.nan}])
    t = pd.DataFrame([{"claim": "c", "where": "w", "paper": "p", "ours": "o", "verdict": "inconclusive"}])
    md = render.to_markdown(t, OWN, checks=checks)
    assert md.endswith("\n| x | w | – | +2.00 | – | – | – | – | – | inconclusive |\n")
    assert render._fmt(None) == "–" and render._fmt(math.inf) == "–" and render._fmt(1.234) == "+1.23"
    assert render._fmt(3, ".0f") == "3" and render._fmt(-0.5, ".2f") == "-0.50"


# ----------------------------------------------------------------------------- the verdict rules, both sides


def test_combine_on_both_sides_of_each_rule():
    assert verdicts.combine(["reproduced"]) == "reproduced"
    assert verdicts.combine(["reproduced", "reproduced", "inconclusive"]) == "inconclusive"
    assert verdicts.combine(["not reproduced"]) == "not reproduced"
    assert verdicts.combine(["inconclusive", "not reproduced", "not tested"]) == "not reproduced"
    assert verdicts.combine(["not tested"]) == "not tested"
    assert verdicts.combine(["not tested", "inconclusive"]) == "inconclusive"
    assert verdicts.combine(["inconclusive"]) == "inconclusive"
    assert verdicts.combine(()) == "inconclusive"


C2_UNREACHABLE = ("C2's λ1 tuning was unreachable (best λ1 = 2.5e-08: mean searched latency -40.0 % of the target over "
                  "seeds 1 2), so its runs are not the paper's tuned C1/C2")


def test_tuning_premise_says_why(tmp_path):
    _tuned(tmp_path, "unreachable")
    assert verdicts.tuning_premise(tmp_path, OWN) == {"c1": (True, ""), "c2": (False, C2_UNREACHABLE)}
    # no tuning at a budget: unknown, and where it would be
    assert verdicts.tuning_premise(tmp_path, OWN, "-long") == {
        "c1": (None, "no finished tuning of C1 at this budget (results/table5-latency-objectives/tuned-paper-long.csv)"),
        "c2": (None, "no finished tuning of C2 at this budget (results/table5-latency-objectives/tuned-paper-long.csv)")}
    _tuned(tmp_path, "max_probes")
    assert verdicts.tuning_premise(tmp_path, OWN)["c2"][1].startswith("C2's λ1 tuning was max_probes (best λ1 = 2.5e-08")


def test_premise_gate():
    ok, bad, unknown = (True, ""), (False, "B"), (None, "U")
    assert verdicts._premise_verdict(None, ["c1"]) is None
    assert verdicts._premise_verdict({}, ["c1"]) is None
    assert verdicts._premise_verdict({"c1": bad, "c2": bad}, [None, None]) is None  # no C1/C2 variant in the check
    assert verdicts._premise_verdict({"c1": ok, "c2": ok}, ["c1", "c2"]) is None
    assert verdicts._premise_verdict({"c1": bad, "c2": unknown}, ["c1", "c2"]) == ("not tested", "B")  # failed wins
    assert verdicts._premise_verdict({"c1": unknown, "c2": ok}, ["c1", None]) == ("inconclusive", "U")
    assert verdicts._premise_verdict({"c1": (False, "X"), "c2": (False, "Y")}, ["c2", "c1", "c2"]) == ("not tested", "X; Y")
    assert verdicts._premise_verdict({"c1": (None, "X"), "c2": (None, "Y")}, ["c2", "c1"]) == ("inconclusive", "X; Y")
    assert [verdicts._objective_of(_t5(o, es)) for o in ("c1", "c2", "eq9", "abs") for es in (True, False)] == \
        ["c1", "c1", "c2", "c2", None, None, None, None]


def test_a_failed_tuning_leaves_its_checks_not_tested_with_the_reason(results):
    _tuned(results, "unreachable")
    c = _checks(results)
    t = claims.evaluate(results, OWN, c)
    by = dict(zip(c["text"].str.split(":").str[0], zip(c["text"], c["verdict"])))
    assert by["latency error of C2 [ProxylessNAS] w/ ES, 90 epochs, every run within 1 %"] == (
        "latency error of C2 [ProxylessNAS] w/ ES, 90 epochs, every run within 1 %: +0.50, +1.50, +0.20 (seeds 1, 2, 3)"
        " - not tested: " + C2_UNREACHABLE, "not tested")
    assert by["top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0)"] == (
        "top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0): +2.00 [+2.00, +2.00] (n=3), LUT latency +0.04 ms "
        "apart - not tested: " + C2_UNREACHABLE, "not tested")
    assert by["C2 w/o ES, 90 epochs"] == (
        "C2 w/o ES, 90 epochs: % of late epochs above the target (100: always above): +100.00, +100.00, +100.00 "
        "(seeds 1, 2, 3) - not tested: " + C2_UNREACHABLE, "not tested")
    gated = c[c["verdict"] == "not tested"]
    assert gated["id"].tolist() == ["es-precise", "c1-c2-miss", "c1-around-c2-above", "ours-beats-c2", "ours-beats-c2"]
    assert gated["unit"].tolist() == [verdicts.LAT_UNIT, verdicts.LAT_UNIT, verdicts.LATE_UNIT, verdicts.TOP1, verdicts.TOP1]
    assert gated["margin"].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0] and gated["decides"].all()
    assert gated["n"].tolist() == [3] * 5 and set(gated["note"]) == {C2_UNREACHABLE}
    assert gated["values"].tolist()[:3] == ["1:0.500 2:1.500 3:0.200", "1:5.100 2:1.500 3:3.000",
                                            "1:100.000 2:100.000 3:100.000"]
    # C1's checks are untouched
    assert by["latency error of C1 [FBNet] w/ ES, 90 epochs, every run within 1 %"] == EXPECTED_CHECKS[16][1:]
    v = dict(zip(t["id"], t["verdict"]))
    assert v["ours-beats-c2"] == "not tested" and v["c1-c2-miss"] == "inconclusive"
    assert v["c1-around-c2-above"] == "inconclusive" and v["es-precise"] == "not reproduced"
    md = render.to_markdown(t, OWN)
    assert "reproduced: 5, not reproduced: 2, inconclusive: 9, not tested: 1." in md


def test_without_a_tuning_table_c1_c2_checks_are_inconclusive(results):
    (results / "table5-latency-objectives" / f"tuned-{OWN}.csv").unlink()
    c = _checks(results)
    why = "no finished tuning of C1 at this budget (results/table5-latency-objectives/tuned-paper.csv)"
    row = c[c["what"] == "top1 Ours (Eq. 9, max) w/ ES − C1 [FBNet] w/ ES (> 0)"].iloc[0]
    assert row["verdict"] == "inconclusive" and row["note"] == why
    assert row["text"].endswith("LUT latency +0.13 ms apart - inconclusive: " + why)
    abs_es = c[c["what"].str.startswith("latency error of Ours (released code")].iloc[0]
    assert abs_es["verdict"] == "reproduced" and abs_es["note"] == ""  # no C1/C2 in it: no premise


def _one_t5(root: Path, err_c1_es: float, err_c1_wo: float) -> pd.DataFrame:
    """Table 5 with C1's third run at the given errors (the first two well inside / outside)."""
    err = dict(T5_ERR)
    err["c1", True] = (0.5, -0.5, err_c1_es)
    err["c1", False] = (-4.5, -3.0, err_c1_wo)
    _table5(root, err=err)
    _tuned(root)
    c = _checks(root)
    return c[c["what"].str.startswith("latency error of C1 [FBNet]")].set_index("what")["verdict"]


@pytest.mark.parametrize("inside, outside, want_inside, want_miss", [
    (0.99, -2.01, "reproduced", "reproduced"),
    (-1.01, -1.99, "inconclusive", "inconclusive"),
    (1.99, 1.01, "inconclusive", "inconclusive"),
    (-2.01, 0.99, "not reproduced", "not reproduced"),
])
def test_per_run_latency_rules_on_both_sides_of_1_and_2_percent(tmp_path, inside, outside, want_inside, want_miss):
    """Within 1 % (PRECISE) meets the target, off by more than 2 % (MISSES) misses it, a run
    between decides neither way; for "misses" the other way round, on |error| either sign."""
    v = _one_t5(tmp_path, inside, outside)
    assert v["latency error of C1 [FBNet] w/ ES, 90 epochs, every run within 1 %"] == want_inside
    assert v["latency error of C1 [FBNet] w/o ES, 90 epochs, every run off by more than 2 %"] == want_miss


def test_one_run_decides_no_latency_claim(tmp_path):
    _write(tmp_path, "table5-latency-objectives", f"per_seed-{OWN}",
           [{"variant": _t5("abs", True), "seed": 4, "top1": 70.0, "lut_ms": 20.1, "target_ms": 20.0}])
    c = _checks(tmp_path)
    es = c[c["id"] == "es-precise"]
    assert es["text"].tolist() == [
        "latency error of C1 [FBNet] w/ ES, 90 epochs, every run within 1 %: no finished run yet",
        "latency error of C2 [ProxylessNAS] w/ ES, 90 epochs, every run within 1 %: no finished run yet",
        "latency error of Ours (Eq. 9, max) w/ ES, 90 epochs, every run within 1 %: no finished run yet",
        "latency error of Ours (released code, |.|) w/ ES, 90 epochs, every run within 1 %: +0.50 (seeds 4) - "
        "inconclusive: one run"]
    assert es["verdict"].tolist() == ["inconclusive"] * 4 and es["n"].tolist() == [0, 0, 0, 1]
    assert es["unit"].tolist() == [verdicts.LAT_UNIT] * 4
    assert es["margin"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert es["note"].tolist()[:3] == ["no finished run yet"] * 3


def test_a_missing_table_is_named_for_every_claim(tmp_path):
    c = _checks(tmp_path)
    assert list(zip(c["id"], c["text"], c["unit"], c["margin"])) == [
        ("op-collapse", "top-op share Gumbel − bi-sampling (> 0): no results/fig2-operation-collapse/collapse-paper.csv yet "
                        "(run the notebook)", "top-op share points", 0.0),
        ("bi-supernet-acc", "supernet val accuracy bi-sampling − Gumbel (> 0): no results/fig2-operation-collapse/"
                            "per_seed-paper.csv yet (run the notebook)", "supernet accuracy points", 0.0),
        ("bi-beats-gumbel", "top1 Gumbel+Random − Gumbel (> 0): no results/table3-sampling/per_seed-paper.csv yet "
                            "(run the notebook)", verdicts.TOP1, 0.0),
        ("bi-search-cost", "search time Gumbel+Random / Gumbel (table3, 90 epochs) (> 1): no results/table3-sampling/"
                           "per_seed-paper.csv yet (run the notebook)", "ratio of search wall times", 1.0),
        ("random-best", "top1 Gumbel+Random − Gumbel+Gumbel (> 0) …: no results/table3-sampling/per_seed-paper.csv yet "
                        "(run the notebook)", verdicts.TOP1, 0.0),
        ("collapse-variants-worse", "top1 Gumbel+Gumbel − Gumbel (< 0) …: no results/table3-sampling/per_seed-paper.csv "
                                    "yet (run the notebook)", verdicts.TOP1, 0.0),
        ("sink-best", "top1 sink-connecting − skip out candidates (> 0) …: no results/table4-depth-space/"
                      "per_seed-paper.csv yet (run the notebook)", verdicts.TOP1, 0.0),
        ("mutual-exclusion", "top1 skip out candidates − skip in candidates (> 0): no results/table4-depth-space/"
                             "per_seed-paper.csv yet (run the notebook)", verdicts.TOP1, 0.0),
        ("exclusion-over-redundancy", "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0): no results/"
                                      "table4-depth-space/per_seed-paper.csv yet (run the notebook)", verdicts.TOP1, 0.0),
        ("skip-in-shallow", "depth sink-connecting − skip in candidates (> 0): no results/table4-depth-space/"
                            "per_seed-paper.csv yet (run the notebook)", "layers", 0.0),
        ("skip-in-shallow", "depth jitter (layers per epoch, 90 epochs) skip in candidates − sink-connecting (> 0): no "
                            "results/fig4-depth-and-latency/per_seed_curves-paper.csv yet (run the notebook)", "layers", 0.0),
        ("es-precise", "latency error, every run within 1 %: no results/table5-latency-objectives/per_seed-paper.csv "
                       "yet (run the notebook)", verdicts.LAT_UNIT, 1.0),
        ("c1-c2-miss", "latency error, every run off by more than 2 %: no results/table5-latency-objectives/"
                       "per_seed-paper.csv yet (run the notebook)", verdicts.LAT_UNIT, 2.0),
        ("c1-around-c2-above", "share of late epochs above the target, w/o ES: no results/fig5-latency-objectives/"
                               "per_seed_curves-paper.csv yet (run the notebook)", verdicts.LATE_UNIT, 0.0),
        ("ours-beats-c1", "top1 Ours (Eq. 9, max) w/ ES − C1 [FBNet] w/ ES (> 0) …: no results/table5-latency-objectives/"
                          "per_seed-paper.csv yet (run the notebook)", verdicts.TOP1, 0.0),
        ("ours-beats-c2", "top1 Ours (Eq. 9, max) w/ ES − C2 [ProxylessNAS] w/ ES (> 0) …: no results/"
                          "table5-latency-objectives/per_seed-paper.csv yet (run the notebook)", verdicts.TOP1, 0.0),
        ("lambda-es-precise", "latency error, every run within 1 %: no results/table13-lambda/per_seed-paper.csv yet "
                              "(run the notebook)", verdicts.LAT_UNIT, 1.0),
        ("lambda-0.1-best", "top1 λ = 0.1 − λ = 0.5 (> 0) …: no results/table13-lambda/per_seed-paper.csv yet "
                            "(run the notebook)", verdicts.TOP1, 0.0)]
    assert set(c["verdict"]) == {"inconclusive"} and c["decides"].all() and (c["n"] == 0).all()
    assert c["mean"].isna().all() and c["values"].eq("").all()
    t = claims.evaluate(tmp_path, OWN)
    assert set(t["verdict"]) == {"inconclusive"} and set(t["min_n"]) == {0}


def _fig5_rows(root: Path, c1: dict, c2: dict, profile: str = OWN) -> None:
    """Fig. 5 curves: objective -> {seed: latencies of epochs 1..9} (target 20)."""
    _write(root, "fig5-latency-objectives", f"per_seed_curves-{profile}",
           [{"objective": o, "series": "w/o elasticity scaling", "seed": s, "epoch": e + 1, "lut_ms": v, "target_ms": 20.0}
            for o, by in (("c1", c1), ("c2", c2)) for s, lat in by.items() for e, v in enumerate(lat)])


ABOVE = [25, 24, 23, 22, 21, 21, 21, 21, 21]  # late epochs 6..9 all above: 100 %
BELOW = [25, 24, 23, 22, 21, 19, 19, 19, 19]  # 0 %
AROUND = [25, 24, 23, 22, 21, 21, 19, 19, 19]  # 25 %
EDGE = [25, 24, 23, 22, 21, 20, 20, 20, 20]  # late epochs at the target: not above, 0 %


@pytest.mark.parametrize("c1, c2, want", [
    ({1: AROUND, 2: AROUND}, {1: ABOVE, 2: ABOVE}, ("reproduced", "reproduced")),
    ({1: BELOW, 2: BELOW}, {1: AROUND, 2: AROUND}, ("not reproduced", "not reproduced")),
    ({1: ABOVE, 2: ABOVE}, {1: EDGE, 2: BELOW}, ("not reproduced", "not reproduced")),
    ({1: AROUND, 2: ABOVE}, {1: ABOVE, 2: AROUND}, ("inconclusive", "inconclusive")),
])
def test_c1_around_and_c2_above_on_both_sides(results, c1, c2, want):
    """C1: strictly between 0 and 100 % of the late epochs above; C2: exactly 100 %; a mix of
    runs that do and runs that do not is inconclusive."""
    _fig5_rows(results, c1, c2)
    c = _checks(results)
    mine = c[c["id"] == "c1-around-c2-above"]
    assert tuple(mine["verdict"]) == want
    notes = ["some runs do, some do not" if v == "inconclusive" else "" for v in want]
    assert mine["note"].tolist() == notes


def test_c1_around_c2_above_one_run_and_no_run(results):
    _fig5_rows(results, {3: AROUND}, {})
    mine = _checks(results).query("id == 'c1-around-c2-above'")
    assert mine["text"].tolist() == [
        "C1 w/o ES, 90 epochs: % of late epochs above the target (between 0 and 100: around it): +25.00 (seeds 3) - "
        "inconclusive: one run",
        "C2 w/o ES, 90 epochs: % of late epochs above the target (100: always above): no run"]
    assert mine["verdict"].tolist() == ["inconclusive", "inconclusive"] and mine["n"].tolist() == [1, 0]
    assert mine["unit"].tolist() == [verdicts.LATE_UNIT] * 2


def test_search_cost_ratio_must_lie_wholly_above_one(results):
    """The ratio's interval against 1: [1, 1] is not above it (inconclusive), 0.9 is below (not
    reproduced); a Gumbel search of 0 minutes gives no ratio."""
    for bi, want in ((10.0, "inconclusive"), (9.0, "not reproduced"), (10.5, "reproduced")):
        _write(results, "fig2-operation-collapse", f"per_seed-{OWN}",
               [{"variant": v, "seed": s, "val_acc": 40.0, "search_min": bi if v == "bi-sampling" else 10.0}
                for v in ("Gumbel", "bi-sampling") for s in SEEDS])
        c = _checks(results)
        row = c[c["what"] == "search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1)"].iloc[0]
        assert row["verdict"] == want and row["margin"] == 1.0
    _write(results, "fig2-operation-collapse", f"per_seed-{OWN}",
           [{"variant": v, "seed": s, "val_acc": 40.0, "search_min": 0.0 if (v, s) == ("Gumbel", 1) else 10.0 + s}
            for v in ("Gumbel", "bi-sampling") for s in SEEDS])
    row = _checks(results).query("what == 'search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1)'").iloc[0]
    assert row["n"] == 2 and row["mean"] == pytest.approx(1.0, abs=1e-9)  # seeds 2, 3 only: 12/12, 13/13
    assert row["note"] == "wall time on a shared 2-core machine, two searches at a time"  # two seeds: not "one seed"
    # one seed: inconclusive, "one seed"; no seed: "no seed has every variant"
    _write(results, "fig2-operation-collapse", f"per_seed-{OWN}",
           [{"variant": v, "seed": 1, "val_acc": 40.0, "search_min": 20.0 if v == "bi-sampling" else 10.0}
            for v in ("Gumbel", "bi-sampling")])
    row = _checks(results).query("what == 'search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1)'").iloc[0]
    assert row["text"] == "search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1): +2.00 (n=1) - inconclusive: one seed"
    _write(results, "fig2-operation-collapse", f"per_seed-{OWN}",
           [{"variant": "Gumbel", "seed": 1, "val_acc": 40.0, "search_min": 10.0}])
    c = _checks(results)
    row = c.query("what == 'search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1)'").iloc[0]
    assert row["text"] == "search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1): no seed has every variant"
    assert row["verdict"] == "inconclusive" and row["unit"] == "ratio of search wall times" and row["margin"] == 1.0
    # and the supernet check of that table: no seed has both
    sup = c[c["id"] == "bi-supernet-acc"].iloc[0]
    assert sup["text"] == "val_acc bi-sampling − Gumbel (90 epochs) (> 0): no seed has both variants"
    assert sup["unit"] == "supernet accuracy points"


def test_paired_check_of_one_seed(tmp_path):
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": v, "seed": 2, "top1": t, "lut_ms": 15.0 + t / 100} for v, t in (("Gumbel", 70.0), ("Gumbel+Random", 72.0))])
    c = _checks(tmp_path)
    row = c[c["id"] == "bi-beats-gumbel"].iloc[0]
    assert row["text"] == "top1 Gumbel+Random − Gumbel (> 0): +2.00 (n=1), LUT latency +0.02 ms apart - inconclusive: one seed"
    assert row["n"] == 1 and pd.isna(row["ci95_low"]) and row["note"] == "one seed"
    assert pd.isna(row["effect"]) and pd.isna(row["sd_pooled"]) and row["seeds_needed"] is None
    gg = c[c["what"] == "top1 Gumbel+Random − Gumbel+Gumbel (> 0)"].iloc[0]
    assert gg["text"] == "top1 Gumbel+Random − Gumbel+Gumbel (> 0): no seed has both variants" and gg["n"] == 0
    assert gg["verdict"] == "inconclusive"


def test_collapse_needs_a_seed_of_both_samplings(results):
    _write(results, "fig2-operation-collapse", f"collapse-{OWN}",
           [{"sampling": "Gumbel", "seed": 1, "layer": 12, "top_share": 80.0},
            {"sampling": "bi-sampling", "seed": 2, "layer": 12, "top_share": 50.0}])
    row = _checks(results).query("id == 'op-collapse'").iloc[0]
    assert row["text"] == "top-op share (%, mean over the counted layers) Gumbel − bi-sampling (> 0): no seed has both"
    assert row["verdict"] == "inconclusive"
    _write(results, "fig2-operation-collapse", f"collapse-{OWN}",
           [{"sampling": sp, "seed": 1, "layer": l, "top_share": v}
            for sp, l, v in (("Gumbel", 12, 80.0), ("Gumbel", 17, 60.0), ("bi-sampling", 12, 50.0), ("bi-sampling", 17, 40.0))])
    row = _checks(results).query("id == 'op-collapse'").iloc[0]
    assert row["text"] == ("top-op share (%, mean over the counted layers) Gumbel − bi-sampling (> 0): +25.00 (n=1) - "
                           "inconclusive: one seed")
    assert row["unit"] == "top-op share points"


def test_exclusion_over_redundancy_one_seed_and_no_seed(results):
    df = pd.read_csv(results / "table4-depth-space" / f"per_seed-{OWN}.csv")
    df[df["seed"] == 2].to_csv(results / "table4-depth-space" / f"per_seed-{OWN}.csv", index=False)
    row = _checks(results).query("id == 'exclusion-over-redundancy'").iloc[0]
    # (73 - 71) - (72 - 73) = 3
    assert row["text"] == "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0): +3.00 (n=1) - inconclusive: one seed"
    assert row["effect"] == pytest.approx(0.3, abs=1e-12) and pd.isna(row["sd_pooled"])
    df[df["variant"] != "sink-connecting"].to_csv(results / "table4-depth-space" / f"per_seed-{OWN}.csv", index=False)
    row = _checks(results).query("id == 'exclusion-over-redundancy'").iloc[0]
    assert row["text"] == "top1 (skip out − skip in) − (sink-connecting − skip out) (> 0): no seed has every variant"
    assert row["n"] == 0 and row["verdict"] == "inconclusive"


def test_check_text_forms():
    e = stats.mean_ci([1.0, 2.0, 3.0])
    base = dict(what="w", estimate=e, verdict="reproduced")
    assert verdicts.Check(**base).text() == "w: +2.00 [-0.48, +4.48] (n=3)"
    assert verdicts.Check(**base, note="n").text() == "w: +2.00 [-0.48, +4.48] (n=3)"  # a note only with these verdicts:
    assert verdicts.Check(**{**base, "verdict": "not tested"}, note="n").text() == "w: +2.00 [-0.48, +4.48] (n=3) - not tested: n"
    assert verdicts.Check(**{**base, "verdict": "inconclusive"}, note="n").text() == "w: +2.00 [-0.48, +4.48] (n=3) - inconclusive: n"
    assert verdicts.Check(**{**base, "verdict": "not reproduced"}, note="n").text() == "w: +2.00 [-0.48, +4.48] (n=3)"
    assert verdicts.Check(**base, remark="r", decides=False).text() == "w: +2.00 [-0.48, +4.48] (n=3) (r) (context, decides nothing)"
    assert verdicts.Check(**base, needs={"dlut_ms": math.nan}).text() == "w: +2.00 [-0.48, +4.48] (n=3)"
    assert verdicts.Check(**base, needs={"dlut_ms": -0.125}).text() == "w: +2.00 [-0.48, +4.48] (n=3), LUT latency -0.12 ms apart"
    assert verdicts.Check("w", None, "inconclusive", "why").text() == "w: why"
    assert verdicts.Check("w", None, "inconclusive", "why", decides=False).text() == "w: why (context, decides nothing)"
    runs = verdicts.Check("w", None, "inconclusive", "why", values=((3, 0.5), (1, -1.25)))
    assert runs.text() == "w: +0.50, -1.25 (seeds 3, 1) - inconclusive: why"
    # two values: the interval is shown (t(0.975, 1) = 12.706, SD sqrt(2), n 2 -> ± 12.71)
    assert verdicts.Check("w", stats.mean_ci([1.0, 3.0]), "inconclusive").text() == "w: +2.00 [-10.71, +14.71] (n=2)"
    one = verdicts.Check("w", stats.mean_ci([2.0]), "inconclusive", "one seed")
    assert one.text() == "w: +2.00 (n=1) - inconclusive: one seed"
    c = verdicts.Check("w", None, "inconclusive")
    assert (c.unit, c.margin, c.values, c.decides, c.needs, c.remark, c.note) == (verdicts.TOP1, 0.0, (), True, {}, "", "")
    assert verdicts.TOP1 == "top-1 points"


def test_mini_decides_latency_on_the_longer_searches_and_shows_its_own_as_context(tmp_path):
    """At mini the 8-epoch searches are context (decide nothing) and the -long ones decide."""
    _table5(tmp_path, "mini")
    _tuned(tmp_path, profile="mini")
    _fig5(tmp_path, "mini")
    c = _checks(tmp_path, "mini")
    es = c[c["id"] == "es-precise"]
    assert es["text"].tolist() == [
        "latency error of C1 [FBNet] w/ ES, 8 epochs, every run within 1 %: +0.50, -0.50, +0.90 (seeds 1, 2, 3) "
        "(context, decides nothing)",
        "latency error of C2 [ProxylessNAS] w/ ES, 8 epochs, every run within 1 %: +0.50, +1.50, +0.20 (seeds 1, 2, 3) - "
        "inconclusive: a run between 1 and 2 % decides neither way (context, decides nothing)",
        "latency error of Ours (Eq. 9, max) w/ ES, 8 epochs, every run within 1 %: +0.10, +0.20, +2.50 (seeds 1, 2, 3) "
        "(context, decides nothing)",
        "latency error of Ours (released code, |.|) w/ ES, 8 epochs, every run within 1 %: -0.10, +0.00, +0.10 "
        "(seeds 1, 2, 3) (context, decides nothing)",
        "latency error, every run within 1 %: no results/table5-latency-objectives/per_seed-mini-long.csv yet "
        "(run the notebook)"]
    assert es["decides"].tolist() == [False] * 4 + [True]
    late = c[c["id"] == "c1-around-c2-above"]
    assert late["text"].tolist() == [
        "C1 w/o ES, 8 epochs: % of late epochs above the target (between 0 and 100: around it): +50.00, +50.00, +50.00 "
        "(seeds 1, 2, 3) (context, decides nothing)",
        "C2 w/o ES, 8 epochs: % of late epochs above the target (100: always above): +100.00, +100.00, +100.00 "
        "(seeds 1, 2, 3) (context, decides nothing)",
        "share of late epochs above the target, w/o ES: no results/fig5-latency-objectives/per_seed_curves-mini-long.csv "
        "yet (run the notebook)"]
    assert late["decides"].tolist() == [False, False, True]
    t = claims.evaluate(tmp_path, "mini", c).set_index("id")
    assert t.loc["es-precise", "verdict"] == "inconclusive" and t.loc["es-precise", "min_n"] == 0
    assert t.loc["c1-around-c2-above", "verdict"] == "inconclusive"
    # the longer searches decide; the -long tuning gates them
    _table5(tmp_path, "mini-long")
    _tuned(tmp_path, profile="mini-long")
    _fig5(tmp_path, "mini-long")
    c = _checks(tmp_path, "mini")
    t = claims.evaluate(tmp_path, "mini", c).set_index("id")
    assert t.loc["c1-around-c2-above", "verdict"] == "reproduced" and t.loc["c1-around-c2-above", "min_n"] == 3
    deciding = c[(c["id"] == "es-precise") & c["decides"]]
    assert deciding["text"].iloc[0] == ("latency error of C1 [FBNet] w/ ES, longer search, every run within 1 %: "
                                        "+0.50, -0.50, +0.90 (seeds 1, 2, 3)")
    _tuned(tmp_path, "unreachable", profile="mini-long")
    c = _checks(tmp_path, "mini")
    c2 = c[c["what"].str.startswith("latency error of C2 [ProxylessNAS] w/ ES")].set_index("decides")["verdict"]
    assert c2[False] == "inconclusive" and c2[True] == "not tested"  # each budget by its own tuning
    # a failed tuning at the short budget: its context check is not tested, and still context
    _tuned(tmp_path, "unreachable", profile="mini")
    c = _checks(tmp_path, "mini")
    ctx = c[c["what"].str.startswith("latency error of C2 [ProxylessNAS] w/o ES") & ~c["decides"]].iloc[0]
    assert ctx["verdict"] == "not tested" and ctx["margin"] == 2.0
    assert ctx["text"].endswith("+5.10, +1.50, +3.00 (seeds 1, 2, 3) - not tested: " + C2_UNREACHABLE.replace(
        "seeds 1 2", "seeds 1 2") + " (context, decides nothing)")
    assert verdicts._budgets("mini") == [("", False), ("-long", True)] and verdicts._budgets(OWN) == [("", True)]
    assert verdicts.LATENCY_BUDGET == {"mini": "-long"}


# ----------------------------------------------------------------------------- the depth checks


def _fig4_series(root: Path, skip_in: dict, sink: dict) -> None:
    rows = [{"panel": "a", "series": k, "seed": s, "epoch": e + 1, "depth": d, "lut_ms": 20.0, "target_ms": 20.0,
             "warmup_epochs": 1} for k, by in (("skip in candidates", skip_in), ("sink-connecting", sink))
            for s, ds in by.items() for e, d in enumerate(ds)]
    _write(root, "fig4-depth-and-latency", f"per_seed_curves-{OWN}", rows)


def test_depth_floor_remark_in_words(results):
    """skip in ends at the floor (6 layers: one a stage in stages 3-8) in every seed; seed 1 from
    epoch 3, seed 2 from epoch 5 (it leaves the floor at 4), seed 3 from 2."""
    _fig4_series(results, {1: [18, 9, 6, 6, 6], 2: [18, 9, 6, 7, 6], 3: [18, 6, 6, 6, 6]},
                 {s: [18, 12, 14, 12, 14] for s in SEEDS})
    row = _checks(results).query("id == 'skip-in-shallow'").iloc[1]
    assert row["text"].endswith(
        " (skip in candidates: the derived depth reaches the space's floor of 6 layers, every skippable layer a skip, "
        "by epoch 2-5 of 5 and stays there in every seed: it cannot move down, so its small jitter is a collapse onto "
        "skips, not a stable choice)")
    # jitter per seed: skip in (3+0+0)/3, (3+1+1)/3, 0; sink 2 each -> -1, -1/3, -2: mean -10/9, SD 0.839 -> ± 2.08
    assert row["mean"] == pytest.approx(-10 / 9, abs=1e-9) and row["verdict"] == "inconclusive"
    # at the floor in every searching epoch (2..5; the warm-up epoch is not counted): "by epoch 2"
    _fig4_series(results, {s: [6, 6, 6, 6, 6] for s in SEEDS}, {s: [18, 12, 14, 12, 14] for s in SEEDS})
    assert "by epoch 2 of 5 and stays" in _checks(results).query("id == 'skip-in-shallow'").iloc[1]["text"]
    # seeds of different lengths (seed 1 still at its 4th epoch): "of" the longest
    _fig4_series(results, {1: [18, 6, 6, 6], 2: [18, 9, 6, 6, 6], 3: [18, 6, 6, 6, 6]}, {s: [18, 12, 14, 12, 14] for s in SEEDS})
    assert "by epoch 2-3 of 5 and stays" in _checks(results).query("id == 'skip-in-shallow'").iloc[1]["text"]
    # one seed ends above the floor: no remark
    _fig4_series(results, {1: [18, 9, 6, 6, 6], 2: [18, 9, 6, 6, 7], 3: [18, 6, 6, 6, 6]},
                 {s: [18, 12, 14, 12, 14] for s in SEEDS})
    assert "floor" not in _checks(results).query("id == 'skip-in-shallow'").iloc[1]["text"]


def test_depth_jitter_counts_only_searching_epochs_of_panel_a(results):
    """The fixture's warm-up epoch (depth 18) and its panel b rows would change the jitter: it is
    3 - (0, 2/3, 1) per seed only without them (EXPECTED_CHECKS)."""
    row = _checks(results).query("id == 'skip-in-shallow'").iloc[1]
    assert row["mean"] == pytest.approx(22 / 9, abs=1e-9) and row["n"] == 3
    # a seed of one series only: paired over the seeds both have
    _fig4_series(results, {1: [18, 6, 9, 6, 9], 2: [18, 6, 9, 6, 9]}, {2: [18, 12, 12, 12, 12], 3: [18, 12, 12, 12, 12]})
    row = _checks(results).query("id == 'skip-in-shallow'").iloc[1]
    assert row["text"] == ("depth jitter (layers per epoch, 90 epochs) skip in candidates − sink-connecting (> 0): +3.00 "
                           "(n=1) - inconclusive: one seed")
    assert row["unit"] == "layers" and row["margin"] == 0.0


def test_total_depth_and_values_cells():
    assert verdicts.total_depth(pd.DataFrame({"depths": ["2-3-1-2-4-1", "1-1-1-1-1-1"]})).tolist() == [13, 6]
    assert forest._values("1:0.500 12:-2.250") == [(1, 0.5), (12, -2.25)]
    assert forest._values("") == [] and forest._values(math.nan) == [] and forest._values(None) == []


# ----------------------------------------------------------------------------- tables, budgets, costs, scope


def test_read_table_errors_name_the_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("")
    with pytest.raises(ValueError) as e:
        verdicts.read_table(p)
    assert str(e.value) == (f"{p}: not a readable CSV table (No columns to parse from file); "
                            "rerun the notebook that writes it (or delete it)")
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError) as e:
        verdicts.read_table(p, ["a", "x", "y", "z", "w"])
    assert str(e.value) == f"{p}: no column x, y, z; rerun the notebook that writes it (or delete it)"
    assert verdicts.read_table(p, ["b", "a"]).to_dict("list") == {"a": [1], "b": [2]}
    p.write_bytes(b"a,b\n\xff\xfe,1\n")
    with pytest.raises(ValueError, match=r"t\.csv: not a readable CSV table \(.*\); rerun the notebook"):
        verdicts.read_table(p)


def test_budget_labels():
    with_epochs = pd.DataFrame({"epochs": [24, 24]})
    assert verdicts._budget_label(with_epochs, "mini", "") == ", 24 epochs"
    assert verdicts._budget_label(with_epochs, "mini", "-long") == ", 24 epochs"
    no_value = pd.DataFrame({"epochs": [math.nan]})
    assert verdicts._budget_label(no_value, "mini", "-long") == ", longer search"
    assert verdicts._budget_label(None, "mini", "") == ", 8 epochs"  # the profile's search budget
    assert verdicts._budget_label(pd.DataFrame({"x": [1]}), OWN, "") == ", 90 epochs"
    assert verdicts._budget_label(None, "no-such-profile", "") == ""
    assert verdicts._deciding_suffix("mini") == "-long" and verdicts._deciding_suffix(OWN) == ""


def test_compute_costs_per_notebook_and_over_distinct_runs(results):
    costs = render.compute_costs(results, OWN)
    assert costs.columns.tolist() == ["notebook", "searches", "retrainings", "search_min", "retrain_min", "compute_min",
                                      "runs_computed_now"]
    rows = costs.to_dict("records")
    assert [r["notebook"] for r in rows] == ["table3-sampling", "table5-latency-objectives", "all notebooks (distinct runs)"]
    # table3: searches s1 (30) s2 (20.4), training t1 (100), two computed now
    want = [(2, 1, 50.4, 100.0, 150.4, 2), (1, 1, 30.0, 50.6, 80.6, 1), (2, 2, 50.4, 150.6, 201.0, 3)]
    for r, (s, t, sm, tm, cm, now) in zip(rows, want):
        assert (r["searches"], r["retrainings"], r["runs_computed_now"]) == (s, t, now)
        assert (r["search_min"], r["retrain_min"], r["compute_min"]) == pytest.approx((sm, tm, cm), abs=1e-9)
    assert render.cost_row("x", pd.DataFrame({"kind": ["search", "other"], "key": ["a", "b"], "source": ["computed now"] * 2,
                                               "wall_min": [1.0, 2.0]})) == {
        "notebook": "x", "searches": 1, "retrainings": 0, "search_min": 1.0, "retrain_min": 0.0, "compute_min": 3.0,
        "runs_computed_now": 2}
    assert render.compute_costs(results, "mini").empty
    assert render.compute_costs(results, "mini").columns.tolist() == costs.columns.tolist()
    assert render.RUNS_COLUMNS == ("kind", "key", "source", "wall_min")
    (results / "table3-sampling" / f"runs-{OWN}.csv").write_text("kind,key\nsearch,s1\n")
    with pytest.raises(ValueError, match="no column source, wall_min"):
        render.compute_costs(results, OWN)


def _scope_tables(root: Path) -> None:
    # nets (seed, LUT ms, top-1): (1, 10, 70) twice (Table 3 and 4: one net), (2, 11, 71), (3, 12, 73), (1, 13, 76)
    # -> 4 distinct; r = 10 / sqrt(5 x 21) = +0.976
    _write(root, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": "a", "seed": 1, "lut_ms": 10.0, "top1": 70.0}, {"variant": "a", "seed": 2, "lut_ms": 11.0, "top1": 71.0},
            {"variant": "a", "seed": 3, "lut_ms": 12.0, "top1": 73.0}])
    _write(root, "table4-depth-space", f"per_seed-{OWN}",
           [{"variant": "b", "seed": 1, "lut_ms": 10.0, "top1": 70.0}, {"variant": "b", "seed": 1, "lut_ms": 13.0, "top1": 76.0},
            {"variant": "c", "seed": 2, "lut_ms": math.nan, "top1": 99.0}])
    _write(root, "table5-latency-objectives", f"per_seed-{OWN}", [{"variant": "d", "seed": 1, "top1": 1.0}])  # no LUT column
    # searches: s1 in three notebooks, s2 in two, s3 in one; the training t1 in all three does not count
    for nb, keys in (("table3-sampling", ["s1", "s2", "s3", "s1"]), ("table4-depth-space", ["s1", "s2"]),
                     ("table5-latency-objectives", ["s1"])):
        _write(root, nb, f"runs-{OWN}", [{"kind": "search", "key": k, "source": "run store", "wall_min": 1.0} for k in keys]
               + [{"kind": "train", "key": "t1", "source": "run store", "wall_min": 1.0}])


SCOPE_PAPER = ("**What the numbers are.** Top-1 is the imagenet validation accuracy of each derived net retrained from "
               "scratch for 250 epochs at 224 px and width x1 (profile `paper`); each search ran 90 epochs (80 with α/β "
               "steps) on imagenet-100.")
SCOPE_SHARED = ("Checks are not independent where they share runs: 2 searches serve more than one notebook, one of them 3 "
                "(by design, Table 3's Gumbel+Random search is also Table 4's sink-connecting, Table 5's Ours (|.|) w/ ES "
                "and Table 13's λ = 0.1 search), so a chance result in one of them moves several claims at once.")


def test_scope_in_words(tmp_path):
    _scope_tables(tmp_path)
    assert render.scope(tmp_path, OWN) == " ".join([
        SCOPE_PAPER,
        "The nets a comparison sets side by side are not latency-matched: over the 4 distinct retrained nets top-1 "
        "correlates with the derived net's LUT latency at r = +0.98, and its per-run SD over seeds is the 'pooled SD' "
        "below, so each top-1 check also prints how far apart its two variants are in latency.",
        SCOPE_SHARED])
    assert render.scope(tmp_path, "no-such-profile") == ""


def test_scope_says_nothing_it_cannot_measure(tmp_path):
    assert render.scope(tmp_path, OWN) == SCOPE_PAPER
    # three nets but one latency: no correlation; two nets: none either; one notebook per search: no sharing
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": "a", "seed": s, "lut_ms": 10.0, "top1": 70.0 + s} for s in SEEDS])
    _write(tmp_path, "table3-sampling", f"runs-{OWN}", [{"kind": "search", "key": "s1", "source": "x", "wall_min": 1.0}])
    _write(tmp_path, "table4-depth-space", f"runs-{OWN}", [{"kind": "search", "key": "s2", "source": "x", "wall_min": 1.0}])
    assert render.scope(tmp_path, OWN) == SCOPE_PAPER
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": "a", "seed": s, "lut_ms": 10.0 + s, "top1": 70.0} for s in SEEDS])
    assert render.scope(tmp_path, OWN) == SCOPE_PAPER
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": "a", "seed": s, "lut_ms": 10.0 + s, "top1": 70.0 + s} for s in (1, 2)])
    assert render.scope(tmp_path, OWN) == SCOPE_PAPER
    _write(tmp_path, "table3-sampling", f"per_seed-{OWN}",
           [{"variant": "a", "seed": s, "lut_ms": 10.0 + s, "top1": 70.0 + s} for s in SEEDS])
    assert "over the 3 distinct retrained nets top-1 correlates with the derived net's LUT latency at r = +1.00" in \
        render.scope(tmp_path, OWN)


def test_scope_of_mini_names_its_longer_searches(tmp_path):
    head = ("**What the numbers are.** Top-1 is the fashion-mnist validation accuracy of each derived net retrained "
            "from scratch for 2 epochs at 28 px and width x0.25 (profile `mini`); each search ran 8 epochs (5 with α/β "
            "steps) on fashion-mnist, the longer ones (`-long` tables, searches only)")
    tail = ". It is not ImageNet top-1: compare signs and rankings with the paper's, not levels."
    assert render.scope(tmp_path, "mini") == head + tail
    _write(tmp_path, "table3-sampling", "per_seed-mini-long", [{"variant": "a", "seed": 1, "lut_ms": 1.0}])
    assert render.scope(tmp_path, "mini") == head + tail  # no epochs column: no number
    _write(tmp_path, "table4-depth-space", "per_seed-mini-long", [{"variant": "a", "seed": 1, "epochs": 24}])
    assert render.scope(tmp_path, "mini") == head + " 24 epochs" + tail
    assert render._long_epochs(tmp_path, "mini") == " 24 epochs"


def test_two_runs_decide_a_latency_claim(tmp_path):
    """Two runs are enough to judge: no "one run" note; a run in the grey zone says so."""
    _write(tmp_path, "table5-latency-objectives", f"per_seed-{OWN}",
           [{"variant": _t5(o, True), "seed": s, "top1": 70.0, "lut_ms": 20.0 * (1 + e / 100), "target_ms": 20.0}
            for o, errs in (("eq9", (0.5, -0.5)), ("abs", (0.5, 1.5))) for s, e in zip((1, 2), errs)])
    c = _checks(tmp_path)
    es = c[c["what"].str.startswith("latency error of Ours")]
    assert es["verdict"].tolist() == ["reproduced", "inconclusive"]
    assert es["note"].tolist() == ["", "a run between 1 and 2 % decides neither way"]
    assert es["text"].tolist() == [
        "latency error of Ours (Eq. 9, max) w/ ES, 90 epochs, every run within 1 %: +0.50, -0.50 (seeds 1, 2)",
        "latency error of Ours (released code, |.|) w/ ES, 90 epochs, every run within 1 %: +0.50, +1.50 (seeds 1, 2) - "
        "inconclusive: a run between 1 and 2 % decides neither way"]


def test_scope_counts_the_nets_of_every_table_and_each_shared_search(tmp_path):
    """Each of the four retraining tables adds its nets (one distinct net each here: dropping any
    table from the count leaves 3); nets equal to 6 decimals are one net; a table without a seed,
    LUT or top-1 column adds nothing; a search shared by two notebooks is already shared."""
    nets = {"table3-sampling": (10.0, 70.0), "table4-depth-space": (11.0, 72.0), "table5-latency-objectives": (12.0, 71.0),
            "table13-lambda": (13.0, 75.0)}
    for nb, (ms, top1) in nets.items():
        _write(tmp_path, nb, f"per_seed-{OWN}", [{"seed": 1, "lut_ms": ms, "top1": top1}])  # exactly these columns
    # the same net as Table 3's, 3e-7 ms apart: one net at 6 decimals, two at 7
    _write(tmp_path, "table4-depth-space", f"per_seed-{OWN}",
           [{"seed": 1, "lut_ms": 11.0, "top1": 72.0}, {"seed": 1, "lut_ms": 10.0000003, "top1": 70.0}])
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}", [{"seed": 1, "lut_ms": 99.0, "top1": 0.0}])  # not a table of nets
    # ms 10..13, top-1 70, 72, 71, 75: r = 7 / sqrt(5 x 14) = +0.837
    corr = ("The nets a comparison sets side by side are not latency-matched: over the 4 distinct retrained nets top-1 "
            "correlates with the derived net's LUT latency at r = +0.84, and its per-run SD over seeds is the 'pooled SD' "
            "below, so each top-1 check also prints how far apart its two variants are in latency.")
    assert render.scope(tmp_path, OWN) == " ".join([SCOPE_PAPER, corr])
    _write(tmp_path, "table13-lambda", f"per_seed-{OWN}", [{"lut_ms": 13.0, "top1": 75.0}])  # no seed column
    assert "over the 3 distinct retrained nets" in render.scope(tmp_path, OWN)
    _write(tmp_path, "table13-lambda", f"per_seed-{OWN}", [{"seed": 1, "lut_ms": 13.0, "top1": 75.0}])
    # s1 in two notebooks (twice in one of them), s2 in one
    _write(tmp_path, "table3-sampling", f"runs-{OWN}", [{"kind": "search", "key": k, "source": "x", "wall_min": w}
                                                         for k, w in (("s1", 1.0), ("s1", 2.0), ("s2", 1.0))])
    _write(tmp_path, "table13-lambda", f"runs-{OWN}", [{"kind": "search", "key": "s1", "source": "x", "wall_min": 1.0}])
    assert render.scope(tmp_path, OWN) == " ".join([
        SCOPE_PAPER, corr, SCOPE_SHARED.replace("2 searches", "1 searches").replace("one of them 3", "one of them 2")])
    _write(tmp_path, "table13-lambda", f"runs-{OWN}", [{"kind": "search", "key": "s1", "source": "x"}])
    with pytest.raises(ValueError, match="no column wall_min"):
        render.scope(tmp_path, OWN)


def test_a_claim_with_no_deciding_check_has_min_n_0_and_is_inconclusive(results):
    """Only context checks (decides=False), or no check at all: min_n 0, and ``combine`` of no
    verdict, inconclusive, whatever the context checks say."""
    c = _checks(results)
    ctx = c.assign(decides=c["id"].eq("op-collapse").map({True: False, False: True}))  # op-collapse: context only
    ctx = ctx[ctx["id"] != "bi-beats-gumbel"]  # bi-beats-gumbel: no check
    t = claims.evaluate(results, OWN, ctx).set_index("id")
    assert t.loc["op-collapse", ["min_n", "verdict"]].tolist() == [0, "inconclusive"]
    assert t.loc["op-collapse", "ours"] == EXPECTED_CHECKS[0][1]
    assert t.loc["bi-beats-gumbel", ["ours", "min_n", "verdict"]].tolist() == ["", 0, "inconclusive"]
    assert t.loc["random-best", ["min_n", "verdict"]].tolist() == [3, "not reproduced"]


def test_paired_checks_gate_on_either_side_and_keep_unit_and_needs():
    """A C1/C2 premise on either variant of a pair gates the check (here C1 on the left), which keeps
    its unit; a top-1 pair without a common seed is inconclusive and still says what deciding needs."""
    c1, eq9 = _t5("c1", False), _t5("eq9", False)
    df = pd.DataFrame([{"variant": c1, "seed": 1, "top1": 70.0, "depth": 12.0}, {"variant": eq9, "seed": 1, "top1": 71.0,
                                                                             "depth": 14.0}])
    premise = {"c1": (False, "C1 untuned"), "c2": (True, "")}
    (ch,) = verdicts._paired_checks(df, [(c1, eq9, -1)], "depth", "layers", "", premise)
    assert (ch.what, ch.verdict, ch.note, ch.unit, ch.needs) == (
        f"depth {c1} − {eq9} (< 0)", "not tested", "C1 untuned", "layers", {})
    assert ch.estimate.mean == -2.0 and ch.estimate.n == 1
    apart = pd.DataFrame([{"variant": "A", "seed": s, "top1": t, "paper_top1": 75.0} for s, t in ((1, 70.0), (2, 71.0))]
                         + [{"variant": "B", "seed": 3, "top1": 69.0, "paper_top1": 74.0}])
    (ch,) = verdicts._paired_checks(apart, [("A", "B", +1)], "top1", verdicts.TOP1, "", None)
    assert (ch.estimate, ch.verdict, ch.note) == (None, "inconclusive", "no seed has both variants")
    assert ch.needs == verdicts._needs(apart, "A", "B", None) and ch.needs["effect"] == 1.0
    assert ch.needs["sd_pooled"] == pytest.approx(math.sqrt(0.5)) and ch.needs["seeds_needed"] is not None
    two = pd.DataFrame([{"variant": v, "seed": s, "top1": 70.0 + s + (v == "A")} for v in "AB" for s in (1, 2)])
    (ch,) = verdicts._paired_checks(two, [("A", "B", +1)], "top1", verdicts.TOP1, "", None)
    assert (ch.estimate.n, ch.note) == (2, "")  # two seeds: an interval, no "one seed" note


def _claim_evaluators(ev):
    """Every evaluator inside ``ev`` (AllOf opened)."""
    return [e for x in ev.evaluators for e in _claim_evaluators(x)] if isinstance(ev, verdicts.AllOf) else [ev]


def test_every_paired_claim_has_directions_of_one():
    """A pair's direction is +1 (the paper says a > b) or -1 (a < b), nothing else: the '>'/'<' of
    every check's text and ``stats.verdict`` read it so."""
    paired = [e for c in claims.CLAIMS for e in _claim_evaluators(c.evaluate) if isinstance(e, verdicts.PairedClaim)]
    assert len(paired) >= 9
    assert {d for e in paired for _, _, d in e.pairs} == {1, -1}


def test_a_paired_claim_reads_its_premise_only_when_tuned_and_at_its_own_budget(tmp_path):
    """C1/C2 variants are gated by the tuning of the claim's own table suffix, and only in a claim
    marked ``tuned``."""
    c1, eq9 = _t5("c1", False), _t5("eq9", False)
    rows = [{"variant": v, "seed": s, "top1": 70.0 + s + (v == eq9)} for v in (c1, eq9) for s in SEEDS]
    _write(tmp_path, "table5-latency-objectives", f"per_seed-{OWN}-long", rows)
    _tuned(tmp_path, profile=f"{OWN}-long")  # both converged at the longer budget
    _write(tmp_path, "table5-latency-objectives", f"tuned-{OWN}",  # C1 unreachable at the profile's own budget
           [{"objective": "c1", "status": "unreachable", "lam": 0.5, "gap_pct": 9.0, "seeds": "1"}])
    claim = verdicts.PairedClaim("table5-latency-objectives", [(eq9, c1, +1)], suffix="-long", tuned=True)
    (ch,) = claim(tmp_path, OWN)
    assert (ch.verdict, ch.note) == ("reproduced", "")  # the -long tuning converged
    _write(tmp_path, "table5-latency-objectives", f"tuned-{OWN}-long",
           [{"objective": "c1", "status": "unreachable", "lam": 0.5, "gap_pct": 9.0, "seeds": "1"}])
    assert claim(tmp_path, OWN)[0].verdict == "not tested"
    (ch,) = verdicts.PairedClaim("table5-latency-objectives", [(eq9, c1, +1)], suffix="-long")(tmp_path, OWN)
    assert (ch.verdict, ch.note) == ("reproduced", "")  # not marked tuned: no premise


def test_search_cost_reads_fig2_at_both_budgets_even_without_table3(tmp_path):
    """Fig. 2's longer searches give a ratio of their own (labelled as the longer budget where the
    table says no epochs); a missing Table 3 is one inconclusive check and does not stop the Fig. 2
    ones; a search of under a minute still gives a ratio."""
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}",
           [{"variant": v, "seed": s, "search_min": (1.2 if v == "bi-sampling" else 0.5) * s} for v in ("Gumbel", "bi-sampling")
            for s in SEEDS])
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}-long",
           [{"variant": v, "seed": s, "search_min": 3.0 if v == "bi-sampling" else 2.0} for v in ("Gumbel", "bi-sampling")
            for s in SEEDS])
    got = verdicts.search_cost(tmp_path, OWN)
    assert [(c.what, c.verdict) for c in got] == [
        ("search time Gumbel+Random / Gumbel (table3, 90 epochs) (> 1)", "inconclusive"),
        ("search time bi-sampling / Gumbel (fig2, 90 epochs) (> 1)", "reproduced"),
        ("search time bi-sampling / Gumbel (fig2, longer search) (> 1)", "reproduced")]
    assert got[0].note == f"no results/table3-sampling/per_seed-{OWN}.csv yet (run the notebook)"
    # every seed's ratio, seed 1's Gumbel search of 0.5 min included: 2.4 and 1.5 each
    assert (got[1].estimate.n, got[1].estimate.mean) == (3, pytest.approx(2.4))
    assert (got[2].estimate.n, got[2].estimate.mean) == (3, pytest.approx(1.5))


def test_depth_jitter_at_both_budgets_and_without_the_main_table(tmp_path):
    """The longer searches' table gives a jitter check of its own (labelled as the longer budget
    where it has no epochs column); a missing main table is one inconclusive check and does not
    stop the longer one; a seed whose jitter one series cannot give (one searching epoch) is left
    out, and with no seed left the check says why."""
    def curves(name, by_series):
        _write(tmp_path, "fig4-depth-and-latency", name,
               [{"panel": "a", "series": k, "seed": s, "epoch": e + 1, "depth": d, "warmup_epochs": 1}
                for k, by in by_series.items() for s, ds in by.items() for e, d in enumerate(ds)])

    # skip in jitters 2 a step, sink 0 (seed 3: sink has a single searching epoch, so no jitter)
    curves(f"per_seed_curves-{OWN}-long", {"skip in candidates": {s: [18, 10, 12, 10] for s in SEEDS},
                                           "sink-connecting": {1: [18, 14, 14, 14], 2: [18, 14, 14, 14], 3: [18, 14]}})
    got = verdicts.depth_jitter(tmp_path, OWN)
    assert [(c.what, c.verdict, c.note) for c in got] == [
        ("depth jitter (layers per epoch, 90 epochs) skip in candidates − sink-connecting (> 0)", "inconclusive",
         f"no results/fig4-depth-and-latency/per_seed_curves-{OWN}.csv yet (run the notebook)"),
        ("depth jitter (layers per epoch, longer search) skip in candidates − sink-connecting (> 0)", "reproduced", "")]
    assert (got[1].estimate.n, got[1].estimate.mean) == (2, 2.0)  # seeds 1 and 2
    d = pd.read_csv(tmp_path / "fig4-depth-and-latency" / f"per_seed_curves-{OWN}-long.csv").assign(epochs=24)
    d.to_csv(tmp_path / "fig4-depth-and-latency" / f"per_seed_curves-{OWN}-long.csv", index=False)
    assert verdicts.depth_jitter(tmp_path, OWN)[1].what == (
        "depth jitter (layers per epoch, 24 epochs) skip in candidates − sink-connecting (> 0)")
    curves(f"per_seed_curves-{OWN}-long", {"skip in candidates": {1: [18, 10]}, "sink-connecting": {1: [18, 14], 2: [18, 14, 15]}})
    assert [(c.verdict, c.note, c.unit) for c in verdicts.depth_jitter(tmp_path, OWN)][1] == (
        "inconclusive", "fewer than two searching epochs after the first", "layers")
    curves(f"per_seed_curves-{OWN}-long", {"skip in candidates": {1: [18, 10, 12]}, "sink-connecting": {2: [18, 14, 15]}})
    assert verdicts.depth_jitter(tmp_path, OWN)[1].note == "no seed has every variant"  # no common seed
    # the main table too short for a jitter: one check saying so, and the longer table still checked
    curves(f"per_seed_curves-{OWN}", {"skip in candidates": {1: [18, 10]}, "sink-connecting": {1: [18, 14]}})
    assert [c.note for c in verdicts.depth_jitter(tmp_path, OWN)] == [
        "fewer than two searching epochs after the first", "no seed has every variant"]


def test_supernet_accuracy_labels_each_budget(tmp_path):
    """The supernet check of Fig. 2's longer searches is labelled with their epochs, or as the
    longer search where the table gives none; the profile's own table with the profile's epochs."""
    rows = [{"variant": v, "seed": s, "val_acc": 40.0 + s + (v == "bi-sampling")} for v in ("Gumbel", "bi-sampling")
            for s in SEEDS]
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}", rows)
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}-long", rows)
    assert [c.what for c in verdicts.supernet_accuracy(tmp_path, OWN)] == [
        "val_acc bi-sampling − Gumbel (90 epochs) (> 0)", "val_acc bi-sampling − Gumbel (longer search) (> 0)"]
    _write(tmp_path, "fig2-operation-collapse", f"per_seed-{OWN}-long", [{**r, "epochs": 24} for r in rows])
    assert verdicts.supernet_accuracy(tmp_path, OWN)[1].what == "val_acc bi-sampling − Gumbel (24 epochs) (> 0)"


def test_a_latency_claim_at_mini_reads_the_longer_searches_whatever_its_own_table(tmp_path):
    """At mini the 8-epoch table is context and the longer one decides: a missing 8-epoch table
    does not stop the longer one; the longer one's label comes from its epochs column; a run is
    judged on its LUT and target alone (a missing top-1 does not drop it); a variant with no
    finished run in the context table is a context check too."""
    v = _t5("eq9", True)
    claim = verdicts.LatencyClaim("table5-latency-objectives", lambda df: [v], True)
    _write(tmp_path, "table5-latency-objectives", "per_seed-mini-long",
           [{"variant": v, "seed": s, "lut_ms": 20.0 + 0.01 * s, "target_ms": 20.0, "top1": math.nan if s == 1 else 70.0,
             "epochs": 24} for s in SEEDS])
    (ch,) = claim(tmp_path, "mini")
    assert (ch.what, ch.verdict, ch.decides) == (f"latency error of {v}, 24 epochs, every run within 1 %", "reproduced", True)
    assert [s for s, _ in ch.values] == [1, 2, 3]  # seed 1, without a top-1, is judged too
    _write(tmp_path, "table5-latency-objectives", "per_seed-mini",
           [{"variant": v, "seed": 1, "lut_ms": math.nan, "target_ms": 20.0, "epochs": 8}])
    first, second = claim(tmp_path, "mini")
    assert (first.what, first.note, first.decides) == (
        f"latency error of {v}, 8 epochs, every run within 1 %", "no finished run yet", False)
    assert second == ch


def test_c1_around_c2_above_at_mini_reads_the_longer_searches_and_their_premise(tmp_path):
    """At mini: a missing 8-epoch table does not stop the longer one; its label comes from its
    epochs column (else "longer search"); and its C1/C2 premise from the longer searches' tuning."""
    def curves(name, extra):
        # C1 crosses the target in its late epochs (3 of 4 above: 75 %), C2 stays above (100 %)
        _write(tmp_path, "fig5-latency-objectives", name,
               [{"series": "w/o elasticity scaling", "objective": o, "seed": s, "epoch": e, "target_ms": 20.0,
                 "lut_ms": (19.0 if (o, e) == ("c1", 7) else 21.0), **extra} for o in ("c1", "c2") for s in SEEDS
                for e in range(1, 9)])

    curves("per_seed_curves-mini-long", {})
    _tuned(tmp_path, profile="mini-long")
    got = verdicts.c1_around_c2_above(tmp_path, "mini")
    assert [(c.what, c.verdict) for c in got] == [
        ("C1 w/o ES, longer search: % of late epochs above the target (between 0 and 100: around it)", "reproduced"),
        ("C2 w/o ES, longer search: % of late epochs above the target (100: always above)", "reproduced")]
    curves("per_seed_curves-mini-long", {"epochs": 24})
    assert verdicts.c1_around_c2_above(tmp_path, "mini")[0].what.startswith("C1 w/o ES, 24 epochs: ")
    _tuned(tmp_path, c2_status="unreachable", profile="mini-long")  # the longer searches' C2 was not tunable
    _tuned(tmp_path, profile="mini")  # the 8-epoch one's was
    assert [c.verdict for c in verdicts.c1_around_c2_above(tmp_path, "mini")] == ["reproduced", "not tested"]


def test_c1_around_c2_above_edge_cases(tmp_path):
    """A run whose C1 is above the target in 1 of 134 late epochs (0.75 %) is around it (any share
    strictly between 0 and 100); an objective without runs in the 8-epoch context table is a
    context check and does not stop the other objective's."""
    def rows(objs, epochs, above):
        return [{"series": "w/o elasticity scaling", "objective": o, "seed": s, "epoch": e, "target_ms": 20.0,
                 "lut_ms": 21.0 if above(o, e) else 19.0} for o in objs for s in SEEDS for e in range(1, epochs + 1)]

    _tuned(tmp_path, profile="mini-long")
    _tuned(tmp_path, profile="mini")
    # 300 epochs: late = epoch > 300 x 50/90, i.e. 167-300 (134); C1 above only at 300, C2 always
    _write(tmp_path, "fig5-latency-objectives", "per_seed_curves-mini-long",
           rows(("c1", "c2"), 300, lambda o, e: o == "c2" or e == 300))
    _write(tmp_path, "fig5-latency-objectives", "per_seed_curves-mini", rows(("c2",), 8, lambda o, e: True))
    got = verdicts.c1_around_c2_above(tmp_path, "mini")
    assert [(c.what.split(":")[0], c.verdict, c.note, c.decides) for c in got] == [
        ("C1 w/o ES, 8 epochs", "inconclusive", "no run", False),
        ("C2 w/o ES, 8 epochs", "reproduced", "", False),
        ("C1 w/o ES, longer search", "reproduced", "", True),
        ("C2 w/o ES, longer search", "reproduced", "", True)]
    assert got[2].values == tuple((s, pytest.approx(100 / 134)) for s in SEEDS)


def test_collapse_with_one_sampling_only_says_no_seed_has_both(tmp_path):
    for only in ("bi-sampling", "Gumbel"):
        _write(tmp_path, "fig2-operation-collapse", f"collapse-{OWN}",
               [{"sampling": only, "seed": s, "layer": 3, "top_share": 90.0} for s in SEEDS])
        (ch,) = verdicts.Collapse()(tmp_path, OWN)
        assert (ch.estimate, ch.verdict, ch.note) == (None, "inconclusive", "no seed has both"), only
    # two seeds of both: an interval, no "one seed" note
    _write(tmp_path, "fig2-operation-collapse", f"collapse-{OWN}",
           [{"sampling": sp, "seed": s, "layer": 3, "top_share": 90.0 + s - 5 * (sp == "bi-sampling")}
            for sp in ("Gumbel", "bi-sampling") for s in (1, 2)])
    (ch,) = verdicts.Collapse()(tmp_path, OWN)
    assert (ch.estimate.n, ch.estimate.mean, ch.note, ch.verdict) == (2, 5.0, "", "reproduced")
    row = claims.evaluate_checks(tmp_path, OWN).query("id == 'op-collapse'").iloc[0]
    assert (row["n"], row["ci95_low"], row["ci95_high"]) == (2, 5.0, 5.0)  # two seeds have an interval


def test_needs_reads_the_paper_effect_whatever_else_a_row_lacks():
    """The paper's difference comes from ``paper_top1`` alone: a variant whose rows miss their LUT
    latency (or anything else) still has its paper number."""
    df = pd.DataFrame([{"variant": v, "seed": s, "top1": 70.0 + s, "paper_top1": p, "lut_ms": math.nan if v == "A" else 10.0}
                       for v, p in (("A", 75.0), ("B", 74.5)) for s in SEEDS])
    assert verdicts._needs(df, "A", "B", None)["effect"] == 0.5


def test_read_table_names_an_error_without_a_message_by_its_type(tmp_path, monkeypatch):
    def torn(path):
        raise pd.errors.ParserError("")

    monkeypatch.setattr(verdicts.pd, "read_csv", torn)
    with pytest.raises(ValueError) as e:
        verdicts.read_table(tmp_path / "t.csv")
    assert str(e.value) == (f"{tmp_path / 't.csv'}: not a readable CSV table (ParserError); "
                            "rerun the notebook that writes it (or delete it)")
