"""The repository root, where every relative path of a notebook resolves.

A notebook's defaults are relative (``runs_root="runs"``, ``results_dir``, ``figures_dir``, the
search's ``split_dir="data_splits"``), and they must mean the same folders whether the kernel
started in the repository root (``make reproduce-*``, papermill) or in ``notebooks/`` (JupyterLab
starts kernels in the notebook's folder).  ``enter_repo_root()`` makes the repository root the
working directory, so finished runs are shared between the lab and ``make`` and nothing is
written into ``notebooks/``.
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # tfnas_core/
ENV_ROOT = "TFNAS_ROOT"  # overrides the search below
OFF = ("", "0", "false", "no")  # an environment switch set to one of these (any case) is off


def env_flag(name: str) -> bool:
    """The switch ``$name`` (``TFNAS_FRESH``, ``TFNAS_REMEASURE``): on when set to anything but ``OFF``."""
    return os.environ.get(name, "").strip().lower() not in OFF


def is_repo_root(path: Path) -> bool:
    """A checkout of this project: ``pyproject.toml`` beside ``tfnas_core/`` and ``notebooks/``."""
    return (path / "pyproject.toml").is_file() and (path / "tfnas_core").is_dir() and (path / "notebooks").is_dir()


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """``$TFNAS_ROOT`` if set; else the nearest checkout at or above ``start`` (default: the
    working directory); else the checkout holding the imported package; else ``start`` itself."""
    env = os.environ.get(ENV_ROOT)
    if env:
        root = Path(env).expanduser().resolve()
        if not root.is_dir():
            raise NotADirectoryError(f"{ENV_ROOT}={env}: no such directory")
        return root
    here = Path(start or os.getcwd()).resolve()
    for p in (here, *here.parents):
        if is_repo_root(p):
            return p
    if is_repo_root(PACKAGE_DIR.parent):
        return PACKAGE_DIR.parent
    return here


def enter_repo_root(start: str | os.PathLike | None = None) -> Path:
    """Change the working directory to ``repo_root(start)`` and return it."""
    root = repo_root(start)
    os.chdir(root)
    return root
