"""``docs/official_behaviour.md``: every section a docstring cites exists, and every module the
page says relies on a fact exists (so renames cannot leave the page pointing nowhere)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "official_behaviour.md"


def test_cited_sections_exist():
    headings = set(re.findall(r"^## (.+)$", DOC.read_text(), flags=re.M))
    cited = {}
    for p in (ROOT / "tfnas_core").rglob("*.py"):
        for title in re.findall(r'docs/official_behaviour\.md, "([^"]+)"', p.read_text()):
            cited.setdefault(" ".join(title.split()), []).append(p.name)  # a title may wrap
    assert cited, "no docstring cites docs/official_behaviour.md"
    missing = {t: files for t, files in cited.items() if t not in headings}
    assert not missing, f"cited sections missing from {DOC.name}: {missing}"


def test_modules_named_on_the_page_exist():
    named = set(re.findall(r"`([a-z_]+(?:/[a-z_]+)*)\.py`", DOC.read_text()))  # paths below tfnas_core/
    modules = {p.relative_to(ROOT / "tfnas_core").with_suffix("").as_posix() for p in (ROOT / "tfnas_core").rglob("*.py")}
    assert named and named <= modules, sorted(named - modules)
