"""Edge shapes of the digital twin, by hand (tests/unit/test_simulator_shapes.py has them at
their rates): the ground truth of scripted contacts against the hand computation of DESIGN
section 3 (R1-R5), the edge-shape preset and its validation, the CLI option, sharded runs, and
the partitioner the simulator's sinks share with librdkafka."""

from __future__ import annotations

import zlib
from dataclasses import replace
from typing import Any

import pytest

from streams.cli.simulate import parse_args
from streams.domain.events import Channel, ContactEventType, Resolution, Segment
from streams.domain.regions import region_codes
from streams.simulator import SimConfig
from streams.simulator.config import EDGE_SHAPES
from streams.simulator.model import CONTACT, SURVEY, Contact, RawItem
from streams.simulator.run import DEFAULT_START, run
from streams.simulator.sinks import partition_of
from streams.simulator.truth import MINUTE_MS, GroundTruth

pytestmark = pytest.mark.unit
T = ContactEventType
TARGET_MS = {c: p.answer_target_s * 1000 for c, p in SimConfig().channels.items()}

T0 = int(DEFAULT_START.timestamp() * 1000)
AGENT = ("a-1", None)


def contact(cid: str, home: str, region: str, channel: Channel = Channel.VOICE) -> Contact:
    c = Contact(cid, channel, None, "ru", channel.value.lower(), home, "cust", Segment.STANDARD, 0, "x", T0)
    c.region, c.target_ms = region, TARGET_MS[channel]
    return c


def ended(resolution: Resolution, agent: str | None = "a-1") -> tuple[str | None, Resolution]:
    return (agent, resolution)


RFL, UNRESOLVED = Resolution.RESOLVED_FIRST_LINE, Resolution.UNRESOLVED
# (contact, [(seconds after T0, event type or "survey", b)], {(minute, region): {column: value}})
CASES = {
    "overflow: every fact in the handling region (R1)": (
        contact("c1", "RU-KAM", "RU-NVS"),
        [(0, T.ARRIVED, None), (0, T.QUEUED, None), (30, T.OFFERED, AGENT), (30, T.ANSWERED, AGENT),
         (100, T.ENDED, ended(RFL)), (130, T.ACW_ENDED, AGENT)],
        {(0, "RU-NVS"): {"offered": 1, "answered": 1, "answered_within_target": 1,
                         "wait_ms_answered": 30_000},
         (1, "RU-NVS"): {"ended": 1, "resolved_first_line": 1},
         (2, "RU-NVS"): {"handled": 1, "talk_ms": 70_000, "acw_ms": 30_000}},
    ),
    "two transfers: one, in the ACW_ENDED minute (R2)": (
        contact("c2", "RU-MOW", "RU-MOW"),
        [(0, T.ARRIVED, None), (0, T.QUEUED, None), (5, T.OFFERED, AGENT), (5, T.ANSWERED, AGENT),
         (50, T.TRANSFERRED, AGENT), (70, T.TRANSFERRED, AGENT), (150, T.ENDED, ended(RFL)),
         (185, T.ACW_ENDED, AGENT)],
        {(0, "RU-MOW"): {"offered": 1, "answered": 1, "answered_within_target": 1, "wait_ms_answered": 5_000},
         (2, "RU-MOW"): {"ended": 1, "resolved_first_line": 1},
         (3, "RU-MOW"): {"handled": 1, "talk_ms": 145_000, "acw_ms": 35_000, "transferred": 1}},
    ),
    "ENDED on hold: the hold lasts until ENDED (R3)": (
        contact("c3", "RU-MOW", "RU-MOW"),
        [(0, T.ARRIVED, None), (0, T.QUEUED, None), (50, T.OFFERED, AGENT), (50, T.ANSWERED, AGENT),
         (60, T.HOLD_STARTED, AGENT), (70, T.HOLD_ENDED, AGENT), (80, T.HOLD_STARTED, AGENT),
         (130, T.ENDED, ended(UNRESOLVED)), (145, T.ACW_ENDED, AGENT)],
        {(0, "RU-MOW"): {"offered": 1, "answered": 1, "wait_ms_answered": 50_000},
         (2, "RU-MOW"): {"ended": 1, "handled": 1, "talk_ms": 20_000, "hold_ms": 60_000, "acw_ms": 15_000}},
    ),
    "ENDED after ABANDONED counts nothing (R5a)": (
        contact("c4", "RU-MOW", "RU-MOW"),
        [(0, T.ARRIVED, None), (0, T.QUEUED, None), (65, T.ABANDONED, None),
         (80, T.ENDED, ended(UNRESOLVED, None))],
        {(0, "RU-MOW"): {"offered": 1}, (1, "RU-MOW"): {"abandoned": 1}},
    ),
    "ENDED after a short abandon counts nothing (R5a)": (
        contact("c5", "RU-MOW", "RU-MOW", Channel.CHAT),
        [(0, T.ARRIVED, None), (0, T.QUEUED, None), (3, T.ABANDONED, None),
         (10, T.ENDED, ended(UNRESOLVED, None))],
        {(0, "RU-MOW"): {"offered": 1, "short_abandoned": 1}},
    ),
    "answered without a queue, overflowed: handled, not offered (R5b, R1)": (
        contact("c6", "RU-KAM", "RU-NVS", Channel.CHAT),
        [(0, T.ARRIVED, None), (0, T.OFFERED, AGENT), (0, T.ANSWERED, AGENT), (20, T.TRANSFERRED, AGENT),
         (200, T.ENDED, ended(RFL)), (210, T.ACW_ENDED, AGENT), (400, "survey", 5)],
        {(3, "RU-NVS"): {"ended": 1, "resolved_first_line": 1, "handled": 1, "talk_ms": 200_000,
                         "acw_ms": 10_000, "transferred": 1},
         (6, "RU-NVS"): {"surveys": 1, "top_box": 1, "score_sum": 5}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_ground_truth_of_a_scripted_contact_is_the_hand_computation(case: str) -> None:
    c, steps, expected = CASES[case]
    truth = GroundTruth()
    for no, (seconds, etype, b) in enumerate(steps):
        t = T0 + seconds * 1000
        item: RawItem = (t, no, SURVEY, c, b, None) if etype == "survey" else (t, no, CONTACT, c, etype, b)
        truth.add(item)
    got = {
        ((m.minute_ms - T0) // MINUTE_MS, m.region): {
            k: v for k, v in m.as_row().items() if k not in ("minute_ms", "region", "channel") and v
        }
        for m in truth.closed(2**62)
    }
    assert got == expected


# -- configuration, CLI, sharding, partitions -------------------------------------------------


def test_the_preset_and_the_validation() -> None:
    edged = SimConfig().with_edge_shapes(rate=0.05, of_eligible=0.5)
    assert edged.overflow_share == edged.direct_answer_share == 0.05
    assert edged.second_transfer_share == edged.end_on_hold_share == edged.abandon_end_share == 0.5
    assert edged.edge_shapes and all(getattr(SimConfig(), name) == 0 for name in EDGE_SHAPES)
    with pytest.raises(ValueError, match="end_on_hold_share=1.5 is outside"):
        SimConfig(end_on_hold_share=1.5)
    with pytest.raises(ValueError, match="abandon_end_delay_s"):
        SimConfig(abandon_end_delay_s=(5.0, 1.0))


def test_cli_shapes_option() -> None:
    args = parse_args(["--shapes", "overflow=0.05,end_on_hold=0.2"])
    assert args.shapes == {"overflow_share": 0.05, "end_on_hold_share": 0.2}
    assert set(parse_args(["--shapes", "all=0.1"]).shapes) == set(EDGE_SHAPES)
    assert parse_args([]).shapes == {}
    with pytest.raises(SystemExit):
        parse_args(["--shapes", "teleport=0.1"])


def test_sharded_runs_refuse_overflow_but_take_the_other_shapes(tmp_path: Any) -> None:
    config = SimConfig(regions=("RU-KAM", "RU-TA")).with_edge_shapes()
    with pytest.raises(ValueError, match="overflow_share=0"):
        run(config=config, duration_s=3600, path=tmp_path / "s.bin", workers=2)
    one_engine = replace(config, overflow_share=0.0)
    assert one_engine.edge_shapes  # the others stay in their region: sharding is fine for them


def test_partition_of_is_librdkafkas_default_partitioner() -> None:
    assert partition_of("RU-MOW", 12) == zlib.crc32(b"RU-MOW") % 12
    with pytest.raises(ValueError, match="partitions >= 1"):
        partition_of("RU-MOW", 0)
    from confluent_kafka import Producer

    from streams.simulator.sinks import PARTITIONER

    # librdkafka's in-process mock cluster: auto-created topics have 4 partitions
    producer = Producer({"test.mock.num.brokers": 1, "partitioner": PARTITIONER, "log_level": 0})
    placed: dict[str, int] = {}
    codes = sorted(region_codes())

    def delivered(err: Any, msg: Any) -> None:
        assert err is None
        placed[msg.key().decode()] = msg.partition()

    for code in codes:
        producer.produce("t", b"v", code.encode(), on_delivery=delivered)
    assert producer.flush(30) == 0
    partitions = len(producer.list_topics("t", timeout=10).topics["t"].partitions)
    assert placed == {code: partition_of(code, partitions) for code in codes}
    assert len(set(placed.values())) == partitions
