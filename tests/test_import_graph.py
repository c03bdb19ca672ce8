"""The package's import graph: no cycle among module-level imports (issue 12, item 3).

Module-level imports run when a module is first imported, so a cycle among them makes the
import order matter (and half-initialised modules appear); imports inside a function run
later, but a cycle through them still means two modules that need each other.  The graph is read from the source with ``ast``: both kinds are
listed separately, ``if TYPE_CHECKING:`` blocks count as neither (they never run).
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "tfnas_core"


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> list[str]:
    """The ``tfnas_core`` modules an import statement in ``module`` loads."""
    if isinstance(node, ast.Import):
        return [a.name.split(".", 1)[1].split(".")[0] for a in node.names if a.name.startswith("tfnas_core.")]
    if node.level == 0:
        if not (node.module or "").startswith("tfnas_core"):
            return []
        rest = node.module.split(".")[1:]
    elif node.level == 1:
        rest = node.module.split(".") if node.module else []
    else:  # the package has no subpackages with code
        return []
    if rest:
        return [rest[0]]
    return [a.name for a in node.names]  # ``from . import x, y``


def import_graph(pkg: Path = PKG) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, function-level edges) between the modules of ``pkg``."""
    modules = {p.stem for p in pkg.glob("*.py")}
    top: dict[str, set[str]] = {m: set() for m in modules}
    inner: dict[str, set[str]] = {m: set() for m in modules}

    def visit(body, module: str, in_function: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                dest = inner if in_function else top
                dest[module].update(t for t in _targets(node, module) if t in modules and t != module)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse, module, in_function)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(node.body, module, True)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    child = getattr(node, field, None)
                    if isinstance(child, list):
                        visit(child, module, in_function)

    for m in modules:
        visit(ast.parse((pkg / f"{m}.py").read_text()).body, m, False)
    return top, inner


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = dfs(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = dfs(n)
            if found:
                return found
    return None


def test_graph_reader_sees_both_kinds_of_import():
    top, inner = import_graph()
    assert "space" in top["arch_spec"]  # ``from .space import (...)`` at module level
    assert "checks" in inner["arch_spec"]  # ``from .checks import parse_json`` inside ``loads``
    assert "latency" in inner["cli_common"] and "latency" not in top["cli_common"]
    assert len(top) >= 40


def test_finder_reports_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_cycle_among_module_level_imports():
    top, _ = import_graph()
    cycle = find_cycle(top)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_no_cycle_even_counting_imports_inside_functions():
    """A lazy import may postpone loading a module, but two modules that need each other are one
    concept split in two (or a helper living in the wrong one)."""
    top, inner = import_graph()
    cycle = find_cycle({m: top[m] | inner[m] for m in top})
    assert cycle is None, "import cycle (counting function-level imports): " + " -> ".join(cycle)


def _loads_at_import(top: dict[str, set[str]], module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        for n in top[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return seen


@pytest.mark.parametrize("module, forbidden", [
    ("search_config", "supernet"),  # validating a config needs the depth-space names, not the supernet
    ("cli_search", "cli"),  # command modules share cli_common; cli registers them, not the reverse
    ("cli_train", "cli"),
    ("latency", "lut_build"),  # reading a table never loads the machinery that builds one
])
def test_no_upward_module_level_edge(module, forbidden):
    top, _ = import_graph()
    assert forbidden not in _loads_at_import(top, module)


def test_config_validation_does_not_import_the_supernet():
    code = ("import sys; from tfnas_core import search_config as s; s.check(s.smoke()); "
            "print('tfnas_core.supernet' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
