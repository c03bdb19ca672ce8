"""The experiments layer: run keys, reuse between tables, the side-by-side summary."""
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.runs.store import config_hash
from tfnas_core.search import config as search_config
from tfnas_core.search.config import RESUME_FREE_KEYS


def test_search_key_follows_the_lut_content(tmp_path):
    lut = tmp_path / "lut.json"
    shutil.copy(search_config.resolve_path("tfnas_core/luts/cpu_local.json"), lut)
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


def test_longer_context_multiplies_the_epochs_and_shares_the_ledger():
    ctx = E.Context("smoke")
    base = E.search_cfg(ctx, 2)
    long = E.longer(ctx, 3)
    cfg = E.search_cfg(long, 2, second_path="random")
    assert cfg.epochs == 3 * base.epochs and cfg.warmup_epochs == base.warmup_epochs
    assert long.ledger is ctx.ledger and long.compute
    assert E.longer(ctx, 1) is None and E.longer(E.Context("paper"), 3) is None


def test_context_settings_are_frozen_apart_from_its_state(tmp_path):
    """``Context``'s settings never change in place (``replace`` makes a new context); its state
    (ledger, missing runs, compute, planning, log) is its own and is shared unless replaced."""
    import dataclasses

    ctx = E.Context("smoke", runs_root=str(tmp_path), executor="local", jobs=2, slurm={"partition": "gpu"})
    with pytest.raises(AttributeError):
        ctx.profile = "mini"
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.settings.runs_root = "elsewhere"
    other = ctx.replace(measured="m.json", compute=False)
    assert other.measured == "m.json" and ctx.measured is None and not other.compute and ctx.compute
    assert other.ledger is ctx.ledger and other.missing is ctx.missing and other.settings.profile == "smoke"
    with pytest.raises(TypeError, match="unknown field"):
        ctx.replace(profil="mini")
    ex = ctx.executor_settings()  # what the execution wing is told: typed, nothing else of the context
    assert (ex.executor, ex.jobs, ex.slurm.partition, ex.runs_root, ex.profile) == ("local", 2, "gpu", str(tmp_path.resolve()), "smoke")
    assert ctx.job_settings()["runs_root"] == str(tmp_path.resolve()) and "executor" not in ctx.job_settings()
    with pytest.raises(ValueError, match="executor"):
        E.Context("smoke", executor="cloud")


def test_each_table_plans_the_runs_its_notebook_calls():
    """``plans.steps`` builds each table from the very functions the notebooks call (one source)."""
    import json

    from tfnas_core.experiments import plans

    calls = {"table3-sampling": "E.table3(ctx, seeds)", "table4-depth-space": "E.table4(ctx, seeds)",
             "table13-lambda": "E.table13(ctx, seeds)", "table5-latency-objectives": "E.table5(ctx, seeds, tuned)"}
    for nb, call in calls.items():
        cells = json.loads((Path(__file__).parents[1] / "notebooks" / f"{nb}.ipynb").read_text())["cells"]
        assert any(call in "".join(c["source"]) for c in cells if c["cell_type"] == "code"), (nb, call)
        fn = call.split("(")[0].removeprefix("E.")
        step = plans.steps(nb, E.Context("smoke"), [2], long_factor=1, tune=False)[-1]
        assert fn in step.build.__code__.co_names, (nb, step.build.__code__.co_names)


@pytest.mark.slow
def test_a_finished_only_context_computes_nothing_and_lists_what_is_missing(tmp_path):
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), progress=False, log=lambda m: None)
    lazy = E.longer(ctx, 2, compute=False)
    with pytest.raises(E.MissingRun):
        E.search_run(lazy, 2, second_path="none")
    assert not (tmp_path / "runs").exists()  # nothing was started
    variants = [v for v in E.table3_variants() if v.label in ("Gumbel", "Gumbel+Random")]
    assert E.searches(lazy, variants, [2]) == {"Gumbel": [], "Gumbel+Random": []}
    missing = E.missing_table(lazy)
    assert len(missing) == 2 and set(missing["status"]) == {"absent"}
    assert missing["what"].str.contains("epochs=4, warmup_epochs=1").all()  # the longer budget is named
    done = E.search_run(E.longer(ctx, 2), 2, **variants[0].overrides)  # computed by a computing context
    found = E.searches(lazy, variants, [2])
    assert [r.path for r in found["Gumbel"]] == [done.path] and found["Gumbel+Random"] == []
    rows = E.search_rows(found)
    assert list(rows.columns) == ["variant", "seed", "lut_ms", "target_ms", "depths", "val_acc", "epochs", "search_min"]
    assert rows["epochs"].tolist() == [4] and (rows["search_min"] > 0).all()
    curves = E.per_seed_curves(found, panel="a")
    assert len(curves) == 4 and curves["epoch"].tolist() == [1, 2, 3, 4] and (curves["warmup_epochs"] == 1).all()
    assert (curves["depth"] > 0).all() and (curves["lut_ms"] > 0).all() and set(curves["panel"]) == {"a"}
