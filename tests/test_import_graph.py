"""The project's import graph, read from the source with `ast`: no module imports itself back
through others (an import circle), and no package imports a layer above its own.

Every import counts, late ones inside functions included: a late import hides a circle from
Python's loader, not from the reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Each package may import from the packages listed after it, never from those before it.
# (service.py, the BentoML service, sits above them all.)
LAYERS = ("service", "gateway", "runners", "search", "models", "intake", "errors", "config")
FORBIDDEN_THIRD_PARTY = {  # packages kept free of the serving framework (and of torch)
    "intake": {"bentoml", "fastapi", "starlette", "torch"},
    "search": {"bentoml", "fastapi", "starlette", "torch"},
}


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file, for every module of the layered packages."""
    modules = {}
    for top in LAYERS:
        single = root / f"{top}.py"
        files = [single] if single.is_file() else sorted((root / top).rglob("*.py"))
        for path in files:
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imports_of(name: str, path: Path) -> set[str]:
    """The absolute names `name` imports (modules or names in them), anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # a module, or a name in `base`
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports (a name imported from a module counts as it)."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(name, path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return circles


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    found = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            source_layer, target_layer = name.split(".")[0], target.split(".")[0]
            if rank[target_layer] < rank[source_layer]:
                found.append(f"{name} -> {target}")
    return found


def third_party_imports(modules: dict[str, Path]) -> list[str]:
    found = []
    for name, path in sorted(modules.items()):
        banned = FORBIDDEN_THIRD_PARTY.get(name.split(".")[0], set())
        for target in sorted(imports_of(name, path)):
            if target.split(".")[0] in banned:
                found.append(f"{name} -> {target}")
    return found


@pytest.fixture(scope="module")
def graph():
    return import_graph(project_modules())


def test_the_graph_sees_the_project(graph):
    assert len(graph) > 50 and "gateway.startup" in graph["service"] and "config.settings" in graph["gateway.startup"]
    assert "models.registry" in graph["models"]  # `from .registry import ...` in a package


def test_no_import_circles(graph):
    assert import_circles(graph) == []


def test_no_package_imports_a_layer_above_its_own(graph):
    assert upward_imports(graph) == []


def test_lower_packages_stay_free_of_the_serving_frameworks():
    assert third_party_imports(project_modules()) == []


def test_the_checks_find_a_circle_and_an_upward_import(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "config" / "__init__.py").write_text("")
    (tmp_path / "config" / "a.py").write_text("from .b import x\n")
    (tmp_path / "config" / "b.py").write_text("def f():\n    from config import a\n")
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "c.py").write_text("from gateway.routes import Routes\n")
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "d.py").write_text("def f():\n    import bentoml\n")
    (tmp_path / "gateway").mkdir()
    (tmp_path / "gateway" / "routes.py").write_text("from models.c import x\n")
    modules = project_modules(tmp_path)
    graph = import_graph(modules)
    assert import_circles(graph) == [["config.a", "config.b"], ["gateway.routes", "models.c"]]
    assert upward_imports(graph) == ["models.c -> gateway.routes"]
    assert third_party_imports(modules) == ["search.d -> bentoml"]
