"""The run store: stable keys, reuse, resume after an interruption, atomic tables."""
import json
import threading

import pandas as pd
import pytest

from tfnas_core.runs.store import RunStore, config_hash, write_table


def test_hash_is_stable_and_sensitive():
    a = config_hash("search", {"lam": 0.1, "seed": 2, "objective": "abs"})
    assert a == config_hash("search", {"objective": "abs", "seed": 2, "lam": 0.1})  # order-free
    assert a != config_hash("search", {"lam": 0.2, "seed": 2, "objective": "abs"})
    assert a != config_hash("train", {"lam": 0.1, "seed": 2, "objective": "abs"})
    assert a == config_hash("search", {"lam": 0.1, "seed": 2, "objective": "abs", "progress": False},
                            ignore=["progress"])
    assert len(a) == 12


def _runner(calls, fail_once=None):
    def run(path):
        calls.append(path)
        step = path / "step"
        n = int(step.read_text()) if step.exists() else 0
        n += 1
        step.write_text(str(n))
        if fail_once is not None and not fail_once:
            fail_once.append(True)
            raise KeyboardInterrupt
        (path / "done.json").write_text(json.dumps({"steps": n}))
    return run


def test_reuse_and_resume(tmp_path):
    store = RunStore(tmp_path)
    calls = []
    cfg = {"profile": "smoke", "seed": 1}
    with pytest.raises(KeyboardInterrupt):
        store.get_or_run("search", cfg, _runner(calls, fail_once=[]), "done.json")
    run = store.run_folder("search", cfg, "done.json")
    assert run.status == "partial"
    run = store.get_or_run("search", cfg, _runner(calls), "done.json")  # resumes in the same folder
    assert run.done and json.loads((run.path / "done.json").read_text())["steps"] == 2
    store.get_or_run("search", cfg, _runner(calls), "done.json")  # reused: the runner is not called
    assert len(calls) == 2
    assert [r["key"] for r in store.index()] == [run.key]
    assert store.index()[0]["config"] == cfg


def test_runner_that_does_not_finish_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="without writing done.json"):
        RunStore(tmp_path).get_or_run("train", {"a": 1}, lambda p: None, "done.json")


def test_concurrent_requests_run_once(tmp_path):
    store = RunStore(tmp_path)
    calls = []
    threads = [threading.Thread(target=store.get_or_run, args=("s", {"x": 1}, _runner(calls), "done.json"))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1


def test_write_table_csv_and_markdown(tmp_path):
    df = pd.DataFrame({"method": ["Gumbel", "Gumbel+Random"], "top1": [75.8, 76.33], "paper": [75.8, None]})
    csv, md = write_table(df, tmp_path / "t" / "table3")
    assert pd.read_csv(csv).shape == (2, 3)
    text = md.read_text()
    assert "| Gumbel+Random | 76.33 | - |" in text and text.startswith("| method | top1 | paper |")
    assert not list((tmp_path / "t").glob(".*tmp"))
