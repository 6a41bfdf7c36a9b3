"""The layers of docs/architecture.md hold: imports point down, and no module imports another in a cycle.

Every module of `clearbg_app` is parsed (never imported), imports inside functions included.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "clearbg_app"
FRAMEWORKS = ("reflex", "starlette")
LOWER = ("services", "inference", "storage", "models")
# What the lower layers never import: the layers above the line in docs/architecture.md, and the app itself.
UPPER = ("api", "state", "pages", "components", "jobs", "http", "clearbg_app")

# Cycles that exist today and are being removed; any other cycle fails.
KNOWN_CYCLES: list[set[str]] = []  # none left: keep it so


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def imported(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every dotted name the code `source` of `module` imports, anywhere in it: `import a.b` gives
    `a.b`, `from a import b, c` gives `a.b` and `a.c` (relative imports resolved)."""
    names = []
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, node.module] if node.module else base)
            names += [origin if alias.name == "*" else f"{origin}.{alias.name}" for alias in node.names]
    return sorted(set(names))


@cache
def imported_by(module: str) -> tuple[str, ...]:
    path = modules()[module]
    return tuple(imported(path.read_text(), module, is_package=path.name == "__init__.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _layer(name: str) -> str | None:
    """`services` for `clearbg_app.services.images.X`; None outside the package."""
    parts = name.split(".")
    return parts[1] if parts[0] == "clearbg_app" and len(parts) > 1 else None


def violations(module: str, names: list[str] | tuple[str, ...]) -> list[str]:
    """The imports among `names` that `module` may not make, as sentences."""
    layer, found = _layer(module), []
    for name in names:
        target = _layer(name)
        if layer == "state" and target in ("api", "jobs"):
            found.append(f"{module} (state) imports {name}")
        elif layer in LOWER and (target in UPPER or any(_within(name, framework) for framework in FRAMEWORKS)):
            found.append(f"{module} ({layer}) imports {name}")
        elif layer == "inference" and target == "services":
            found.append(f"{module} (inference) imports {name}")
    return found


def module_of(name: str, known: set[str] | dict[str, Path]) -> str | None:
    """The package module an imported name lives in (`a.b.func` -> `a.b`); None outside the package."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in known:
            return ".".join(parts[:end])
    return None


def import_graph() -> dict[str, set[str]]:
    known = modules()
    graph = {}
    for module in known:
        targets = {module_of(name, known) for name in imported_by(module)}
        graph[module] = {target for target in targets if target is not None and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): the cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = {stack.pop()}
            while node not in component:
                component.add(stack.pop())
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_is_parsed():
    assert {"clearbg_app.services.images", "clearbg_app.state.base", "clearbg_app.api", "clearbg_app.inference.pipeline"} <= modules().keys()
    assert "clearbg_app.services.consents" in import_graph()["clearbg_app.services.images"]


@pytest.mark.parametrize("module", sorted(modules()))
def test_imports_point_down(module):
    assert violations(module, imported_by(module)) == []


def test_no_module_imports_another_in_a_cycle():
    assert [cycle for cycle in cycles(import_graph()) if cycle not in KNOWN_CYCLES] == []


# The checker itself, on made-up code and graphs ------------------------------------------------------------


def test_forbidden_imports_are_found_inside_functions_and_relative_ones_resolved():
    source = (
        "from clearbg_app.models import User\nfrom . import audit\n\n"
        "def later():\n    import reflex as rx\n    from clearbg_app.state.base import SessionState\n    from ..api import v1\n"
    )
    names = imported(source, "clearbg_app.services.probe")
    assert names == [
        "clearbg_app.api.v1", "clearbg_app.models.User", "clearbg_app.services.audit", "clearbg_app.state.base.SessionState", "reflex",
    ]  # fmt: skip
    assert violations("clearbg_app.services.probe", names) == [
        "clearbg_app.services.probe (services) imports clearbg_app.api.v1",
        "clearbg_app.services.probe (services) imports clearbg_app.state.base.SessionState",
        "clearbg_app.services.probe (services) imports reflex",
    ]
    assert violations("clearbg_app.state.probe", ["clearbg_app.jobs.build_scheduler", "clearbg_app.services.jobs"]) == [
        "clearbg_app.state.probe (state) imports clearbg_app.jobs.build_scheduler"
    ]
    assert violations("clearbg_app.inference.probe", ["clearbg_app.services.errors.ServiceError", "numpy"]) == [
        "clearbg_app.inference.probe (inference) imports clearbg_app.services.errors.ServiceError"
    ]
    assert violations("clearbg_app.models.probe", ["starlette.requests.Request", "clearbg_app.clearbg_app.app"]) == [
        "clearbg_app.models.probe (models) imports starlette.requests.Request",
        "clearbg_app.models.probe (models) imports clearbg_app.clearbg_app.app",
    ]


def test_a_cycle_is_found_and_a_chain_is_not():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert module_of("clearbg_app.services.images.store_upload", {"clearbg_app.services", "clearbg_app.services.images"}) == (
        "clearbg_app.services.images"
    )


def test_no_test_module_imports_from_another_test_module():
    """Shared fixtures live in conftest.py files, shared helpers in tests/factories.py (and tests/browser/factories.py)."""
    tests_dir = Path(__file__).resolve().parent
    found = []
    for path in sorted(tests_dir.rglob("*.py")):
        module = ".".join(path.relative_to(tests_dir.parent).with_suffix("").parts)
        for name in imported(path.read_text(), module, is_package=path.name == "__init__.py"):
            if name.startswith("tests.") and any(part.startswith("test_") for part in name.split(".")[1:]):
                found.append(f"{module} imports {name}")
    assert found == []
