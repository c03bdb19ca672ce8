"""Step-level progress from the run loop's structured events (progress.Event, sent by the run loop, and progress.RunProgress; issue 32):
which events a run sends, when it reads its numbers, and the lines with their ETA."""
from __future__ import annotations

import io
from dataclasses import replace

import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.train import config as profiles
from tfnas_core.runs import loop as run_loop
from tfnas_core.search import loop as search
from tfnas_core.search import config as search_config
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo
from tfnas_core.utils.progress import RunProgress
from tfnas_core.runs.loop import Event

QUIET = lambda m: None  # noqa: E731


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def step(epoch, n, steps=10, epochs=3, phase="search", **values):
    return Event("step", epoch, epochs, n, steps, phase, values)


def test_step_lines_every_logging_point_or_every_s_with_an_eta():
    out, clock = io.StringIO(), Clock()
    p = RunProgress("search seed 2", stream=out, clock=clock, every_s=30)
    p.event(Event("start", 1, 3, 0, 10))
    for n in range(1, 5):  # 2 s a step, no values, under 30 s since the last line: no line
        clock.t += 2
        p.event(step(1, n))
    clock.t += 2
    p.event(step(1, 5, **{"train/loss": 2.5}))  # a logging point: a line at once
    for n in range(6, 10):
        clock.t += 10  # slower now: at step 8, 30 s after the last line, one line without values
        p.event(step(1, n))
    lines = out.getvalue().splitlines()
    # step 5 at 10 s: 2 s/step, 5 steps left = 10 s; no epoch of this phase ended: 3 epochs of 20 s - 10 s done
    assert lines[0] == "search seed 2: epoch 1/3 step 5/10 (2.00 s/step, loss 2.500; epoch ETA 10 s, ETA 50 s)"
    # step 8 at 40 s: 5 s/step, 2 steps = 10 s left in the epoch; the run: 10 s + 2 epochs of 50 s = 110 s
    assert lines[1] == "search seed 2: epoch 1/3 step 8/10 (5.00 s/step; epoch ETA 10 s, ETA 1.8 min)"
    assert len(lines) == 2
    clock.t += 20
    p.event(Event("epoch", 1, 3, 10, 10, "search"))
    p.event(Event("start", 2, 3, 0, 10))
    clock.t += 6
    p.event(step(2, 3, **{"train/loss": 2.0}))
    # a finished epoch of this phase (70 s) times the epochs left; this one at its own rate (2 s/step)
    assert out.getvalue().splitlines()[-1] == \
        "search seed 2: epoch 2/3 step 3/10 (2.00 s/step, loss 2.000; epoch ETA 14 s, ETA 84 s)"
    assert out.getvalue().splitlines()[-2] == "search seed 2: epoch 1/3 (70 s/epoch, ETA 2.3 min)"


def test_without_epoch_lines_only_steps_are_written():
    seen, clock = [], Clock()
    p = RunProgress("train", write=seen.append, clock=clock, epoch_lines=False)
    p.event(Event("resumed", 1, 3))
    p.event(Event("start", 2, 3, 0, 4))
    clock.t += 4
    p.event(step(2, 4, steps=4, phase="train", **{"train/loss": 1.0}))
    p.event(Event("epoch", 2, 3, 4, 4, "train"))
    assert seen == ["train: epoch 2/3 step 4/4 (1.00 s/step, loss 1.000; epoch ETA 0 s, ETA 4 s)"]


def toy(tmp_path, log_every, events, reads):
    loop = run_loop.RunLoop(tmp_path / "run", "search", {"epochs": 2}, (), 2, None, lambda r, p: None, QUIET,
                            events=events, log=run_loop.LogSettings(every=log_every))
    loop.begin()
    loop.open_log(5)

    def values():
        reads.append(1)
        return {"train/loss": 1.0}

    for epoch in loop.epoch_range():
        for s in range(5):
            loop.step(epoch, s, "train", values)
        loop.end_epoch({"epoch": epoch + 1, "train_loss": 0.5, "phase": "train"}, lambda: {}, "line", "train")
    return loop.finish({})


def test_the_loop_reads_values_only_at_logging_points(tmp_path):
    evs, reads = [], []
    toy(tmp_path, 2, evs.append, reads)
    assert len(reads) == 4  # steps 2 and 4 of each epoch: the only reads of the run's numbers
    assert [(e.kind, e.epoch, e.step) for e in evs if e.kind != "step"] == \
        [("start", 1, 0), ("epoch", 1, 5), ("start", 2, 0), ("epoch", 2, 5)]
    steps = [e for e in evs if e.kind == "step"]
    assert [(e.epoch, e.step, e.steps, bool(e.values)) for e in steps] == \
        [(ep, s, 5, s % 2 == 0) for ep in (1, 2) for s in range(1, 6)]
    assert evs[-1].values == {"epoch": 2.0, "train_loss": 0.5}  # an epoch event: the record's numbers
    reads.clear()
    toy(tmp_path / "b", 0, evs.append, reads)  # no logging points
    assert reads == []


@pytest.mark.slow
def test_a_smoke_search_sends_structured_events_and_the_same_lines_to_its_log(tmp_path):
    cfg = search_config.check(replace(search_config.smoke(), split_dir=str(tmp_path / "splits"), log_every=2))
    evs, lines = [], []
    search.run(cfg, tmp_path / "a", log=QUIET, events=evs.append)
    recs = search.read_records(tmp_path / "a" / "records.jsonl")
    kinds = [e.kind for e in evs]
    assert kinds == (["start"] + ["step"] * 4 + ["epoch"]) * 2
    logged = [e for e in evs if e.kind == "step" and e.values]
    assert [(e.epoch, e.step, e.phase) for e in logged] == [(1, 2, "warmup"), (1, 4, "warmup"), (2, 2, "search"),
                                                            (2, 4, "search")]
    assert {"train/loss", "latency/derived_ms", "schedule/temperature"} <= set(logged[0].values)
    assert "arch/loss" in logged[2].values and "arch/loss" not in logged[0].values
    assert [e.values["train_loss"] for e in evs if e.kind == "epoch"] == [r["train_loss"] for r in recs]
    # a plain log (a terminal, a SLURM log) gets the step lines; its epoch lines are the run's own
    search.run(replace(cfg, tensorboard=False), tmp_path / "b", log=lines.append)
    steps = [line for line in lines if line.startswith("search: epoch ")]
    assert [line.split(" (")[0] for line in steps] == [f"search: epoch {e}/2 step {s}/4" for e in (1, 2) for s in (2, 4)]
    assert all("ETA" in line and "s/step" in line for line in steps)
    # resumed: a resumed event, then the epochs left
    evs.clear()
    out = tmp_path / "c"
    search.run(replace(cfg, stop_after_epoch=1), out, log=QUIET, events=evs.append)
    evs.clear()
    search.run(cfg, out, log=QUIET, events=evs.append)
    assert [(e.kind, e.epoch) for e in evs if e.kind != "step"] == [("resumed", 1), ("start", 2), ("epoch", 2)]


def test_a_retraining_sends_step_events(tmp_path):
    evs = []
    train.run(zoo.load("TF-NAS-D"), replace(profiles.smoke(), epochs=1, log_every=1, tensorboard=False),
              tmp_path / "r", log=QUIET, events=evs.append)
    steps = [e for e in evs if e.kind == "step"]
    assert steps and [e.step for e in steps] == list(range(1, len(steps) + 1))
    assert all(e.steps == len(steps) and e.phase == "train" and {"train/loss", "train/top1"} <= set(e.values)
               for e in steps)
    assert evs[0].kind == "start" and evs[-1].kind == "epoch" and "val_top1" in evs[-1].values


def test_a_notebook_run_shows_step_lines_on_the_terminal(tmp_path, capfd):
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), name="nb", log=lambda m: None,
                    search_overrides={"log_every": 2, "split_dir": str(tmp_path / "splits")})
    E.search_run(ctx, 2)
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("[nb] search [default] seed 2: ")]
    body = [line.split(": ", 1)[1].split(" (")[0] for line in err[1:]]
    assert body == ["epoch 1/2 step 2/4", "epoch 1/2 step 4/4", "epoch 1/2", "epoch 2/2 step 2/4",
                    "epoch 2/2 step 4/4", "epoch 2/2"]
    assert err[-1].endswith("done)")


@pytest.mark.parametrize("bad", ["log_every=0", "log_every_s=0", "tensorboard=maybe"])
def test_logging_settings_are_checked(bad):
    with pytest.raises(ValueError):
        search_config.apply_overrides(search_config.smoke(), [bad])
    with pytest.raises(ValueError):
        profiles.apply_overrides(profiles.smoke(), [bad])
