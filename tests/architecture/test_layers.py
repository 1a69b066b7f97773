"""The layers import one way only: core <- db <- services <- api, with schemas beside the API.

Checked on the source (AST), so a violation fails here before it becomes a cycle at run time.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "db", "services", "schemas", "api", "onnx_models")
# What each top-level package may import from the project (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    # Set-up tools train heads with the service's own inference code (features match serving); the
    # manifest module they share with services imports nothing, so no module cycle comes of it.
    "onnx_models": {"core", "services"},
    "db": {"core"},
    "services": {"core", "db", "onnx_models"},
    "schemas": {"core", "db", "services"},
    "api": {"core", "db", "services", "schemas", "onnx_models"},
}
WEB_FRAMEWORKS = ("fastapi", "starlette")


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every absolute import of a project package in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def modules_of(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_lower_layers(package: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in modules_of(package)
        for line, module in project_imports(path)
        if (top := module.split(".")[0]) in PACKAGES and top != package and top not in ALLOWED[package]
    ]
    assert not wrong, "upward imports:\n" + "\n".join(wrong)


@pytest.mark.parametrize("package", ["core", "db", "services", "onnx_models"])
def test_no_web_framework_below_the_api(package: str) -> None:
    wrong = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in modules_of(package)
        for line, module in project_imports(path)
        if module.split(".")[0] in WEB_FRAMEWORKS
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_modules() -> None:
    """Module-level imports between the project's modules form no cycle."""
    graph: dict[str, set[str]] = defaultdict(set)
    names = {}
    for package in PACKAGES:
        for path in modules_of(package):
            parts = path.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            names[name] = path
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:  # module level only: imports inside functions are deliberate and lazy
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                if target in names and target != name:
                    graph[name].add(target)
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(names):
        if node not in seen:
            visit(node)


def test_the_checks_see_a_violation(tmp_path: Path) -> None:
    """The import scanner finds an upward import when one is there (guards the guard)."""
    module = tmp_path / "bad.py"
    module.write_text("from api.deps import SessionDep\nimport fastapi\n")
    assert [m for _, m in project_imports(module)] == ["api.deps", "fastapi"]
