"""A command line that documents itself (issue 32): ``search --help`` / ``train --help`` list every
setting from the config dataclasses, ``--config`` reruns a run's ``config.json`` (same run key), and
``make help`` lists every target and variable from the Makefile's ``##`` comments."""
import json
import re
import shutil
import subprocess
from dataclasses import MISSING, fields
from pathlib import Path

import pytest

from tfnas_core.train import config as profiles
from tfnas_core.runs import archive as run_archive
from tfnas_core.search import config as search_config
from tfnas_core.cli.main import main
from tfnas_core.runs.keys import config_hash

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {"search": (search_config.SearchConfig, search_config.PROFILES),
           "train": (profiles.TrainConfig, profiles.PROFILES)}


def as_typed(value) -> str:
    """How a value is written after ``--set KEY=``."""
    return "none" if value is None else ("true" if value else "false") if isinstance(value, bool) else str(value)


def help_text(cmd: str, capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def setting_lines(text: str) -> dict[str, list[str]]:
    """The settings table of ``--help``: key -> its lines (``  key=default  (...)`` and the meaning below)."""
    table = text.split("settings (--set KEY=VALUE)", 1)[1]
    out: dict[str, list[str]] = {}
    for line in table.splitlines():
        m = re.match(r"  (\w+)=", line)
        if m:
            key = m.group(1)
            out[key] = [line]
        elif out and line.startswith("      "):
            out[key].append(line)
    return out


@pytest.mark.parametrize("cmd", CONFIGS)
def test_help_lists_every_setting_with_default_profiles_and_meaning(cmd, capsys, monkeypatch):
    cls, profs = CONFIGS[cmd]
    text = help_text(cmd, capsys, monkeypatch)
    table = setting_lines(text)
    made = {name: make() for name, make in profs.items()}
    assert list(table) == [f.name for f in fields(cls)]  # every field, in the dataclass's order, nothing else
    for f in fields(cls):
        assert f.default is not MISSING
        head, *meaning = table[f.name]
        assert head.startswith(f"  {f.name}={as_typed(f.default)}  ("), head
        written = f.metadata.get("help", "")
        assert written and "\n" not in written, f"{cls.__name__}.{f.name} has no one-line meaning"
        assert " ".join(" ".join(meaning).split()) == " ".join(written.split())
        if f.name != "profile":
            for p, cfg in made.items():
                value = getattr(cfg, f.name)
                assert (f"{p}: {as_typed(value)}" in head) == (value != f.default), (f.name, p, head)
    assert "search_config.py" not in text and "--config" in text
    meanings = [line for lines in table.values() for line in lines[1:]]
    assert max(map(len, meanings)) <= 78  # wrapped like argparse's own text (COLUMNS - 2)


def _records(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines()]
    else:
        head, *body = path.read_text().splitlines()
        rows = [dict(zip(head.split(","), line.split(","))) for line in body]
    for r in rows:
        r.pop("epoch_s")  # the only wall-clock field
    return rows


def _key(kind: str, run: Path) -> str:
    return config_hash(kind, json.loads((run / "config.json").read_text()), run_archive.key_ignore(kind))


@pytest.mark.parametrize("kind, args, records", [
    ("search", ["search"], "records.jsonl"),
    ("train", ["train", "zoo:TF-NAS-B"], "records.csv"),
])
@pytest.mark.slow
def test_config_reruns_a_run_with_the_same_key_and_records(kind, args, records, tmp_path, capsys):
    first, again, other = tmp_path / "first", tmp_path / "again", tmp_path / "other"
    extra = ["--set", f"split_dir={tmp_path / 'splits'}"] if kind == "search" else ["--set", "epochs=1"]
    assert main([*args, "--profile", "smoke", *extra, "--out", str(first)]) == 0
    assert main([*args, "--config", str(first / "config.json"), "--out", str(again)]) == 0
    assert (again / "config.json").read_bytes() == (first / "config.json").read_bytes()
    assert _key(kind, again) == _key(kind, first)
    assert _records(again / records) == _records(first / records)
    # --set on top of --config (a folder names its config.json): that key only, so another run key
    assert main([*args, "--config", str(first), "--set", "seed=5", "--out", str(other)]) == 0
    a, b = (json.loads((r / "config.json").read_text()) for r in (first, other))
    assert {k for k in a if a[k] != b[k]} == {"seed"} and set(a) == set(b)
    assert _key(kind, other) != _key(kind, first)
    capsys.readouterr()


@pytest.mark.parametrize("kind", ["search", "train"])
def test_every_archived_config_reads_back_to_itself(kind):
    """``from_dict`` then ``to_dict`` gives back every archived run's ``config.json`` (a field added since,
    at its default, only where it is not part of the key), so the key a run is checkpointed under
    (``run_loop``: the hash of that file) is the original's: ``--config`` on any archived run's
    config.json asks for that very run.  (The folder's name is the run store's key of the request,
    before ``resolve`` filled target_ms and the like; ``verify-archive`` checks those.)"""
    module = search_config if kind == "search" else profiles
    runs = [p for p in sorted((ROOT / "run_archive").glob("*/config.json"))
            if json.loads((p.parent / "store.json").read_text())["kind"] == kind]
    assert runs, f"no archived {kind} runs"
    for path in runs:
        cfg = json.loads(path.read_text())
        back = module.to_dict(module.from_dict(cfg))
        ignore = run_archive.key_ignore(kind)
        assert {k: back.get(k) for k in cfg} == cfg and set(back) - set(cfg) <= ignore, path  # new fields: unkeyed
        assert config_hash(kind, back, ignore) == config_hash(kind, cfg, ignore), path


BAD_FILES = {
    "missing": (None, "cannot read"),
    "not JSON": ("{'epochs': 3}", "not valid JSON"),
    "not an object": ("[1, 2]", "expected a JSON object"),
    "unknown key": ('{"epochz": 3}', "unknown"),
    "int as text": ('{"epochs": "3"}', "epochs must be an integer"),
    "bool as int": ('{"progress": 1}', "progress must be true or false"),
    "text as number": ('{"crop_min_scale": "big"}', "crop_min_scale"),
}


@pytest.mark.parametrize("cmd", ["search", "train"])
@pytest.mark.parametrize("case", BAD_FILES)
def test_a_bad_config_file_is_one_line_exit_2_and_nothing_written(cmd, case, tmp_path, capsys):
    content, needle = BAD_FILES[case]
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    args = [cmd] + (["zoo:TF-NAS-B"] if cmd == "train" else [])
    before = sorted(tmp_path.iterdir())
    assert main([*args, "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --config {path}") and err.count("\n") == 1 and needle in err, err
    assert sorted(tmp_path.iterdir()) == before


def test_config_and_profile_together_are_refused(tmp_path, capsys):
    (tmp_path / "c.json").write_text("{}")
    assert main(["search", "--config", str(tmp_path / "c.json"), "--profile", "smoke", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--config and --profile" in err and err.count("\n") == 1 and not (tmp_path / "o").exists()


# ----------------------------------------------------------------------------- make help

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _make(*args: str) -> str:
    r = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", *args], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _database() -> list[list[str]]:
    """make's rule database (``make -p``), as blocks of lines."""
    text = _make("-pnr", "help")
    return [block.splitlines() for block in text.split("\n\n")]


@needs_make
def test_make_help_lists_every_phony_target_with_a_recipe_and_every_variable():
    db = _database()
    phony = next(line for block in db for line in block if line.startswith(".PHONY: ")).split()[1:]
    with_recipe = {block[0].split(":")[0] for block in db
                   if block and ":" in block[0] and any(line.startswith("#  recipe to execute") for line in block)}
    user_vars = next(line for block in db for line in block if line.startswith("USER_VARS := ")).split()[2:]
    shown = _make("help")
    targets, variables = shown.split("\nvariables ", 1)
    listed = {m.group(1) for m in re.finditer(r"^  (\S+) +\S", targets, re.M)}
    wanted = {t for t in phony if t in with_recipe}
    assert {"setup", "test", "help", "archive", "smoke"} <= wanted
    assert wanted - listed == set(), "phony targets with a recipe but no `##` comment"
    documented = dict(re.findall(r"^  ([A-Z_]+)=.*?(?: {2,}|\n {20,})(\S.*)$", variables, re.M))
    assert set(user_vars) - set(documented) == set(), "user variables without a `##` comment"
    assert re.search(r"^  PROFILE=mini +paper \| mini \| smoke", variables, re.M)
