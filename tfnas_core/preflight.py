"""The checks ``make reproduce-*`` runs on ``PROFILE``, ``LUT``, ``IMAGENET``, ``SEEDS``, the executor
and the budget (``BUDGET``, ``SEARCH_SET``, ``TRAIN_SET``, ``launch.py``) before
papermill starts: a bad value stops make with one line naming it (exit 2) and nothing written.

The Makefile calls ``python -m tfnas_core.preflight --profile P --lut L --imagenet I --seeds S``
while it reads its rules; this prints nothing when the values are good, else one line, which
make turns into its own one-line error.  Messages speak make's variables (``IMAGENET=``, not the
notebook's ``imagenet_root`` or the CLI's ``--set data_root=``).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


class PreflightError(ValueError):
    """A bad make variable; the message names it and its value."""


def check_profile(profile: str) -> None:
    from .config import PROFILE_NAMES as PROFILES  # the names every profile registry has, without torch

    if profile not in PROFILES:
        import difflib

        close = difflib.get_close_matches(profile, PROFILES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise PreflightError(f"PROFILE={profile}: unknown profile{hint}; known: {', '.join(PROFILES)}")


def check_seeds(seeds: str) -> list[int]:
    """``SEEDS`` as papermill reads it (YAML): a non-empty list of non-negative integers."""
    import yaml

    bad = PreflightError(f"SEEDS={seeds}: expected a list of non-negative integers, e.g. SEEDS=[2] or SEEDS=[2,3,4]")
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
    from . import latency, search_config
    from .space import get_space

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
    from . import search_config

    cfg = search_config.get_profile("paper")
    for lst in (cfg.train_list, cfg.val_list):
        if not search_config.resolve_path(lst).is_file():
            raise PreflightError(f"PROFILE=paper: the official ImageNet-100 split {lst} is missing")


def check_executor(executor: str, jobs: str, slurm: str) -> None:
    """``EXECUTOR`` (inline|local|slurm), ``JOBS`` (a positive integer) and ``SLURM`` (a YAML mapping of
    ``executors.SlurmOptions`` fields; ``submitit`` installed and ``sbatch`` on the PATH for ``slurm``)."""
    import shutil

    import yaml

    from .executors import EXECUTORS, SlurmOptions

    if executor and executor not in EXECUTORS:
        raise PreflightError(f"EXECUTOR={executor}: expected one of {', '.join(EXECUTORS)}")
    if jobs and not (jobs.isdigit() and int(jobs) >= 1):
        raise PreflightError(f"JOBS={jobs}: expected a positive integer (worker processes of EXECUTOR=local)")
    if slurm:
        try:
            value = yaml.safe_load(slurm)
            if not isinstance(value, dict):
                raise ValueError("expected a mapping such as '{partition: gpu, gpus: 1, timeout_min: 900}'")
            SlurmOptions.from_dict(value)
        except (yaml.YAMLError, ValueError, TypeError) as e:
            raise PreflightError(f"SLURM={slurm}: {str(e).splitlines()[0]}") from None
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
    from . import launch

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
    from . import data, launch, search_config, search_data

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
          slurm: str = "", budget: str = "", search_set: str = "", train_set: str = "", computes: bool = True) -> None:
    """Every check, in the order a user would fix them; raises ``PreflightError``."""
    check_profile(profile)
    if seeds:
        check_seeds(seeds)
    check_executor(executor, jobs, slurm)
    check_imagenet(imagenet, profile)
    check_launch(profile, budget, search_set, train_set, here=computes and executor != "slurm")
    check_lut(lut, profile)
    if computes:
        check_data(imagenet, profile, search_set)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tfnas_core.preflight", description=__doc__.split("\n")[0])
    for name in ("profile", "lut", "imagenet", "seeds", "executor", "jobs", "slurm", "budget", "search-set", "train-set"):
        p.add_argument(f"--{name}", default="", help=f"make's {name.upper().replace('-', '_')} (empty: not given)")
    p.add_argument("--plan-only", action="store_true", help="make plan-* without RUN=1: nothing is computed")
    a = p.parse_args(argv)
    try:
        check(a.profile.strip(), a.lut.strip(), a.imagenet.strip(), a.seeds.strip(), a.executor.strip(),
              a.jobs.strip(), a.slurm.strip(), a.budget.strip(), a.search_set.strip(), a.train_set.strip(),
              computes=not a.plan_only)
    except PreflightError as e:
        print(e)
        return EXIT_BAD_INPUT
    return 0


if __name__ == "__main__":
    sys.exit(main())
