"""Run folders under stress (issue 14): checkpoints, the per-``--out`` lock, temp files, full disks.

* A checkpoint carries the hash of the config it was made with and is refused on a mismatch even
  when ``config.json`` was deleted; a truncated, empty or foreign checkpoint is one line naming it;
  in every refusal ``config.json`` is left as it was.
* Two processes writing one ``--out`` take turns; a failed atomic save leaves no temp file.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tfnas_core.utils import atomic
from tfnas_core.runs import checkpoint
from tfnas_core.train import config as profiles
from tfnas_core.runs import store as runs
from tfnas_core.search import loop as search
from tfnas_core.search import config as search_config
from tfnas_core.runs import tb_log
from tfnas_core.train import retrain as train
from tfnas_core.arch import zoo
from tfnas_core.search.config import smoke

ROOT = Path(__file__).resolve().parents[1]
QUIET = lambda m: None  # noqa: E731


def tiny_search(tmp_path: Path, **kw):
    base = dict(steps_per_epoch=2, val_batches=1, split_dir=str(tmp_path / "splits"), epochs=3, warmup_epochs=1)
    return search_config.check(replace(smoke(), **{**base, **kw}))


def tiny_train(**kw):
    base = dict(train_subset=64, val_subset=32, batch_size=32, eval_batch_size=32, epochs=2, warmup_epochs=0.5)
    return profiles.check(replace(profiles.smoke(), **{**base, **kw}))


@pytest.fixture(scope="module")
def stopped_search(tmp_path_factory):
    """A search stopped after epoch 1 of 3: (cfg, folder); tests copy the folder."""
    tmp = tmp_path_factory.mktemp("stopped")
    cfg = tiny_search(tmp)
    assert search.run(replace(cfg, stop_after_epoch=1), tmp / "run", log=QUIET) is None
    return cfg, tmp / "run"


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _files(folder: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder.iterdir())}


# ----------------------------------------------------------------------------- checkpoints


def test_checkpoint_hash_refuses_another_config_without_config_json(stopped_search, tmp_path):
    """The probe's case: config.json deleted, rerun with other epochs / warm-up / λ."""
    cfg, src = stopped_search
    out = _copy(src, tmp_path / "run")
    (out / "config.json").unlink()
    before = _files(out)
    other = replace(cfg, epochs=6, warmup_epochs=2, lam=0.5)
    with pytest.raises(checkpoint.CheckpointError, match="made with another config"):
        search.run(other, out, log=QUIET)
    assert _files(out) == before  # no config.json claiming λ 0.5, nothing else touched
    msgs = []
    search.run(cfg, out, log=msgs.append)  # the same config resumes, config.json or not
    assert any("resuming" in m and "after epoch 1/3" in m for m in msgs)
    assert json.loads((out / "config.json").read_text())["lam"] == search_config.resolve(cfg, False).lam


def test_resume_free_keys_do_not_change_the_hash(stopped_search, tmp_path):
    cfg, src = stopped_search
    out = _copy(src, tmp_path / "run")
    (out / "config.json").unlink()
    msgs = []
    search.run(replace(cfg, threads=1, progress=True, num_workers=3), out, log=msgs.append)
    assert any("resuming" in m for m in msgs)


def _truncate(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


BROKEN = {
    "truncated": (_truncate, "not a readable checkpoint"),
    "zero-byte": (lambda p: p.write_bytes(b""), "not a readable checkpoint"),
    "random-bytes": (lambda p: p.write_bytes(os.urandom(4096)), "not a readable checkpoint"),
    "foreign": (lambda p: torch.save({"weights": torch.zeros(3)}, p), r"not a search checkpoint \(lacks net"),
    "code-pickle": (lambda p: p.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR."), "not a readable checkpoint"),
    "other-shapes": (lambda p: torch.save({**torch.load(p, weights_only=True), "net": {"x": torch.zeros(1)}}, p),
                     "does not fit this run"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_search_checkpoint_is_one_line_and_touches_nothing(stopped_search, tmp_path, case):
    cfg, src = stopped_search
    out = _copy(src, tmp_path / "run")
    spoil, needle = BROKEN[case]
    spoil(out / "checkpoint.pt")
    before = _files(out)
    with pytest.raises(checkpoint.CheckpointError, match=needle) as e:
        search.run(cfg, out, log=QUIET)
    msg = str(e.value)
    assert "\n" not in msg and str(out / "checkpoint.pt") in msg and "pwned" not in msg
    assert _files(out) == before


def test_legacy_checkpoint_without_hash_needs_its_config_json(stopped_search, tmp_path):
    cfg, src = stopped_search
    out = _copy(src, tmp_path / "run")
    st = torch.load(out / "checkpoint.pt", weights_only=True)
    del st[checkpoint.HASH_KEY]
    torch.save(st, out / "checkpoint.pt")
    search.run(replace(cfg, stop_after_epoch=2), out, log=QUIET)  # config.json present and equal: resumes
    assert len(search.read_records(out / "records.jsonl")) == 2
    out2 = _copy(src, tmp_path / "run2")
    torch.save(st, out2 / "checkpoint.pt")
    (out2 / "config.json").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="carries no config hash"):
        search.run(cfg, out2, log=QUIET)


def test_train_checkpoint_hash_and_broken_file(tmp_path):
    spec = zoo.load("TF-NAS-D")
    cfg = tiny_train()
    out = tmp_path / "run"
    assert train.run(spec, replace(cfg, stop_after_epoch=1), out, log=QUIET) is None
    (out / "config.json").unlink()
    with pytest.raises(checkpoint.CheckpointError, match="made with another config"):
        train.run(spec, replace(cfg, lr=0.05), out, log=QUIET)
    assert not (out / "config.json").exists()
    saved = (out / "checkpoint.pt").read_bytes()
    (out / "checkpoint.pt").write_bytes(saved[:1000])
    with pytest.raises(checkpoint.CheckpointError, match="not a readable checkpoint"):
        train.run(spec, cfg, out, log=QUIET)
    (out / "checkpoint.pt").write_bytes(saved)
    msgs = []
    result = train.run(spec, cfg, out, log=msgs.append)
    assert result["epochs"] == 2 and any("after epoch 1/2" in m for m in msgs)


# ----------------------------------------------------------------------------- temp files, full disk


def test_failed_atomic_save_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    atomic.atomic_torch_save({"a": torch.ones(2)}, path)

    def full_disk(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=f"cannot write {path}: .*file write failed"):
        atomic.atomic_torch_save({"a": torch.zeros(2)}, path)
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))  # the old one is intact


def test_concurrent_saves_to_one_path_use_their_own_temp_files(tmp_path):
    path, errors = tmp_path / "checkpoint.pt", []

    def writer(i):
        try:
            for _ in range(5):
                atomic.atomic_torch_save({"i": torch.full((20000,), float(i))}, path)
                atomic.atomic_write_text(tmp_path / "records.jsonl", f"{i}\n" * 1000)
        except Exception as e:  # pragma: no cover - the failure this test is about
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "records.jsonl"]


def _limit_file_size(limit: int):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # writes past it fail with EFBIG
    return pre


def _cli(args, cwd, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "tfnas_core", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300, **kw)


def _search_args(out, tmp_path, *extra):
    return ["search", "--profile", "smoke", "--out", out, "--set", f"split_dir={tmp_path / 'splits'}",
            "--set", "steps_per_epoch=2", "--set", "val_batches=1", *extra]


def _run_files(out: Path) -> list[str]:
    """The run folder's files but TensorBoard's event files (tb_log.py), sorted."""
    return sorted(p.name for p in out.iterdir() if not tb_log.is_event_file(p.name))


def test_full_disk_during_checkpoint_write(tmp_path):
    """A 4 MB file-size limit (the checkpoint is ~20 MB): one line, exit 2, no temp file."""
    out = tmp_path / "run"
    r = _cli(_search_args(out, tmp_path), tmp_path, preexec_fn=_limit_file_size(4 << 20))
    assert r.returncode == 2, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot write {out / 'checkpoint.pt'}") and "Traceback" not in r.stderr
    assert _run_files(out) == ["config.json", "lut_check.json"]  # and TensorBoard's event file of the run so far
    r = _cli(_search_args(out, tmp_path), tmp_path)  # with room again the same command completes
    assert r.returncode == 0, r.stderr
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- the --out lock


@pytest.mark.slow
def test_two_searches_into_one_out_take_turns(tmp_path):
    out, ref = tmp_path / "run", tmp_path / "ref"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "tfnas_core", *map(str, _search_args(out, tmp_path))],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
             for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    errs = "".join(e for _, e in results)
    assert "already complete" in errs or "waiting" in errs
    assert _run_files(out) == ["checkpoint.pt", "config.json", "lut_check.json", "records.jsonl", "spec.json",
                               "summary.json"]
    assert len([p for p in out.iterdir() if tb_log.is_event_file(p.name)]) == 1  # the search that ran logged; the other did not
    assert _cli(_search_args(ref, tmp_path), tmp_path).returncode == 0
    assert (out / "spec.json").read_text() == (ref / "spec.json").read_text()


def test_out_lock_waits_and_removes_a_folder_it_created_for_nothing(tmp_path):
    out = tmp_path / "new" / "run"
    with runs.out_lock(out):
        assert out.is_dir()
    assert not out.exists()  # nothing was written: no trace
    waited = []
    with runs.out_lock(out):
        (out / "x").write_text("1")
        # a second holder in another thread blocks: flock is per open file description
        t2 = threading.Thread(target=lambda: _enter_and_leave(out, waited))
        t2.start()
        t2.join(0.5)
        assert t2.is_alive() and waited == ["waiting"]
    t2.join(5)
    assert not t2.is_alive() and waited == ["waiting", "entered"]
    assert (out / "x").exists()


def test_out_lock_removes_temp_files_of_a_killed_writer(tmp_path):
    (tmp_path / ".checkpoint.pt.k2j3l4.tmp").write_bytes(b"\0" * 100)
    (tmp_path / "checkpoint.pt").write_bytes(b"kept")
    (tmp_path / "notes.tmp").write_text("not ours: no leading dot")
    with runs.out_lock(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]


def _enter_and_leave(out: Path, log: list) -> None:
    with runs.out_lock(out, on_wait=lambda: log.append("waiting")):
        log.append("entered")


def test_store_run_does_not_wait_on_its_own_lock(tmp_path):
    store = runs.RunStore(tmp_path / "store")
    cfg = tiny_search(tmp_path, epochs=1, warmup_epochs=1)
    run = store.get_or_run("search", search_config.to_dict(cfg), lambda p: search.run(cfg, p, log=QUIET),
                           "summary.json")
    assert run.done


@pytest.mark.parametrize("raw, needle", [(b"\x8b\x08", "not UTF-8"), (b"[1]", "expected a JSON object"),
                                         (b'{"kind": ', "not valid JSON")])
def test_broken_store_record_is_named(tmp_path, raw, needle):
    (tmp_path / "abc123").mkdir()
    (tmp_path / "abc123" / "store.json").write_bytes(raw)
    with pytest.raises(ValueError, match=needle) as e:
        runs.RunStore(tmp_path).index()
    assert str(tmp_path / "abc123" / "store.json") in str(e.value)
