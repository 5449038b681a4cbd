"""The package's module structure: no import cycles, and a runtime that stands without the build wing.

The imports are read from the source (ast), so lazy imports inside functions count too.
"""
import ast
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import unspin

PACKAGE_DIR = Path(unspin.__file__).resolve().parent
# The one runtime module that may import the build wing: it wires the build commands into the CLI.
CLI_MODULE = "unspin.cli"


def package_modules() -> dict[str, Path]:
    """Every module of the package (packages as their __init__.py), by dotted name."""
    modules = {"unspin": PACKAGE_DIR / "__init__.py"}
    for info in pkgutil.walk_packages([str(PACKAGE_DIR)], prefix="unspin."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin, info.name
        modules[info.name] = Path(spec.origin)
    return modules


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(source: str, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules of `known` that `module` imports (at any depth of its code, except under
    `if TYPE_CHECKING:`). `from pkg import name` counts as importing pkg.name when that is a
    module, and pkg itself otherwise."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking_block(child):
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    name = alias.name
                    while name and name not in known:  # "import unspin.text.sub" -> nearest known module
                        name = name.rpartition(".")[0]
                    if name:
                        found.add(name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1])
                    target = f"{base}.{child.module}" if child.module else base
                else:
                    target = child.module or ""
                for alias in child.names:
                    sub = f"{target}.{alias.name}"
                    if sub in known:
                        found.add(sub)
                    elif target in known:
                        found.add(target)
            visit(child)

    visit(ast.parse(source))
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imported_modules(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known)
            for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected group of modules
    that import each other, found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)

    cycles = []
    for group in groups:
        members = set(group)
        start = group[0]
        # Breadth-first search inside the group for the shortest way back to `start`.
        paths = {start: [start]}
        frontier = [start]
        cycle = None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph.get(v, ())):
                    if w == start:
                        cycle = paths[v] + [start]
                        break
                    if w in members and w not in paths:
                        paths[w] = paths[v] + [w]
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        cycles.append(cycle)
    return cycles


# ------------------------------------------------------------------ the checker itself

def test_cycle_finder_reports_a_cycle_and_accepts_a_tree():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"x": {"x"}}) == [["x", "x"]]
    two = find_cycles({"a": {"b"}, "b": {"a"}, "p": {"q"}, "q": {"p"}})
    assert sorted(map(tuple, two)) == [("a", "b", "a"), ("p", "q", "p")]


def test_relative_and_absolute_imports_are_resolved():
    known = {"unspin", "unspin.text", "unspin.lm", "unspin.build", "unspin.build.corpus", "unspin.build.channel"}
    source = (
        "import os\n"
        "from .. import text\n"
        "from ..lm import ModelMissing\n"
        "from .corpus import cache_dir\n"
        "import unspin.build.channel as ch\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from unspin import lexicon\n"
        "def later():\n"
        "    from unspin import __version__\n"
    )
    found = imported_modules(source, "unspin.build.spinner", False, known)
    assert found == {"unspin.text", "unspin.lm", "unspin.build.corpus", "unspin.build.channel", "unspin"}
    assert imported_modules("from . import corpus\n", "unspin.build", True, known) == {"unspin.build.corpus"}


# ------------------------------------------------------------------ the package

def test_every_module_is_found():
    modules = package_modules()
    for expected in ("unspin.cli", "unspin.text", "unspin.build.channel", "unspin.build.metrics"):
        assert expected in modules


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    message = "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)
    print(message if cycles else "no import cycles")
    assert not cycles, message


def test_runtime_never_imports_the_build_wing():
    graph = import_graph()
    offenders = {module: sorted(m for m in imports if m == "unspin.build" or m.startswith("unspin.build."))
                 for module, imports in graph.items()
                 if not (module == "unspin.build" or module.startswith("unspin.build.")) and module != CLI_MODULE}
    offenders = {m: bad for m, bad in offenders.items() if bad}
    assert not offenders, f"runtime modules importing unspin.build: {offenders}"


def test_importing_the_runtime_loads_no_build_module():
    runtime = sorted(m for m in package_modules() if not m.startswith("unspin.build") and m != CLI_MODULE)
    code = ("import importlib, sys\n"
            f"for name in {runtime!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.startswith('unspin.build')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=PACKAGE_DIR.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout


@pytest.mark.parametrize("module", ["unspin.build.channel", "unspin.build.spinner", "unspin.build.bench_core",
                                    "unspin.build.bench_trace", "unspin.build.train_lm", "unspin.build.corpus",
                                    "unspin.build.coverage", "unspin.build.resources", "unspin.build.metrics"])
def test_build_modules_import_their_siblings_at_the_top(module):
    """Lazy imports are for heavy optional packages only; sibling unspin modules come at the top."""
    path = package_modules()[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    lazy = [ast.unparse(n) for n in ast.walk(tree)
            if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top
            and (getattr(n, "level", 0) or (getattr(n, "module", "") or "").startswith("unspin")
                 or any(a.name.startswith("unspin") for a in n.names))]
    assert not lazy, f"{module}: sibling imports inside functions: {lazy}"
