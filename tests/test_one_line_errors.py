"""Every failure is one line naming the file or the flag (issue 29): torn or empty done files and
records in the run store and in the archive (for ``plan`` and for the notebooks' loaders), bad
``--slurm`` YAML, an empty ``--seeds``, a failed ``plan --run``, a full or read-only disk.

The CLI prints ``error: <the exception's first line>`` and exits 2; a notebook shows the exception,
so its message is that one line already (``_one_line``)."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from tfnas_core.utils import atomic
from tfnas_core.cli import main as cli
from tfnas_core.experiments import notebook as E

VARIANTS = E.table3_variants()[:1]  # Gumbel: one search and its retraining at seed 2
SEED = 2


def _ctx(runs: Path, archive: Path | None, splits: Path, **kw) -> E.Context:
    return E.Context("smoke", runs_root=str(runs), archive_root=str(archive) if archive else None, progress=False,
                     search_overrides={"split_dir": str(splits)}, name="test", **kw)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A smoke run store holding one finished search and its retraining (about 6 s)."""
    root = tmp_path_factory.mktemp("one-line")
    ctx = _ctx(root / "runs", None, root / "splits")
    run = E.searches(ctx, VARIANTS, [SEED])[VARIANTS[0].label][0]
    E.retrain_run(ctx, run.spec, SEED, label=VARIANTS[0].label)
    kinds = {r["kind"]: r["key"] for r in ctx.ledger}
    return root, kinds["search"], kinds["train"]


@pytest.fixture
def copy(store, tmp_path, monkeypatch):
    """(runs, archive, splits, search key, train key) of a copy of the store, as the run store
    (``runs``) or as the archive (``archive``: without checkpoints and with the archive's own
    verification of its files switched off, so that the loaders meet the torn file; ``exported``:
    ``run_archive.export``'s copy, verified as a notebook verifies it); cwd is ``tmp_path``."""
    from tfnas_core.runs import archive as run_archive
    from tfnas_core.runs import store as runs_module

    root, skey, tkey = store

    def make(where: str):
        runs, archive = tmp_path / "runs", tmp_path / "run_archive"
        if where == "exported":
            shutil.copytree(root / "runs", tmp_path / "src")
            run_archive.export(tmp_path / "src", archive)
        else:
            dest = runs if where == "runs" else archive
            shutil.copytree(root / "runs", dest, ignore=shutil.ignore_patterns("checkpoint.pt", "*.lock", "_*"))
        if where == "archive":
            monkeypatch.setattr(runs_module, "verify_archived", lambda run_dir, ignore=None: {})
        runs.mkdir(exist_ok=True)
        return runs, archive, root / "splits", skey, tkey

    monkeypatch.chdir(tmp_path)
    return make


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    assert len(lines) == 1, f"not one line: {str(e)!r}"
    return lines[0]


def _cli_error(argv: list[str], capsys) -> str:
    rc = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err and err[-1].startswith("error: "), err
    assert not any("Traceback" in line for line in err)
    return err[-1]


TORN = {
    "summary.json": [("cut", "not valid JSON"), ("{}", "no search_wall_s"), ("", "not valid JSON"),
                     ('{"search_wall_s": "x", "lut_ms": 1, "target_ms": 1, "final_val_acc": 1, "depths": []}',
                      "search_wall_s must be a number")],
    "result.json": [("cut", "not valid JSON"), ("{}", "no wall_s"), ("[1]", "expected a JSON object")],
    "records.jsonl": [("cut", "line 3: not valid JSON"), ("drop", "1 epoch record(s), the run has 2"),
                      ("[]", "line 1: expected")],
}
CASES = [(f, c, n) for f, cs in TORN.items() for c, n in cs]


def _tear(run_dir: Path, name: str, content: str) -> Path:
    p = run_dir / name
    text = p.read_text()
    if content == "cut":  # a write cut short: the first 60 characters
        p.write_text(text[:60] if name != "records.jsonl" else text + '{"epoch": 3, "ph')
    elif content == "drop":  # a records file that lost its last epoch
        p.write_text(text.splitlines(keepends=True)[0])
    elif content == "[]" and name == "records.jsonl":
        p.write_text("[]\n" + text)
    else:
        p.write_text(content)
    return p


@pytest.mark.parametrize("where", ["runs", "archive"])
@pytest.mark.parametrize("name, content, needle", CASES)
def test_torn_run_file_in_plan_is_one_line_naming_it(copy, capsys, where, name, content, needle):
    runs, archive, splits, skey, tkey = copy(where)
    folder = (runs if where == "runs" else archive) / (tkey if name == "result.json" else skey)
    path = _tear(folder, name, content)
    line = _cli_error(["plan", "table3", "--profile", "smoke", "--seeds", str(SEED), "--runs", str(runs),
                       "--search-set", f"split_dir={splits}"], capsys)
    if where == "archive":  # plan's archive is ./run_archive
        path, folder = Path(os.path.relpath(path)), Path(os.path.relpath(folder))
    assert f"error: {path}" in line and needle in line, line
    if where == "runs":
        assert f"delete {folder} and rerun" in line, line
    else:
        assert "damaged archived run" in line and f"git checkout -- {folder}" in line, line


@pytest.mark.parametrize("where", ["runs", "archive"])
@pytest.mark.parametrize("name, content, needle", CASES)
def test_torn_run_file_in_a_notebook_is_one_line_naming_it(copy, where, name, content, needle):
    """The notebooks' loaders (``ablation`` reads each search, its records and its retraining)."""
    runs, archive, splits, skey, tkey = copy(where)
    folder = (runs if where == "runs" else archive) / (tkey if name == "result.json" else skey)
    path = _tear(folder, name, content)
    ctx = _ctx(runs, archive if where == "archive" else None, splits, compute=False)
    with pytest.raises(ValueError) as e:
        E.ablation(ctx, VARIANTS, [SEED])
    line = _one_line(e.value)
    assert line.startswith(str(path)) and needle in line, line


@pytest.mark.parametrize("name, content", [("summary.json", "cut"), ("summary.json", "{}"), ("result.json", "{}"),
                                           ("records.jsonl", "cut")])
def test_torn_file_of_an_exported_archive_is_one_line_naming_it(copy, capsys, name, content):
    """Through the whole stack (the archive's own checks first): one line naming the torn file."""
    runs, archive, splits, skey, tkey = copy("exported")
    key = tkey if name == "result.json" else skey
    _tear(archive / key, name, content)
    line = _cli_error(["plan", "table3", "--profile", "smoke", "--seeds", str(SEED), "--runs", str(runs),
                       "--search-set", f"split_dir={splits}"], capsys)
    assert f"{key}/{name}" in line, line
    ctx = _ctx(runs, archive, splits, compute=False)
    with pytest.raises(ValueError) as e:
        E.ablation(ctx, VARIANTS, [SEED])
    assert f"{key}/{name}" in _one_line(e.value)


def test_torn_records_named_by_the_run_loaders_records(copy):
    runs, archive, splits, skey, _ = copy("runs")
    ctx = _ctx(runs, None, splits, compute=False)
    run = E.searches(ctx, VARIANTS, [SEED])[VARIANTS[0].label][0]
    assert len(run.records) == 2
    path = _tear(runs / skey, "records.jsonl", "cut")
    with pytest.raises(ValueError, match="line 3: not valid JSON") as e:
        run.records
    assert _one_line(e.value).startswith(str(path))


def test_torn_done_file_of_a_cli_run_says_how_to_recover(tmp_path, capsys):
    """``search --out``: a torn summary.json of a finished run is named; deleting it and rerunning
    rewrites it from the last checkpoint."""
    out = tmp_path / "run"
    argv = ["search", "--profile", "smoke", "--out", str(out), "--set", f"split_dir={tmp_path / 'splits'}",
            "--set", "steps_per_epoch=2", "--set", "val_batches=1", "--set", "epochs=1", "--set", "warmup_epochs=0"]
    assert cli.main(argv) == 0
    good = (out / "summary.json").read_text()
    (out / "summary.json").write_text(good[:40])
    line = _cli_error(argv, capsys)
    assert line.startswith(f"error: {out / 'summary.json'}: not valid JSON") and "delete it and rerun" in line, line
    (out / "summary.json").unlink()
    assert cli.main(argv) == 0
    assert (out / "summary.json").read_text().count("search_wall_s") == 1


# ----------------------------------------------------------------------------- plan's flags and failed runs


def test_bad_slurm_yaml_is_one_line_naming_the_flag(tmp_path, capsys):
    line = _cli_error(["plan", "table3", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
                       "--slurm", "{a: [}"], capsys)
    assert line.startswith("error: --slurm: not valid YAML") and "'{a: [}'" in line, line


def test_empty_seeds_is_an_error(tmp_path, capsys):
    for seeds in ("", " ", "[]"):
        line = _cli_error(["plan", "table3", "--profile", "smoke", "--runs", str(tmp_path / "runs"),
                           "--seeds", seeds], capsys)
        assert line.startswith("error: --seeds: expected at least one seed"), line
    assert not (tmp_path / "runs").exists()


def test_failed_plan_run_is_a_summary_line_with_the_logs(tmp_path, capsys):
    """Every search of the plan fails in its job (an unreadable LUT): one line, each run with its log."""
    bad = tmp_path / "bad.json"
    bad.write_text("not a lut")
    runs = tmp_path / "runs"
    line = _cli_error(["plan", "table3", "--profile", "smoke", "--seeds", str(SEED), "--runs", str(runs),
                       "--lut", str(bad), "--run", "--executor", "inline", "--search-set",
                       f"split_dir={tmp_path / 'splits'}"], capsys)
    assert line.startswith("error: 5 run(s) failed, the others finished: search "), line
    logs = sorted((runs / "_jobs").glob("*.log"))
    assert len(logs) == 5 and all(f"(log: {p})" in line for p in logs), line
    assert f"first error: LUTError: {bad}" in line and "rerun to retry" in line, line
    assert all("Traceback" in p.read_text() for p in logs)  # the traceback is in the log, not on the terminal


# ----------------------------------------------------------------------------- full and read-only disks


@contextlib.contextmanager
def _tmpfs(path: Path, options: str):
    """A tmpfs mounted at ``path`` with ``options`` (skip where this is not root or mount fails)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


class _FullFs:
    """``os.statvfs`` of a 100 MiB filesystem with no free block left."""
    f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail = 4096, 25600, 0, 0, 1000, 900, 900


def test_full_disk_in_torch_save_is_named(tmp_path, monkeypatch):
    """torch's zip writer says ``unexpected pos`` (no errno): the free space tells a full disk."""
    path = tmp_path / "checkpoint.pt"
    atomic.atomic_torch_save({"a": torch.ones(2)}, path)

    def full(obj, f, *a, **k):
        Path(f).write_bytes(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 22530176 vs 22530064")

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr(atomic.os, "statvfs", lambda p: _FullFs())
    with pytest.raises(OSError) as e:
        atomic.atomic_torch_save({"a": torch.zeros(2)}, path)
    mnt, fstype = atomic.mount_of(tmp_path)
    assert _one_line(e.value) == f"no space left on {mnt}{f' ({fstype})' if fstype else ''} writing {path}"
    assert e.value.errno == errno.ENOSPC
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


@pytest.mark.parametrize("code, needle", [(errno.ENOSPC, "no space left on "), (errno.EROFS, ": read-only file system"),
                                          (errno.EACCES, ": permission denied"), (errno.EIO, "cannot write ")])
def test_write_errors_by_errno(tmp_path, code, needle):
    def write(tmp):
        raise OSError(code, os.strerror(code))

    with pytest.raises(OSError) as e:
        atomic.atomic_write(tmp_path / "x.json", write)
    line = _one_line(e.value)
    assert needle in line and str(tmp_path / "x.json") in line and "[Errno" not in line, line
    assert not list(tmp_path.iterdir())


def test_full_tmpfs_search_is_one_line(tmp_path, capsys):
    """A search into a 1 MiB tmpfs: its 20 MB checkpoint cannot be written."""
    with _tmpfs(tmp_path / "mnt", "size=1m") as mnt:
        with pytest.raises(OSError) as e:
            atomic.atomic_torch_save({"a": torch.zeros(1 << 20)}, mnt / "a" / "checkpoint.pt")
        assert _one_line(e.value) == f"no space left on {mnt} (tmpfs) writing {mnt / 'a' / 'checkpoint.pt'}"
        assert not list((mnt / "a").iterdir())
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")
                if os.path.exists(f"/proc/self/fd/{fd}") and str(mnt) in os.readlink(f"/proc/self/fd/{fd}")]
        assert held == [], f"the failed writer's temp file is still open (its blocks stay used): {held}"
        out = mnt / "run"
        line = _cli_error(["search", "--profile", "smoke", "--out", str(out), "--set",
                           f"split_dir={tmp_path / 'splits'}", "--set", "steps_per_epoch=2", "--set", "val_batches=1"],
                          capsys)
        assert line == f"error: no space left on {mnt} (tmpfs) writing {out / 'checkpoint.pt'}", line
        assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_read_only_disk_is_one_line(tmp_path, capsys):
    with _tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        with pytest.raises(OSError) as e:
            atomic.atomic_write_text(ro / "x.json", "{}")
        assert _one_line(e.value) == f"{ro / 'x.json'}: read-only file system ({ro} is mounted read-only)"
        out = ro / "run"
        line = _cli_error(["search", "--profile", "smoke", "--out", str(out), "--set",
                           f"split_dir={tmp_path / 'splits'}"], capsys)
        assert line.startswith(f"error: {out}") and "read-only file system" in line and "[Errno" not in line, line


def test_a_read_only_run_store_is_one_line_naming_the_folder(tmp_path):
    """The run store's folders and locks (runs._locked, runs.out_lock, RunStore.write_record) on a
    read-only file system: one line naming the folder, as a notebook shows it too (not '[Errno 30]')."""
    from tfnas_core.runs import store as runs

    ro = tmp_path / "ro"
    ro.mkdir()
    with _tmpfs(ro, "ro,size=1m"):
        for enter in (lambda: runs._locked(ro / "abc"), lambda: runs.out_lock(ro / "out")):
            with pytest.raises(OSError) as e:
                with enter():
                    pass
            assert str(e.value).endswith("read-only file system (" + str(ro) + " is mounted read-only)")
            assert "Errno" not in str(e.value) and len(str(e.value).splitlines()) == 1
        with pytest.raises(OSError, match="read-only file system"):
            runs.RunStore.write_record(runs.Run("search", "k", ro / "k", "summary.json"), {"a": 1})
