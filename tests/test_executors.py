"""Executors (issue 20): a plan's runs computed by a local worker pool and by a real SLURM give
the run store the same runs as ``inline``; a failing run is reported with its log while the others
finish; a cancelled SLURM job is reported; a time-limited one is requeued and resumes.

The SLURM tests need a running cluster (``../shared/slurm/slurm-up.sh``; ``.ci/run`` starts one and
stops it by PID); they skip, saying so, where none answers."""
from __future__ import annotations

import dataclasses
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from tfnas_core import executors as X
from tfnas_core import experiments as E

VARIANTS = E.table3_variants()[:1]  # Gumbel only: 2 seeds -> 2 searches, then 2 retrainings
SEEDS = [2, 3]
NUMERIC = ["variant", "seed", "top1", "top5", "lut_ms", "target_ms", "flops_m", "proxy_flops_m", "depths"]


def _ctx(root: Path, executor: str = "inline", **kw) -> E.Context:
    return E.Context("smoke", runs_root=str(root), archive_root=None, progress=False, executor=executor,
                     name="test", **kw)


def _fingerprints(root: Path) -> dict[str, str]:
    return {p.parent.name: X.fingerprint(p.parent) for p in Path(root).glob("*/store.json")}


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    root = tmp_path_factory.mktemp("inline")
    ctx = _ctx(root)
    table = E.ablation(ctx, VARIANTS, SEEDS)
    return root, table, _fingerprints(root)


def _bad_job(root: Path) -> X.Job:
    """A search job whose config the worker refuses (epochs=0): fails in the worker, not here."""
    ctx = _ctx(root)
    _, jobs, _ = X.planning_pass(ctx, lambda c: E.searches(c, [E.Variant("bad", {"lam": 0.3}, {})], [7]))
    return dataclasses.replace(jobs[0], variant={**jobs[0].variant, "epochs": 0}, what="epochs=0")


def test_plan_lists_searches_then_retrainings(tmp_path):
    ctx = _ctx(tmp_path)
    table, jobs, probe = X.planning_pass(ctx, lambda c: E.ablation(c, VARIANTS, SEEDS))
    assert table.empty and [j.kind for j in jobs] == ["search", "search"]
    waiting = [m for m in probe.missing if m["job"] is None]
    assert [m["status"] for m in waiting] == [f"after search {j.key}" for j in jobs]
    assert not any(tmp_path.iterdir()), "a planning pass wrote into the run store"


def test_plan_of_a_notebook_then_done(tmp_path, inline):
    from tfnas_core import plans

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


def test_local_failed_run_reported_while_others_finish(tmp_path):
    bad = _bad_job(tmp_path)
    _, good, _ = X.planning_pass(_ctx(tmp_path), lambda c: E.searches(c, VARIANTS[:1], [2]))
    out = X.execute([bad, *good], "local", E.run_job, workers=2)
    assert [o.ok for o in out] == [False, True]
    assert "epochs" in out[0].error and Path(out[0].log).is_file()
    assert "Traceback" in Path(out[0].log).read_text()
    with pytest.raises(X.PlanFailed, match="epochs=0"):
        raise X.PlanFailed([out[0]])


def test_bad_executor_settings_one_line():
    for kw, msg in (({"executor": "ray"}, "executor: expected one of"), ({"jobs": 0}, "jobs: expected a positive"),
                    ({"slurm": {"gpu": 1}}, "unknown setting"), ({"slurm": {"timeout_min": 1, "signal_delay_s": 90}}, "below the time limit")):
        with pytest.raises(ValueError, match=msg):
            E.Context("smoke", **kw)


# ----------------------------------------------------------------------------- SLURM


def test_slurm_matches_inline(tmp_path, inline, slurm):
    root, table, prints = inline
    ctx = _ctx(tmp_path, "slurm", slurm={"timeout_min": 5, "poll_s": 0.5})
    got = E.ablation(ctx, VARIANTS, SEEDS)
    assert _fingerprints(tmp_path) == prints
    pd.testing.assert_frame_equal(got[NUMERIC], table[NUMERIC])
    assert set(E.runs_table(ctx)["source"]) == {"computed now (slurm)"}


def test_slurm_failed_and_cancelled_runs_reported(tmp_path, slurm):
    bad = _bad_job(tmp_path)
    ctx = _ctx(tmp_path)
    _, long, _ = X.planning_pass(ctx, lambda c: E.searches(
        dataclasses.replace(c, search_overrides={"epochs": 60}), VARIANTS[:1], [5]))
    _, good, _ = X.planning_pass(ctx, lambda c: E.searches(c, VARIANTS[:1], [4]))

    def cancel_when_running(subs):
        def go():
            deadline = time.monotonic() + 60  # started: the worker has written its first log line
            while not (long[0].log.is_file() and "epoch" in long[0].log.read_text()) and time.monotonic() < deadline:
                time.sleep(0.3)
            subprocess.run(["scancel", str(subs[1].job_id)], check=True)
        threading.Thread(target=go, daemon=True).start()

    out = X.execute([bad, long[0], good[0]], "slurm", E.run_job, slurm={"timeout_min": 5, "poll_s": 0.5},
                    on_submit=cancel_when_running)
    assert [o.ok for o in out] == [False, False, True]
    assert "epochs" in out[0].error and "SLURM" in out[0].log
    assert "CANCELLED" in out[1].error
    assert (tmp_path / good[0].key / "summary.json").is_file()


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
    _, jobs, _ = X.planning_pass(ctx, lambda c: E.searches(c, [E.Variant("default", {}, {})], [2]))
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

    out = X.execute(jobs, "slurm", E.run_job, slurm={"timeout_min": 3, "signal_delay_s": 30, "poll_s": 0.5},
                    on_submit=signal_at_epoch_8)
    assert out[0].ok, out[0].error
    text = log.read_text()
    assert text.count(f"({jobs[0].key}) on ") == 2, f"not requeued once:\n{text}"
    assert "requeued, the run resumes" in text and "resuming" in text and "epoch 40/40" in text
    assert X.fingerprint(tmp_path / "slurm" / jobs[0].key) == X.fingerprint(r.path)


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

    _, jobs, _ = X.planning_pass(job_ctx, retrain)
    assert [j.kind for j in jobs] == ["train"]
    out = X.execute(jobs, "slurm", E.run_job, slurm={"timeout_min": 5, "poll_s": 0.5, "train_tasks": 2})
    assert out[0].ok, out[0].error
    result = json.loads((tmp_path / jobs[0].key / "result.json").read_text())
    assert result["world_size"] == 2 and len(set(result["rank_digests"])) == 1
    assert "DDP rank 1/2" in jobs[0].log.read_text()
    assert E.retrain_run(job_ctx, spec, 2, label="ddp")["top1"] == result["top1"]  # the store has it: read back
