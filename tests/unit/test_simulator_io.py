"""Output of the simulator: the file format, fault injection rates, pacing and run()."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from streams.domain.errors import InvalidEvent
from streams.domain.pseudonym import pseudonymise
from streams.domain.regions import region_codes
from streams.simulator import Faults, MalformedValue, SimConfig, Simulation, run
from streams.simulator.faults import MALFORMED_KINDS, damage
from streams.simulator.output import TimeBytes, long_bytes
from streams.simulator.run import DEFAULT_START
from streams.simulator.sinks import Pacer
from streams.wire.codec import Codec
from streams.wire.record_file import FileSink, read_records

pytestmark = pytest.mark.unit

PEAK = DEFAULT_START + timedelta(hours=7)
REGIONS = ("RU-MOW", "RU-SPE", "RU-PRI")
CODEC = Codec.pinned(known_regions=region_codes())


def test_file_round_trip_decodes_every_message(tmp_path: Path) -> None:
    path = tmp_path / "sim.bin"
    summary = run(regions=REGIONS, duration_s=1800, seed=4, out="file", path=path, start=PEAK)
    records = list(read_records(path))
    assert len(records) == summary.messages > 5_000
    assert Counter(r.topic for r in records) == Counter(summary.by_topic)
    for record in records:
        event = CODEC.decode(record.topic, record.value)
        assert event.event_time_ms == record.timestamp_ms
        assert record.key.decode() == event.region
    assert summary.contacts > 500 and summary.simulated_s >= 1800


def test_read_records_rejects_a_cut_file(tmp_path: Path) -> None:
    path = tmp_path / "sim.bin"
    run(regions=("RU-KAM",), duration_s=3600, seed=1, out="file", path=path, start=PEAK)
    data = path.read_bytes()
    path.write_bytes(data[:-3])
    with pytest.raises(ValueError, match="claims"):
        list(read_records(path))


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("bad_magic", "bad_magic"),
        ("unknown_schema_id", "unknown_schema_id"),
        ("truncated", "truncated"),
        ("trailing_bytes", "trailing_bytes"),
    ],
)
def test_each_malformation_is_rejected_by_the_codec_with_its_reason(kind: str, reason: str) -> None:
    sim = Simulation(SimConfig(regions=("RU-MOW",)), seed=1, start=PEAK, duration_s=600)
    item = next(iter(sim.batches()))[0]
    record = sim.encoder.encode(item)
    CODEC.decode(record.topic, record.value)  # the original is fine
    with pytest.raises(InvalidEvent) as caught:
        CODEC.decode(record.topic, damage(record.value, kind))
    assert caught.value.reason == reason
    assert set(MALFORMED_KINDS) >= {kind}


def fault_run(faults: Faults) -> tuple[list, int]:
    config = SimConfig(regions=REGIONS, faults=faults)
    clean = sum(
        len(b)
        for b in Simulation(SimConfig(regions=REGIONS), seed=8, start=PEAK, duration_s=10_800).batches()
    )
    return list(Simulation(config, seed=8, start=PEAK, duration_s=10_800).records()), clean


def test_fault_rates_are_as_configured() -> None:
    records, clean = fault_run(Faults(duplicate=0.02, late=0.03, malformed=0.01))
    assert clean > 30_000
    malformed = [r for r in records if isinstance(r.event, MalformedValue)]
    valid = [r for r in records if not isinstance(r.event, MalformedValue)]
    ids = Counter(r.event.event_id for r in valid)
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates / clean == pytest.approx(0.02, abs=0.003)
    assert len(malformed) / clean == pytest.approx(0.01, abs=0.002)
    # nothing lost: late ones arrive; a malformed message is an extra damaged copy
    assert len(records) == clean + duplicates + len(malformed)
    for r in malformed:
        with pytest.raises(InvalidEvent):
            CODEC.decode(r.topic, r.event.value)
    assert Counter(r.event.fault for r in malformed).keys() == set(MALFORMED_KINDS)
    # late: arrives after an event at least 30 s younger, keeping its own event time
    newest, late = 0, 0
    for r in records:
        if r.timestamp_ms < newest - 30_000:
            late += 1
        newest = max(newest, r.timestamp_ms)
    assert late / clean == pytest.approx(0.03, abs=0.004)


def test_without_faults_the_stream_is_clean_and_ordered() -> None:
    records, clean = fault_run(Faults())
    assert len(records) == clean
    assert not any(isinstance(r.event, MalformedValue) for r in records)
    times = [r.timestamp_ms for r in records]
    assert times == sorted(times)
    assert len({r.event.event_id for r in records}) == clean


def test_fault_rates_are_validated() -> None:
    with pytest.raises(ValueError, match="duplicate=1.5"):
        Faults(duplicate=1.5)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("speed", "expected_wall_s"), [(1.0, 120.0), (60.0, 2.0)])
def test_pacer_spaces_messages_by_event_time(speed: float, expected_wall_s: float) -> None:
    clock = FakeClock()
    pacer = Pacer(speed, clock=clock, sleep=clock.sleep)
    for ts in range(1_000_000, 1_120_001, 10_000):  # two simulated minutes
        pacer.wait(ts)
    assert clock.now - 100.0 == pytest.approx(expected_wall_s)


def test_pacer_without_speed_never_sleeps() -> None:
    clock = FakeClock()
    pacer = Pacer(None, clock=clock, sleep=clock.sleep)
    for ts in (0, 10**9, 2 * 10**9):
        pacer.wait(ts)
    assert clock.slept == []
    with pytest.raises(ValueError, match="speed 0"):
        Pacer(0)


def test_pacer_hurried_midway_stops_sleeping() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock, sleep=clock.sleep)
    for ts in range(1_000_000, 1_060_001, 10_000):  # one paced simulated minute: 60 s of wall time
        pacer.wait(ts)
    assert clock.now - 100.0 == pytest.approx(60.0)
    pacer.hurry()
    for ts in range(1_060_000, 4_600_001, 10_000):  # the rest of the hour at once
        pacer.wait(ts)
    assert clock.now - 100.0 == pytest.approx(60.0)
    assert pacer.due_in(10**12) == 0.0


def test_a_hurried_run_writes_the_same_messages_as_an_unpaced_one(tmp_path: Path) -> None:
    """What a test saves by hurrying a paced simulation is wall time, never messages."""
    pacer = Pacer(3600.0)
    hurried = threading.Timer(0.2, pacer.hurry)  # half an hour simulated at 3600x: 0.5 s unhurried
    hurried.start()
    paced = run(regions=REGIONS, duration_s=1800, seed=4, path=tmp_path / "h.bin", start=PEAK, pacer=pacer)
    hurried.join()
    unpaced = run(regions=REGIONS, duration_s=1800, seed=4, path=tmp_path / "u.bin", start=PEAK)
    assert pacer.speed is None and paced.messages == unpaced.messages > 100
    assert (tmp_path / "h.bin").read_bytes() == (tmp_path / "u.bin").read_bytes()
    with pytest.raises(ValueError, match="no pacer"):
        run(regions=REGIONS, duration_s=60, path=tmp_path / "w.bin", workers=2, pacer=Pacer(60.0))


def test_run_needs_a_destination(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs a path"):
        run(regions=("RU-KAM",), duration_s=60, out="file")
    with pytest.raises(ValueError, match="needs bootstrap_servers"):
        run(regions=("RU-KAM",), duration_s=60, out="kafka")
    with FileSink(tmp_path / "empty.bin") as sink:
        assert sink.count == 0
    assert list(read_records(tmp_path / "empty.bin")) == []


def test_framed_fast_path_writes_the_same_bytes_as_the_record_path(tmp_path: Path) -> None:
    config = SimConfig(regions=REGIONS, faults=Faults(duplicate=0.01, malformed=0.01))
    sim = Simulation(config, seed=3, start=PEAK, duration_s=1800)
    items = [item for batch in sim.batches() for item in batch]
    with FileSink(tmp_path / "records.bin") as one_by_one:
        for item in items:
            one_by_one.write(sim.encoder.encode(item))
    with FileSink(tmp_path / "frames.bin") as framed:
        framed.write_frames([sim.encoder.frame(item) for item in items])
    assert (tmp_path / "records.bin").read_bytes() == (tmp_path / "frames.bin").read_bytes()
    assert len(list(read_records(tmp_path / "frames.bin"))) == len(items) > 5_000


def test_fast_time_encoding_and_pseudonyms_match_the_reference_forms() -> None:
    times = TimeBytes()
    for t in (0, 1, 8_191, 8_192, 16_384, 2**40, 1_778_490_095_004, 1_778_490_103_196, -5):
        assert times(t) == long_bytes(t), t
    sim = Simulation(SimConfig(regions=("RU-KAM",)), seed=1)
    for phone in ("79000000001", "79123456789"):
        assert sim.engine._pseudonymise(phone) == pseudonymise(phone, SimConfig().pseudonym_key)


def test_paced_run_takes_at_least_the_simulated_span_divided_by_speed(tmp_path: Path) -> None:
    summary = run(
        regions=("RU-KAM",), duration_s=3600, speed=7200, seed=2, path=tmp_path / "p.bin", start=PEAK
    )
    assert summary.messages > 20
    assert summary.wall_s >= summary.simulated_s / 7200 * 0.95 > 0.4


def test_module_entry_point_writes_file_truth_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streams.cli.simulate import main

    out, truth = tmp_path / "m.bin", tmp_path / "t.csv"
    main(
        [
            "--regions",
            "RU-KAM",
            "--hours",
            "1",
            "--path",
            str(out),
            "--truth",
            str(truth),
            "--malformed",
            "0.01",
        ]
    )
    printed = capsys.readouterr().out
    assert "total" in printed and "contacts" in printed
    assert len(list(read_records(out))) > 20
    assert truth.read_text().startswith("minute_ms,region,channel,offered")


def test_cli_options_days_and_faults() -> None:
    from streams.cli.simulate import parse_args

    args = parse_args(["--days", "2", "--faults", "duplicate=0.01,late=0.02,malformed=0.003"])
    assert (args.hours, args.duplicate, args.late, args.malformed) == (48.0, 0.01, 0.02, 0.003)
    assert parse_args([]).hours == 1.0
    with pytest.raises(SystemExit):
        parse_args(["--faults", "bogus=1"])
    with pytest.raises(SystemExit):
        parse_args(["--hours", "1", "--days", "1"])
