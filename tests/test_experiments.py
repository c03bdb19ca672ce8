"""The experiments layer: run keys, reuse between tables, the side-by-side summary."""
import math
import shutil

import pandas as pd
import pytest

from tfnas_core import experiments as E
from tfnas_core.runs import config_hash
from tfnas_core.search_config import RESUME_FREE_KEYS


def test_search_key_follows_the_lut_content(tmp_path):
    lut = tmp_path / "lut.json"
    shutil.copy(E.search_config.resolve_path("tfnas_core/luts/cpu_local.json"), lut)
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), search_overrides={"lut": str(lut)})
    key = lambda: config_hash("search", E.search_key(E.search_cfg(ctx, 2)), RESUME_FREE_KEYS)  # noqa: E731
    before = key()
    assert before == key()
    lut.write_text(lut.read_text().replace('"base": ', '"base": 1', 1))
    assert key() != before


def test_table_variants_share_runs():
    """Table 3's Gumbel+Random, Table 4's sink, Table 5's |.| w/ ES and Table 13's λ 0.1 are one run."""
    ctx = E.Context("smoke")
    keys = []
    for variants, label in ((E.table3_variants(), "Gumbel+Random"), (E.table4_variants(), "sink-connecting"),
                            (E.table5_variants(), "Ours (released code, |.|) w/ ES"), (E.table13_variants(), "λ = 0.1")):
        v = next(v for v in variants if v.label == label)
        keys.append(config_hash("search", E.search_key(E.search_cfg(ctx, 2, **v.overrides)), RESUME_FREE_KEYS))
    assert len(set(keys)) == 1
    assert len(E.table5_variants()) == 8 and len(E.table13_variants()) == 6


def test_summary_puts_ours_beside_the_paper():
    per_seed = pd.DataFrame([
        {"variant": "b", "seed": 1, "top1": 80.0, "flops_m": 300.0, "depths": "1", "paper_top1": 76.0, "paper_flops_m": 310},
        {"variant": "b", "seed": 2, "top1": 82.0, "flops_m": 320.0, "depths": "1", "paper_top1": 76.0, "paper_flops_m": 310},
        {"variant": "a", "seed": 1, "top1": 70.0, "flops_m": 200.0, "depths": "1", "paper_top1": 77.0, "paper_flops_m": 250},
    ])
    s = E.summarise(per_seed)
    assert s["variant"].tolist() == ["b", "a"] and s["seeds"].tolist() == [2, 1]
    assert list(s.columns[:6]) == ["variant", "seeds", "top1", "top1_ci95", "paper_top1", "top1_minus_paper"]
    assert s.loc[0, "top1_ci95"] == pytest.approx(12.7062, abs=1e-3)  # t(0.975, 1) * sd(80, 82) / sqrt(2)
    assert math.isnan(s.loc[1, "top1_ci95"])  # one seed: no interval
    assert s.loc[0, "top1"] == 81.0 and s.loc[0, "top1_minus_paper"] == pytest.approx(5.0)
    assert s.loc[1, "flops_minus_paper"] == pytest.approx(-50.0)
    text = E.ranking(s)
    assert "ours by top1: b > a" in text and "paper:        a > b" in text and "different best" in text


def test_paired_comparisons_give_a_verdict_per_pair():
    rows = [{"variant": v, "seed": seed, "top1": t} for v, seed, t in
            [("bi", 1, 81.0), ("bi", 2, 82.0), ("bi", 3, 80.5), ("g", 1, 79.0), ("g", 2, 80.2), ("g", 3, 78.9),
             ("x", 7, 70.0)]]
    out = E.paired_comparisons(pd.DataFrame(rows), [("bi", "g", "top1", +1), ("g", "bi", "top1", +1),
                                                    ("bi", "x", "top1", +1)])
    assert out["verdict"].tolist() == ["reproduced", "not reproduced", "inconclusive"]
    assert out.loc[0, "seeds"] == 3 and out.loc[0, "mean_diff"] == pytest.approx((2.0 + 1.8 + 1.6) / 3)
    assert out.loc[0, "ci95_low"] > 0 and out.loc[2, "seeds"] == 0
