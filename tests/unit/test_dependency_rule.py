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
    "cli.py", "cli_common.py", "cli_history.py", "cli_plan.py", "cli_schemas.py",
    "app/factory.py", "settings.py",
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


def test_only_app_imports_faust() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in modules_under(PACKAGE)
        if not str(path.relative_to(PACKAGE)).startswith("app/")
        and any(n.split(".")[0] == "faust" for n in imported_modules(path))
    ]
    assert offenders == []


def test_rule_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import faust\nfrom streams.codec import Codec\n")
    names = imported_modules(bad)
    assert "faust" in names and "streams.codec" in names
    assert "faust" not in sys.stdlib_module_names
