"""The run skeleton shared by search and retraining (``run_loop.RunLoop``), on a toy run:
a counter as the state, so resume, stop, records and the done file are checked in milliseconds."""
from __future__ import annotations

import json

import pytest

from tfnas_core.runs import checkpoint
from tfnas_core.runs import loop as run_loop


def write_records(records, path):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def toy_run(out, cfg, stop_after=None, log=None):
    """Sum 1..epochs, one epoch at a time; the state is the running total."""
    loop = run_loop.RunLoop(out, "toy", cfg, {"stop"}, cfg["epochs"], stop_after, "records.jsonl", write_records,
                            "done.json", (log if log is not None else (lambda m: None)), what="toy", ckpt_what="toy")
    state = {"total": 0}
    loop.resume("cpu", ("total", "epoch", "records", "wall_s"), lambda st, s: s.update(total=st["total"]), state,
                epoch_of=lambda st: st["epoch"])
    done = loop.begin({"extra.json": {"x": 1}})
    if done is not None:
        return done
    for epoch in loop.epoch_range():
        state["total"] += epoch + 1
        loop.end_epoch({"epoch": epoch + 1, "total": state["total"]},
                       lambda: {"total": state["total"], "epoch": epoch + 1}, f"epoch {epoch + 1}")
        if loop.stopping(epoch):
            return None
    return loop.finish({"total": state["total"], "epochs": len(loop.records)})


def test_a_stopped_run_resumes_to_the_same_end(tmp_path):
    cfg = {"epochs": 4}
    whole = toy_run(tmp_path / "a", cfg)
    msgs = []
    assert toy_run(tmp_path / "b", cfg, stop_after=2, log=msgs.append) is None
    assert msgs[-1].startswith("stopped after epoch 2") and not (tmp_path / "b" / "done.json").exists()
    assert toy_run(tmp_path / "b", cfg, log=msgs.append) == whole == {"total": 10, "epochs": 4}
    assert msgs[-3:] == [f"resuming {tmp_path / 'b'} after epoch 2/4", "epoch 3", "epoch 4"]
    for name in ("records.jsonl", "done.json", "config.json", "extra.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    msgs.clear()
    assert toy_run(tmp_path / "b", cfg, log=msgs.append) == whole  # complete: returned as it is
    assert msgs[-1].endswith("already complete")


def test_another_config_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "run"
    toy_run(out, {"epochs": 3}, stop_after=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(ValueError, match="different config"):
        toy_run(out, {"epochs": 5})
    (out / "config.json").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="another config"):
        toy_run(out, {"epochs": 5})
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {k: v for k, v in before.items() if k != "config.json"}


def test_kept_names_the_last_checkpoint(tmp_path):
    loop = run_loop.RunLoop(tmp_path, "toy", {}, (), 3, None, "records.jsonl", write_records, "done.json")
    assert loop.kept() == "no checkpoint was written yet"
    loop.end_epoch({"epoch": 1}, lambda: {"epoch": 1}, "epoch 1")
    assert loop.kept() == f"the last good checkpoint (epoch 1) is kept at {tmp_path / 'checkpoint.pt'}"


def test_only_the_main_rank_writes(tmp_path):
    loop = run_loop.RunLoop(tmp_path / "r", "toy", {}, (), 1, None, "records.jsonl", write_records, "done.json",
                            main=False)
    loop.begin()
    loop.end_epoch({"epoch": 1}, lambda: {"epoch": 1}, "")
    assert loop.finish({"ok": True}) == {"ok": True}
    assert not (tmp_path / "r").exists()
