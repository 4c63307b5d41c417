"""Fault injection on the raw item stream: duplicates, late (out-of-order) and malformed messages.

Rates are per original message and the draws are seeded, so a faulty run is as
reproducible as a clean one. A duplicate repeats the item (same event_id, same event
time) right after it; a late item keeps its event time but is released only when the
stream has moved ``late_min_s..late_max_s`` past it, so it arrives after later events;
a malformed item is an extra, damaged copy of a message (bad magic byte, unknown schema id,
truncated body, trailing bytes) sent to the same topic and key just before the intact
one: the consumer must reject it, and the ground truth still holds for what it accepts.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterable, Iterator

from streams.simulator.config import Faults
from streams.simulator.model import MALFORMED, RawItem
from streams.wire.record_file import EncodedRecord

MALFORMED_KINDS = ("bad_magic", "unknown_schema_id", "truncated", "trailing_bytes")
UNKNOWN_SCHEMA_ID = 999_999


def damage(value: bytes, kind: str) -> bytes:
    """The Confluent-framed ``value`` broken in the named way."""
    if kind == "bad_magic":
        return b"\x01" + value[1:]
    if kind == "unknown_schema_id":
        return value[:1] + UNKNOWN_SCHEMA_ID.to_bytes(4, "big") + value[5:]
    if kind == "truncated":
        return value[: 5 + (len(value) - 5) // 2]
    if kind == "trailing_bytes":
        return value + b"\x00\x00\x00"
    msg = f"unknown malformation {kind!r}; known: {', '.join(MALFORMED_KINDS)}"
    raise ValueError(msg)


def inject(
    batches: Iterable[list[RawItem]],
    faults: Faults,
    seed: int,
    encode: Callable[[RawItem], EncodedRecord],
) -> Iterator[list[RawItem]]:
    """The batches with faults applied; unchanged (same objects) when no rate is set."""
    if not faults.any:
        yield from batches
        return
    rng = random.Random(seed * 7_919 + 17)  # noqa: S311 - simulation, not cryptography
    held: list[tuple[int, int, RawItem]] = []  # (release time, order, item)
    order = 0
    late, bad = faults.late, faults.malformed
    dup = min(1.0, faults.duplicate / (1.0 - bad - late))  # of the messages left intact: overall rate as set
    low_ms, high_ms = int(faults.late_min_s * 1000), int(faults.late_max_s * 1000)
    for batch in batches:
        out: list[RawItem] = []
        for item in batch:
            t = item[0]
            while held and held[0][0] <= t:
                out.append(heapq.heappop(held)[2])
            u = rng.random()
            if u < bad:  # a damaged copy goes out before the intact message (the truth still holds)
                kind = MALFORMED_KINDS[rng.randrange(len(MALFORMED_KINDS))]
                record = encode(item)
                out.append(
                    (t, item[1], MALFORMED, record.topic, record.key, (damage(record.value, kind), kind))
                )
                out.append(item)
                continue
            if u < bad + late:
                order += 1
                heapq.heappush(held, (t + rng.randint(low_ms, high_ms), order, item))
                continue
            out.append(item)
            if rng.random() < dup:
                out.append(item)
        yield out
    yield [entry[2] for entry in sorted(held)]
