from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streams.observability.metrics import ALLOWED_LABELS, CATALOGUE, create, markdown, spec

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_docs_are_generated_from_the_catalogue() -> None:
    assert DOC.read_text() == markdown(), "run: python -m streams.observability.metrics > docs/metrics.md"


@pytest.mark.parametrize("item", CATALOGUE, ids=lambda m: m.name)
def test_naming_rules(item: object) -> None:
    name, kind, unit, labels = item.name, item.kind, item.unit, item.labels  # type: ignore[attr-defined]
    assert name.startswith("ccpulse_")
    assert (kind == "counter") == name.endswith("_total")
    assert set(labels) <= ALLOWED_LABELS, "no ids in labels"
    if unit == "seconds":
        assert name.endswith(("_seconds", "_seconds_total"))
    if unit == "ratio":
        assert name.endswith("_ratio")


def test_names_are_unique() -> None:
    assert len({m.name for m in CATALOGUE}) == len(CATALOGUE)


def test_created_metrics_land_on_the_injected_registry() -> None:
    registry = CollectorRegistry()
    metrics = create(registry, ("ccpulse_history_write_failures_total", "ccpulse_history_batch_rows"))
    metrics["ccpulse_history_write_failures_total"].inc(2)
    metrics["ccpulse_history_batch_rows"].observe(10_000)
    assert registry.get_sample_value("ccpulse_history_write_failures_total") == 2
    assert registry.get_sample_value("ccpulse_history_batch_rows_bucket", {"le": "10000.0"}) == 1
    assert CollectorRegistry().get_sample_value("ccpulse_history_write_failures_total") is None


def test_collector_gauges_are_not_created_and_unknown_names_fail() -> None:
    with pytest.raises(ValueError, match="collector"):
        create(CollectorRegistry(), ("ccpulse_service_level_ratio",))
    with pytest.raises(KeyError, match="not in the metric catalogue"):
        spec("ccpulse_nope")
