"""The record file: Kafka messages as they would be on the wire, one after another in a file.

What `ccpulse simulate --to file` writes and history's backfill and the replays read.
Format (big-endian), one record after another:
``u32 length of the rest | i64 timestamp_ms | u8 topic length | topic | u16 key length | key | value``
where value is the Confluent-framed Avro message exactly as it would be on Kafka.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NamedTuple

_HEAD = struct.Struct(">IqB")
_KEY_LEN = struct.Struct(">H")


class EncodedRecord(NamedTuple):
    topic: str
    key: bytes
    value: bytes
    timestamp_ms: int


class FileSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("wb")
        self.count = 0

    def write(self, record: EncodedRecord) -> None:
        topic = record.topic.encode()
        key, value = record.key, record.value
        length = 8 + 1 + len(topic) + 2 + len(key) + len(value)
        self._file.write(
            b"".join(
                (
                    _HEAD.pack(length, record.timestamp_ms, len(topic)),
                    topic,
                    _KEY_LEN.pack(len(key)),
                    key,
                    value,
                )
            )
        )
        self.count += 1

    def write_many(self, records: Iterable[EncodedRecord]) -> None:
        for record in records:
            self.write(record)

    def write_frames(self, frames: list[bytes]) -> None:
        """Records already framed by ``FastEncoder.frame``."""
        self._file.write(b"".join(frames))
        self.count += len(frames)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> FileSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def read_records(path: Path, shard: int = 0, shards: int = 1) -> Iterator[EncodedRecord]:
    """The records of a file, in order; with ``shards`` > 1 only those whose position
    (0-based) is ``shard`` modulo ``shards``. The file is memory-mapped, not read into
    memory (a simulated month is ~5 GB)."""
    if path.stat().st_size == 0:
        return
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        position, size, index = 0, len(data), -1
        while position < size:
            if size - position < _HEAD.size:
                left = size - position
                msg = f"{path}: {left} stray bytes at offset {position}, shorter than a record header"
                raise ValueError(msg)
            length, ts, topic_len = _HEAD.unpack_from(data, position)
            end = position + 4 + length
            if end > size:
                left = size - position - 4
                msg = f"{path}: record at offset {position} claims {length} bytes, only {left} left"
                raise ValueError(msg)
            index += 1
            if shards > 1 and index % shards != shard:
                position = end
                continue
            cursor = position + _HEAD.size
            topic = data[cursor : cursor + topic_len].decode()
            cursor += topic_len
            (key_len,) = _KEY_LEN.unpack_from(data, cursor)
            cursor += 2
            key = data[cursor : cursor + key_len]
            yield EncodedRecord(topic, key, data[cursor + key_len : end], ts)
            position = end
