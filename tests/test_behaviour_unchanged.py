"""The regroup of issue 30 (and every later refactor) keeps behaviour: run keys and search records.

* Every archived run's key is re-derived through today's config classes: its stored config is read
  back into a ``SearchConfig``/``TrainConfig``, written out again, and hashed as the experiments
  key runs; the result must be the key the run is filed under.
* Every run the mini notebooks plan (``python -m tfnas_core plan NAME --profile mini`` over an empty
  run store) is in the archive: the committed results re-render without computing anything.  A
  changed key (a config default, the LUT file's bytes that ``lut_sha256`` hashes, a renamed field)
  shows here as a run the archive lacks.
* One smoke search per depth space (each with the relaxed and the hard architecture step, and the
  plain non-``fast`` path once) runs bit for bit as it did before the regroup: the records and the
  derived spec in ``tests/data/search_baseline/`` (written by ``make.py`` there at commit c429b71).
  Equality is exact only with the torch build and CPU capability that wrote them, so another build
  skips with that reason.
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas_core.experiments import plans
from tfnas_core.runs.keys import KEY_FREE, config_hash
from tfnas_core.search import config as search_config
from tfnas_core.train import config as train_config

ROOT = Path(__file__).resolve().parents[1]
ARCHIVE = ROOT / "run_archive"
BASELINE = ROOT / "tests" / "data" / "search_baseline"
sys.path.insert(0, str(BASELINE))
import make as baseline  # noqa: E402  (the generator: its cases and how a run is compared)

CONFIGS = {"search": (search_config.SearchConfig, search_config.from_dict, search_config.to_dict),
           "train": (train_config.TrainConfig, train_config.from_dict, train_config.to_dict)}


def _stores() -> list[Path]:
    return sorted(ARCHIVE.glob("*/store.json"))


def test_the_archive_has_runs_of_both_kinds():
    kinds = {json.loads(p.read_text())["kind"] for p in _stores()}
    assert kinds == {"search", "train"}, kinds


@pytest.mark.parametrize("store", _stores(), ids=lambda p: p.parent.name)
def test_archived_key_rederived_through_todays_config(store):
    meta = json.loads(store.read_text())
    kind, stored = meta["kind"], meta["config"]
    cls, from_dict, to_dict = CONFIGS[kind]
    names = {f.name for f in dataclasses.fields(cls)}
    cfg = from_dict({k: v for k, v in stored.items() if k in names})
    rebuilt = {**to_dict(cfg), **{k: v for k, v in stored.items() if k not in names}}  # lut_sha256, spec, data
    free = KEY_FREE[kind]  # settings added since (logging) are key-free: a run keeps its key without them
    assert {k: v for k, v in rebuilt.items() if k not in free} == {k: v for k, v in stored.items() if k not in free}
    assert config_hash(kind, rebuilt, KEY_FREE[kind]) == meta["key"] == store.parent.name


@pytest.mark.parametrize("notebook", plans.NOTEBOOKS)
def test_mini_notebooks_plan_only_archived_runs(notebook, tmp_path):
    r = subprocess.run([sys.executable, "-m", "tfnas_core", "plan", notebook, "--profile", "mini",
                        "--runs", str(tmp_path / "runs"), "--json"], capture_output=True, text=True, cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["runs"]
    assert rows
    not_archived = [(x["kind"], x["what"], x["seed"], x["key"], x["status"]) for x in rows if x["status"] != "archived"]
    assert not not_archived, f"{notebook}: {len(not_archived)} of {len(rows)} runs not in run_archive/: {not_archived[:3]}"


def _same_build(want: dict) -> str | None:
    have = baseline.build()
    if have != want:
        return f"baselines were written with {want}, this is {have}: bit-for-bit equality holds only on the same build"
    return None


@pytest.mark.parametrize("case", sorted(baseline.CASES))
def test_smoke_search_bit_for_bit_against_the_records_from_before(case, tmp_path):
    want = json.loads((BASELINE / f"{case}.json").read_text())
    why = _same_build(want["build"])
    if why:
        pytest.skip(why)
    assert want["sets"] == baseline.CASES[case]
    got = baseline.run_case(baseline.CASES[case], tmp_path / case)
    for i, (g, w) in enumerate(zip(got["records"], want["records"])):
        assert g == w, f"epoch {i + 1}: " + ", ".join(k for k in w if g.get(k) != w[k])
    assert len(got["records"]) == len(want["records"])
    assert got["spec"] == want["spec"]
