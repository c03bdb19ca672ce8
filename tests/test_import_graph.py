"""The package's layout and import graph (issues 12 and 30).

``tfnas_core`` is a few loose modules and one subpackage per role (a *wing*: README, Layout).
Read from the source with ``ast`` (``if TYPE_CHECKING:`` blocks count as neither kind of import,
since they never run), the graph must have:

* no cycle among modules, at module level or counting imports inside functions;
* no cycle among wings: each wing stands on the ones below it in ``LAYERS``, never on one above;
* ``nn/`` (the networks) importing no search, latency, runs, experiments or anything above them,
  and ``arch/`` (architectures as data) importing no torch;
* every ``__init__`` only re-exporting, and every module short enough to read in one sitting.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "tfnas_core"

# The wings from the bottom up: a wing may import only from wings before it (and loose modules
# from ``LOOSE`` as placed here).
LAYERS = ("utils", "config", "stats", "arch", "nn", "latency", "data", "runs", "search", "train", "released",
          "report", "execution", "experiments", "cli", "__main__")
LOOSE = {"config", "stats", "__main__"}  # modules outside every wing (besides tfnas_core/__init__)
MAX_LINES = 600


def modules(pkg: Path = PKG) -> dict[str, Path]:
    """Dotted name below ``tfnas_core`` (a package by its own name) -> file."""
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        parts = list(p.relative_to(pkg).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool, known: set[str]) -> list[str]:
    """The ``tfnas_core`` modules (dotted, below the package) an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name.split(".", 1)[1] for a in node.names if a.name.startswith("tfnas_core.")]
    if node.level:
        here = module.split(".") if is_pkg else module.split(".")[:-1]
        base = (here[:len(here) - node.level + 1] if node.level > 1 else here) + (node.module.split(".") if node.module else [])
    elif (node.module or "").startswith("tfnas_core"):
        base = node.module.split(".")[1:]
    else:
        return []
    out = []
    for a in node.names:
        cand = ".".join(base + [a.name])
        out.append(cand if cand in known else ".".join(base))
    return out


def import_graph(pkg: Path = PKG) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(module-level edges, function-level edges) between the modules of ``pkg``."""
    mods = modules(pkg)
    known = set(mods)
    top: dict[str, set[str]] = {m: set() for m in mods}
    inner: dict[str, set[str]] = {m: set() for m in mods}

    def visit(body, module: str, is_pkg: bool, in_function: bool) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                dest = inner if in_function else top
                dest[module].update(t for t in _targets(node, module, is_pkg, known) if t in known and t != module)
            elif isinstance(node, ast.If) and _is_type_checking(node):
                visit(node.orelse, module, is_pkg, in_function)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(node.body, module, is_pkg, True)
            else:
                for field in ("body", "orelse", "finalbody", "handlers"):
                    child = getattr(node, field, None)
                    if isinstance(child, list):
                        visit(child, module, is_pkg, in_function)

    for m, p in mods.items():
        visit(ast.parse(p.read_text()).body, m, p.name == "__init__.py", False)
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


def wing(module: str) -> str:
    return module.split(".")[0]


def _all_edges() -> dict[str, set[str]]:
    top, inner = import_graph()
    return {m: top[m] | inner[m] for m in top}


def test_graph_reader_sees_both_kinds_of_import():
    top, inner = import_graph()
    assert "arch.space" in top["arch.spec"]  # ``from tfnas_core.arch.space import (...)`` at module level
    assert "utils.checks" in inner["arch.spec"]  # ``parse_json``, imported inside ``loads``
    assert "latency.lut" in inner["cli.common"] and "latency.lut" not in top["cli.common"]
    assert "search.loop" in top["cli.search"] or "search.loop" in inner["cli.search"]
    assert len(top) >= 60


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
    cycle = find_cycle(_all_edges())
    assert cycle is None, "import cycle (counting function-level imports): " + " -> ".join(cycle)


def test_every_module_is_in_a_wing_or_named_loose():
    for m in modules():
        assert m == "" or wing(m) in LAYERS, f"tfnas_core.{m}: in no wing of LAYERS"
        if "." not in m and m and (PKG / f"{m}.py").is_file():
            assert m in LOOSE, f"tfnas_core/{m}.py: a loose module; put it in a wing or name it in LOOSE"


def test_wings_only_import_wings_below_them():
    """Counting imports inside functions: the wings are layers, so the tree reads bottom-up."""
    rank = {w: i for i, w in enumerate(LAYERS)}
    upward = sorted(f"{m} -> {t}" for m, ts in _all_edges().items() if m for t in ts
                    if wing(t) != wing(m) and rank[wing(t)] > rank[wing(m)])
    assert not upward, "imports of a wing above: " + "; ".join(upward)


@pytest.mark.parametrize("low, forbidden", [
    ("nn", ("latency", "search", "runs", "train", "experiments", "execution", "report", "cli")),
    ("arch", ("nn", "latency", "search", "runs", "train", "experiments")),
    ("latency", ("search", "runs", "train", "experiments")),
    ("runs", ("search", "train", "experiments", "execution")),
    ("execution", ("experiments", "cli")),
])
def test_low_wings_do_not_know_high_ones(low, forbidden):
    bad = sorted(f"{m} -> {t}" for m, ts in _all_edges().items() if wing(m) == low for t in ts
                 if wing(t) in forbidden)
    assert not bad, bad


def test_arch_is_data_without_torch():
    for m, p in modules().items():
        if wing(m) == "arch":
            tree = ast.parse(p.read_text())
            names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert "torch" not in names, f"tfnas_core.{m} imports torch"


def test_every_init_only_re_exports():
    for m, p in modules().items():
        if p.name != "__init__.py":
            continue
        for i, node in enumerate(ast.parse(p.read_text()).body):
            doc = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            all_ = isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["__all__"]
            version = isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["__version__"]
            assert doc or all_ or version or isinstance(node, (ast.Import, ast.ImportFrom)), \
                f"{p.relative_to(PKG.parent)}:{node.lineno}: an __init__ only documents and re-exports"


def test_no_module_over_the_limit():
    long = {str(p.relative_to(PKG.parent)): n for p in modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_config_validation_does_not_import_the_supernet():
    code = ("import sys; from tfnas_core.search import config as s; s.check(s.smoke()); "
            "print('tfnas_core.nn.supernet' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
