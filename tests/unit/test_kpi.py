"""KPI aggregators and the interval rule: one parametrised table of contact scenarios,
plus replay/idempotency (any order, duplicates) and the service-level variants."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from streams.domain.events import Channel, ContactEvent, ContactEventType, Resolution, SurveyEvent
from streams.domain.intervals import BucketKey, ContactProgress, Delta, step, survey_delta
from streams.domain.kpi import COUNTERS, ServiceLevelVariant, add, initialize, kpi_result, merge

pytestmark = pytest.mark.unit

T = ContactEventType
M = 60_000
BASE = 1_795_500_000_000 - 1_795_500_000_000 % M  # a minute boundary


def ev(
    kind: ContactEventType,
    at_s: float,
    n: int = 0,
    channel: Channel = Channel.VOICE,
    region: str = "RU-MOW",
    **kw: object,
) -> ContactEvent:
    return ContactEvent(
        event_id=f"{kind.value}-{n}-{at_s}",
        contact_id="c-1",
        type=kind,
        channel=channel,
        region=region,
        queue="billing",
        language="ru",
        customer_ref="0" * 32,
        event_time_ms=BASE + int(at_s * 1000),
        **kw,  # type: ignore[arg-type]
    )


def run(events: list[ContactEvent]) -> dict[BucketKey, dict[str, int]]:
    progress: ContactProgress | None = None
    buckets: dict[BucketKey, dict[str, int]] = defaultdict(initialize)
    for event in events:
        progress, deltas = step(progress, event)
        for key, delta in deltas:
            buckets[key] = add(buckets[key], delta)
    return dict(buckets)


def minute(i: int, region: str = "RU-MOW") -> BucketKey:
    return (region, Channel.VOICE, BASE + i * M)


SPE = "RU-SPE"  # the handling region of an overflowed RU-MOW contact


ANSWERED_WITH_HOLD = [
    ev(T.ARRIVED, 0), ev(T.QUEUED, 1), ev(T.ANSWERED, 31), ev(T.HOLD_STARTED, 50), ev(T.HOLD_ENDED, 70),
    ev(T.ENDED, 121, resolution=Resolution.RESOLVED_FIRST_LINE), ev(T.ACW_ENDED, 151),
]  # fmt: skip

CASES = {
    "answered within 40 s, hold, ACW across minutes": (
        ANSWERED_WITH_HOLD,
        {
            minute(0): {"offered": 1, "answered": 1, "answered_within_threshold": 1, "total_wait_ms": 30_000},
            minute(2): {
                "ended": 1,
                "resolved_first_line": 1,
                "handled": 1,
                "talk_ms": 70_000,
                "hold_ms": 20_000,
                "acw_ms": 30_000,
            },
        },
    ),
    "answered late (wait 45 s)": (
        [ev(T.QUEUED, 10), ev(T.ANSWERED, 55), ev(T.ENDED, 100), ev(T.ACW_ENDED, 110)],
        {
            minute(0): {"offered": 1, "answered": 1, "total_wait_ms": 45_000},
            minute(1): {"ended": 1, "handled": 1, "talk_ms": 45_000, "acw_ms": 10_000},
        },
    ),
    "short abandon (3 s) is counted apart": (
        [ev(T.QUEUED, 58), ev(T.ABANDONED, 61)],
        {
            minute(0): {"offered": 1, "short_offered": 1},
            minute(1): {"abandoned": 1, "short_abandoned": 1, "abandoned_within_threshold": 1},
        },
    ),
    "abandon after 90 s": (
        [ev(T.QUEUED, 0), ev(T.ABANDONED, 90)],
        {minute(0): {"offered": 1}, minute(1): {"abandoned": 1}},
    ),
    # used to count in `ended` (and lower FLR): an abandoned contact was never handled
    "ENDED after ABANDONED counts in neither ended nor FLR": (
        [ev(T.QUEUED, 0), ev(T.ABANDONED, 90), ev(T.ENDED, 95, resolution=Resolution.UNRESOLVED)],
        {minute(0): {"offered": 1}, minute(1): {"abandoned": 1}},
    ),
    # used to land in the home region when ARRIVED came first in the same partition
    "overflowed contact counts in the region whose queue it entered": (
        [
            ev(T.ARRIVED, 0, home_region=None),
            ev(T.QUEUED, 1, region=SPE, home_region="RU-MOW"),
            ev(T.ANSWERED, 11, region=SPE, home_region="RU-MOW"),
            ev(T.ENDED, 65, region=SPE, home_region="RU-MOW", resolution=Resolution.RESOLVED_FIRST_LINE),
            ev(T.ACW_ENDED, 80, region=SPE, home_region="RU-MOW"),
        ],
        {
            minute(0, SPE): {
                "offered": 1,
                "answered": 1,
                "answered_within_threshold": 1,
                "total_wait_ms": 10_000,
            },
            minute(1, SPE): {
                "ended": 1,
                "resolved_first_line": 1,
                "handled": 1,
                "talk_ms": 54_000,
                "acw_ms": 15_000,
            },
        },
    ),  # fmt: skip
    # used to count 2, in the minutes of the transfers (transfer rate above 100 %)
    "transferred twice counts once, in the handle bucket": (
        [
            ev(T.QUEUED, 0),
            ev(T.ANSWERED, 5),
            ev(T.TRANSFERRED, 30),
            ev(T.TRANSFERRED, 70, n=1),
            ev(T.ENDED, 100, resolution=Resolution.RESOLVED_FIRST_LINE),
            ev(T.ACW_ENDED, 130),
        ],
        {
            minute(0): {"offered": 1, "answered": 1, "answered_within_threshold": 1, "total_wait_ms": 5_000},
            minute(1): {"ended": 1, "resolved_first_line": 1},
            minute(2): {"handled": 1, "talk_ms": 95_000, "acw_ms": 30_000, "transferred": 1},
        },
    ),  # fmt: skip
    "transferred but never handled counts no transfer": (
        [ev(T.QUEUED, 0), ev(T.ANSWERED, 5), ev(T.TRANSFERRED, 30)],
        {minute(0): {"offered": 1, "answered": 1, "answered_within_threshold": 1, "total_wait_ms": 5_000}},
    ),
    # used to lose the contact: handled 0, its talk and ACW gone
    "a call that ends on hold: ENDED closes the hold": (
        [
            ev(T.QUEUED, 0),
            ev(T.ANSWERED, 10),
            ev(T.HOLD_STARTED, 20),
            ev(T.HOLD_ENDED, 30),
            ev(T.HOLD_STARTED, 40, n=1),
            ev(T.ENDED, 55, resolution=Resolution.UNRESOLVED),
            ev(T.ACW_ENDED, 65),
        ],
        {
            minute(0): {
                "offered": 1,
                "answered": 1,
                "answered_within_threshold": 1,
                "total_wait_ms": 10_000,
                "ended": 1,
            },
            minute(1): {"handled": 1, "talk_ms": 20_000, "hold_ms": 25_000, "acw_ms": 10_000},
        },
    ),  # fmt: skip
    "answered without a queue: handled and ended, not offered nor answered": (
        [
            ev(T.ARRIVED, 0),
            ev(T.OFFERED, 2, region=SPE),
            ev(T.ANSWERED, 2, region=SPE),
            ev(T.ENDED, 62, region=SPE, resolution=Resolution.RESOLVED_FIRST_LINE),
            ev(T.ACW_ENDED, 72, region=SPE),
        ],
        {
            minute(1, SPE): {
                "ended": 1,
                "resolved_first_line": 1,
                "handled": 1,
                "talk_ms": 60_000,
                "acw_ms": 10_000,
            }
        },
    ),  # fmt: skip
    "transfer and escalation": (
        [
            ev(T.QUEUED, 0),
            ev(T.ANSWERED, 5),
            ev(T.TRANSFERRED, 30),
            ev(T.ESCALATED, 31),
            ev(T.ENDED, 40, resolution=Resolution.ESCALATED_SECOND_LINE),
            ev(T.ACW_ENDED, 45),
        ],
        {
            minute(0): {
                "offered": 1,
                "answered": 1,
                "answered_within_threshold": 1,
                "total_wait_ms": 5_000,
                "transferred": 1,
                "ended": 1,
                "handled": 1,
                "talk_ms": 35_000,
                "acw_ms": 5_000,
            }
        },
    ),  # fmt: skip
    "arrived only (still in IVR)": ([ev(T.ARRIVED, 0)], {}),
    "chat answered within 60 s": (
        [ev(T.QUEUED, 0, channel=Channel.CHAT), ev(T.ANSWERED, 55, channel=Channel.CHAT)],
        {
            ("RU-MOW", Channel.CHAT, BASE): {
                "offered": 1,
                "answered": 1,
                "answered_within_threshold": 1,
                "total_wait_ms": 55_000,
            }
        },
    ),  # fmt: skip
}


@pytest.mark.parametrize(("events", "expected"), CASES.values(), ids=CASES.keys())
def test_interval_rule(events: list[ContactEvent], expected: dict[BucketKey, dict[str, int]]) -> None:
    got = run(events)
    assert {k: {n: v for n, v in b.items() if v} for k, b in got.items()} == expected


@pytest.mark.parametrize("seed", range(50))
@pytest.mark.parametrize("case", CASES.keys())
def test_any_order_with_duplicates_gives_the_same_buckets(case: str, seed: int) -> None:
    events = CASES[case][0]
    rng = random.Random(seed)
    shuffled = events + rng.sample(events, min(3, len(events)))  # duplicates
    rng.shuffle(shuffled)
    assert run(shuffled) == run(events)


def test_progress_is_complete_after_handling_and_replays_emit_nothing() -> None:
    progress: ContactProgress | None = None
    for event in ANSWERED_WITH_HOLD:
        progress, _ = step(progress, event)
    assert progress is not None and progress.complete
    for event in ANSWERED_WITH_HOLD:
        progress, deltas = step(progress, event)
        assert deltas == []


def test_surveys() -> None:
    survey = SurveyEvent("s-1", "c-1", "RU-MOW", Channel.VOICE, 5, BASE + 61_000)
    key, delta = survey_delta(survey)
    assert key == minute(1) and delta == {"surveys": 1, "survey_score_sum": 5, "top_box": 1}


def test_merge_is_addition_and_associative() -> None:
    a = add(initialize(), {"offered": 2, "answered": 1})
    b = add(initialize(), {"offered": 3, "abandoned": 1})
    c = add(initialize(), {"surveys": 1, "top_box": 1, "survey_score_sum": 5})
    assert merge([a, b, c]) == merge([merge([a, b]), c]) == merge([c, b, a])
    assert merge([a, b])["offered"] == 5
    with pytest.raises(KeyError, match="unknown KPI counters"):
        add(initialize(), {"offerd": 1})


def bucket(**counters: int) -> dict[str, int]:
    return add(initialize(), counters)


SL = ServiceLevelVariant
RESULT_CASES = {
    "nothing answered": (bucket(offered=3), SL.EXCLUDE_SHORT, {"service_level": None, "asa_seconds": None,
                                                              "aht_seconds": None, "abandonment_rate": 0.0}),
    "only short abandons": (
        bucket(offered=2, short_offered=2, abandoned=2, short_abandoned=2, abandoned_within_threshold=2),
        SL.EXCLUDE_SHORT, {"service_level": None, "abandonment_rate": None}),
    "default SL excludes short abandons": (
        bucket(offered=10, short_offered=1, answered=8, answered_within_threshold=6, abandoned=2,
               short_abandoned=1, abandoned_within_threshold=1, total_wait_ms=160_000),
        SL.EXCLUDE_SHORT, {"service_level": 6 / 9, "asa_seconds": 20.0, "abandonment_rate": 1 / 9}),
    "abandons ignored": (
        bucket(answered=8, answered_within_threshold=6, abandoned=2, short_abandoned=1),
        SL.IGNORE_ABANDONS, {"service_level": 6 / 8}),
    "abandons within T count as met": (
        bucket(answered=8, answered_within_threshold=6, abandoned=2, abandoned_within_threshold=1),
        SL.ABANDONS_POSITIVE, {"service_level": 7 / 10}),
    "abandons count as missed": (
        bucket(answered=8, answered_within_threshold=6, abandoned=2, short_abandoned=1),
        SL.ABANDONS_NEGATIVE, {"service_level": 6 / 10}),
    "AHT split": (
        bucket(handled=2, talk_ms=200_000, hold_ms=40_000, acw_ms=40_000, transferred=1),
        SL.EXCLUDE_SHORT, {"aht_seconds": 140.0, "talk_seconds": 100.0, "hold_seconds": 20.0,
                           "acw_seconds": 20.0, "transfer_rate": 0.5}),
    "FLR and CSAT": (
        bucket(ended=100, resolved_first_line=99, surveys=20, top_box=19, survey_score_sum=99),
        SL.EXCLUDE_SHORT, {"first_line_resolution": 0.99, "csat_top_box": 0.95, "csat_mean": 4.95}),
}  # fmt: skip


@pytest.mark.parametrize(("counters", "variant", "expected"), RESULT_CASES.values(), ids=RESULT_CASES.keys())
def test_kpi_result(
    counters: dict[str, int], variant: ServiceLevelVariant, expected: dict[str, object]
) -> None:
    result = kpi_result(counters, variant)
    for name, value in expected.items():
        got = getattr(result, name)
        assert got == (pytest.approx(value, abs=1e-12) if isinstance(value, float) else value), name


def test_every_counter_is_summable_and_named_once() -> None:
    assert len(set(COUNTERS)) == len(COUNTERS)
    deltas: list[Delta] = []
    for i, event in enumerate(itertools.chain(ANSWERED_WITH_HOLD)):
        _, d = step(None, event)
        deltas += d
        assert i >= 0
    assert all(set(delta) <= set(COUNTERS) for _, delta in deltas)
