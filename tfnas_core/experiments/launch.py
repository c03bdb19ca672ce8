"""What a notebook is launched with, read one way by the notebooks, ``plan`` and ``make``.

Every experiment notebook takes the same launch inputs (its ``parameters`` cell): ``profile``,
``runs_root``, ``imagenet_root``, ``lut``, ``target_ms``, ``lam``, ``budget``, ``search_set``,
``train_set`` and the executor settings.  ``notebook_context`` turns them into the
``experiments.Context`` every run of the notebook is keyed by; ``python -m tfnas_core plan``
calls the same function with the same inputs, so a plan lists exactly the keys the notebook then
runs (tests/test_launch.py checks it at smoke and at the rehearsal budget).

Budgets.  A profile fixes *what* is run; a budget only shrinks *how much*:

* ``full`` (default): the profile as it is.
* ``rehearsal`` (``PROFILE=paper`` only): every paper setting is kept (ImageNet-100 by the
  official lists, 224 px, search batch 32, the official GPU LUT and its 15 ms target, the
  optimisers, the T schedule, elasticity scaling, the retraining recipe with label smoothing,
  dropout, drop-connect, AMP on CUDA and DDP) and only the budgets shrink: ``REHEARSAL_SEARCH``
  and ``REHEARSAL_TRAIN`` below, a few steps per epoch.  The runs' ``profile`` field reads
  ``paper+rehearsal``, so their keys and wall times never mix with full paper runs.  It runs on
  CUDA where torch sees one and on the CPU otherwise, and says which.

``search_set`` / ``train_set`` (make's ``SEARCH_SET`` / ``TRAIN_SET``) are ``key=value`` pairs
separated by spaces, the grammar and checks of the command line's ``--set``
(``search_config.apply_overrides`` / ``profiles.apply_overrides``); they apply after the budget
and the named parameters, to every search (or retraining) the notebook makes, and are recorded in
each run's ``config.json`` and key like any other setting.

No silent CPU: ``PROFILE=paper`` at the full budget needs CUDA.  Without it ``check_device``
refuses with one line, unless ``device=cpu`` is set explicitly (``SEARCH_SET='device=cpu'``,
``TRAIN_SET='device=cpu'``); ``search_config.resolve`` and ``profiles.resolve`` refuse the same
way for a run started any other way.
"""
from __future__ import annotations

import shlex
from dataclasses import fields
from typing import Any

from tfnas_core import config as _config
from tfnas_core.runs.files import RUNS_ROOT

BUDGETS = ("full", "rehearsal")
REHEARSAL_PROFILE = "paper+rehearsal"  # the ``profile`` field of a rehearsal's runs

# The rehearsal's search: 2 epochs (1 warm-up), 2 weight steps each; the second epoch makes one
# arch step (``arch_every`` 2), one elasticity scaling and a one-batch supernet validation.  No loader
# workers: a few batches decode in the main process, and on a CPU the relaxed arch step at 224 px and
# batch 32 already takes ~12 GB (measured: a 24 GB machine ran out of memory with workers beside it).
REHEARSAL_SEARCH = ("epochs=2", "warmup_epochs=1", "steps_per_epoch=2", "val_batches=1", "num_workers=0")
# The rehearsal's retraining: one epoch over 64 images at batch 32 (lr by the paper's linear rule,
# 0.2 * 32 / 512), evaluated on 100 validation images (a seeded, class-balanced choice).
REHEARSAL_TRAIN = ("epochs=1", "warmup_epochs=0", "batch_size=32", "eval_batch_size=50", "train_subset=64",
                   "val_subset=100", "num_workers=0")

NO_CUDA = ("PROFILE=paper runs on a GPU and torch sees no CUDA device here: use BUDGET=rehearsal for a "
           "sanity run, or set device=cpu explicitly (SEARCH_SET='device=cpu' TRAIN_SET='device=cpu'; "
           "days per search on a CPU)")


class LaunchError(ValueError):
    """A bad launch input; the message names make's variable and the value."""


def parse_set(text: str | list | tuple | None, name: str = "SEARCH_SET") -> list[str]:
    """``'epochs=2 warmup_epochs=1'`` (or a list of such pairs) as a list of ``key=value`` strings."""
    if text is None:
        return []
    if isinstance(text, (list, tuple)):
        items = [str(t) for t in text]
    else:
        try:
            items = shlex.split(str(text))
        except ValueError as e:
            raise LaunchError(f"{name}={text}: {e}") from None
    bad = next((t for t in items if "=" not in t), None)
    if bad is not None:
        raise LaunchError(f"{name}: {bad!r} is not key=value (e.g. {name}='epochs=2 warmup_epochs=1')")
    return items


def _changes(kind: str, profile: str, pairs: list[str], name: str) -> dict[str, Any]:
    """The fields ``pairs`` set, coerced and checked as ``--set`` does (a later pair wins)."""
    from tfnas_core.train import config as profiles
    from tfnas_core.search import config as search_config

    if not pairs:
        return {}
    mod = search_config if kind == "search" else profiles
    base = mod.get_profile(profile)
    try:
        cfg = mod.apply_overrides(base, pairs)
    except ValueError as e:
        raise LaunchError(f"{name}: {str(e).removeprefix('--set: ').removeprefix('--set ')}") from None
    keys = dict.fromkeys(p.partition("=")[0].strip() for p in pairs)
    return {k: getattr(cfg, k) for k in keys}


def budget_overrides(profile: str, budget: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(search, retraining) overrides of ``budget`` at ``profile``, with the runs' profile label."""
    if budget not in BUDGETS:
        raise LaunchError(f"BUDGET={budget}: expected one of {', '.join(BUDGETS)}")
    if budget == "full":
        return {}, {}
    if profile != "paper":
        raise LaunchError(f"BUDGET={budget}: a budget of PROFILE=paper (PROFILE={profile} is already its own budget)")
    s = _changes("search", profile, list(REHEARSAL_SEARCH), "BUDGET=rehearsal")
    t = _changes("train", profile, list(REHEARSAL_TRAIN), "BUDGET=rehearsal")
    return {**s, "profile": REHEARSAL_PROFILE}, {**t, "profile": REHEARSAL_PROFILE}


def overrides(profile: str, *, budget: str = "full", target_ms: float | None = None, lam: float | None = None,
              lut: str | None = None, imagenet_root: str | None = None, search_set=None,
              train_set=None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(search, retraining) overrides of a notebook's launch inputs: the budget's, then the named
    parameters, then ``search_set`` / ``train_set``."""
    if profile not in _config.PROFILE_NAMES:
        raise LaunchError(f"PROFILE={profile}: unknown profile; known: {', '.join(_config.PROFILE_NAMES)}")
    search, train = budget_overrides(profile, budget)
    named = {"target_ms": target_ms, "lam": lam, "lut": lut, "data_root": imagenet_root}
    search.update({k: v for k, v in named.items() if v is not None})
    if imagenet_root is not None:
        train["data_root"] = imagenet_root
    search.update(_changes("search", profile, parse_set(search_set, "SEARCH_SET"), "SEARCH_SET"))
    train.update(_changes("train", profile, parse_set(train_set, "TRAIN_SET"), "TRAIN_SET"))
    return search, train


def check_device(profile: str, search: dict[str, Any], train: dict[str, Any], cuda_available: bool | None = None,
                 here: bool = True) -> str:
    """Where the runs will compute (``cuda`` / ``cpu``); ``LaunchError`` for the paper profile at its
    full budget without CUDA when no ``device`` is set explicitly.  ``here=False``: the runs compute
    elsewhere (SLURM jobs, or a plan that computes nothing), so this machine's CUDA is not asked for
    (a job on a node without CUDA refuses by itself: ``search_config.resolve``)."""
    if not here:
        return search.get("device") or "the nodes' device"
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    full_paper = profile == "paper" and search.get("profile", "paper") == "paper"
    for kind, over in (("SEARCH_SET", search), ("TRAIN_SET", train)):
        if over.get("device") == "cuda" and not cuda_available:
            raise LaunchError(f"{kind}: device=cuda, but torch sees no CUDA device here")
    if full_paper and not cuda_available and (search.get("device") is None or train.get("device") is None):
        raise LaunchError(NO_CUDA)
    from tfnas_core.search import config as search_config

    default = search_config.get_profile(profile).device
    return search.get("device") or default or ("cuda" if cuda_available else "cpu")


def notebook_context(name: str, profile: str = "mini", *, runs_root: str = RUNS_ROOT, budget: str = "full",
                     target_ms: float | None = None, lam: float | None = None, lut: str | None = None,
                     imagenet_root: str | None = None, search_set=None, train_set=None, executor: str = "inline",
                     jobs: int | None = None, slurm: dict | None = None, cuda_available: bool | None = None,
                     computes: bool = True, **context: Any):
    """The ``context.Context`` of notebook ``name`` launched with these inputs (see the module
    docstring); ``computes=False``: nothing will be computed (a plan); ``context``: more
    ``Context`` fields (``progress``, ``log``, ``measured``, ...)."""
    from tfnas_core.experiments.context import Context

    search, train = overrides(profile, budget=budget, target_ms=target_ms, lam=lam, lut=lut,
                              imagenet_root=imagenet_root, search_set=search_set, train_set=train_set)
    device = check_device(profile, search, train, cuda_available, here=computes and executor != "slurm")
    ctx = Context(profile, runs_root=runs_root, search_overrides=search, train_overrides=train, name=name,
                  executor=executor, jobs=jobs, slurm=slurm or {}, **context)
    if profile == "paper":
        where = {"cuda": "on CUDA", "cpu": "on the CPU (no CUDA device here)"}.get(device, "on the SLURM nodes")
        ctx.say(f"{name}: PROFILE=paper, BUDGET={budget}: runs compute {where}; {describe(search, train)}")
    return ctx


OUTPUTS = "outputs"  # git-ignored


def output_dirs(*dirs: str, budget: str = "full", search_set=None, train_set=None) -> tuple[str, ...]:
    """Where a notebook writes its tables, figures and tuned C1/C2 values: ``dirs`` as given at the
    full budget without ``search_set`` / ``train_set``; otherwise each relative one under
    ``outputs/rehearsal/`` (or ``outputs/overridden/``), so that a sanity run or a run with changed
    settings never lands in ``results/`` and ``figures/`` (the committed evidence the report judges)
    nor feeds a full run its tuned λ."""
    if budget == "full" and not parse_set(search_set) and not parse_set(train_set, "TRAIN_SET"):
        return tuple(dirs)
    from pathlib import Path

    base = Path(OUTPUTS) / ("rehearsal" if budget == "rehearsal" else "overridden")
    return tuple(d if Path(d).is_absolute() else str(base / d) for d in dirs)


def describe(search: dict[str, Any], train: dict[str, Any]) -> str:
    """The overrides in ``--set`` form, for a log line."""
    def pairs(d):
        return " ".join(f"{k}={v}" for k, v in d.items()) or "-"
    return f"search: {pairs(search)}; retraining: {pairs(train)}"

