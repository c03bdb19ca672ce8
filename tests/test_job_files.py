"""Issue 29: what a local worker reads carries no code, and what a crash leaves is cleaned up or listed.

A local worker is sent each job as one line of JSON on its stdin (``execution.jobs.job_line``): a pickle
planted where the job files used to lie (``RUNS/_jobs/KEY.job.pkl``), swapped in while a run goes,
or its path sent to a worker, never runs (each test's marker file stays absent).  A line that is
not a job is refused with one line.  Stale job files go at the start of a local run;
``stale_files`` lists them and run folders holding only ``store.json``.  SLURM's folder of
submitit pickles is private (0700)."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas_core.execution import local
from tfnas_core.execution import stale as stale_runs
from tfnas_core.execution import slurm as S
from tfnas_core.execution.engine import execute
from tfnas_core.execution.jobs import Job, job_line, read_job_line, runner_name
from tfnas_core.execution.settings import ExecutorSettings, SlurmOptions
from tfnas_core.experiments import notebook as E
from tfnas_core.experiments.jobs import RUNNER, run_job
from tfnas_core.experiments.run_plan import planning_pass
from tfnas_core.runs import store as runs
from tfnas_core.arch import zoo


class _Plant:
    """Unpickling it creates ``marker``: the code a planted job file would run as the worker."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps((_Plant(marker), "job")))
    return path


def _ctx(root: Path, **kw) -> E.Context:
    return E.Context("smoke", runs_root=str(root), archive_root=None, progress=False, name="test", **kw)


def _execute(jobs, runner: str = RUNNER, workers: int | None = None, name: str = ""):
    return execute(jobs, ExecutorSettings("local", workers, runs_root=jobs[0].ctx["runs_root"], name=name), runner)


def _search_jobs(root: Path, seeds, **kw) -> list[Job]:
    _, jobs, _ = planning_pass(_ctx(root, **kw), lambda c: E.searches(c, E.table3_variants()[:1], seeds))
    return jobs


def _serve(lines: list[str]) -> subprocess.CompletedProcess:
    """A real worker (``python -m tfnas_core.execution.local --serve``) sent ``lines``, then end of input."""
    env = {k: v for k, v in os.environ.items() if k != "TFNAS_THREADS"}  # no torch needed to refuse
    return subprocess.run([sys.executable, "-m", "tfnas_core.execution.local", "--serve"], input="".join(l + "\n" for l in lines),
                          capture_output=True, text=True, env=env, timeout=120)


def test_worker_never_unpickles_a_job_file_it_is_pointed_at(tmp_path):
    """The old protocol: a path on stdin, the worker loaded the pickle there."""
    marker = tmp_path / "pwned"
    planted = _plant(tmp_path / "_jobs" / "0123456789ab.job.pkl", marker)
    p = _serve([str(planted)])
    assert not marker.exists(), "the worker ran a planted pickle"
    assert p.returncode == 0 and p.stdout.splitlines() == [p.stdout.strip()]
    assert p.stdout.startswith(f"failed error: job line {str(planted)[:40]!r}"[:-1]) and "expected one JSON object" in p.stdout


_LINE = ('{"runner":"tfnas_core.experiments.jobs:run_job","job":{"kind":"search","key":"0123456789ab","what":"w",'
         '"seed":2,"ctx":{"runs_root":"/nonexistent"},"variant":{},"spec":null,"label":null,"epochs":null}}')
_REFUSED = [  # (line, what its answer names)
    ("not json", "expected one JSON object"),
    ("", "expected one JSON object"),
    ("[1, 2]", "expected one JSON object"),
    ('{"runner": "tfnas_core.experiments.jobs:run_job"}', "expected one JSON object"),
    (_LINE.replace("tfnas_core.experiments.jobs:run_job", "os:system"), "runner 'os:system'"),
    (_LINE.replace("tfnas_core.experiments.jobs:run_job", "builtins:eval"), "runner 'builtins:eval'"),
    (_LINE.replace("tfnas_core.experiments.jobs:run_job", "tfnas_core.experiments.runs:_missing"), "only a public function"),
    (_LINE.replace("tfnas_core.experiments.jobs:run_job", "tfnas_core.experiments.jobs:os"), "only a public function"),
    (_LINE.replace("tfnas_core.experiments.jobs:run_job", "tfnas_core.nothing:run"), "only a public function"),
    (_LINE.replace('"0123456789ab"', '"../../etc/x"'), "key='../../etc/x'"),
    (_LINE.replace('"seed":2', '"seed":"2"'), "seed='2': expected int"),
    (_LINE.replace('"seed":2', '"seed":2,"extra":1'), "unknown field(s) extra"),
    (_LINE.replace('"kind":"search"', '"kind":"exec"'), "kind='exec'"),
]


def test_worker_refuses_a_line_that_is_not_a_job_with_one_line():
    assert job_line("tfnas_core.experiments.jobs:run_job", Job("search", "0123456789ab", "w", 2,
                                                              {"runs_root": "/nonexistent"})) == _LINE  # a real job line
    p = _serve([line for line, _ in _REFUSED])  # each refused, unrun, and the worker goes on to the next line
    answers = p.stdout.splitlines()
    assert p.returncode == 0 and len(answers) == len(_REFUSED), p.stdout + p.stderr
    for (line, needle), answer in zip(_REFUSED, answers):
        assert answer.startswith("failed error: ") and needle in answer, (line, answer)
    assert p.stderr.splitlines() == answers  # the same lines in the worker's own log
    assert not Path("/nonexistent/_jobs").exists()


@pytest.mark.slow
def test_local_run_ignores_a_pickle_swapped_in_where_job_files_were(tmp_path, monkeypatch):
    """An attacker who can write ``_jobs/`` replaces the job's file just before the worker is told of it:
    nothing is read from there, and the run computes what the parent sent (end to end, real workers)."""
    marker = tmp_path / "pwned"
    bad = dataclasses.replace(_search_jobs(tmp_path, [7])[0], what="epochs=0")
    bad = dataclasses.replace(bad, variant={**bad.variant, "epochs": 0})
    good = _search_jobs(tmp_path, [2])[0]
    planted, real_send = [], local._Worker.send

    def send(self, i, *args):
        planted.append(_plant([bad, good][i].log.with_suffix(".job.pkl"), marker))
        return real_send(self, i, *args)

    monkeypatch.setattr(local._Worker, "send", send)
    out = _execute([bad, good], workers=2)
    assert len(planted) == 2 and not marker.exists(), "a worker ran a pickle planted in _jobs/"
    assert [o.ok for o in out] == [False, True] and "epochs" in out[0].error
    assert (tmp_path / good.key / "summary.json").is_file()
    left = {p.name for p in (tmp_path / "_jobs").iterdir()} - {p.name for p in planted}
    assert left and all(n.endswith(".log") for n in left), left  # the pool itself leaves only logs


# a stand-in worker (no torch): answers every line with "ok"
_ECHO = "import sys\nfor _ in sys.stdin:\n    print('ok', flush=True)\n"


def _echo_workers(monkeypatch) -> list:
    started, real = [], subprocess.Popen

    def popen(cmd, env=None, **kw):
        assert cmd[1:] == ["-m", "tfnas_core.execution.local", "--serve"]
        started.append(cmd)
        return real([sys.executable, "-c", _ECHO], env=env, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return started


def test_local_run_removes_stale_job_files_first_unread(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "pwned"
    jobs = [Job("search", f"k{i}", "echo", i, {"runs_root": str(tmp_path)}) for i in range(3)]
    stale = [_plant(tmp_path / "_jobs" / n, marker) for n in ("k0.job.pkl", "0123456789ab.job.pkl")]
    (tmp_path / "_jobs" / "k0.log").write_text("an earlier attempt's log\n")
    _echo_workers(monkeypatch)
    assert stale_runs.stale_files(tmp_path) == sorted(stale)
    assert all(o.ok for o in _execute(jobs, workers=2, name="st"))
    assert not any(p.exists() for p in stale) and not marker.exists()
    assert stale_runs.stale_files(tmp_path) == [] and (tmp_path / "_jobs" / "k0.log").is_file()  # logs stay
    assert f"[st] removed 2 stale job file(s) of an earlier version from {tmp_path / '_jobs'}, unread" in capsys.readouterr().err


@pytest.mark.parametrize("runner", ["builtins:print", "builtins:eval", "os:system", "tfnas_core.execution.local:_serve",
                                    "tfnas_core.experiments.context:Context", "tfnas_core.experiments.jobs:RUNNER",
                                    "tfnas_core.experiments.jobs:time", "run_job", None])
def test_runner_outside_tfnas_core_functions_refused_before_any_worker(tmp_path, monkeypatch, runner):
    started = _echo_workers(monkeypatch)
    jobs = [Job("search", "k0", "x", 0, {"runs_root": str(tmp_path)})]
    with pytest.raises(ValueError, match="a local worker runs only a public function of a tfnas_core module"):
        _execute(jobs, runner, workers=1)
    assert started == [] and not (tmp_path / "_jobs").exists()


@pytest.mark.parametrize("runner", [print, eval, os.system, lambda job: {"wall_s": 0.0}, local._serve, E.Context])
def test_runner_name_only_of_a_public_tfnas_core_function(runner):
    with pytest.raises(ValueError, match="a local worker runs only a public function of a tfnas_core module"):
        runner_name(runner)
    assert runner_name(run_job) == RUNNER


def test_job_that_is_not_json_data_refused_before_any_worker(tmp_path, monkeypatch):
    started = _echo_workers(monkeypatch)
    jobs = [Job("search", "k0", "x", 0, {"runs_root": str(tmp_path)}, {"lam": object()})]
    with pytest.raises(ValueError, match="job k0: its fields are not plain JSON data"):
        _execute(jobs, workers=1)
    assert started == []


def test_job_line_round_trips_the_jobs_of_a_plan(tmp_path):
    search = _search_jobs(tmp_path, [2], search_overrides={"epochs": 2}, shown_overrides=("epochs",))[0]
    assert search.ctx["shown_overrides"] == ("epochs",)
    spec = zoo.load(zoo.names()[0])
    train = Job("train", "0123456789ab", "a", 3, _ctx(tmp_path).job_settings(), spec=spec.to_dict(), label="a",
                  epochs=2)
    for job in (search, train):
        line = job_line(runner_name(run_job), job)
        assert "\n" not in line and json.loads(line)["runner"] == "tfnas_core.experiments.jobs:run_job"
        runner, back = read_job_line(line + "\n")
        assert runner is run_job and back == job and back.log == job.log


def test_stale_files_lists_run_folders_holding_only_store_json(tmp_path):
    store = runs.RunStore(tmp_path)

    def crash(path):
        raise RuntimeError("killed before it wrote anything")

    with pytest.raises(RuntimeError):  # a run that started and wrote nothing else: store.json and .lock
        store.get_or_run("search", {"a": 1}, crash, "summary.json")
    crashed = store.run_folder("search", {"a": 1}, "summary.json").path
    assert sorted(p.name for p in crashed.iterdir()) == [".lock", "store.json"]
    debris = tmp_path / "bbbbbbbbbbbb"  # only store.json and a killed writer's temp file
    debris.mkdir()
    (debris / "store.json").write_text("{}")
    (debris / ".records.jsonl.tmp").write_text("")
    partial = tmp_path / "cccccccccccc"  # a run that got further: resumable, not stale
    partial.mkdir()
    (partial / "store.json").write_text("{}")
    (partial / "records.jsonl").write_text("{}\n")
    (tmp_path / "dddddddddddd").mkdir()  # no store.json: not a run of the store
    (tmp_path / "_slurm").mkdir()
    (tmp_path / "_slurm" / "store.json").write_text("{}")
    want = sorted([crashed, debris])
    assert stale_runs.stale_files(tmp_path) == want
    note = stale_runs.stale_note(tmp_path)
    assert "\n" not in note and "2 run folder(s) holding only store.json" in note and crashed.name in note
    assert stale_runs.stale_note(tmp_path / "nothing") == "" and stale_runs.stale_files(tmp_path / "nothing") == []


def test_stale_files_leaves_out_a_run_folder_whose_lock_is_held(tmp_path):
    a, b = tmp_path / "aaaaaaaaaaaa", tmp_path / "bbbbbbbbbbbb"
    for d in (a, b):
        d.mkdir()
        (d / "store.json").write_text("{}")
    with runs._locked(a):  # RunStore.get_or_run's lock: the run is going
        assert stale_runs.stale_files(tmp_path) == [b]
    with runs.out_lock(b):  # a search's or retraining's lock on its --out
        assert stale_runs.stale_files(tmp_path) == [a]
    assert stale_runs.stale_files(tmp_path) == [a, b]


def test_slurm_folder_of_submitit_pickles_is_private(tmp_path, monkeypatch):
    import submitit

    fresh = S.private_folder(tmp_path / "runs" / "_slurm")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700
    old = tmp_path / "old_slurm"
    old.mkdir(mode=0o777)
    os.chmod(old, 0o777)
    assert stat.S_IMODE(S.private_folder(old).stat().st_mode) == 0o700
    seen = []

    class Stop(Exception):
        pass

    def executor(folder, **kw):  # submit_slurm makes the folder private before submitit writes a pickle there
        seen.append(stat.S_IMODE(Path(folder).parent.stat().st_mode))
        raise Stop

    monkeypatch.setattr(submitit, "AutoExecutor", executor)
    os.chmod(old, 0o755)
    with pytest.raises(Stop):
        S.submit_slurm([Job("search", "k0", "x", 0, {"runs_root": str(tmp_path)})], run_job, SlurmOptions(), old)
    assert seen == [0o700]


def test_plan_reports_what_a_crash_left(tmp_path, capsys):
    """``plan`` lists a run folder holding only store.json (a run that started and wrote nothing else)."""
    from tfnas_core.cli import main as cli

    d = tmp_path / "runs" / "abc123def456"
    d.mkdir(parents=True)
    (d / "store.json").write_text('{"kind": "search", "key": "abc123def456", "config": {}}\n')
    assert cli.main(["plan", "table3", "--profile", "smoke", "--runs", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"left by crashed runs in {tmp_path / 'runs'}: 1 run folder(s) holding only store.json")
    assert "abc123def456" in out[-1]
    assert cli.main(["plan", "table3", "--profile", "smoke", "--runs", str(tmp_path / "runs"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["stale"] == [str(d)]
