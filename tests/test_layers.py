"""The layers of ARCHITECTURE.md hold: no import cycle between packages, and serving never imports training.

Read from the source (every import statement, at any depth, type-checking
imports included), so a cycle cannot hide behind a lazy import.
"""

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "engine": ROOT / "engine",
    "models": ROOT / "models",
    "kernels": ROOT / "kernels",
    "bench": ROOT / "bench",
    "avatar_client": ROOT / "clients" / "python" / "avatar_client",
    "avatar_protocol": ROOT / "clients" / "python" / "avatar_protocol",
}


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join((package, *parts)).removesuffix(".__init__")


def _graph(depth: int) -> dict[str, set[str]]:
    """Edges between module names cut to ``depth`` dotted parts (1: top-level packages, 2: subpackages)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            source = ".".join(_module_name(package, path).split(".")[:depth])
            for imported in _imports(path):
                target = ".".join(imported.split(".")[:depth])
                if target.split(".")[0] in PACKAGES and target != source:
                    edges[source].add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for neighbour in edges.get(node, ()):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_between_top_level_packages() -> None:
    edges = _graph(depth=1)
    assert _cycles(edges) == [], dict(edges)
    assert "models" not in edges["engine"], "the engine must not import models (models.torch_support is a plugin)"
    assert edges["avatar_client"] <= {"avatar_protocol"}, "the Python client installs without the engine"
    assert edges["avatar_protocol"] == set()


def test_no_import_cycle_between_subpackages() -> None:
    edges = _graph(depth=2)
    assert _cycles(edges) == [], {k: sorted(v) for k, v in edges.items() if v}


def test_nothing_imports_bench_or_tests() -> None:
    edges = _graph(depth=1)
    for package in ("engine", "models", "kernels", "avatar_client", "avatar_protocol"):
        assert not edges[package] & {"bench", "tests"}, package
