"""Which partition a keyed record goes to: librdkafka's default ``consistent_random``
partitioner, pinned on our producers so this function stays true."""

from __future__ import annotations

import zlib

PARTITIONER = "consistent_random"


def partition_of(key: str | bytes, partitions: int) -> int:
    """The partition a (non-empty) key is written to on a topic of ``partitions`` partitions:
    CRC-32 of the key modulo the count (a unit test checks it against librdkafka's mock
    cluster; tests/contract/test_memory_broker.py against Apache Kafka, and the memory broker
    uses it). Two regions share a partition when their results are equal. Java clients
    (murmur2) place keys differently."""
    if partitions < 1 or not key:
        msg = f"partition_of({key!r}, {partitions}): expected a non-empty key and partitions >= 1"
        raise ValueError(msg)
    return zlib.crc32(key.encode() if isinstance(key, str) else key) % partitions
