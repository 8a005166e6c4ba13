"""The dependencies between the packages of ``icoapi`` point one way: domains use
``core``, ``core`` uses no domain, and no packages import each other in a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import icoapi

PACKAGE_ROOT = Path(icoapi.__file__).parent
# The application factory and the entry point wire every domain together.
WIRING = {"api", "__main__", "__init__"}


def package_of(module: str) -> str | None:
    """``icoapi.system.service`` -> ``system``; ``None`` outside ``icoapi``."""
    parts = module.split(".")
    return parts[1] if parts[0] == "icoapi" and len(parts) > 1 else None


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at module level, in functions and under
    ``TYPE_CHECKING`` alike (a cycle through a type hint is still a cycle)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def package_graph() -> dict[str, set[str]]:
    """Which package of ``icoapi`` imports which other ones."""
    graph: dict[str, set[str]] = {}
    for path in PACKAGE_ROOT.rglob("*.py"):
        relative = path.relative_to(PACKAGE_ROOT)
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        if source in WIRING:
            continue
        targets = graph.setdefault(source, set())
        for module in imported_modules(path):
            target = package_of(module)
            # Only packages: api.py and __main__.py wire the domains, nobody imports them.
            if target is not None and target != source and (PACKAGE_ROOT / target).is_dir():
                targets.add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The elementary cycles found by a depth-first search (each reported once
    per entry point, enough to name the packages involved)."""
    found: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph.get(node, ())):
            if target == path[0]:
                found.append([*path, target])
            elif target not in path and target > path[0]:
                visit(target, [*path, target])

    for start in sorted(graph):
        visit(start, [start])
    return found


def test_the_graph_sees_known_imports() -> None:
    # Guards the test itself: an empty graph would pass every check below.
    graph = package_graph()
    assert "core" in graph["access"]
    assert "system" in graph["measurement"]


def test_core_imports_no_domain() -> None:
    assert package_graph()["core"] == set()


def test_no_package_cycle() -> None:
    assert cycles(package_graph()) == []


def test_cycle_search_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def module_name(path: Path) -> str:
    """``.../icoapi/system/service.py`` -> ``icoapi.system.service`` (a package's
    ``__init__.py`` is the package itself)."""
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve(name: str, known: set[str]) -> str | None:
    """The module of ``icoapi`` that an imported name lives in: the longest known
    prefix (``icoapi.core.events.CloudChanged`` -> ``icoapi.core.events``)."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def module_imports(path: Path, module: str) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against ``module``."""
    names = imported_modules(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = module.split(".")
            base = base[: len(base) - node.level + (1 if is_package else 0)]
            prefix = ".".join([*base, node.module] if node.module else base)
            names.add(prefix)
            names.update(f"{prefix}.{alias.name}" for alias in node.names)
    return names


def module_graph() -> dict[str, set[str]]:
    """Which module of ``icoapi`` imports which other ones (file level)."""
    paths = {module_name(path): path for path in PACKAGE_ROOT.rglob("*.py")}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        targets = {resolve(name, known) for name in module_imports(path, module)}
        graph[module] = {target for target in targets if target and target != module}
    return graph


def imports_of(package: str) -> set[str]:
    """Every module imported anywhere in ``icoapi.<package>``."""
    found: set[str] = set()
    for path in (PACKAGE_ROOT / package).rglob("*.py"):
        found |= module_imports(path, module_name(path))
    return found


def test_the_module_graph_sees_known_imports() -> None:
    graph = module_graph()
    assert "icoapi.core.settings" in graph["icoapi.api"]
    assert "icoapi.core.events" in graph["icoapi.measurement.runner"]


def test_no_module_cycle() -> None:
    assert cycles(module_graph()) == []


def test_only_hdf5_imports_pytables() -> None:
    importers = {
        module_name(path)
        for path in PACKAGE_ROOT.rglob("*.py")
        if any(
            name == "tables" or name.startswith("tables.")
            for name in module_imports(path, module_name(path))
        )
    }
    assert importers, "the writer imports PyTables: the check must see it"
    assert {module for module in importers if not module.startswith("icoapi.hdf5")} == set()


def test_system_does_not_import_the_simulator() -> None:
    assert not {name for name in imports_of("system") if name.startswith("icoapi.simulator")}


def test_dataspace_does_not_import_state() -> None:
    assert not {name for name in imports_of("dataspace") if name.startswith("icoapi.state")}
