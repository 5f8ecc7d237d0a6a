"""The shape of the code: ``camera/`` knows nothing of the web, and no two modules import each other in a circle.

Read from the source (the ``ast`` of every module), not by importing it,
so a new circle fails here before it fails at some import order in use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("camera", "webapp")
# What camera/ must never import: it runs under Flask, FastAPI, Django or none of them.
WEB = ("flask", "werkzeug", "waitress", "jinja2", "webapp", "fastapi", "starlette", "django", "uvicorn")


def modules() -> dict[str, tuple[Path, bool]]:
    """Every module of the packages: dotted name -> (file, whether it is a package's __init__)."""
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def imported(name: str, path: Path, is_package: bool, known: dict) -> set[str]:
    """What module ``name`` imports when it is imported (its top level, not inside functions)."""
    found: set[str] = set()
    here = name.split(".") if is_package else name.split(".")[:-1]
    for node in ast.parse(path.read_text()).body:
        for inner in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(inner, ast.Import):
                found.update(alias.name for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom):
                base = ".".join(here[:len(here) - inner.level + 1] + ([inner.module] if inner.module else [])) \
                    if inner.level else inner.module or ""
                for alias in inner.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the modules of the packages its import runs, the packages a submodule is reached through included."""
    known = modules()
    edges: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        targets = set()
        for module in imported(name, path, is_package, known):
            parts = module.split(".")
            for length in range(1, len(parts) + 1):
                target = ".".join(parts[:length])
                # A package that holds ``name`` is being imported already; any other one runs its __init__ first.
                if target in known and not (name == target or name.startswith(target + ".")):
                    targets.add(target)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_camera_never_imports_anything_of_the_web():
    known = modules()
    for name, (path, is_package) in known.items():
        if name.split(".")[0] != "camera":
            continue
        web = sorted(module for module in imported(name, path, is_package, known) if module.split(".")[0] in WEB)
        assert not web, f"{path.relative_to(ROOT)} imports {web}"
    # Inside functions too: camera/ must not reach for the web at any time.
    for path in (ROOT / "camera").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            assert not [name for name in names if name.split(".")[0] in WEB], f"{path.relative_to(ROOT)}: {names}"


def test_no_modules_import_each_other_in_a_circle():
    assert circles(graph()) == []


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
])
def test_the_circle_finder_finds_circles(edges, expected):
    assert circles(edges) == expected
