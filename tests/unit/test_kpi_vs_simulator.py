"""Two independent implementations of the interval rule agree: the KPI aggregators of
streams/domain (fed with the emitted events, in stream order) and the simulator's ground
truth (computed from its own bookkeeping), for every region x channel x minute."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from support.truth import TRUTH_TO_SNAPSHOT

from streams.domain.events import ContactEvent, SurveyEvent
from streams.domain.intervals import ContactProgress, step, survey_delta
from streams.domain.kpi import add, initialize
from streams.simulator import SimConfig, Simulation
from streams.simulator.output import materialise
from streams.simulator.run import DEFAULT_START
from streams.simulator.truth import MinuteKpi

pytestmark = pytest.mark.unit

# simulator truth name -> domain counter (abandoned is handled apart)
FIELDS = {t: c for t, c in TRUTH_TO_SNAPSHOT.items() if t != "abandoned"}


@pytest.mark.parametrize("edge_shapes", [False, True], ids=["plain", "edge shapes"])
@pytest.mark.parametrize("seed", [1, 2])
def test_domain_buckets_equal_simulator_truth(seed: int, edge_shapes: bool) -> None:
    """``edge shapes``: overflow, second transfers, calls ended on hold, ENDED after an
    abandon and answers without a queue switched on (DESIGN.md section 3's rules)."""
    truth: list[MinuteKpi] = []
    config = SimConfig(regions=("RU-MOW", "RU-PRI", "RU-KAM", "RU-KGD"))
    sim = Simulation(
        config.with_edge_shapes() if edge_shapes else config,
        seed=seed,
        start=DEFAULT_START + timedelta(hours=5),
        duration_s=3 * 3600,
        on_truth=truth.extend,
    )
    progress: dict[str, ContactProgress] = {}
    buckets: dict[tuple[str, str, int], dict[str, int]] = defaultdict(initialize)
    events = 0
    for batch in sim.batches():
        for item in batch:
            event = materialise(item, sim.prefix).event
            deltas = []
            if isinstance(event, ContactEvent):
                progress[event.contact_id], deltas = step(progress.get(event.contact_id), event)
                events += 1
            elif isinstance(event, SurveyEvent):
                deltas = [survey_delta(event)]
            for (region, channel, minute), delta in deltas:
                key = (region, channel.value, minute)
                buckets[key] = add(buckets[key], delta)
    assert events > 5_000 and len(truth) > 500

    expected = {
        (m.region, m.channel, m.minute_ms): {
            **{d: getattr(m, t) for t, d in FIELDS.items()},
            "abandoned": m.abandoned,
        }
        for m in truth
    }
    got = {
        key: {**{d: b[d] for d in FIELDS.values()}, "abandoned": b["abandoned"] - b["short_abandoned"]}
        for key, b in buckets.items()
        if any(b.values())
    }
    missing = set(expected) - set(got)
    assert not {k for k in missing if any(expected[k].values())}, "buckets in truth but not in the domain"
    keys = set(got) | set(expected)
    mismatches = {
        k: (got.get(k), expected.get(k))
        for k in keys
        if any(
            got.get(k, {}).get(f, 0) != expected.get(k, {}).get(f, 0) for f in [*FIELDS.values(), "abandoned"]
        )
    }
    assert not mismatches, list(mismatches.items())[:3]
