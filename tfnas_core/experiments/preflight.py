"""The checks ``make reproduce-*`` runs on ``PROFILE``, ``RUNS``, ``LUT``, ``IMAGENET``, ``SEEDS``,
``FRESH``, ``REMEASURE``, ``LONG_FACTOR``, ``LONG_FINISHED_ONLY``, ``RUN``, the executor (``EXECUTOR``, ``JOBS``,
``SLURM``) and the budget (``BUDGET``, ``SEARCH_SET``, ``TRAIN_SET``, ``launch.py``), and ``make bench``
on ``DEVICE``, before anything starts: a bad value stops make with one line naming it (exit 2) and
nothing written.

No shell ever parses these values (issue 29).  While make reads its rules it writes each raw value
(``$(value VAR)``, unexpanded) to a file of its own in a fresh temporary folder, with the goals in
``GOALS``, and calls ``python -m tfnas_core.experiments.preflight --values DIR`` (``read_values``); this prints
nothing when the values are good, else one line, which make turns into its own one-line error.
The recipes then read the same values from the environment (``make_entry.py``).  Messages speak
make's variables (``IMAGENET=``, not the notebook's ``imagenet_root`` or the CLI's ``--set
data_root=``); a value with a control character is shown escaped (``shown``), so the line stays one.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tempfile
import unicodedata
from pathlib import Path

from tfnas_core.runs.files import RUNS_ROOT

EXIT_BAD_INPUT = 2
# make's variables the preflight reads, in the order a user would fix them (the Makefile writes each)
VARIABLES = ("PROFILE", "RUNS", "LUT", "IMAGENET", "SEEDS", "FRESH", "REMEASURE", "LONG_FACTOR", "LONG_FINISHED_ONLY",
             "RUN", "EXECUTOR", "JOBS", "SLURM", "BUDGET", "SEARCH_SET", "TRAIN_SET", "DEVICE")
VALUE_END = ".\n"  # the Makefile writes ``$(value VAR).``; make adds the newline: a value's own trailing newline survives
FLAGS_TRUE, FLAGS_FALSE = ("1", "true", "yes"), ("", "0", "false", "no")
DEVICES = ("cpu", "cuda")  # make bench's DEVICE (benchmarks/bench_search.py, bench_train_speed.py)
_COUNT = re.compile(r"[0-9]+")  # ASCII digits only: int() also takes '²' or '٣'


class PreflightError(ValueError):
    """A bad make variable; the message names it and its value."""


def shown(value: str) -> str:
    """``value`` as one printable line: control characters (a newline, a tab, ESC) escaped."""
    if all(unicodedata.category(c) != "Cc" for c in value):
        return value
    return "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in value)


def check_text(name: str, value: str) -> None:
    """No make variable may hold a control character (a newline, a tab, ESC): none is part of a
    profile, a path, a number or a setting, and a newline would end make's recipe line."""
    bad = next((c for c in value if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise PreflightError(f"{name}={shown(value)}: a control character ({bad!r}) in the value")


def parse_flag(name: str, value: str) -> bool:
    """``FRESH``, ``REMEASURE``, ``RUN``, ``LONG_FINISHED_ONLY``: empty / 0 / false / no, or 1 / true / yes."""
    v = value.strip().lower()
    if v in FLAGS_TRUE:
        return True
    if v in FLAGS_FALSE:
        return False
    raise PreflightError(f"{name}={shown(value)}: expected 1 (or true, yes) to set it, or leave it empty")


def parse_count(name: str, value: str, what: str) -> int:
    """A positive integer in ASCII digits (``JOBS``, ``LONG_FACTOR``)."""
    if not (_COUNT.fullmatch(value) and int(value) >= 1):
        raise PreflightError(f"{name}={shown(value)}: expected a positive integer ({what})")
    return int(value)


def parse_slurm(slurm: str) -> dict:
    """``SLURM`` (YAML) as the mapping the notebooks take, checked by ``execution.settings.SlurmOptions``."""
    import yaml

    from tfnas_core.execution.settings import SlurmOptions

    try:
        value = yaml.safe_load(slurm)
        if not isinstance(value, dict):
            raise ValueError("expected a mapping such as '{partition: gpu, gpus: 1, timeout_min: 900}'")
        SlurmOptions.from_dict(value)
    except (yaml.YAMLError, ValueError, TypeError) as e:
        raise PreflightError(f"SLURM={shown(slurm)}: {str(e).splitlines()[0]}") from None
    return value


def check_runs(runs: str, computes: bool = True) -> None:
    """``RUNS``, the run store: a directory, or one that can be made; writable when runs compute
    (a probe file, made and removed at once, in it or in its nearest existing parent)."""
    if not runs:
        raise PreflightError("RUNS=: empty (the run store folder, e.g. RUNS=runs)")
    path = Path(runs)
    try:
        existing = next(p for p in (path, *path.parents) if p.exists())
        if not existing.is_dir():
            where = "" if existing == path else f" ({existing} is a file)"
            raise PreflightError(f"RUNS={shown(runs)}: not a directory{where}")
        if computes:
            with tempfile.TemporaryFile(dir=existing):
                pass
    except OSError as e:
        raise PreflightError(f"RUNS={shown(runs)}: read-only ({existing}: {e.strerror})") from None


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise PreflightError(f"DEVICE={shown(device)}: expected one of {', '.join(DEVICES)} (make bench)")


def check_profile(profile: str) -> None:
    from tfnas_core.config import PROFILE_NAMES as PROFILES  # the names every profile registry has, without torch

    if profile not in PROFILES:
        import difflib

        close = difflib.get_close_matches(profile, PROFILES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise PreflightError(f"PROFILE={profile}: unknown profile{hint}; known: {', '.join(PROFILES)}")


def check_seeds(seeds: str) -> list[int]:
    """``SEEDS`` as papermill reads it (YAML): a non-empty list of non-negative integers."""
    import yaml

    bad = PreflightError(f"SEEDS={shown(seeds)}: expected a list of non-negative integers, e.g. SEEDS=[2] or SEEDS=[2,3,4]")
    try:
        value = yaml.safe_load(seeds)
    except yaml.YAMLError:
        raise bad from None
    if not isinstance(value, list) or not value or \
            not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise bad
    return value


def check_lut(lut: str, profile: str) -> None:
    """``LUT`` (or the profile's default table) exists, loads and covers the TF-NAS space."""
    from tfnas_core.latency import lut as latency
    from tfnas_core.search import config as search_config
    from tfnas_core.arch.space import get_space

    given = bool(lut)
    path = lut or search_config.get_profile(profile).lut
    name = f"LUT={lut}" if given else f"PROFILE={profile}"
    resolved = search_config.resolve_path(path)
    if not resolved.is_file():
        what = "no such file" if given else f"its latency table {path} is missing (give one with LUT=PATH)"
        raise PreflightError(f"{name}: {what}")
    try:
        table = latency.load(resolved)
    except (ValueError, OSError) as e:
        msg = str(e).strip().splitlines()[0]
        for prefix in (f"{resolved}: ", f"{path}: "):
            msg = msg[len(prefix):] if msg.startswith(prefix) else msg
        raise PreflightError(f"{name}: {msg}") from None
    missing = table.check_covers(get_space("tfnas"))
    if missing:
        raise PreflightError(f"{name}: {path} has no entry for {len(missing)} block(s) of the tfnas space, "
                             f"e.g. {missing[0]}")


def check_imagenet(imagenet: str, profile: str) -> None:
    """``IMAGENET`` is the ImageNet root (``train/``, ``val/``) the paper profile needs."""
    if profile != "paper":
        if imagenet:
            raise PreflightError(f"IMAGENET={imagenet}: only PROFILE=paper reads ImageNet (PROFILE={profile} does not)")
        return
    if not imagenet:
        raise PreflightError("PROFILE=paper needs IMAGENET=DIR, the ImageNet root holding train/ and val/")
    root = Path(imagenet).expanduser()
    if not root.is_dir():
        raise PreflightError(f"IMAGENET={imagenet}: no such directory")
    for sub in ("train", "val"):
        if not (root / sub).is_dir():
            raise PreflightError(f"IMAGENET={imagenet}: no {sub}/ folder in it (ImageNet root with train/ and val/)")
    from tfnas_core.search import config as search_config

    cfg = search_config.get_profile("paper")
    for lst in (cfg.train_list, cfg.val_list):
        if not search_config.resolve_path(lst).is_file():
            raise PreflightError(f"PROFILE=paper: the official ImageNet-100 split {lst} is missing")


def check_executor(executor: str, jobs: str, slurm: str) -> None:
    """``EXECUTOR`` (inline|local|slurm), ``JOBS`` (a positive integer) and ``SLURM`` (a YAML mapping of
    ``execution.settings.SlurmOptions`` fields; ``submitit`` installed and ``sbatch`` on the PATH for ``slurm``)."""
    import shutil

    from tfnas_core.execution.settings import EXECUTORS

    if executor and executor not in EXECUTORS:
        raise PreflightError(f"EXECUTOR={shown(executor)}: expected one of {', '.join(EXECUTORS)}")
    if jobs:
        parse_count("JOBS", jobs, "worker processes of EXECUTOR=local")
    if slurm:
        parse_slurm(slurm)
    if executor == "slurm":
        import importlib.util

        if importlib.util.find_spec("submitit") is None:
            raise PreflightError("EXECUTOR=slurm: the submitit package is missing (run `make setup`)")
        if shutil.which("sbatch") is None:
            raise PreflightError("EXECUTOR=slurm: sbatch is not on the PATH (no SLURM client on this machine)")


def check_launch(profile: str, budget: str, search_set: str, train_set: str, cuda_available: bool | None = None,
                 here: bool = True) -> None:
    """``BUDGET``, ``SEARCH_SET`` and ``TRAIN_SET`` as the notebooks read them (``launch.overrides``),
    and no silent CPU: ``PROFILE=paper`` at the full budget without CUDA needs ``device=cpu`` said
    (``here=False``: the runs compute elsewhere, on SLURM, or not at all, a plan)."""
    from tfnas_core.experiments import launch

    try:
        search, train = launch.overrides(profile, budget=budget or "full", search_set=search_set, train_set=train_set)
        launch.check_device(profile, search, train, cuda_available, here=here)
    except ValueError as e:
        raise PreflightError(str(e).splitlines()[0]) from None


def check_data(imagenet: str, profile: str, search_set: str = "") -> None:
    """At the paper profile, before any compute: every file the official lists name is under
    ``IMAGENET`` and opens as an image (header only; ~5 s for the 127,720 files), and train/ and
    val/ hold the same classes, none empty (``data.check_files`` / ``check_image_folder``).
    ``SEARCH_SET='missing_ok=true'`` lets the search proceed on what exists (it records what it used)."""
    if profile != "paper" or not imagenet:
        return
    from tfnas_core.data import datasets as data
    from tfnas_core.experiments import launch
    from tfnas_core.search import config as search_config
    from tfnas_core.search import data as search_data

    search, _ = launch.overrides(profile, search_set=search_set)
    root = str(Path(imagenet).expanduser())
    try:
        data.check_image_folder(Path(root), header=False)
        if not search.get("missing_ok"):
            found = search_data.check_listed(dataclasses.replace(search_config.get_profile("paper"), data_root=root))
            if not found.ok:
                raise data.DataError(found.line(f"IMAGENET={imagenet}") + "; SEARCH_SET='missing_ok=true' searches on what exists")
    except data.DataError as e:
        msg = str(e).splitlines()[0]
        raise PreflightError(msg if msg.startswith("IMAGENET=") else f"IMAGENET={imagenet}: {msg}") from None


def check(profile: str, lut: str = "", imagenet: str = "", seeds: str = "", executor: str = "", jobs: str = "",
          slurm: str = "", budget: str = "", search_set: str = "", train_set: str = "", computes: bool = True,
          runs: str = RUNS_ROOT, fresh: str = "", long_factor: str = "", long_finished_only: str = "",
          run: str = "", remeasure: str = "") -> None:
    """Every check, in the order a user would fix them; raises ``PreflightError``."""
    given = {"PROFILE": profile, "RUNS": runs, "LUT": lut, "IMAGENET": imagenet, "SEEDS": seeds, "FRESH": fresh,
             "REMEASURE": remeasure, "LONG_FACTOR": long_factor, "LONG_FINISHED_ONLY": long_finished_only, "RUN": run,
             "EXECUTOR": executor, "JOBS": jobs, "SLURM": slurm, "BUDGET": budget, "SEARCH_SET": search_set,
             "TRAIN_SET": train_set}
    for name, value in given.items():
        check_text(name, value)
    check_profile(profile)
    check_runs(runs, computes)
    if seeds:
        check_seeds(seeds)
    for name in ("FRESH", "REMEASURE", "LONG_FINISHED_ONLY", "RUN"):
        parse_flag(name, given[name])
    if long_factor:
        parse_count("LONG_FACTOR", long_factor, "the longer searches' epoch factor; 1 skips them")
    check_executor(executor, jobs, slurm)
    check_imagenet(imagenet, profile)
    check_launch(profile, budget, search_set, train_set, here=computes and executor != "slurm")
    check_lut(lut, profile)
    if computes:
        check_data(imagenet, profile, search_set)


def read_values(folder: str | Path) -> dict[str, str]:
    """The values the Makefile wrote to ``folder``: one file per variable holding ``$(value VAR).``
    and make's newline (``VALUE_END``), and ``GOALS``; surrounding blanks stripped, as make would."""
    values = {}
    for f in sorted(Path(folder).iterdir()):
        text = f.read_text(encoding="utf-8", errors="surrogateescape")
        if not text.endswith(VALUE_END):
            raise PreflightError(f"{f}: not written by the Makefile (no final {VALUE_END!r})")
        values[f.name] = text[:-len(VALUE_END)].strip(" ")
    return values


def notebook_goal(goal: str) -> bool:
    return goal.startswith(("reproduce-", "plan-")) or goal.endswith(".ipynb")


def check_make(values: dict[str, str]) -> None:
    """What make's goals (``GOALS``) need of ``values``: every check for ``reproduce-*``, ``plan-*``
    or a notebook's output file (nothing computes for ``plan-*`` without ``RUN=1``), ``DEVICE`` for
    ``bench``; first of all, no variable holds a control character."""
    goals = values.get("GOALS", "").split()
    for name in VARIABLES:
        check_text(name, values.get(name, ""))
    if "bench" in goals:
        check_device(values.get("DEVICE", "").strip())
    notebooks = [g for g in goals if notebook_goal(g)]
    if notebooks:
        v = {name.lower(): values.get(name, "").strip() for name in VARIABLES if name != "DEVICE"}
        computes = parse_flag("RUN", v["run"]) or any(not g.startswith("plan-") for g in notebooks)
        check(computes=computes, **v)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfnas_core.experiments.preflight", description=__doc__.split("\n")[0])
    p.add_argument("--values", metavar="DIR", help="the folder the Makefile wrote its variables to (one file each, "
                                                   "and GOALS); the flags below are then ignored")
    for name in ("profile", "lut", "imagenet", "seeds", "executor", "jobs", "slurm", "budget", "search-set", "train-set"):
        p.add_argument(f"--{name}", default="", help=f"make's {name.upper().replace('-', '_')} (empty: not given)")
    p.add_argument("--plan-only", action="store_true", help="make plan-* without RUN=1: nothing is computed")
    a = p.parse_args(argv)
    try:
        if a.values:
            check_make(read_values(a.values))
        else:
            check(a.profile.strip(), a.lut.strip(), a.imagenet.strip(), a.seeds.strip(), a.executor.strip(),
                  a.jobs.strip(), a.slurm.strip(), a.budget.strip(), a.search_set.strip(), a.train_set.strip(),
                  computes=not a.plan_only)
    except PreflightError as e:
        print(e)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
