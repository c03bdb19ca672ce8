"""The compact run archive: export without checkpoints, reuse by the run store, refusal of edited runs."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfnas_core.experiments import notebook as E
from tfnas_core.train import config as profiles
from tfnas_core.runs import archive as run_archive
from tfnas_core.search import config as search_config
from tfnas_core.runs.store import RunStore, verify_archived

ROOT = Path(__file__).resolve().parents[1]
IGNORE = {"search": search_config.RESUME_FREE_KEYS, "train": profiles.RESUME_FREE_KEYS}


def _fake_search(calls):
    def run(path):
        calls.append(path)
        (path / "config.json").write_text("{}")
        (path / "records.jsonl").write_text('{"epoch": 1}\n')
        (path / "checkpoint.pt").write_bytes(b"\0" * 4096)
        (path / "summary.json").write_text(json.dumps({"lut_ms": 1.0}))
    return run


def test_export_leaves_checkpoints_out_and_the_store_reuses_it(tmp_path):
    calls = []
    cfg = {"profile": "mini", "seed": 3}
    RunStore(tmp_path / "runs").get_or_run("search", cfg, _fake_search(calls), "summary.json")
    unfinished = RunStore(tmp_path / "runs").run_folder("search", {"seed": 9}, "summary.json")
    unfinished.path.mkdir()
    (unfinished.path / "store.json").write_text(json.dumps({"kind": "search", "key": unfinished.key, "config": {"seed": 9}}))

    r = run_archive.export(tmp_path / "runs", tmp_path / "arch")
    assert len(r.archived) == 1 and r.skipped == [unfinished.key] and r.kept == []
    (key,) = r.archived
    assert sorted(p.name for p in (tmp_path / "arch" / key).iterdir()) == \
        ["config.json", "records.jsonl", "store.json", "summary.json"]  # no checkpoint, no .lock
    assert r.size_bytes == run_archive.size_bytes(tmp_path / "arch") < 4096
    assert run_archive.export(tmp_path / "runs", tmp_path / "arch").kept == [key]  # idempotent

    # a fresh store (a fresh clone) with the archive: the run is done without running anything
    store = RunStore(tmp_path / "fresh-runs", archive=tmp_path / "arch")
    run = store.get_or_run("search", cfg, _fake_search(calls), "summary.json")
    assert len(calls) == 1 and run.path == tmp_path / "arch" / key and run.done
    assert not (tmp_path / "fresh-runs").exists()  # nothing written
    # without the archive it runs
    RunStore(tmp_path / "fresh-runs").get_or_run("search", cfg, _fake_search(calls), "summary.json")
    assert len(calls) == 2


def test_an_edited_archived_run_is_refused(tmp_path):
    cfg = {"profile": "mini", "seed": 3}
    RunStore(tmp_path / "runs").get_or_run("search", cfg, _fake_search([]), "summary.json")
    (key,) = run_archive.export(tmp_path / "runs", tmp_path / "arch").archived
    meta_path = tmp_path / "arch" / key / "store.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["seed"] = 4
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(run_archive.ArchiveError, match=f"{key}.*hashes to"):
        RunStore(tmp_path / "new", archive=tmp_path / "arch").run_folder("search", cfg, "summary.json")
    (tmp_path / "arch" / key / "summary.json").unlink()
    meta_path.write_text(json.dumps({**meta, "config": cfg}))
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/summary.json: missing"):
        RunStore(tmp_path / "new", archive=tmp_path / "arch").run_folder("search", cfg, "summary.json")


def test_fresh_ignores_the_archive(monkeypatch):
    monkeypatch.delenv(run_archive.ENV_FRESH, raising=False)
    assert E.Context("smoke").store.archive == Path(run_archive.DEFAULT_ARCHIVE)
    for on in ("1", "true", "yes"):
        monkeypatch.setenv(run_archive.ENV_FRESH, on)
        assert E.Context("smoke").store.archive is None
    monkeypatch.setenv(run_archive.ENV_FRESH, "0")
    assert E.Context("smoke").store.archive is not None
    assert E.Context("smoke", archive_root=None).store.archive is None


def test_a_real_smoke_search_and_retraining_re_render_from_the_archive(tmp_path):
    """What a notebook reads of a search (spec, records, summary) and of a retraining survives the export."""
    ctx = E.Context("smoke", runs_root=str(tmp_path / "runs"), archive_root=None, progress=False,
                    search_overrides={"split_dir": str(tmp_path / "splits")})
    s = E.search_run(ctx, 2)
    r = E.retrain_run(ctx, s.spec, 2, label="x")
    run_archive.export(tmp_path / "runs", tmp_path / "arch")
    ctx2 = E.Context("smoke", runs_root=str(tmp_path / "empty"), archive_root=str(tmp_path / "arch"), progress=False,
                     search_overrides={"split_dir": str(tmp_path / "splits")})
    s2 = E.search_run(ctx2, 2)
    assert s2.path.parent == tmp_path / "arch" and s2.summary == s.summary
    assert s2.spec.to_dict() == s.spec.to_dict() and s2.records.equals(s.records)
    assert E.retrain_run(ctx2, s.spec, 2, label="x") == r
    assert not (tmp_path / "empty").exists()
    # the ledger says where each run came from and keeps what it cost when it was computed
    E.search_run(ctx, 2)  # asked again: the same run, counted once
    first, again, archived = E.runs_table(ctx), E.runs_table(E.Context("smoke")), E.runs_table(ctx2)
    assert again.empty and "no search" in E.cost_line(again)
    assert list(first["kind"]) == ["search", "train"] and list(first["source"]) == ["computed now"] * 2
    assert list(archived["source"]) == ["archive"] * 2 and list(archived["key"]) == list(first["key"])
    assert archived["wall_min"].tolist() == pytest.approx([s.summary["search_wall_s"] / 60, r["wall_s"] / 60])
    assert E.cost_line(archived).startswith("1 search (") and E.cost_line(archived).endswith("2 archive")
    ctx3 = E.Context("smoke", runs_root=str(tmp_path / "runs"), archive_root=None, progress=False,
                     search_overrides={"split_dir": str(tmp_path / "splits")})
    assert list(E.runs_table(ctx3).source) == [] and E.search_run(ctx3, 2).path == s.path
    assert list(E.runs_table(ctx3).source) == ["run store"]


def test_the_committed_archive_is_trustworthy():
    """Every committed archived run hashes to its folder, has the file hashes its store.json
    recorded, is finished and carries no checkpoint; verifying all of them takes well under a second."""
    archive = ROOT / run_archive.DEFAULT_ARCHIVE
    if not archive.is_dir():
        pytest.skip("no run_archive/ committed yet")
    runs = [p for p in archive.iterdir() if p.is_dir()]
    assert runs
    t0 = time.perf_counter()
    check = run_archive.verify_archive(archive)
    seconds = time.perf_counter() - t0
    assert check.ok and check.bad == [] and check.runs == len(runs), check.bad[:3]
    assert seconds < 2.0, seconds
    for run in runs:
        meta = json.loads((run / "store.json").read_text())
        assert sorted(meta["files"]) == sorted(p.name for p in run.iterdir() if p.name != "store.json"), run
        verify_archived(run, IGNORE[meta["kind"]])
        assert not any(p.name.startswith("checkpoint") or p.name.startswith(".") for p in run.iterdir()), run
    assert run_archive.size_bytes(archive) < 20 * 2 ** 20
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(runs[0] / "store.json")])
    assert ignored.returncode == 1, "run_archive/ must not be git-ignored"


def test_cli_archive(tmp_path):
    cmd = [sys.executable, "-m", "tfnas_core", "archive", "--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "a")]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "no run store here" in p.stderr
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 1}, _fake_search([]), "summary.json")
    cmd[cmd.index("--runs") + 1] = str(tmp_path / "runs")
    p = subprocess.run(cmd + ["--json"], capture_output=True, text=True, cwd=ROOT, check=True)
    out = json.loads(p.stdout)
    assert len(out["archived"]) == 1 and out["size_bytes"] > 0
    # a run holding a symlink: one line naming it, exit 2, nothing archived
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 2}, _fake_search([]), "summary.json")
    (new,) = [d for d in (tmp_path / "runs").iterdir() if not (tmp_path / "a" / d.name).exists()]
    (new / "spec.json").symlink_to(tmp_path / "runs" / out["archived"][0] / "summary.json")
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith(f"error: {new}/spec.json: a symlink")
    assert not (tmp_path / "a" / new.name).exists()


# ---------------------------------------------------------------- issue 29: the archive verifies what it serves

def _fake_train(path):
    (path / "config.json").write_text("{}")
    (path / "records.csv").write_text("epoch,top1\n1,10.0\n")
    (path / "result.json").write_text(json.dumps({"top1": 10.0, "wall_s": 1.0}))


def _archived_search(tmp_path, cfg=None):
    """A finished fake search exported to tmp_path/arch: (archive, key, cfg)."""
    cfg = cfg or {"profile": "mini", "seed": 3}
    RunStore(tmp_path / "runs").get_or_run("search", cfg, _fake_search([]), "summary.json")
    (key,) = run_archive.export(tmp_path / "runs", tmp_path / "arch").archived
    return tmp_path / "arch", key, cfg


def _reuse(tmp_path, archive, cfg):
    return RunStore(tmp_path / "fresh", archive=archive).run_folder("search", cfg, "summary.json")


def _everything_in(root):
    """The bytes of every file under ``root`` (followed through links, as a reader would), b"" if none."""
    return b"".join(p.read_bytes() for p in Path(root).rglob("*") if p.is_file())


def test_export_records_the_hash_of_every_archived_file(tmp_path):
    archive, key, cfg = _archived_search(tmp_path)
    meta = json.loads((archive / key / "store.json").read_text())
    assert meta["kind"] == "search" and meta["key"] == key and meta["config"] == cfg
    assert sorted(meta["files"]) == ["config.json", "records.jsonl", "summary.json"]
    assert meta["files"]["summary.json"] == run_archive.sha256_bytes((tmp_path / "runs" / key / "summary.json").read_bytes())
    assert verify_archived(archive / key) == meta
    assert _reuse(tmp_path, archive, cfg).source == "archive"


@pytest.mark.parametrize("name", ["summary.json", "records.jsonl", "config.json"])
def test_an_edited_archived_file_is_refused_naming_it(tmp_path, name):
    archive, key, cfg = _archived_search(tmp_path)
    f = archive / key / name
    if name == "summary.json":
        f.write_text(json.dumps({"lut_ms": 0.5}))  # the case: a better latency written in
    elif name == "records.jsonl":
        f.write_text('{"epoch": 1, "val_acc": 99.9}\n')
    else:
        f.write_text('{"lr": 1}')
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/{name}: its sha256 differs"):
        _reuse(tmp_path, archive, cfg)


def test_a_missing_or_an_unlisted_file_is_refused(tmp_path):
    archive, key, cfg = _archived_search(tmp_path)
    (archive / key / "records.jsonl").unlink()
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/records.jsonl: missing"):
        _reuse(tmp_path, archive, cfg)
    archive, key, cfg = _archived_search(tmp_path / "b")
    (archive / key / "records.csv").write_text("epoch,top1\n1,99.0\n")  # a second records file, read by some loaders
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/records.csv: not listed in store.json"):
        _reuse(tmp_path, archive, cfg)


def test_an_archive_entry_that_is_a_symlink_to_a_folder_elsewhere_is_refused(tmp_path):
    """A genuine, verifying run outside the archive, linked in: refused, never followed."""
    elsewhere, key, cfg = _archived_search(tmp_path / "outside")
    verify_archived(elsewhere / key)  # it is a good run where it is
    archive = tmp_path / "arch"
    archive.mkdir()
    (archive / key).symlink_to(elsewhere / key, target_is_directory=True)
    with pytest.raises(run_archive.ArchiveError, match=f"{archive / key}: a symlink"):
        _reuse(tmp_path, archive, cfg)
    check = run_archive.verify_archive(archive)
    assert not check.ok and len(check.bad) == 1 and f"{archive / key}: a symlink" in check.bad[0]


def test_a_symlink_file_inside_an_archived_run_is_refused(tmp_path):
    """Even a link to a file with the very bytes that were hashed: the archive holds files, not links."""
    archive, key, cfg = _archived_search(tmp_path)
    f = archive / key / "summary.json"
    copy = tmp_path / "summary-copy.json"
    copy.write_bytes(f.read_bytes())
    f.unlink()
    f.symlink_to(copy)
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/summary.json: a symlink"):
        _reuse(tmp_path, archive, cfg)


def test_a_torn_done_file_and_an_old_format_entry_are_refused_and_hashes_can_be_recorded(tmp_path):
    archive, key, cfg = _archived_search(tmp_path)
    meta_path = archive / key / "store.json"
    meta = json.loads(meta_path.read_text())
    old = {k: v for k, v in meta.items() if k != "files"}
    meta_path.write_text(json.dumps(old, indent=1) + "\n")  # archived before hashes were recorded
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/store.json: records no file hashes.*--record-hashes"):
        _reuse(tmp_path, archive, cfg)
    (archive / key / "summary.json").write_text('{"lut_ms": 1.')  # torn: the migration refuses it, writes nothing
    with pytest.raises(run_archive.ArchiveError, match=f"{key}/summary.json: not valid JSON"):
        run_archive.record_hashes(archive)
    assert "files" not in json.loads(meta_path.read_text())
    (archive / key / "summary.json").write_text(json.dumps({"lut_ms": 1.0}))
    assert run_archive.record_hashes(archive) == ([key], [])
    assert json.loads(meta_path.read_text()) == meta  # the same hashes export recorded
    assert run_archive.record_hashes(archive) == ([], [key])  # never re-records (an edit stays refused)
    (archive / key / "summary.json").write_text(json.dumps({"lut_ms": 0.5}))
    with pytest.raises(run_archive.ArchiveError, match="sha256 differs"):
        run_archive.record_hashes(archive)


def test_export_does_not_follow_a_symlink_to_a_secret(tmp_path):
    """The issue's case: records.csv of a finished run points at a secret file."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOKEN=hunter2-do-not-archive\n")
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 1}, _fake_search([]), "summary.json")
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 2}, _fake_search([]), "summary.json")
    run_dir = sorted((tmp_path / "runs").iterdir())[0]
    (run_dir / "records.csv").symlink_to(secret)
    arch = tmp_path / "arch"
    with pytest.raises(run_archive.ArchiveError, match=f"{run_dir}/records.csv: a symlink.*nothing archived"):
        run_archive.export(tmp_path / "runs", arch)
    assert b"hunter2" not in _everything_in(arch) and not arch.exists()  # not even the good run
    # nor through a run folder that is itself a link to a folder holding it
    (run_dir / "records.csv").unlink()
    outside = tmp_path / "outside"
    run_dir.rename(outside)
    (outside / "records.jsonl").write_bytes(secret.read_bytes())
    run_dir.symlink_to(outside, target_is_directory=True)
    with pytest.raises(run_archive.ArchiveError, match=f"{run_dir}: a symlink"):
        run_archive.export(tmp_path / "runs", arch)
    assert b"hunter2" not in _everything_in(arch) and not arch.exists()


def test_export_refuses_a_run_whose_folder_is_not_its_key(tmp_path):
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 1}, _fake_search([]), "summary.json")
    (run_dir,) = (tmp_path / "runs").iterdir()
    moved = run_dir.rename(run_dir.with_name("0123456789ab"))
    with pytest.raises(run_archive.ArchiveError, match=f"{moved}/store.json: its config hashes to {run_dir.name}, "
                                                        "not to the folder name 0123456789ab"):
        run_archive.export(tmp_path / "runs", tmp_path / "arch")
    assert not (tmp_path / "arch").exists()


@pytest.mark.parametrize("name, torn", [("result.json", '{"top1": 10.'), ("records.csv", "epoch,top1\n1,10.0\n2,"),
                                        ("store.json", '{"kind": "tra')])
def test_export_refuses_a_torn_run(tmp_path, name, torn):
    RunStore(tmp_path / "runs").get_or_run("train", {"seed": 1}, _fake_train, "result.json")
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 1}, _fake_search([]), "summary.json")
    (run_dir,) = [d for d in (tmp_path / "runs").iterdir() if (d / "result.json").exists()]
    (run_dir / name).write_text(torn)
    with pytest.raises(run_archive.ArchiveError, match=f"{run_dir}/{name}: .*nothing archived"):
        run_archive.export(tmp_path / "runs", tmp_path / "arch")
    assert not (tmp_path / "arch").exists()  # nothing half-written, not even the good search


def test_export_refuses_a_torn_search_records_file(tmp_path):
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 1}, _fake_search([]), "summary.json")
    (run_dir,) = (tmp_path / "runs").iterdir()
    (run_dir / "records.jsonl").write_text('{"epoch": 1}\n{"epoch": 2, "val')
    with pytest.raises(run_archive.ArchiveError, match=f"{run_dir}/records.jsonl: its last line is cut off"):
        run_archive.export(tmp_path / "runs", tmp_path / "arch")


def _verify_cli(*args):
    return subprocess.run([sys.executable, "-m", "tfnas_core", "verify-archive", *args],
                          capture_output=True, text=True, cwd=ROOT)


def test_cli_verify_archive(tmp_path):
    archive, key, cfg = _archived_search(tmp_path, {"seed": 1})
    RunStore(tmp_path / "runs").get_or_run("search", {"seed": 2}, _fake_search([]), "summary.json")
    RunStore(tmp_path / "runs").get_or_run("train", {"seed": 1}, _fake_train, "result.json")
    assert len(run_archive.export(tmp_path / "runs", archive).archived) == 2
    p = _verify_cli("--archive", str(archive))
    assert p.returncode == 0 and p.stderr == "" and p.stdout.count("\n") == 1
    assert p.stdout.startswith(f"{archive}: all 3 archived runs verify")
    keys = sorted(d.name for d in archive.iterdir())
    summary = next(archive / k / "summary.json" for k in keys if (archive / k / "summary.json").exists())
    summary.write_text(json.dumps({"lut_ms": 0.5}))
    result = next(archive / k / "result.json" for k in keys if (archive / k / "result.json").exists())
    result.write_text(json.dumps({"top1": 99.0}))
    p = _verify_cli("--archive", str(archive))
    lines = p.stderr.splitlines()
    assert p.returncode == 2 and p.stdout == "" and len(lines) == 3
    assert sorted(line.split(": its sha256 differs from")[0] for line in lines[:2]) == sorted([str(summary), str(result)])
    assert lines[2] == f"error: {archive}: 2 of 3 archived run(s) fail verification (listed above)"
    out = json.loads(_verify_cli("--archive", str(archive), "--json").stdout)
    assert out["runs"] == 3 and len(out["bad"]) == 2
    p = _verify_cli("--archive", str(tmp_path / "none"))
    assert p.returncode == 2 and p.stderr == f"error: {tmp_path / 'none'}: no run archive here\n"
