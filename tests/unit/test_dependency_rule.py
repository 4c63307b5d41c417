"""The layering of STYLE.md, enforced on the source: domain is pure, codec sits on
domain, and only the composition roots read settings."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "streams"
ALLOWED_IN_CODEC = {"streams.domain", "streams.contracts", "streams.schema_registry", "streams.records"}
SETTINGS_READERS = {
    "cli.py", "cli_common.py", "cli_history.py", "cli_schemas.py", "cli_plan.py", "cli_plan_commands.py",
    "cli_plan_evaluate.py",
    "cli_plan_publish.py",
    "settings.py",
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
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
    return names


def modules_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_domain_has_modules_to_check() -> None:
    assert len(modules_under(PACKAGE / "domain")) >= 4


@pytest.mark.parametrize("path", modules_under(PACKAGE / "domain"), ids=lambda p: p.name)
def test_domain_imports_only_stdlib_and_domain(path: Path) -> None:
    for name in imported_modules(path):
        top = name.split(".")[0]
        allowed = top in sys.stdlib_module_names or name.startswith("streams.domain") or name == "__future__"
        assert allowed, f"{path.relative_to(PACKAGE)} imports {name}: domain must stay standard-library only"


def test_codec_imports_only_domain_and_contracts() -> None:
    project = {n for n in imported_modules(PACKAGE / "codec.py") if n.startswith("streams")}
    assert project <= ALLOWED_IN_CODEC | {n for n in project if n.startswith("streams.domain.")}, project


def test_only_composition_roots_read_settings() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in modules_under(PACKAGE)
        if str(path.relative_to(PACKAGE)) not in SETTINGS_READERS
        and "streams.settings" in imported_modules(path)
    ]
    assert offenders == []


ENGINE_MAY_NOT_IMPORT = (
    "streams.jobs", "streams.history", "streams.simulator", "streams.planning", "streams.services",
    "streams.cli", "streams.settings", "streams.live", "streams.demo",
)  # fmt: skip


@pytest.mark.parametrize("path", modules_under(PACKAGE / "engine"), ids=lambda p: p.name)
def test_engine_knows_no_job(path: Path) -> None:
    """The engine is below the jobs it runs: it never imports the application, history,
    simulator, planning, local services or entry points (issue 16)."""
    bad = [n for n in imported_modules(path) if n.startswith(ENGINE_MAY_NOT_IMPORT)]
    assert bad == [], f"{path.relative_to(PACKAGE)} imports {bad}"


def test_engine_has_modules_to_check() -> None:
    assert {p.name for p in modules_under(PACKAGE / "engine")} >= {
        "checkpoints.py", "read_to_end.py", "dead_letters.py", "loop.py", "transactions.py",
    }  # fmt: skip


def test_no_stream_engine_baseline_in_the_package() -> None:
    """faust-streaming, aiokafka and quixstreams are the `.[bench]` extra: only bench/ imports them."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in modules_under(PACKAGE)
        if any(n.split(".")[0] in ("faust", "aiokafka", "quixstreams") for n in imported_modules(path))
        or "faust" in path.name
    ]
    assert offenders == []


def test_rule_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nfrom streams.codec import Codec\n")
    names = imported_modules(bad)
    assert "faust" in names and "streams.codec" in names
    assert "faust" not in sys.stdlib_module_names
