"""Schema evolution: each schema in the working tree must read data written with every
committed version of itself (Avro BACKWARD compatibility, the Schema Registry default).

History comes from git (``git log`` / ``git show`` at the repo root). A file with no
commit yet is compared with itself. No git, or not a repository, fails the test:
silently skipping would let an incompatible change through CI.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import avro.schema
import pytest
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

pytestmark = pytest.mark.contract

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = REPO_ROOT / "schemas"  # history is this repository's, whatever package is imported
SCHEMA_FILES = sorted(SCHEMAS_DIR.glob("*.avsc"))


def git(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("git") is None:
        pytest.fail("git is not installed: schema compatibility against history cannot be checked")
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)


def require_repository() -> None:
    inside = git("rev-parse", "--is-inside-work-tree")
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        pytest.fail(
            f"{REPO_ROOT} is not a git work tree ({inside.stderr.strip()}): cannot find schema history"
        )


def committed_versions(relative: str) -> list[tuple[str, str]]:
    """(commit, text) of every committed version of a file, newest first."""
    require_repository()
    if git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        return []  # a repository without commits yet
    log = git("log", "--format=%H", "--", relative)
    if log.returncode != 0:
        pytest.fail(f"git log failed for {relative}: {log.stderr.strip()}")
    versions = []
    for commit in log.stdout.split():
        if git("cat-file", "-e", f"{commit}:{relative}").returncode != 0:
            continue  # the commit that deleted the file
        shown = git("show", f"{commit}:{relative}")
        if shown.returncode != 0:
            pytest.fail(f"git show {commit}:{relative} failed: {shown.stderr.strip()}")
        versions.append((commit, shown.stdout))
    return versions


def incompatibilities(reader_text: str, writer_text: str) -> list[str]:
    """Why the reader cannot read the writer's data; empty when it can."""
    result = ReaderWriterCompatibilityChecker().get_compatibility(
        avro.schema.parse(reader_text), avro.schema.parse(writer_text)
    )
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    return [f"{'/'.join(result.locations)}: {message}" for message in result.messages] or ["incompatible"]


def contact_schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / "contact_event.avsc").read_text())
    return loaded


def test_schema_history_is_readable() -> None:
    require_repository()
    assert isinstance(committed_versions("schemas/contact_event.avsc"), list)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_reads_every_committed_version(path: Path) -> None:
    relative = path.relative_to(REPO_ROOT).as_posix()
    current = path.read_text()
    history = committed_versions(relative) or [("working tree", current)]
    problems = {commit[:12]: found for commit, old in history if (found := incompatibilities(current, old))}
    assert problems == {}, f"{relative} cannot read data written with earlier versions: {problems}"


def test_checker_rejects_a_required_field_without_default() -> None:
    old = contact_schema()
    new = copy.deepcopy(old)
    new["fields"].append({"name": "channel_detail", "type": "string", "doc": "added without a default"})
    assert incompatibilities(json.dumps(new), json.dumps(old))


def test_checker_rejects_a_removed_enum_symbol() -> None:
    old = contact_schema()
    new = copy.deepcopy(old)
    type_field = next(f for f in new["fields"] if f["name"] == "type")
    type_field["type"]["symbols"].remove("CALLBACK_REQUESTED")
    assert incompatibilities(json.dumps(new), json.dumps(old))


def test_checker_accepts_an_optional_field_and_a_new_symbol() -> None:
    old = contact_schema()
    new = copy.deepcopy(old)
    new["fields"].append({"name": "channel_detail", "type": ["null", "string"], "default": None, "doc": "x"})
    next(f for f in new["fields"] if f["name"] == "type")["type"]["symbols"].append("PARKED")
    assert incompatibilities(json.dumps(new), json.dumps(old)) == []
