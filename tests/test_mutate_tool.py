"""make mutate's scoring (benchmarks/mutate.py) and its list of equivalent mutants: every listed name
must point at a function of the module it names, with a reason."""
from __future__ import annotations

import importlib
import re

import pytest

from benchmarks import mutate

NAME = re.compile(r"^(tfnas_core(?:\.[a-z_]+)+)\.x(?:ǁ(\w+)ǁ)?_?(\w+?)__mutmut_\d+$")


def test_score_counts_equivalents_out_and_lists_the_other_survivors():
    st = {"tfnas_core.search.scaling.x_a__mutmut_1": "killed", "tfnas_core.search.scaling.x_a__mutmut_2": "timeout",
          "tfnas_core.search.scaling.x_a__mutmut_3": "survived", "tfnas_core.search.scaling.x_a__mutmut_4": "survived",
          "tfnas_core.search.scaling.x_a__mutmut_5": "no tests", "tfnas_core.stats.x_b__mutmut_1": "killed"}
    res = mutate.score(st, {"tfnas_core.search.scaling.x_a__mutmut_3": "same"})
    sc = res["modules"]["scaling"]
    assert (sc["mutants"], sc["killed"], sc["timeout"], sc["survived"], sc["no_tests"], sc["equivalent"]) == (5, 1, 1, 2, 1, 1)
    assert sc["score_pct"] == 50.0  # (1 killed + 1 timeout) / (5 - 1 equivalent)
    assert sc["undetected"] == ["tfnas_core.search.scaling.x_a__mutmut_4", "tfnas_core.search.scaling.x_a__mutmut_5"]
    assert res["modules"]["stats"]["score_pct"] == 100.0 and res["score_pct"] == round(100 * 3 / 5, 1)
    md = mutate.markdown({**res, "wall_s": 90.0, "jobs": 1, "machine": "2 CPU cores"}, {})
    assert "run time 1.5 min with 1 worker(s) on 2 CPU cores" in md
    assert "- scaling: x_a__mutmut_4, x_a__mutmut_5" in md
    assert "stale" not in md and sc["stale"] == []


def test_a_listed_equivalent_that_a_test_kills_is_reported_stale():
    st = {"tfnas_core.stats.x_b__mutmut_1": "killed", "tfnas_core.stats.x_b__mutmut_2": "timeout",
          "tfnas_core.stats.x_b__mutmut_3": "survived"}
    listed = dict.fromkeys(st, "said to be equivalent")
    res = mutate.score(st, listed)
    t = res["modules"]["stats"]
    assert t["stale"] == ["tfnas_core.stats.x_b__mutmut_1", "tfnas_core.stats.x_b__mutmut_2"]
    assert t["equivalent"] == 1 and t["score_pct"] == 100.0
    md = mutate.markdown(res, listed)
    assert "## Listed as equivalent, yet killed: stale lines of `benchmarks/mutation_equivalents.tsv`" in md
    assert "- stats: x_b__mutmut_1, x_b__mutmut_2" in md


def test_mutants_a_stopped_run_did_not_reach_are_counted_apart_and_not_scored():
    st = {"tfnas_core.stats.x_b__mutmut_1": "killed", "tfnas_core.stats.x_b__mutmut_2": "survived",
          "tfnas_core.stats.x_b__mutmut_3": "not checked", "tfnas_core.stats.xǁEǁc__mutmut_1": "not checked"}
    res = mutate.score(st, {})
    sc = res["modules"]["stats"]
    assert (sc["score_pct"], res["score_pct"], res["not_run"]) == (50.0, 50.0, 2)  # 1 of the 2 run
    assert sc["undetected"] == ["tfnas_core.stats.x_b__mutmut_2"] and sc["not_run"] == {"x_b": 1, "xǁEǁc": 1}
    md = mutate.markdown({**res, "wall_s": None}, {})
    assert "2 not run; score 50.0 %" in md and "- stats: x_b 1, xǁEǁc 1" in md
    assert "| stats | 4 | 1 | 1 | 0 | 0 | 0 | 2 | 50.0 |" in md


def test_a_list_line_without_a_reason_is_one_line(tmp_path):
    p = tmp_path / "eq.tsv"
    p.write_text("# comment\n\ntfnas_core.stats.x_b__mutmut_1\n")
    with pytest.raises(SystemExit, match=r"eq.tsv:3: expected 'MUTANT<TAB>reason'"):
        mutate.equivalents(p)


def test_every_listed_mutant_names_a_function_of_its_module_and_a_reason():
    listed = mutate.equivalents(mutate.EQUIVALENTS)
    assert listed, f"{mutate.EQUIVALENTS} lists nothing"
    for name, why in listed.items():
        m = NAME.match(name)
        assert m, name
        module, cls, func = m.groups()
        assert any(name.startswith(g.split("*")[0].rsplit(".x_", 1)[0]) for gs in mutate.MODULES.values() for g in gs), name
        mod = importlib.import_module(module)
        owner = getattr(mod, cls) if cls else mod
        assert hasattr(owner, func) or hasattr(owner, "_" + func), name
        assert len(why) > 20, (name, why)


def test_merge_takes_each_mutant_from_the_last_run_that_checked_it():
    first = {"m.x_a__mutmut_1": "survived", "m.x_a__mutmut_2": "killed", "m.x_b__mutmut_1": "survived",
             "m.x_b__mutmut_2": "survived", "m.x_c__mutmut_1": "not checked"}
    # b's survivors checked again (one killed by a new test); c checked for the first time
    second = {"m.x_a__mutmut_1": "not checked", "m.x_a__mutmut_2": "not checked", "m.x_b__mutmut_1": "killed",
              "m.x_b__mutmut_2": "not checked", "m.x_c__mutmut_1": "no tests"}
    assert mutate.merge([first, second]) == {"m.x_a__mutmut_1": "survived", "m.x_a__mutmut_2": "killed",
                                             "m.x_b__mutmut_1": "killed", "m.x_b__mutmut_2": "survived",
                                             "m.x_c__mutmut_1": "no tests"}
    assert mutate.merge([second, first])["m.x_b__mutmut_1"] == "survived"
    assert mutate.merge([first]) == first and mutate.merge([]) == {}


def test_merge_takes_a_renumbered_function_whole_from_the_later_run():
    first = {"m.x_a__mutmut_1": "survived", "m.x_a__mutmut_2": "killed", "m.x_a__mutmut_3": "survived",
             "m.x_b__mutmut_1": "killed"}
    # a's code changed: two mutants now, one checked so far
    second = {"m.x_a__mutmut_1": "killed", "m.x_a__mutmut_2": "not checked", "m.x_b__mutmut_1": "not checked"}
    assert mutate.merge([first, second]) == {"m.x_a__mutmut_1": "killed", "m.x_a__mutmut_2": "not checked",
                                             "m.x_b__mutmut_1": "killed"}
    # c was removed from the code: the last run lists none of its mutants
    assert mutate.merge([{**first, "m.x_c__mutmut_1": "survived"}, second]) == mutate.merge([first, second])


def test_an_equivalent_mutant_not_run_counts_once():
    st = {"tfnas_core.stats.x_b__mutmut_1": "killed", "tfnas_core.stats.x_b__mutmut_2": "not checked"}
    sc = mutate.score(st, {"tfnas_core.stats.x_b__mutmut_2": "same"})["modules"]["stats"]
    assert (sc["equivalent"], sc["not_checked"], sc["score_pct"]) == (0, 1, 100.0)


def test_merge_refuses_a_folder_without_a_run(tmp_path):
    with pytest.raises(SystemExit, match=f"error: {tmp_path}: no mutants/ folder"):
        mutate.main(["--merge", str(tmp_path)])
