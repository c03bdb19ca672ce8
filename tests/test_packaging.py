"""The package installs into an existing GPU environment: its dependencies are ranges (torch from
2.3, any Python from 3.11), while ``make setup`` keeps the exact pins the results ran on."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_dependencies_are_ranges_not_one_build():
    deps = {re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0].lower(): d for d in _project()["dependencies"]}
    assert deps["torch"] == "torch>=2.3" and deps["torchvision"] == "torchvision>=0.18"
    assert not any("==" in d for d in deps.values()), deps
    assert {"pyyaml", "pillow", "submitit", "pandas"} <= set(deps)  # plan and preflight read YAML


def test_python_from_311_with_no_upper_bound():
    assert _project()["requires-python"] == ">=3.11"


def test_make_setup_keeps_its_pins():
    make = (ROOT / "Makefile").read_text()
    assert "torch==2.14.1 torchvision==0.29.1" in make
