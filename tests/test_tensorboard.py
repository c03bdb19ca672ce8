"""TensorBoard event files of a search and a retraining (tb_log.py, issue 32): what they hold, that
they change no number of a run and no run key, that a resumed run's steps appear once, that the
archive leaves them out."""
from __future__ import annotations

import io
import json
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core.experiments import notebook as E
from tfnas_core.train import config as profiles
from tfnas_core.runs import archive as run_archive
from tfnas_core.runs import keys as run_keys
from tfnas_core.search import loop as search
from tfnas_core.search import config as search_config
from tfnas_core.runs import tb_log
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo
from tfnas_core.runs.store import RunStore

QUIET = lambda m: None  # noqa: E731


def accumulator(run_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def event_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in Path(run_dir).iterdir() if tb_log.is_event_file(p.name))


def cfg_of(tmp_path: Path, **kw) -> search_config.SearchConfig:
    return search_config.check(replace(search_config.smoke(), split_dir=str(tmp_path / "splits"), **kw))


def comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in search.TIME_FIELDS} for r in records]


@pytest.fixture(scope="module")
def logged_search(tmp_path_factory):
    """A smoke search (2 epochs of 4 steps) logging every step."""
    tmp = tmp_path_factory.mktemp("tb")
    out = tmp / "run"
    search.run(cfg_of(tmp, log_every=1), out, log=QUIET)
    return out


# ----------------------------------------------------------------------------- what the files hold


def test_a_search_logs_every_step_and_epoch(logged_search):
    (f,) = event_files(logged_search)
    acc = accumulator(logged_search)
    recs = search.read_records(logged_search / "records.jsonl")
    tags = set(acc.Tags()["scalars"])
    n_layers = len(recs[0]["alpha_softmax"])
    want = {"train/loss", "train/acc", "schedule/temperature", "schedule/lr", "latency/expected_ms",
            "latency/derived_ms", "latency/target_ms", "arch/loss", "arch/ce", "arch/lat_loss", "arch/sampled_ms",
            "epoch/train_loss", "epoch/val_acc", "epoch/lut_ms_after", "epoch/epoch_s"}
    want |= {f"depth/stage{s + 1}" for s in range(len(recs[0]["derived_depths"]))}
    want |= {f"alpha_{w}/layer{l:02d}" for w in ("entropy", "top") for l in range(n_layers)}
    assert want <= tags, sorted(want - tags)
    assert [s for s, _ in scalars(acc, "train/loss")] == list(range(1, 9))  # 2 epochs x 4 steps, global steps
    assert [s for s, _ in scalars(acc, "arch/loss")] == [6, 8]  # arch steps: after every 2nd step of epoch 2
    # the last step's state is the one the epoch's record derives (before elasticity scaling)
    last = dict(scalars(acc, "latency/derived_ms"))
    assert last[4] == pytest.approx(recs[0]["lut_ms_before"], rel=1e-6)
    assert last[8] == pytest.approx(recs[1]["lut_ms_before"], rel=1e-6)
    assert dict(scalars(acc, "latency/target_ms"))[8] == pytest.approx(recs[1]["target_ms"], rel=1e-6)
    assert [v for _, v in scalars(acc, "schedule/temperature")] == pytest.approx([r["temperature"] for r in recs
                                                                                   for _ in range(4)])
    # step means over a whole epoch are the epoch's mean; epoch scalars are the record's
    loss = [v for _, v in scalars(acc, "train/loss")]
    for e, rec in enumerate(recs):
        assert sum(loss[4 * e:4 * e + 4]) / 4 == pytest.approx(rec["train_loss"], rel=1e-5)
        assert dict(scalars(acc, "epoch/val_acc"))[4 * (e + 1)] == pytest.approx(rec["val_acc"], rel=1e-6)
        assert [dict(scalars(acc, f"depth/stage{s + 1}"))[4 * (e + 1)] for s in range(len(rec["derived_depths"]))] \
            == rec["derived_depths"] or e == 1  # epoch 2's record is after elasticity, which keeps depths
    # entropies and top shares from the final α: the last step is after the last arch update
    final = recs[-1]["alpha_softmax"]
    ent = [dict(scalars(acc, f"alpha_entropy/layer{l:02d}"))[8] for l in range(n_layers)]
    top = [dict(scalars(acc, f"alpha_top/layer{l:02d}"))[8] for l in range(n_layers)]
    p = [torch.tensor(a, dtype=torch.float64) for a in final]
    assert ent == pytest.approx([float(-(q * q.log()).sum()) for q in p], abs=1e-4)
    assert top == pytest.approx([max(a) for a in final], abs=1e-5)
    # per epoch: α and β histograms and the derived architecture as text
    hists = set(acc.Tags()["histograms"])
    assert {f"alpha/layer{l:02d}" for l in range(n_layers)} <= hists and "beta/stage1" in hists
    assert [e.step for e in acc.Histograms("alpha/layer00")] == [4, 8]
    texts = acc.Tensors("derived/architecture/text_summary")
    assert [t.step for t in texts] == [4, 8]
    assert " ".join(recs[-1]["derived_ops"]) in texts[-1].tensor_proto.string_val[0].decode()
    assert f.stat().st_size < 200_000


def test_logging_changes_no_number_of_a_search(tmp_path):
    """Logging every step (a host read at each, TensorBoard on) against none at all: the same records,
    spec and weights."""
    on, off = tmp_path / "on", tmp_path / "off"
    search.run(cfg_of(tmp_path, log_every=1), on, log=QUIET)
    search.run(cfg_of(tmp_path, tensorboard=False), off, log=QUIET)
    assert event_files(on) and not event_files(off)
    assert comparable(search.read_records(on / "records.jsonl")) == comparable(search.read_records(off / "records.jsonl"))
    assert (on / "spec.json").read_bytes() == (off / "spec.json").read_bytes()
    a, b = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (on, off))
    assert a["net"].keys() == b["net"].keys()
    for k, v in a["net"].items():  # the weights, α, β and (extra state) the widths
        assert (torch.equal(v, b["net"][k]) if isinstance(v, torch.Tensor) else v == b["net"][k]), k
    assert torch.equal(a["rng"]["gumbel"], b["rng"]["gumbel"]) and torch.equal(a["rng"]["torch"], b["rng"]["torch"])


def test_a_retraining_logs_steps_and_epochs_and_the_same_numbers(tmp_path):
    spec = zoo.load("TF-NAS-D")
    on, off = tmp_path / "on", tmp_path / "off"
    train.run(spec, replace(profiles.smoke(), epochs=2, log_every=1), on, log=QUIET)
    train.run(spec, replace(profiles.smoke(), epochs=2, tensorboard=False), off, log=QUIET)
    assert event_files(on) and not event_files(off)
    rows = {p: [line.split(",") for line in (p / "records.csv").read_text().splitlines()] for p in (on, off)}
    assert rows[on][0][-1] == "epoch_s" and [r[:-1] for r in rows[on]] == [r[:-1] for r in rows[off]]
    digest = lambda p: json.loads((p / "result.json").read_text())["rank_digests"]  # noqa: E731
    assert digest(on) == digest(off)
    acc = accumulator(on)
    assert {"train/loss", "train/top1", "schedule/lr", "epoch/val_top1", "epoch/train_loss"} <= set(acc.Tags()["scalars"])
    steps = [s for s, _ in scalars(acc, "train/loss")]
    per_epoch = len(steps) // 2
    assert per_epoch >= 1 and steps == list(range(1, 2 * per_epoch + 1))
    for e, row in enumerate(rows[on][1:]):
        rec = dict(zip(rows[on][0], row))
        assert dict(scalars(acc, "epoch/val_top1"))[per_epoch * (e + 1)] == pytest.approx(float(rec["val_top1"]), abs=1e-4)
        assert dict(scalars(acc, "epoch/train_loss"))[per_epoch * (e + 1)] == pytest.approx(float(rec["train_loss"]),
                                                                                            abs=1e-5)
    # the learning rate a step logs is the one after its scheduler step: warm-up then cosine down to 0
    lrs = [v for _, v in scalars(acc, "schedule/lr")]
    assert lrs[-1] == pytest.approx(0.0, abs=1e-9) and max(lrs) > 0


# ----------------------------------------------------------------------------- resume, keys, archive


@pytest.mark.slow
def test_a_resumed_search_logs_each_step_once(tmp_path):
    """A search that dies in epoch 2 after logging two of its steps, then resumes from epoch 1: the
    steps after the checkpoint are logged again, and TensorBoard shows each once (purge_step)."""
    cfg = cfg_of(tmp_path, log_every=1)
    whole = tmp_path / "whole"
    search.run(cfg, whole, log=QUIET)

    class Died(Exception):
        pass

    def dying(ev):  # the session ends right after step 2 of epoch 2 is logged
        if ev.kind == "step" and (ev.epoch, ev.step) == (2, 2):
            raise Died

    out = tmp_path / "run"
    with pytest.raises(Died):
        search.run(cfg, out, log=QUIET, events=dying)
    assert [s for s, _ in scalars(accumulator(out), "train/loss")] == [1, 2, 3, 4, 5, 6]  # flushed on the way out
    search.run(cfg, out, log=QUIET)
    assert len(event_files(out)) == 2
    acc, ref = accumulator(out), accumulator(whole)
    for tag in ("train/loss", "latency/derived_ms", "epoch/val_acc"):
        assert scalars(acc, tag) == scalars(ref, tag), tag


def test_logging_settings_change_no_run_key(tmp_path):
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"))
    base = E.search_cfg(ctx, 2)
    key = run_keys.config_hash("search", E.search_key(base), search_config.RESUME_FREE_KEYS)
    for kw in ({"tensorboard": False}, {"log_every": 7}, {"log_every_s": 5.0}):
        other = E.search_key(replace(base, **kw))
        assert run_keys.config_hash("search", other, search_config.RESUME_FREE_KEYS) == key, kw
    assert not {"tensorboard", "log_every", "log_every_s"} & set(E.search_key(base))  # defaults: as before
    spec = zoo.load("TF-NAS-D")
    _, tkey = E.train_key(ctx, spec, 2)
    ctx2 = E.Context("smoke", runs_root=str(tmp_path / "runs"),
                     train_overrides={"tensorboard": False, "log_every": 3, "log_every_s": 1.0})
    _, tkey2 = E.train_key(ctx2, spec, 2)
    assert tkey2 != tkey and run_keys.config_hash("train", tkey2, profiles.RESUME_FREE_KEYS) == \
        run_keys.config_hash("train", tkey, profiles.RESUME_FREE_KEYS)
    assert search_config.LOGGING_KEYS <= search_config.RESUME_FREE_KEYS
    assert profiles.LOGGING_KEYS <= profiles.RESUME_FREE_KEYS
    with pytest.raises(ValueError, match="log_every"):
        search_config.apply_overrides(search_config.smoke(), ["log_every=0"])
    with pytest.raises(ValueError, match="log_every_s"):
        profiles.apply_overrides(profiles.smoke(), ["log_every_s=-1"])


def test_a_resumed_run_may_change_its_logging(tmp_path):
    out = tmp_path / "run"
    assert search.run(cfg_of(tmp_path, stop_after_epoch=1, tensorboard=False), out, log=QUIET) is None
    assert not event_files(out)
    search.run(cfg_of(tmp_path, log_every=2), out, log=QUIET)
    assert [s for s, _ in scalars(accumulator(out), "train/loss")] == [6, 8]


def test_the_archive_leaves_event_files_out_and_verify_ignores_them(tmp_path, logged_search):
    store = RunStore(tmp_path / "runs")
    cfg = {"profile": "smoke", "seed": 2}
    run = store.get_or_run("search", cfg, lambda p: [shutil.copy2(f, p / f.name) for f in logged_search.iterdir()],
                           "summary.json")
    assert event_files(run.path)
    (key,) = run_archive.export(tmp_path / "runs", tmp_path / "arch").archived
    archived = tmp_path / "arch" / key
    assert not event_files(archived) and "checkpoint.pt" not in {p.name for p in archived.iterdir()}
    assert not any(tb_log.is_event_file(n) for n in json.loads((archived / "store.json").read_text())["files"])
    shutil.copy2(event_files(run.path)[0], archived)  # a run folder watched in place keeps its event files
    assert run_archive.verify_run(archived)["key"] == key
    (archived / "notes.txt").write_text("x")  # any other stray file is still refused
    with pytest.raises(run_archive.ArchiveError, match="notes.txt: not listed"):
        run_archive.verify_run(archived)


# ----------------------------------------------------------------------------- make tensorboard


def test_make_tensorboard_argv_takes_runs_as_data(tmp_path, monkeypatch):
    from tfnas_core.cli import make_entry
    from tfnas_core.experiments.preflight import PreflightError

    odd = tmp_path / "my runs; $(touch x)"
    odd.mkdir()
    argv = make_entry.tensorboard_argv({"TFNAS_MAKE_RUNS": str(odd)}, 6007)
    assert argv[1:] == [f"--logdir={odd}", "--port=6007"] and Path(argv[0]).name == "tensorboard"
    with pytest.raises(PreflightError, match="RUNS=.*no such folder"):
        make_entry.tensorboard_argv({"TFNAS_MAKE_RUNS": str(tmp_path / "none")})
    import socket

    with socket.socket() as s:  # a taken port is skipped
        s.bind(("localhost", 0))
        s.listen()
        taken = s.getsockname()[1]
        assert make_entry.free_port([taken, taken]) is None
    monkeypatch.setenv("TFNAS_MAKE_RUNS", str(odd))
    monkeypatch.setattr(make_entry, "free_port", lambda *a, **k: None)
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    assert make_entry.main(["tensorboard"]) == 1
    assert "no free port" in err.getvalue() and shlex.quote(f"--logdir={odd}") in err.getvalue()


def test_tensorboard_serves_a_smoke_run(tmp_path, logged_search):
    """The command make tensorboard runs, started for real: it lists the run and its scalars."""
    from tfnas_core.cli import make_entry

    runs = tmp_path / "runs"
    runs.mkdir()
    shutil.copytree(logged_search, runs / "abc123", ignore=shutil.ignore_patterns("checkpoint*"))
    port = make_entry.free_port(range(6100, 6200))
    proc = subprocess.Popen(make_entry.tensorboard_argv({"TFNAS_MAKE_RUNS": str(runs)}, port),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, tags = time.time() + 90, None
        while time.time() < deadline and tags is None:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/data/plugin/scalars/tags", timeout=5) as r:
                    tags = json.loads(r.read())
            except OSError:
                time.sleep(1)
        assert tags is not None, "tensorboard did not answer"
        assert "abc123" in tags and "latency/derived_ms" in tags["abc123"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
