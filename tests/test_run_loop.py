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
    loop = run_loop.RunLoop(out, "search", cfg, {"stop"}, cfg["epochs"], stop_after, write_records,
                            log if log is not None else (lambda m: None))
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
    assert msgs[-1].startswith("stopped after epoch 2") and not (tmp_path / "b" / "summary.json").exists()
    assert toy_run(tmp_path / "b", cfg, log=msgs.append) == whole == {"total": 10, "epochs": 4}
    assert msgs[-3:] == [f"resuming {tmp_path / 'b'} after epoch 2/4", "epoch 3", "epoch 4"]
    for name in ("records.jsonl", "summary.json", "config.json", "extra.json"):
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
    loop = run_loop.RunLoop(tmp_path, "search", {}, (), 3, None, write_records)
    assert loop.kept() == "no checkpoint was written yet"
    loop.end_epoch({"epoch": 1}, lambda: {"epoch": 1}, "epoch 1")
    assert loop.kept() == f"the last good checkpoint (epoch 1) is kept at {tmp_path / 'checkpoint.pt'}"


def test_only_the_main_rank_writes(tmp_path):
    loop = run_loop.RunLoop(tmp_path / "r", "train", {}, (), 1, None, write_records, main=False)
    loop.begin()
    loop.end_epoch({"epoch": 1}, lambda: {"epoch": 1}, "")
    assert loop.finish({"ok": True}) == {"ok": True}
    assert not (tmp_path / "r").exists()


def test_a_kind_names_its_files_and_itself_in_messages(tmp_path):
    from tfnas_core.runs import files

    for kind, records, done, names in (("search", "records.jsonl", "summary.json", ("search", "search")),
                                       ("train", "records.csv", "result.json", ("run", "retraining"))):
        loop = run_loop.RunLoop(tmp_path / kind, kind, {}, (), 1, None, write_records)
        assert (loop.records_file, loop.done_file) == (records, done) == (files.RECORDS[kind], files.DONE[kind])
        assert (loop.what, loop.ckpt_what) == names
        assert loop.ckpt_path == tmp_path / kind / files.CHECKPOINT
    with pytest.raises(KeyError):
        run_loop.RunLoop(tmp_path / "x", "toy", {}, (), 1, None, write_records)


def test_log_settings_of_a_config():
    from types import SimpleNamespace

    cfg = SimpleNamespace(log_every=7, log_every_s=3.5, tensorboard=False, progress=False)
    assert run_loop.LogSettings.of(cfg) == run_loop.LogSettings(7, 3.5, False, True)  # no bars: step lines
    assert run_loop.LogSettings() == run_loop.LogSettings(0, 60.0, False, True)


def _draws(gen):
    import random

    import numpy as np
    import torch

    return (torch.rand(3).tolist(), torch.rand(2, generator=gen).tolist(), random.random(), float(np.random.rand()))


def test_rng_state_restores_every_generator_it_saved():
    import torch

    gen = torch.Generator().manual_seed(5)
    st = checkpoint.rng_state({"gumbel": gen}, host=True)
    assert {checkpoint.TORCH_KEY, "gumbel", "python", "numpy"} <= set(st)
    want = _draws(gen)
    checkpoint.set_rng_state(st, {"gumbel": gen})
    assert _draws(gen) == want
    torch_only = checkpoint.rng_state()  # a retraining's: torch's (and the GPUs') only
    assert set(torch_only) - {"cuda"} == {checkpoint.TORCH_KEY}


def test_rng_state_of_an_old_retraining_checkpoint_is_read():
    """Retraining checkpoints written before issue 30 keep torch's generator under "cpu"."""
    import torch

    old = {"cpu": torch.get_rng_state()}
    want = torch.rand(4)
    torch.rand(7)
    checkpoint.set_rng_state(old)
    assert torch.equal(torch.rand(4), want)
    assert checkpoint.OLD_TORCH_KEYS == ("cpu",)
