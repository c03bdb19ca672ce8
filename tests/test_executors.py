"""Executors (issue 20): a plan's runs computed by a local worker pool and by a real SLURM give
the run store the same runs as ``inline``; a failing run is reported with its log while the others
finish; a cancelled SLURM job is reported; a time-limited one is requeued and resumes.

The SLURM tests need a running cluster (``../shared/slurm/slurm-up.sh``; ``.ci/run`` starts one and
stops it by PID); they skip, saying so, where none answers."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core.execution import local
from tfnas_core.execution import slurm as S
from tfnas_core.execution.engine import execute
from tfnas_core.execution.fingerprint import fingerprint
from tfnas_core.execution.jobs import Job, PlanFailed
from tfnas_core.execution.settings import ExecutorSettings, SlurmOptions
from tfnas_core.experiments import notebook as E
from tfnas_core.experiments.jobs import RUNNER, run_job
from tfnas_core.experiments.run_plan import planning_pass

VARIANTS = E.table3_variants()[:1]  # Gumbel only: 2 seeds -> 2 searches, then 2 retrainings
SEEDS = [2, 3]
NUMERIC = ["variant", "seed", "top1", "top5", "lut_ms", "target_ms", "flops_m", "proxy_flops_m", "depths"]


def _ctx(root: Path, executor: str = "inline", **kw) -> E.Context:
    return E.Context("smoke", runs_root=str(root), archive_root=None, progress=False, executor=executor,
                     name="test", **kw)


def _execute(jobs, executor: str, *, workers: int | None = None, slurm: dict | None = None, name: str = "", **kw):
    """``execute`` of ``jobs`` with ``experiments.jobs.run_job``, as ``run_plan`` calls it."""
    settings = ExecutorSettings(executor, workers, SlurmOptions.from_dict(slurm), jobs[0].ctx["runs_root"], name=name)
    return execute(jobs, settings, RUNNER, **kw)


def _fingerprints(root: Path) -> dict[str, str]:
    return {p.parent.name: fingerprint(p.parent) for p in Path(root).glob("*/store.json")}


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    root = tmp_path_factory.mktemp("inline")
    ctx = _ctx(root)
    table = E.ablation(ctx, VARIANTS, SEEDS)
    return root, table, _fingerprints(root)


def _bad_job(root: Path) -> Job:
    """A search job whose config the worker refuses (epochs=0): fails in the worker, not here."""
    ctx = _ctx(root)
    _, jobs, _ = planning_pass(ctx, lambda c: E.searches(c, [E.Variant("bad", {"lam": 0.3}, {})], [7]))
    return dataclasses.replace(jobs[0], variant={**jobs[0].variant, "epochs": 0}, what="epochs=0")


def test_plan_lists_searches_then_retrainings(tmp_path):
    ctx = _ctx(tmp_path)
    table, jobs, probe = planning_pass(ctx, lambda c: E.ablation(c, VARIANTS, SEEDS))
    assert table.empty and [j.kind for j in jobs] == ["search", "search"]
    waiting = [m for m in probe.missing if m.job is None]
    assert [m.status for m in waiting] == [f"after search {j.key}" for j in jobs]
    assert not any(tmp_path.iterdir()), "a planning pass wrote into the run store"


def test_missing_runs_are_one_record_type_with_one_job_per_key(tmp_path):
    """``execution.jobs.Missing``: what a planning pass lists (``ctx.missing``), the missing table
    shows and the run plan hands to the executor, one job per key (first ask first)."""
    from tfnas_core.execution.jobs import Missing, missing_jobs

    ctx = _ctx(tmp_path)
    _, jobs, probe = planning_pass(ctx, lambda c: (E.searches(c, VARIANTS, [2]), E.searches(c, VARIANTS, [2, 3])))
    assert all(isinstance(m, Missing) for m in probe.missing) and len(probe.missing) == 3
    assert [j.seed for j in jobs] == [2, 3] and missing_jobs(probe.missing) == jobs
    table = E.missing_table(probe)
    assert list(table.columns) == list(Missing.COLUMNS) and table["seed"].tolist() == [2, 3]
    waiting = Missing("train", "x", 2, None, "after search k")
    assert missing_jobs([waiting]) == [] and waiting.row()["status"] == "after search k"


def test_executor_settings_are_typed(tmp_path):
    """The execution wing takes ``ExecutorSettings`` (SLURM options parsed, executor checked), never a context."""
    with pytest.raises(TypeError, match="SlurmOptions"):
        ExecutorSettings("slurm", slurm={"partition": "gpu"})
    with pytest.raises(ValueError, match="executor"):
        ExecutorSettings("cloud")
    with pytest.raises(ValueError, match="jobs"):
        ExecutorSettings("local", jobs=0)
    assert ExecutorSettings(runs_root=str(tmp_path)).slurm_folder == tmp_path / "_slurm"
    with pytest.raises(TypeError):
        execute([], E.Context("smoke"), RUNNER)  # a context is not executor settings


@pytest.mark.slow
def test_plan_of_a_notebook_then_done(tmp_path, inline):
    from tfnas_core.experiments import plans

    root, _, _ = inline
    ctx = _ctx(tmp_path)
    df = plans.plan("table3", ctx, SEEDS, long_factor=1)
    assert len(df) == 5 * len(SEEDS) * 2 and set(df["status"].str.split().str[0]) == {"missing", "after"}
    assert df["key"].notna().sum() == 5 * len(SEEDS)  # the searches; their retrainings wait on them
    done = plans.plan("table3", _ctx(root), SEEDS, long_factor=1)  # the inline fixture ran Gumbel's 4 runs
    assert (done["status"] == "done").sum() == 4 and done.loc[done["status"] == "done", "est_min"].isna().all()
    assert "4 done" in plans.summary_line(done) and "still to run" in plans.summary_line(done)
    with pytest.raises(ValueError, match="expected one of"):
        plans.resolve("table9")


@pytest.mark.slow
def test_local_pool_matches_inline(tmp_path, inline):
    root, table, prints = inline
    ctx = _ctx(tmp_path, "local", jobs=2)
    got = E.ablation(ctx, VARIANTS, SEEDS)
    assert _fingerprints(tmp_path) == prints  # every search and retraining: same records and results
    pd.testing.assert_frame_equal(got[NUMERIC], table[NUMERIC])
    assert set(E.runs_table(ctx)["source"]) == {"computed now (local)"}
    again = _ctx(tmp_path, "local", jobs=2)  # a rerun picks up what finished: nothing to compute
    E.ablation(again, VARIANTS, SEEDS)
    assert set(E.runs_table(again)["source"]) == {"run store"}


@pytest.mark.slow
def test_local_failed_run_reported_while_others_finish(tmp_path):
    bad = _bad_job(tmp_path)
    _, good, _ = planning_pass(_ctx(tmp_path), lambda c: E.searches(c, VARIANTS[:1], [2]))
    out = _execute([bad, *good], "local", workers=2)
    assert [o.ok for o in out] == [False, True]
    assert "epochs" in out[0].error and Path(out[0].log).is_file()
    assert "Traceback" in Path(out[0].log).read_text()
    with pytest.raises(PlanFailed, match="epochs=0"):
        raise PlanFailed([out[0]])


# ----------------------------------------------------------------------------- GPUs of the local pool

# a stand-in worker: answers each job line with "ok" and the GPU it was given (a real process, no torch)
_ECHO = "import os, sys\nfor _ in sys.stdin:\n    print('ok', os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True)\n"


def _echo_pool(monkeypatch, cuda: bool, count: int, visible: str | None):
    """Pretend torch sees ``count`` GPUs (or none) and replace the worker command by ``_ECHO``;
    returns the environments the workers were started with, in start order."""
    import sys
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    envs, real = [], subprocess.Popen

    def popen(cmd, env=None, **kw):
        assert cmd[1:] == ["-m", "tfnas_core.execution.local", "--serve"]
        envs.append(env)
        return real([sys.executable, "-c", _ECHO], env=env, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return envs


def _jobs(root: Path, n: int) -> list[Job]:
    return [Job("search", f"k{i}", "echo", i, {"runs_root": str(root)}) for i in range(n)]


@pytest.mark.parametrize("visible, count, want", [(None, 2, ["0", "1"]), ("3,5", 2, ["3", "5"]),
                                                  ("GPU-aa, GPU-bb,GPU-cc", 2, ["GPU-aa", "GPU-bb"])])
def test_local_pool_gives_each_worker_its_gpu(tmp_path, monkeypatch, capsys, visible, count, want):
    envs = _echo_pool(monkeypatch, True, count, visible)
    assert local.local_gpus() == want and local.default_workers() == count
    out = _execute(_jobs(tmp_path, 5), "local", workers=3, name="gpu")  # 3 workers on 2 GPUs: i mod 2
    assert all(o.ok for o in out)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == [want[0], want[1], want[0]]
    assert {e["TFNAS_THREADS"] for e in envs} == {str(max(1, (os.cpu_count() or 1) // 3))}
    err = capsys.readouterr().err
    for i, g in enumerate([want[0], want[1], want[0]]):
        assert f"[gpu] local worker {i} (place {i}): GPU {g} (CUDA_VISIBLE_DEVICES={g})" in err
        assert f"GPU {g}" in (tmp_path / "_jobs" / f"worker-{i}.log").read_text()
    assert "local (3 workers, 2 GPU(s))" in err


def test_local_pool_defaults_to_one_worker_per_gpu(tmp_path, monkeypatch, capsys):
    envs = _echo_pool(monkeypatch, True, 2, None)
    assert all(o.ok for o in _execute(_jobs(tmp_path, 4), "local"))  # jobs=None
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1"]
    assert "local (2 workers, 2 GPU(s))" in capsys.readouterr().err


def test_local_pool_without_cuda_is_unchanged(tmp_path, monkeypatch, capsys):
    envs = _echo_pool(monkeypatch, False, 0, "7")  # a CUDA_VISIBLE_DEVICES of the parent is passed on untouched
    assert local.local_gpus() == [] and local.default_workers() == (os.cpu_count() or 1)
    assert all(o.ok for o in _execute(_jobs(tmp_path, 2), "local"))
    assert len(envs) == min(2, os.cpu_count() or 1) and {e["CUDA_VISIBLE_DEVICES"] for e in envs} == {"7"}
    err = capsys.readouterr().err
    assert "GPU" not in err and f"local ({os.cpu_count()} workers)" in err


def test_local_gpus_reads_what_torch_sees():
    assert local.local_gpus(False, 0, {}) == [] and local.local_gpus(True, 0, {}) == []
    assert local.local_gpus(True, 3, {}) == ["0", "1", "2"]
    assert local.local_gpus(True, 1, {"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2"]  # torch counts only the valid ones
    assert local.local_gpus(True, 2, {"CUDA_VISIBLE_DEVICES": " 4 , 6 "}) == ["4", "6"]
    assert local.worker_env(2, "6", {"A": "1"}) == {"A": "1", "TFNAS_THREADS": "2", "OMP_NUM_THREADS": "2",
                                                "CUDA_VISIBLE_DEVICES": "6"}
    assert local.worker_env(1, None, {"CUDA_VISIBLE_DEVICES": "0,1"})["CUDA_VISIBLE_DEVICES"] == "0,1"


def test_bad_executor_settings_one_line():
    for kw, msg in (({"executor": "ray"}, "executor: expected one of"), ({"jobs": 0}, "jobs: expected a positive"),
                    ({"slurm": {"gpu": 1}}, "unknown setting"), ({"slurm": {"timeout_min": 1, "signal_delay_s": 90}}, "below the time limit")):
        with pytest.raises(ValueError, match=msg):
            E.Context("smoke", **kw)


@pytest.mark.parametrize("slurm, needle", [
    ({"partition": "gpu\n#SBATCH --time=0"}, "partition 'gpu\\n#SBATCH --time=0': expected a partition name"),
    ({"partition": "gpu; rm -rf ~"}, "expected a partition name"),
    ({"additional": {"qos\n#SBATCH --signal=0": "x"}}, "expected an sbatch option name"),
    ({"additional": {"--qos": "x"}}, "expected an sbatch option name"),
    ({"additional": {"qos": "high\nsrun touch /tmp/x"}}, "expected one line of text or a number"),
    ({"additional": {"qos": ["a"]}}, "expected one line of text or a number"),
    ({"additional": "qos=high"}, "additional must be a mapping"),
])
def test_slurm_settings_cannot_add_lines_to_the_sbatch_script(slurm, needle):
    """Issue 29: a newline in a partition or in a key or value of ``additional`` put a line of the
    user's into the generated sbatch script (and dropped the job's --time and --signal)."""
    with pytest.raises(ValueError) as e:
        SlurmOptions.from_dict(slurm)
    assert needle in str(e.value) and "\n" not in str(e.value).replace("\\n", "")


def test_slurm_settings_that_are_plain_pass():
    o = SlurmOptions.from_dict({"partition": "gpu,gpu-long", "additional": {"qos": "high", "constraint": "h100",
                                                                              "exclusive": 1, "gres-flags": "enforce-binding"}})
    assert o.partition == "gpu,gpu-long" and o.additional["qos"] == "high"


# ----------------------------------------------------------------------------- SLURM


@pytest.mark.slow
def test_slurm_matches_inline(tmp_path, inline, slurm):
    root, table, prints = inline
    ctx = _ctx(tmp_path, "slurm", slurm={"timeout_min": 5, "poll_s": 0.5})
    got = E.ablation(ctx, VARIANTS, SEEDS)
    assert _fingerprints(tmp_path) == prints
    pd.testing.assert_frame_equal(got[NUMERIC], table[NUMERIC])
    assert set(E.runs_table(ctx)["source"]) == {"computed now (slurm)"}


@pytest.mark.slow
def test_slurm_failed_and_cancelled_runs_reported(tmp_path, slurm):
    bad = _bad_job(tmp_path)
    ctx = _ctx(tmp_path)
    _, long, _ = planning_pass(ctx, lambda c: E.searches(
        c.replace(search_overrides={"epochs": 60}), VARIANTS[:1], [5]))
    _, good, _ = planning_pass(ctx, lambda c: E.searches(c, VARIANTS[:1], [4]))

    def cancel_when_running(subs):
        def go():
            deadline = time.monotonic() + 60  # started: the worker has written its first log line
            while not (long[0].log.is_file() and "epoch" in long[0].log.read_text()) and time.monotonic() < deadline:
                time.sleep(0.3)
            subprocess.run(["scancel", str(subs[1].job_id)], check=True)
        threading.Thread(target=go, daemon=True).start()

    out = _execute([bad, long[0], good[0]], "slurm", slurm={"timeout_min": 5, "poll_s": 0.5},
                    on_submit=cancel_when_running)
    assert [o.ok for o in out] == [False, False, True]
    assert "epochs" in out[0].error and "SLURM" in out[0].log
    assert "CANCELLED" in out[1].error
    assert (tmp_path / good[0].key / "summary.json").is_file()


@pytest.mark.slow
def test_slurm_time_limit_requeues_and_resumes(tmp_path, slurm):
    """The time-limit signal reaches the job at epoch 8 of 40: it is requeued, the search resumes
    from its last epoch checkpoint and ends with the records of an uninterrupted inline search.

    The signal is the one SLURM sends ``signal_delay_s`` before the limit (USR2), sent at a chosen
    epoch through submitit's own test hook (``_interrupt(timeout=True)``): slurmctld checks limits
    every 30 s, so waiting for the real one would make this test slow and its epoch random."""
    over = {"epochs": 40, "warmup_epochs": 1}
    ref = _ctx(tmp_path / "inline", search_overrides=over)
    r = E.search_run(ref, 2)
    ctx = _ctx(tmp_path / "slurm", search_overrides=over)
    _, jobs, _ = planning_pass(ctx, lambda c: E.searches(c, [E.Variant("default", {}, {})], [2]))
    log = jobs[0].log

    def signal_at_epoch_8(subs):
        def go():
            deadline = time.monotonic() + 120
            while not (log.is_file() and "epoch 8/40" in log.read_text()) and time.monotonic() < deadline:
                time.sleep(0.1)
            subs[0]._interrupt(timeout=True)
            # SLURM holds a requeued batch job ~2.5 min before it may start again; let it start now
            for _ in range(750):  # up to 150 s
                time.sleep(0.2)
                if subprocess.run(["scontrol", "update", f"JobId={subs[0].job_id}", "StartTime=now"],
                                  capture_output=True).returncode == 0 and log.read_text().count(f"({jobs[0].key}) on ") > 1:
                    break
        threading.Thread(target=go, daemon=True).start()

    out = _execute(jobs, "slurm", slurm={"timeout_min": 3, "signal_delay_s": 30, "poll_s": 0.5},
                    on_submit=signal_at_epoch_8)
    assert out[0].ok, out[0].error
    text = log.read_text()
    assert text.count(f"({jobs[0].key}) on ") == 2, f"not requeued once:\n{text}"
    assert "requeued, the run resumes" in text and "resuming" in text and "epoch 40/40" in text
    assert fingerprint(tmp_path / "slurm" / jobs[0].key) == fingerprint(r.path)


@pytest.mark.slow
def test_slurm_retraining_as_one_ddp_job(tmp_path, inline, slurm):
    """A retraining as one SLURM job of 2 tasks (DDP over Gloo on this CPU node; at the paper profile
    ``gpus`` tasks over NCCL): both ranks train, rank 0 writes the run, the ranks' weights agree."""
    import json

    root, _, _ = inline
    ctx = _ctx(root)
    spec = E.search_run(ctx, 2, **VARIANTS[0].overrides).spec
    job_ctx = _ctx(tmp_path)
    def retrain(c):
        try:
            E.retrain_run(c, spec, 2, label="ddp")
        except E.MissingRun:
            pass

    _, jobs, _ = planning_pass(job_ctx, retrain)
    assert [j.kind for j in jobs] == ["train"]
    out = _execute(jobs, "slurm", slurm={"timeout_min": 5, "poll_s": 0.5, "train_tasks": 2})
    assert out[0].ok, out[0].error
    result = json.loads((tmp_path / jobs[0].key / "result.json").read_text())
    assert result["world_size"] == 2 and len(set(result["rank_digests"])) == 1
    assert "DDP rank 1/2" in jobs[0].log.read_text()
    assert E.retrain_run(job_ctx, spec, 2, label="ddp")["top1"] == result["top1"]  # the store has it: read back


def _one_search_job(root: Path) -> list:
    return [Job("search", "k0", "echo", 0, {"runs_root": str(root)})]


def test_slurm_without_sbatch_is_one_line(tmp_path, monkeypatch):
    """No SLURM client on the PATH: one line saying so, before submitit's folder is made. No cluster needed."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(ValueError) as e:
        S.submit_slurm(_one_search_job(tmp_path), run_job, SlurmOptions(), tmp_path / "_slurm")
    assert str(e.value).startswith("executor slurm: sbatch is not on the PATH") and "\n" not in str(e.value)
    assert not (tmp_path / "_slurm").exists()


def test_slurm_with_no_controller_is_one_line(tmp_path, monkeypatch):
    """sbatch present, no controller answering (an sbatch that fails as SLURM's does): sbatch's own
    reason in one line, not submitit's traceback. No cluster needed."""
    fake = tmp_path / "bin" / "sbatch"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Unable to contact slurm controller "
                    "(connect failure)' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ValueError) as e:
        S.submit_slurm(_one_search_job(tmp_path), run_job, SlurmOptions(), tmp_path / "_slurm")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("executor slurm: sbatch refused the submission of 1 job(s)")
    assert msg.endswith("Unable to contact slurm controller (connect failure)")
