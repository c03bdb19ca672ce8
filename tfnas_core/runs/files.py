"""The names of a run folder's files, and of the folders runs live in: the one place they are spelled.

A search writes ``config.json``, ``records.jsonl``, ``checkpoint.pt``, ``spec.json``,
``summary.json`` (last, when it finishes) and ``lut_check.json``; a retraining writes
``config.json``, ``records.csv``, ``checkpoint.pt`` and ``result.json`` (last).  The run store adds
``store.json`` (kind, key, config and, once archived, the files' hashes) and a ``.lock``.

Run folders live in the run store ``runs/`` (``runs.store``; ``$TFNAS_RUNS`` picks another) and,
finished and without checkpoints, in the committed archive ``run_archive/`` (``runs.archive``), both
relative to the repository root (``utils.workspace``).
"""
from __future__ import annotations

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
SPEC = "spec.json"
STORE = "store.json"
LOCK = ".lock"
LUT_CHECK = "lut_check.json"

SEARCH_RECORDS = "records.jsonl"
SEARCH_SUMMARY = "summary.json"
TRAIN_RECORDS = "records.csv"
TRAIN_RESULT = "result.json"

RECORDS = {"search": SEARCH_RECORDS, "train": TRAIN_RECORDS}
DONE = {"search": SEARCH_SUMMARY, "train": TRAIN_RESULT}  # the file a finished run writes last

RUNS_ROOT = "runs"
ARCHIVE_ROOT = "run_archive"
