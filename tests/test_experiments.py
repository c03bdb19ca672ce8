"""The experiments layer: run keys, reuse between tables, the side-by-side summary."""
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
    assert list(s.columns[:5]) == ["variant", "seeds", "top1", "paper_top1", "top1_minus_paper"]
    assert s.loc[0, "top1"] == 81.0 and s.loc[0, "top1_minus_paper"] == pytest.approx(5.0)
    assert s.loc[1, "flops_minus_paper"] == pytest.approx(-50.0)
    text = E.ranking(s)
    assert "ours by top1: b > a" in text and "paper:        a > b" in text and "different best" in text
