"""Topic names have one home (streams/wire/topics.py), and it matches the contracts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from streams.wire import topics
from streams.wire.topic_contracts import load_topic_contracts

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "streams"


def test_every_named_topic_has_a_contract_and_every_contract_a_name() -> None:
    contracts = set(load_topic_contracts())
    assert set(topics.ALL_TOPICS) == contracts
    assert len(topics.ALL_TOPICS) == len(set(topics.ALL_TOPICS))


def test_no_topic_name_is_spelled_out_elsewhere_in_the_package() -> None:
    literal = re.compile(r"""["'](cc\.[a-z][a-z.-]+)["']""")
    offenders = [
        f"{path.relative_to(PACKAGE)}: {match}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "wire" / "topics.py"
        for match in literal.findall(path.read_text())
        if match in topics.ALL_TOPICS
    ]
    assert offenders == []
