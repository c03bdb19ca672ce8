"""No make variable ever reaches a shell, nor make's own expansion (issue 29).

Every variable a user sets is tried with a single quote, a double quote, backticks, ``$(...)``,
``$$(...)``, make's ``$(shell ...)``, ``;cmd``, a newline and blanks: a value that is not valid stops
make with one line naming the variable (exit 2) before anything runs or is written; a value that is
valid (a path with all of them in it) reaches the notebook's parameters and the plan as typed.  Each
payload would create a file ``PWNED*`` were any shell or make to run it; none may appear.

Cheap on purpose: bad values stop while make reads the Makefile (~0.3 s each); ``PAPERMILL`` is
``false`` (or papermill ``--prepare-only``, which writes the parameters and runs no cell).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def payloads(tmp: Path) -> dict[str, str]:
    """Each way a value could be run, by name; ``tmp / 'PWNED-<name>'`` appears if it is."""
    p = {name: tmp / f"PWNED-{name}" for name in ("backticks", "dollar", "dollar2", "shell", "semicolon", "newline")}
    return {
        "single-quote": "a'b",
        "double-quote": 'a"b',
        "backticks": f"`touch {p['backticks']}`",
        "dollar": f"$(touch {p['dollar']})",
        "dollar2": f"$$(touch {p['dollar2']})",
        "shell": f"$(shell touch {p['shell']})",
        "semicolon": f";touch {p['semicolon']}",
        "newline": f"x\ntouch {p['newline']}",
        "blanks": "a b  c",
    }


PAYLOADS = list(payloads(Path("/tmp")))
ALL_AT_ONCE = "' \" `touch {t}/PWNED-1` $(touch {t}/PWNED-2) $$(touch {t}/PWNED-3) $(shell touch {t}/PWNED-4) ;touch {t}/PWNED-5"


def make(tmp: Path, *args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    """``make -C ROOT ARGS`` run from ``tmp`` (relative payloads land there), papermill ``false``
    unless ``args`` name another."""
    return subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "-s", f"PYTHON={sys.executable}",
                           f"PAPERMILL={shutil.which('false')}", f"NB_OUT={tmp / 'nb'}", *args],
                          cwd=tmp, capture_output=True, text=True, timeout=timeout, env=env)


def pwned(tmp: Path) -> list[str]:
    """The payloads' files (each touches ``tmp/PWNED-...``; a path holding a payload nests folders elsewhere)."""
    return sorted(p.name for p in tmp.glob("PWNED*"))


def assert_refused(r: subprocess.CompletedProcess, var: str, tmp: Path) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == "" and r.stderr.count("\n") == 1 and f"{var}=" in r.stderr, r.stderr
    assert not pwned(tmp), pwned(tmp)
    assert not (tmp / "nb").exists()


# the variables no payload is a valid value of, and how each is given to make
REFUSED = {
    "PROFILE": "{v}",
    "SEEDS": "[2,{v}]",
    "EXECUTOR": "{v}",
    "JOBS": "2{v}",
    "SLURM": "{{partition: gpu{v}}}",
    "LONG_FACTOR": "{v}",
    "LONG_FINISHED_ONLY": "{v}",
    "FRESH": "1{v}",
    "REMEASURE": "1{v}",
    "RUN": "{v}",
    "BUDGET": "{v}",
    "LUT": "{tmp}/lut{v}.json",  # no such file
    "IMAGENET": "{tmp}/in{v}",  # only PROFILE=paper reads ImageNet
    "SEARCH_SET": "epochs=1 {v}",
    "TRAIN_SET": "{v}",
}


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("var", list(REFUSED))
def test_a_bad_value_stops_make_in_one_line(var, payload, tmp_path):
    v = REFUSED[var].format(v=payloads(tmp_path)[payload], tmp=tmp_path)
    profile = [] if var == "PROFILE" else ["PROFILE=smoke"]
    r = make(tmp_path, "reproduce-table3", *profile, f"{var}={v}")
    assert_refused(r, var, tmp_path)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_plan_and_bench_refuse_too(payload, tmp_path):
    v = payloads(tmp_path)[payload]
    assert_refused(make(tmp_path, "plan-table3", "PROFILE=smoke", f"JOBS={v}"), "JOBS", tmp_path)
    # were DEVICE let through, -n would list bench's commands and exit 0 (nothing runs)
    assert_refused(make(tmp_path, "-n", "bench", f"DEVICE={v}"), "DEVICE", tmp_path)


@pytest.mark.parametrize("payload", [p for p in PAYLOADS if p not in ("single-quote", "double-quote")])
@pytest.mark.parametrize("var", ["NB_OUT", "VENV", "PAPERMILL", "PY"])
def test_names_make_writes_into_rules_and_commands(var, payload, tmp_path):
    """PROFILE and NB_OUT name the notebooks' output files, VENV/PY/PYTHON/PAPERMILL the commands:
    make refuses a blank or a special character in them for every goal (-n: were it let through,
    nothing would run)."""
    v = payloads(tmp_path)[payload]
    r = make(tmp_path, "-n", "clean-venv", f"{var}={tmp_path}/{v}")
    assert_refused(r, var, tmp_path)


def test_the_issue_cases_one_line_each(tmp_path):
    """JOBS=² (int() takes it: a traceback before), a read-only RUNS (74 lines through papermill
    before), RUNS that is a file, a newline shown escaped."""
    r = make(tmp_path, "reproduce-table3", "PROFILE=smoke", "JOBS=²")
    assert_refused(r, "JOBS", tmp_path)
    assert "JOBS=²: expected a positive integer" in r.stderr
    r = make(tmp_path, "reproduce-table3", "PROFILE=smoke", "RUNS=/proc/tfnas-runs")
    assert_refused(r, "RUNS", tmp_path)
    assert "RUNS=/proc/tfnas-runs: read-only (/proc:" in r.stderr
    r = make(tmp_path, "reproduce-table3", "PROFILE=smoke", f"RUNS={ROOT / 'README.md'}")
    assert_refused(r, "RUNS", tmp_path)
    assert "not a directory" in r.stderr
    r = make(tmp_path, "reproduce-table3", "PROFILE=smoke", "RUNS=a\nb")
    assert_refused(r, "RUNS", tmp_path)
    assert "RUNS=a\\nb: a control character" in r.stderr


def test_a_value_from_the_environment_is_not_expanded(tmp_path):
    env = {**os.environ, "SEEDS": f"$(shell touch {tmp_path}/PWNED-env)"}
    assert_refused(make(tmp_path, "reproduce-table3", "PROFILE=smoke", env=env), "SEEDS", tmp_path)


def test_plan_takes_every_payload_in_a_path(tmp_path):
    """A run store and a LUT whose paths hold every payload at once, and a command-line variable
    the Makefile never names (make exports it to the recipes: it must not expand it either)."""
    runs = tmp_path / ("runs " + ALL_AT_ONCE.format(t=tmp_path))
    lut = tmp_path / ("lut " + ALL_AT_ONCE.format(t=tmp_path) + ".json")
    lut.parent.mkdir(parents=True)  # the payloads' slashes make folders
    shutil.copy(ROOT / "tfnas_core/luts/cpu_local.json", lut)
    r = make(tmp_path, "plan-table3", "PROFILE=smoke", "SEEDS=[2]", f"RUNS={runs}", f"LUT={lut}",
             f"OTHER=$(shell touch {tmp_path}/PWNED-other)", timeout=300)
    assert r.returncode == 0 and "table3-sampling at smoke: 10 runs" in r.stdout, r.stderr
    assert not pwned(tmp_path), pwned(tmp_path)


def test_reproduce_hands_the_values_to_the_notebook_as_typed(tmp_path):
    """papermill --prepare-only writes the parameters cell and runs nothing: the cell holds each
    value as typed, SEEDS and SLURM parsed as YAML, JOBS an int, FRESH=1 and REMEASURE=yes reach the
    kernel's environment; the "== ... ==" and "done in N s" lines stay."""
    papermill = tmp_path / "papermill"
    papermill.write_text(f'#!/bin/sh\nprintf %s "$TFNAS_FRESH" > {tmp_path}/fresh\n'
                         f'printf %s "$TFNAS_REMEASURE" > {tmp_path}/remeasure\n'
                         f'exec {Path(sys.executable).parent / "papermill"} --prepare-only "$@"\n')
    papermill.chmod(0o755)
    runs = str(tmp_path / ("runs " + ALL_AT_ONCE.format(t=tmp_path)))
    r = make(tmp_path, "reproduce-table3", "PROFILE=smoke", "SEEDS=[2, 3]", f"RUNS={runs}", "EXECUTOR=local",
             "JOBS=2", "SLURM={partition: gpu, gpus: 1}", "SEARCH_SET=epochs=1 warmup_epochs=0", "FRESH=1",
             "REMEASURE=yes", f"PAPERMILL={papermill}", timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "== table3-sampling (PROFILE=smoke) ==" and lines[-1].startswith("table3-sampling: done in "), r.stdout
    nb = json.loads((tmp_path / "nb" / "table3-sampling-smoke.ipynb").read_text())
    cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    got: dict = {}
    exec("".join(cell["source"]), {}, got)  # the cell papermill wrote: plain assignments
    assert got == {"executor": "local", "jobs": 2, "slurm": {"partition": "gpu", "gpus": 1}, "profile": "smoke",
                   "runs_root": runs, "seeds": [2, 3], "search_set": "epochs=1 warmup_epochs=0"}
    assert (tmp_path / "fresh").read_text() == "1" and (tmp_path / "remeasure").read_text() == "1"
    assert not pwned(tmp_path), pwned(tmp_path)


# ----------------------------------------------------------------------------- make_entry, in process


def test_each_notebook_gets_the_parameters_it_declares(monkeypatch):
    from tfnas_core.cli import make_entry

    monkeypatch.chdir(ROOT)
    zoo, t3, fig2 = (make_entry.declared(ROOT / "notebooks" / f"{n}.ipynb")
                     for n in ("model-zoo", "table3-sampling", "fig2-operation-collapse"))
    assert {"profile", "runs_root", "seeds", "lut", "imagenet_root"} <= zoo and not {"budget", "executor", "long_factor"} & zoo
    assert {"executor", "jobs", "slurm", "budget", "search_set"} <= t3 and "long_factor" not in t3
    assert {"long_factor", "long_compute", "layers"} <= fig2


def test_parameters_and_plan_arguments_from_the_environment():
    from tfnas_core.cli import make_entry
    from tfnas_core.experiments import preflight

    odd = "r ' \" `x` $(y) $$(z) ;w"
    env = {"TFNAS_MAKE_PROFILE": "smoke", "TFNAS_MAKE_RUNS": odd, "TFNAS_MAKE_SEEDS": "[2, 3]", "TFNAS_MAKE_JOBS": "3",
           "TFNAS_MAKE_SLURM": "{gpus: 1}", "TFNAS_MAKE_LONG_FACTOR": "1", "TFNAS_MAKE_LONG_FINISHED_ONLY": "1",
           "TFNAS_MAKE_RUN": "0", "TFNAS_MAKE_LUT": odd}
    assert make_entry.notebook_parameters(env) == {
        "jobs": 3, "slurm": {"gpus": 1}, "profile": "smoke", "runs_root": odd, "lut": odd, "seeds": [2, 3],
        "long_factor": 1, "long_compute": False}
    assert make_entry.plan_argv("table3", env) == [
        "plan", "table3", "--profile=smoke", f"--runs={odd}", "--seeds=[2, 3]", f"--lut={odd}", "--long-factor=1",
        "--jobs=3", "--slurm={gpus: 1}"]
    with pytest.raises(preflight.PreflightError, match=r"^JOBS=²: expected a positive integer"):
        make_entry.notebook_parameters({**env, "TFNAS_MAKE_JOBS": "²"})
    with pytest.raises(preflight.PreflightError, match=r"^RUNS=a\\nb: a control character"):
        make_entry.plan_argv("table3", {**env, "TFNAS_MAKE_RUNS": "a\nb"})


def test_the_makefile_hands_every_checked_variable_on(tmp_path):
    """preflight.VARIABLES (checked, and read by make_entry) are all in the Makefile's USER_VARS
    (taken literally, exported as TFNAS_MAKE_*, written for the preflight)."""
    from tfnas_core.experiments import preflight

    r = subprocess.run(["make", "-C", str(ROOT), "-s", "--no-print-directory", "--eval=print-user-vars: ; @echo $(USER_VARS)",
                        "print-user-vars"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert set(preflight.VARIABLES) <= set(r.stdout.split()), r.stdout
