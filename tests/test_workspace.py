"""Notebook paths resolve against the repository root wherever the kernel starts."""
import os
from pathlib import Path

import pytest

from tfnas_core.utils import workspace

ROOT = Path(__file__).resolve().parents[1]


def _checkout(tmp_path):
    root = tmp_path / "clone"
    for d in ("tfnas_core", "notebooks"):
        (root / d).mkdir(parents=True)
    (root / "pyproject.toml").write_text("")
    return root


def test_root_is_found_from_notebooks_and_entered(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.ENV_ROOT, raising=False)
    root = _checkout(tmp_path)
    monkeypatch.chdir(root / "notebooks")
    assert workspace.repo_root() == root.resolve()
    assert workspace.enter_repo_root() == root.resolve() and Path(os.getcwd()) == root.resolve()


def test_outside_a_checkout_the_package_checkout_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv(workspace.ENV_ROOT, raising=False)
    assert workspace.repo_root(tmp_path) == (ROOT if workspace.is_repo_root(workspace.PACKAGE_DIR.parent)
                                             else tmp_path.resolve())


def test_env_overrides_and_is_checked(tmp_path, monkeypatch):
    monkeypatch.setenv(workspace.ENV_ROOT, str(tmp_path))
    assert workspace.repo_root(ROOT / "notebooks") == tmp_path.resolve()
    monkeypatch.setenv(workspace.ENV_ROOT, str(tmp_path / "nope"))
    with pytest.raises(NotADirectoryError, match="TFNAS_ROOT="):
        workspace.repo_root()
