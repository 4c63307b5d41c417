"""The layering of STYLE.md and README's architecture table, enforced on the source.

Each folder of ``streams/`` is one role, and a role may import only the roles below it
(``ALLOWED``; every pair not listed is forbidden, so a new import across roles is a
decision made here, not an accident). Every import counts: module level, inside a
function, and under ``TYPE_CHECKING``. No module imports itself back through others
(no cycles), the domain is standard-library only, and only the entry points read settings.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "streams"

# role -> the roles it may import (besides itself). Keys are the folders of streams/ and the
# top-level modules; the test below fails if one is missing or no longer exists.
ALLOWED: dict[str, set[str]] = {
    "domain": set(),  # the contact-centre model: standard library only
    "wire": {"domain"},  # topic names and contracts, Avro records, codec, registry, client config
    "engine": {"domain", "wire"},  # the stream engine: consumer loop, checkpoints, dead letters
    "observability": {"domain", "wire"},  # metric catalogue, dashboards
    "jobs": {"domain", "wire", "engine", "observability"},  # KPI worker, router: the application
    "history": {"domain", "wire", "engine", "observability"},  # ClickHouse/chdb history
    "simulator": {"domain", "wire", "engine"},  # the digital twin
    "planning": {"domain", "wire", "history", "simulator"},  # forecast, requirements, schedule
    "services": {"domain", "wire"},  # local development services (Kafka, ClickHouse, ...)
    "settings": {"wire"},  # configuration from the environment
    "cli": {"domain", "wire", "engine", "observability", "jobs", "history", "simulator", "planning",
            "services", "settings"},  # every entry point
    "__init__": set(),
}  # fmt: skip
SETTINGS_READERS = {"cli", "settings"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is; for ``from a import b``
    both ``a`` and ``a.b`` (b may be a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the same package
                names.add("streams.<relative>")
            elif node.module:
                names.add(node.module)
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def role_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    return {m: {n for n in imported_modules(p) if n in modules and n != m} for m, p in modules.items()}


def forbidden_imports(root: Path, allowed: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in import_graph(root).items():
        role = role_of(module)
        for target in sorted(targets):
            other = role_of(target)
            if other != role and other not in allowed.get(role, set()):
                bad.append(f"{module} ({role}) imports {target} ({other})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_role_exists_and_every_folder_has_a_role() -> None:
    present = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    present |= {p.stem for p in PACKAGE.glob("*.py")}
    assert present == set(ALLOWED)


def test_roles_import_only_the_roles_below_them() -> None:
    assert forbidden_imports(PACKAGE, ALLOWED) == []


def test_no_module_imports_itself_back() -> None:
    assert cycles(import_graph(PACKAGE)) == []


@pytest.mark.parametrize("path", sorted((PACKAGE / "domain").rglob("*.py")), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_domain(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        allowed = top in sys.stdlib_module_names or name.startswith("streams.domain") or name == "__future__"
        assert allowed, f"{path.relative_to(PACKAGE)} imports {name}: domain must stay standard-library only"


def test_only_entry_points_read_settings() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if role_of(module_name(path, PACKAGE)) not in SETTINGS_READERS
        and "streams.settings" in imported_modules(path)
    ]
    assert offenders == []


def test_engine_has_its_modules() -> None:
    assert {p.name for p in (PACKAGE / "engine").glob("*.py")} >= {
        "checkpoints.py", "read_to_end.py", "dead_letters.py", "loop.py", "transactions.py",
    }  # fmt: skip


def test_no_stream_engine_baseline_in_the_package() -> None:
    """faust-streaming, aiokafka and quixstreams are the `.[bench]` extra: only bench/ imports them."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if any(n.split(".")[0] in ("faust", "aiokafka", "quixstreams") for n in imported_modules(path))
        or "faust" in path.name
    ]
    assert offenders == []


def test_the_rules_find_a_forbidden_import_and_a_cycle(tmp_path: Path) -> None:
    root = tmp_path / "streams"
    for folder in ("domain", "engine", "jobs"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "engine" / "loop.py").write_text("from streams.jobs.worker import KpiWorker\n")
    (root / "jobs" / "worker.py").write_text("def f():\n    from streams.jobs import state\n")
    (root / "jobs" / "state.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from streams.jobs.worker import f\n")  # fmt: skip
    (root / "domain" / "kpi.py").write_text("import faust\n")
    assert forbidden_imports(root, {"domain": set(), "engine": {"domain"}, "jobs": {"engine"}}) == [
        "streams.engine.loop (engine) imports streams.jobs.worker (jobs)"
    ]
    assert cycles(import_graph(root)) == [["streams.jobs.state", "streams.jobs.worker"]]
    assert "faust" in imported_modules(root / "domain" / "kpi.py")
    assert "faust" not in sys.stdlib_module_names
