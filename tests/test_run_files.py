"""Issue 30: a run folder's file names are spelled in one place, ``tfnas_core/runs/files.py``.

Every other module names them through its constants (``run_files.CONFIG``, ``run_files.DONE[kind]``
...); this scans the string constants of the package's source (f-string parts included) for one
spelled out: the bare name (``"spec.json"``) or a path ending in it (``"*/store.json"``,
``f"{out}/spec.json"``).  Prose naming a file (a docstring, a help text) is not a spelling.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tfnas_core.runs import files as run_files

PACKAGE = Path(__file__).resolve().parents[1] / "tfnas_core"
HOME = PACKAGE / "runs" / "files.py"
NAMES = {run_files.CONFIG, run_files.CHECKPOINT, run_files.SPEC, run_files.STORE, run_files.LOCK,
         run_files.LUT_CHECK, run_files.SEARCH_RECORDS, run_files.SEARCH_SUMMARY, run_files.TRAIN_RECORDS,
         run_files.TRAIN_RESULT}


def spelled(source: str) -> list[tuple[int, str]]:
    """(line, string) of every string constant in ``source`` that is a run-folder file name or a
    path ending in one."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            s = node.value
            if s in NAMES or any(s.endswith("/" + n) for n in NAMES):
                hits.append((node.lineno, s))
    return hits


def test_the_names_are_the_ones_runs_write():
    # the names archived runs hold (run_archive/<key>/): changing one would orphan every archived run
    assert (run_files.CONFIG, run_files.STORE, run_files.LUT_CHECK, run_files.SPEC) == \
        ("config.json", "store.json", "lut_check.json", "spec.json")
    assert run_files.DONE == {"search": "summary.json", "train": "result.json"}
    assert run_files.RECORDS == {"search": "records.jsonl", "train": "records.csv"}
    assert set(run_files.DONE) == set(run_files.RECORDS)


@pytest.mark.parametrize("source, expected", [
    ('p = out / "config.json"', [(1, "config.json")]),
    ('g = root.glob("*/store.json")', [(1, "*/store.json")]),
    ('msg = f"{out}/spec.json"', [(1, "/spec.json")]),
    ('names = (\n    "summary.json", ".lock")', [(2, "summary.json"), (2, ".lock")]),
    ('"""A run writes ``config.json`` and records.jsonl."""', []),  # prose
    ('x = "weights.pt"; y = "config.json.bak"', []),  # not a run-folder file
])
def test_the_scan_finds_a_spelled_name(source, expected):
    assert sorted(spelled(source)) == sorted(expected)


def test_no_module_but_runs_files_spells_a_run_file_name():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HOME:
            continue
        found += [f"{path.relative_to(PACKAGE.parent)}:{line}: {s!r}" for line, s in spelled(path.read_text())]
    assert not found, "spelled outside tfnas_core/runs/files.py (use its constants):\n" + "\n".join(found)
