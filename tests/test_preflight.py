"""Bad PROFILE / LUT / IMAGENET / SEEDS through make: one line, exit 2, nothing written."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas_core import preflight

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kw, needle", [
    ({"profile": "mnii"}, "PROFILE=mnii: unknown profile (did you mean mini?); known: paper, mini, smoke"),
    ({"profile": "paper"}, "PROFILE=paper needs IMAGENET=DIR"),
    ({"profile": "paper", "imagenet": "/no/such/dir"}, "IMAGENET=/no/such/dir: no such directory"),
    ({"profile": "mini", "imagenet": "/tmp"}, "only PROFILE=paper reads ImageNet"),
    ({"profile": "mini", "lut": "nosuch.json"}, "LUT=nosuch.json: no such file"),
    ({"profile": "mini", "lut": "README.md"}, "LUT=README.md: not a readable latency pickle nor a tfnas-lut/1 JSON table"),
    ({"profile": "mini", "seeds": "[2,x]"}, "SEEDS=[2,x]: expected a list of non-negative integers"),
    ({"profile": "mini", "seeds": "2"}, "SEEDS=2: expected a list"),
    ({"profile": "mini", "seeds": "[]"}, "SEEDS=[]: expected a list"),
])
def test_bad_values_name_the_make_variable(kw, needle, monkeypatch):
    monkeypatch.chdir(ROOT)
    with pytest.raises(preflight.PreflightError) as e:
        preflight.check(**kw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_imagenet_root_needs_train_and_val(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(preflight.PreflightError, match=r"no val/ folder"):
        preflight.check_imagenet(str(tmp_path), "paper")


def test_good_values_pass(monkeypatch):
    monkeypatch.chdir(ROOT)
    preflight.check("mini")
    preflight.check("smoke", lut="tfnas_core/luts/cpu_local.json", seeds="[2, 3, 4]")
    assert preflight.check_seeds("[2,3]") == [2, 3]
    assert preflight.main(["--profile", "smoke", "--seeds", "[2]"]) == 0


@pytest.mark.parametrize("var, needle", [
    ("PROFILE=mnii", "PROFILE=mnii: unknown profile"),
    ("PROFILE=paper", "needs IMAGENET=DIR"),
    ("LUT=nosuch.json", "LUT=nosuch.json: no such file"),
    ("SEEDS=[2,x]", "SEEDS=[2,x]"),
])
def test_make_stops_in_one_line_before_papermill(var, needle, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = tmp_path / "notebooks-out"
    # were the check to let the value through, papermill would be `false`: make then fails with
    # more lines, and nothing long-running ever starts
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "reproduce-table3", var,
                        f"NB_OUT={out}", f"PYTHON={sys.executable}", f"PAPERMILL={shutil.which('false')}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stdout == "" and r.stderr.count("\n") == 1 and needle in r.stderr, r.stderr
    assert not out.exists()
