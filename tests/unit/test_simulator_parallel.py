"""Region-sharded simulation (streams/simulator/parallel.py): balanced shards, one file,
unique ids, per-region order, deterministic output, and clear refusals."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from streams.domain.regions import load_regions, region_codes
from streams.simulator import SimConfig, run
from streams.simulator.parallel import shard_regions, shard_seed
from streams.simulator.policy import EwtOverflowPolicy
from streams.simulator.run import DEFAULT_START, RunSummary
from streams.wire.codec import Codec
from streams.wire.record_file import read_records

pytestmark = pytest.mark.unit

REGIONS = ("RU-MOW", "RU-SPE", "RU-PRI", "RU-NVS", "RU-KDA")
CODEC = Codec.pinned(known_regions=region_codes())


def test_shards_cover_every_region_once_with_balanced_weight() -> None:
    regions = load_regions()
    groups = shard_regions(regions, 3)
    codes = [code for group in groups for code in group]
    assert sorted(codes) == sorted(r.code for r in regions)
    weight = {r.code: r.weight for r in regions}
    loads = [sum(weight[c] for c in group) for group in groups]
    assert max(loads) - min(loads) <= max(weight.values())  # greedy bound: within one region's weight
    with pytest.raises(ValueError, match="one region per worker"):
        shard_regions(regions[:2], 3)


def test_shard_seeds_differ_per_shard_and_worker_count() -> None:
    assert shard_seed(7, 0, 1) == 7
    seeds = {shard_seed(7, i, n) for n in (2, 3) for i in range(n)}
    assert len(seeds) == 5


def _run(path: Path, truth: Path | None = None) -> RunSummary:
    return run(regions=REGIONS, duration_s=2 * 3600, seed=3, out="file", path=path, start=DEFAULT_START,
               workers=2, truth_path=truth)  # fmt: skip


def test_sharded_run_writes_one_file_with_unique_ids_and_per_region_order(tmp_path: Path) -> None:
    path, truth = tmp_path / "sim.bin", tmp_path / "truth.csv"
    summary = _run(path, truth)
    records = list(read_records(path))
    assert len(records) == summary.messages > 2_000
    assert Counter(r.topic for r in records) == Counter(summary.by_topic)
    assert not list(tmp_path.glob("*.part*"))  # the part files are gone
    ids: set[str] = set()
    last: dict[str, int] = defaultdict(int)
    for record in records:
        event = CODEC.decode(record.topic, record.value)
        ids.add(event.event_id)
        assert event.region in REGIONS and record.key.decode() == event.region
        assert record.timestamp_ms >= last[event.region]  # each region (Kafka key) stays in time order
        last[event.region] = record.timestamp_ms
    assert len(ids) == len(records)  # unique across shards
    with truth.open() as f:
        rows = list(csv.DictReader(f))
    assert {row["region"] for row in rows} == set(REGIONS)  # one header, both shards' minutes
    assert all(row["region"] != "region" for row in rows)


def test_sharded_run_is_deterministic(tmp_path: Path) -> None:
    _run(tmp_path / "a.bin")
    _run(tmp_path / "b.bin")
    assert (tmp_path / "a.bin").read_bytes() == (tmp_path / "b.bin").read_bytes()


def test_sharded_run_refuses_what_needs_one_engine(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="home-region policy"):
        run(regions=REGIONS, duration_s=600, out="file", path=tmp_path / "x.bin", workers=2,
            routing=EwtOverflowPolicy(REGIONS, SimConfig()))  # fmt: skip
    with pytest.raises(ValueError, match="no pacing"):
        run(regions=REGIONS, duration_s=600, out="file", path=tmp_path / "x.bin", workers=2, speed=60)
    with pytest.raises(ValueError, match="no pacing"):
        run(regions=REGIONS, duration_s=600, out="kafka", bootstrap_servers="127.0.0.1:1", workers=2)
