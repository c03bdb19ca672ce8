"""Bad PROFILE / LUT / IMAGENET / SEEDS through make: one line, exit 2, nothing written."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas_core.experiments import preflight

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


# ----------------------------------------------------------------------------- issue 29: every variable


@pytest.mark.parametrize("value", ["²", "٣", "0", "-1", "2 ", "1e3", "0x2", ""])
def test_counts_are_ascii_positive_integers(value):
    with pytest.raises(preflight.PreflightError) as e:
        preflight.parse_count("JOBS", value, "workers")
    assert str(e.value).startswith(f"JOBS={value}: expected a positive integer") and "\n" not in str(e.value)


def test_counts_flags_and_devices_that_pass():
    assert preflight.parse_count("LONG_FACTOR", "12", "x") == 12
    assert [preflight.parse_flag("FRESH", v) for v in ("", "0", "no", "False", "1", "yes", "TRUE")] == \
        [False, False, False, False, True, True, True]
    with pytest.raises(preflight.PreflightError, match=r"^RUN=2: expected 1"):
        preflight.parse_flag("RUN", "2")
    preflight.check_device("cuda")
    with pytest.raises(preflight.PreflightError, match=r"^DEVICE=gpu: expected one of cpu, cuda"):
        preflight.check_device("gpu")


def test_a_control_character_is_refused_and_shown_escaped():
    with pytest.raises(preflight.PreflightError) as e:
        preflight.check(profile="smoke", lut="a\nb")
    assert str(e.value) == "LUT=a\\nb: a control character ('\\n') in the value"
    assert preflight.shown("ü b\t\x1b") == "ü b\\t\\x1b"


def test_runs_a_writable_folder_or_one_that_can_be_made(tmp_path):
    preflight.check_runs(str(tmp_path / "new" / "store"))  # made later, under a writable parent
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing
    (tmp_path / "f").write_text("x")
    for runs, needle in [(str(tmp_path / "f"), "not a directory"), (str(tmp_path / "f" / "sub"), "not a directory"),
                         ("", "RUNS=: empty"), ("/proc/tfnas-runs", "RUNS=/proc/tfnas-runs: read-only (/proc: ")]:
        with pytest.raises(preflight.PreflightError) as e:
            preflight.check_runs(runs)
        assert needle in str(e.value) and "\n" not in str(e.value)
    preflight.check_runs("/proc/tfnas-runs", computes=False)  # a plan only reads the store


def _write_like_make(folder, goals, **values):
    """What the Makefile writes: $(file >DIR/VAR,$(value VAR).), make adding a newline."""
    folder.mkdir()
    (folder / "GOALS").write_text(goals + ".\n")
    for name in preflight.VARIABLES:
        (folder / name).write_text(values.get(name, {"PROFILE": "smoke", "RUNS": "runs", "DEVICE": "cpu"}.get(name, "")) + ".\n")
    return folder


def test_values_as_make_writes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    good = _write_like_make(tmp_path / "good", "plan-table3 bench")
    assert preflight.main(["--values", str(good)]) == 0
    # a value's own trailing newline survives the file (make adds one only where none ends the text)
    assert preflight.read_values(_write_like_make(tmp_path / "nl", "x", SEEDS="[2]\n"))["SEEDS"] == "[2]\n"
    assert preflight.main(["--values", str(_write_like_make(tmp_path / "dev", "bench", DEVICE="gpu"))]) == 2
    assert capsys.readouterr().out == "DEVICE=gpu: expected one of cpu, cuda (make bench)\n"
    # plan-* reads the store only; RUN=1 (or a reproduce goal) computes into it
    ro = {"RUNS": "/proc/tfnas-runs"}
    preflight.check_make(preflight.read_values(_write_like_make(tmp_path / "p", "plan-table3", **ro)))
    for name, goals, extra in [("r", "plan-table3", {"RUN": "1"}), ("n", "reproduce-table3", {})]:
        with pytest.raises(preflight.PreflightError, match=r"^RUNS=/proc/tfnas-runs: read-only"):
            preflight.check_make(preflight.read_values(_write_like_make(tmp_path / name, goals, **ro, **extra)))
    with pytest.raises(preflight.PreflightError, match=r"not written by the Makefile"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "PROFILE").write_text("smoke")
        preflight.read_values(tmp_path / "bad")
