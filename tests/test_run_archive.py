"""The compact run archive: export without checkpoints, reuse by the run store, refusal of edited runs."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfnas_core import experiments as E
from tfnas_core import profiles, run_archive, search_config
from tfnas_core.runs import RunStore, verify_archived

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
    with pytest.raises(run_archive.ArchiveError, match="without summary.json"):
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
    """Every committed archived run hashes to its folder, is finished and carries no checkpoint."""
    archive = ROOT / run_archive.DEFAULT_ARCHIVE
    if not archive.is_dir():
        pytest.skip("no run_archive/ committed yet")
    runs = [p for p in archive.iterdir() if p.is_dir()]
    assert runs
    for run in runs:
        kind = json.loads((run / "store.json").read_text())["kind"]
        verify_archived(run, IGNORE[kind])
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
