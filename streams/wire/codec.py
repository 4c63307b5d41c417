"""Bytes <-> domain values for every topic of schemas/topics (Confluent wire format).

A message is magic byte 0, the 4-byte big-endian schema id, then a schemaless Avro
body written with fastavro. Input topics decode to the frozen dataclasses of
``streams.domain.events`` (validated when the codec knows the region catalogue);
output topics decode to plain dicts. Every failure is an ``InvalidEvent`` with a
stable reason code, ready for the dead-letter topic; details never carry a
customer_ref. Times stay int epoch milliseconds: the codec drops the
timestamp-millis annotation from the schemas it reads and writes with (the bytes are
the same), so no datetime is built on the hot path.
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from streams.wire.topic_contracts import SCHEMAS_DIR, load_topic_contracts
from streams.wire.wire_schemas import MAGIC_BYTE, TopicSchema, topic_schema, wire_schema

if TYPE_CHECKING:
    from streams.wire.schema_registry import SchemaRegistry
from streams.domain.errors import InvalidEvent
from streams.wire.avro_records import (
    BINDING_BY_TYPE,
    InputBinding,
)

HEADER_SIZE = 5
WITHHELD = "<withheld>"

# Stable reason codes of the codec (Kafka header and metric label); validation adds
# out_of_range, unknown_region, not_pseudonymised and inconsistent.
EMPTY, BAD_MAGIC, TRUNCATED = "empty", "bad_magic", "truncated"
UNKNOWN_SCHEMA_ID, UNDECODABLE, TRAILING_BYTES = "unknown_schema_id", "undecodable", "trailing_bytes"
UNKNOWN_TOPIC, INVALID_VALUE = "unknown_topic", "invalid_value"

_BYTES_TYPES = (bytes, bytearray, memoryview)
MAX_REMEMBERED_MISSES = 1024  # ids the registry lacks, not asked twice (bounded: junk has any id)
_INT_RANGE = (-(2**31), 2**31 - 1)
_LONG_RANGE = (-(2**63), 2**63 - 1)
# Logical types fastavro would turn into datetime/date/time objects; ours stay ints.
# --- the codec ----------------------------------------------------------------------


class Codec:
    """Encodes and decodes every contract topic; one instance per process, thread-safe."""

    def __init__(
        self,
        schemas: Mapping[str, tuple[int, Any]],
        known_regions: frozenset[str] | None = None,
        writer_lookup: Callable[[int], str | None] | None = None,
    ) -> None:
        """``schemas``: topic -> (schema id, Avro schema as JSON text or dict) of the
        current version. ``known_regions``: when given, input events are validated.
        ``writer_lookup``: schema id -> schema text (a Schema Registry), asked once per id
        this codec does not know, e.g. a newer version registered by an upgraded producer."""
        self._topics = {topic: topic_schema(topic, sid, schema) for topic, (sid, schema) in schemas.items()}
        self.known_regions = known_regions
        self._writer_lookup = writer_lookup
        self._lookup_lock = threading.Lock()
        self._misses: set[int] = set()

    @classmethod
    def pinned(cls, schemas_dir: Path = SCHEMAS_DIR, known_regions: frozenset[str] | None = None) -> Codec:
        """Schema ids pinned in the topic contracts (no Schema Registry); the earlier
        versions a contract lists under ``previous_schemas`` stay decodable."""
        contracts = load_topic_contracts(schemas_dir)
        codec = cls(
            {t: (c.schema_id, c.schema_path(schemas_dir).read_text()) for t, c in contracts.items()},
            known_regions,
        )
        for topic, contract in contracts.items():
            for schema_id, file_name in contract.previous_schemas.items():
                codec.add_writer_schema(topic, schema_id, (schemas_dir / file_name).read_text())
        return codec

    @classmethod
    def with_registry(
        cls,
        url: str,
        schemas_dir: Path = SCHEMAS_DIR,
        known_regions: frozenset[str] | None = None,
        *,
        registry: SchemaRegistry | None = None,
    ) -> Codec:
        """Ids from a Schema Registry: each topic's schema is registered (or found) under
        ``<topic>-value``; every earlier version of the subject stays decodable."""
        if registry is None:
            from streams.wire.schema_registry import ConfluentSchemaRegistry

            registry = ConfluentSchemaRegistry(url)
        current: dict[str, tuple[int, Any]] = {}
        earlier: list[tuple[str, int, str]] = []
        for topic, contract in load_topic_contracts(schemas_dir).items():
            subject, schema_str = f"{topic}-value", contract.schema_path(schemas_dir).read_text()
            current[topic] = (registry.register(subject, schema_str), schema_str)
            earlier += [(topic, sid, text) for sid, text in registry.versions(subject)]
        codec = cls(current, known_regions, writer_lookup=registry.schema)
        for topic, sid, text in earlier:
            if sid != current[topic][0]:
                codec.add_writer_schema(topic, sid, text)
        return codec

    @classmethod
    def for_registry_url(cls, url: str | None, known_regions: frozenset[str] | None = None) -> Codec:
        """with_registry when a Schema Registry URL is configured (non-empty), else pinned.
        The composition root passes ``settings.schema_registry_url``."""
        url = (url or "").strip()
        if url:
            return cls.with_registry(url, known_regions=known_regions)
        return cls.pinned(known_regions=known_regions)

    # -- introspection ---------------------------------------------------------------

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self._topics)

    def schema_id(self, topic: str) -> int:
        return self._topic(topic).schema_id

    def known_schema_ids(self, topic: str) -> tuple[int, ...]:
        return tuple(sorted(self._topic(topic).writers))

    def add_writer_schema(self, topic: str, schema_id: int, schema: Any) -> None:
        """Make messages written with another (earlier) schema version decodable."""
        ts = self._topic(topic)
        if schema_id != ts.schema_id:
            ts.writers[schema_id] = parse_schema(wire_schema(schema))

    # -- encode / decode -------------------------------------------------------------

    def encode(self, topic: str, value: Any) -> bytes:
        """Confluent-framed bytes of a domain event (input topics) or a mapping (any topic)."""
        ts = self._topic(topic)
        data = self._encode(ts, value, self.known_regions)
        if self.known_regions is not None and ts.binding is not None and isinstance(value, Mapping):
            self.decode(topic, data)  # a raw mapping on an input topic: validate it as the consumer will
        return data

    def _encode(self, ts: TopicSchema, value: Any, known_regions: frozenset[str] | None) -> bytes:
        strict = isinstance(value, Mapping)
        if strict:
            record = value
        else:
            binding = BINDING_BY_TYPE.get(type(value))
            if binding is None or binding is not ts.binding:
                expected = ts.binding.event_type.__name__ + " or a mapping" if ts.binding else "a mapping"
                detail = f"{ts.topic} takes {expected}, not {type(value).__name__}"
                raise InvalidEvent(INVALID_VALUE, detail)
            if known_regions is not None:
                binding.validate(value, known_regions)
            record = self._to_record(binding, value)
        self._check_integers(ts, record)
        buf = io.BytesIO()
        buf.write(ts.header)
        try:
            schemaless_writer(buf, ts.reader, record, strict_allow_default=strict)
        except Exception as exc:
            raise InvalidEvent(INVALID_VALUE, _withheld(f"{ts.topic}: {exc}", record)) from None
        return buf.getvalue()

    def decode(self, topic: str, data: bytes | bytearray | memoryview | None) -> Any:
        """The domain event (input topics, validated when regions are known) or the record."""
        ts = self._topic(topic)
        record = self._decode_record(ts, data)
        binding = ts.binding
        if binding is None:
            return record
        try:
            event = binding.from_record(record)
        except KeyError as exc:  # an Avro symbol the domain enum lacks: schema and code diverged
            raise InvalidEvent(UNDECODABLE, f"{topic}: symbol {exc} is not known to the domain") from None
        if self.known_regions is not None:
            binding.validate(event, self.known_regions)
        return event

    def decode_record(self, topic: str, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        """The Avro record as the current schema reads it (another version resolved: missing
        fields get their defaults, unknown ones are dropped); no domain event, no validation."""
        return self._decode_record(self._topic(topic), data)

    def encode_record(self, topic: str, record: Mapping[str, Any]) -> bytes:
        """Inverse of decode_record: the record framed with the current schema, never validated
        (rewrites a rejected message, e.g. a dead letter with its identities pseudonymised)."""
        return self._encode(self._topic(topic), record, None)

    def _decode_record(self, ts: TopicSchema, data: bytes | bytearray | memoryview | None) -> dict[str, Any]:
        topic = ts.topic
        if not data:
            raise InvalidEvent(EMPTY, f"{topic}: message value is {'null' if data is None else '0 bytes'}")
        if not isinstance(data, _BYTES_TYPES):
            raise InvalidEvent(UNDECODABLE, f"{topic}: message value is a {type(data).__name__}, not bytes")
        if data[0] != MAGIC_BYTE:
            raise InvalidEvent(BAD_MAGIC, f"{topic}: first byte is 0x{data[0]:02x}, expected 0x00")
        size = len(data)
        if size < HEADER_SIZE:
            raise InvalidEvent(TRUNCATED, f"{topic}: {size} bytes, shorter than the 5-byte header")
        schema_id = int.from_bytes(data[1:HEADER_SIZE], "big")
        writer_schema = ts.writers.get(schema_id) or self._look_up_writer(ts, schema_id)
        # another version (earlier or newer) resolves to the current one (Avro schema resolution)
        reader_schema = None if schema_id == ts.schema_id else ts.reader
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        try:
            record: dict[str, Any] = schemaless_reader(buf, writer_schema, reader_schema)  # type: ignore[assignment]
        except Exception as exc:
            raise _read_error(topic, exc, buf.tell(), size) from None
        if buf.tell() != size:
            detail = f"{topic}: {size - buf.tell()} of {size} bytes left after the record"
            raise InvalidEvent(TRAILING_BYTES, detail)
        return record

    def _look_up_writer(self, ts: TopicSchema, schema_id: int) -> Any:
        """The writer schema of an id this codec has not seen, from the registry (once per id).
        A registry that cannot be reached raises its own error: an outage is not bad input."""
        missing = f"schema id {schema_id} is not known for topic {ts.topic}; known ids: {sorted(ts.writers)}"
        if self._writer_lookup is None or schema_id in self._misses:
            raise InvalidEvent(UNKNOWN_SCHEMA_ID, missing)
        with self._lookup_lock:
            if schema_id in ts.writers:  # another thread looked it up meanwhile
                return ts.writers[schema_id]
            text = self._writer_lookup(schema_id)
            writer = None if text is None else parse_schema(wire_schema(text))
            name = writer.get("name") if isinstance(writer, dict) else None
            expected = ts.reader.get("name")
            if name is None or name != expected:  # not registered, or another record's schema
                if len(self._misses) < MAX_REMEMBERED_MISSES:
                    self._misses.add(schema_id)
                found = "not in the registry" if text is None else f"the registry has {name or 'no record'}"
                raise InvalidEvent(UNKNOWN_SCHEMA_ID, f"{missing} ({found}, expected {expected})")
            ts.writers[schema_id] = writer
            return writer

    # -- JSON examples -----------------------------------------------------------------

    def to_record(self, value: Any) -> dict[str, Any]:
        """A JSON-ready record: Avro field names, enum symbols, lists, bytes as base64."""
        binding = BINDING_BY_TYPE.get(type(value))
        if binding is not None:
            return self._to_record(binding, value)
        if not isinstance(value, Mapping):
            raise InvalidEvent(INVALID_VALUE, f"cannot make a record of a {type(value).__name__}")
        return {
            k: base64.b64encode(v).decode("ascii") if isinstance(v, bytes | bytearray) else v
            for k, v in value.items()
        }

    def from_record(self, topic: str, record: Mapping[str, Any]) -> Any:
        """The value that ``encode`` takes for a JSON record (inverse of to_record):
        defaults filled in, base64 decoded in bytes fields; not validated against the
        region catalogue."""
        ts = self._topic(topic)
        decoded = dict(record)
        for name in ts.bytes_fields:
            if isinstance(decoded.get(name), str):
                try:
                    decoded[name] = base64.b64decode(decoded[name], validate=True)
                except binascii.Error as exc:
                    raise InvalidEvent(INVALID_VALUE, f"{topic}: {name} is not base64: {exc}") from None
        data = self._encode(ts, decoded, None)
        buf = io.BytesIO(data)
        buf.seek(HEADER_SIZE)
        full: dict[str, Any] = schemaless_reader(buf, ts.reader, None)  # type: ignore[assignment]
        return full if ts.binding is None else ts.binding.from_record(full)

    # -- helpers -------------------------------------------------------------------------

    def _topic(self, topic: str) -> TopicSchema:
        ts = self._topics.get(topic)
        if ts is None:
            detail = f"topic {topic!r} has no contract; known: {sorted(self._topics)}"
            raise InvalidEvent(UNKNOWN_TOPIC, detail)
        return ts

    @staticmethod
    def _to_record(binding: InputBinding, value: Any) -> dict[str, Any]:
        try:
            return binding.to_record(value)
        except (AttributeError, TypeError) as exc:
            raise InvalidEvent(INVALID_VALUE, f"{type(value).__name__}: {exc}") from None

    @staticmethod
    def _check_integers(ts: TopicSchema, record: Mapping[str, Any]) -> None:
        # fastavro writes bools, floats and out-of-range ints into int fields silently.
        checks = ((ts.int_fields, _INT_RANGE, "int"), (ts.long_fields, _LONG_RANGE, "long"))
        for names, (low, high), kind in checks:
            for name in names:
                v = record.get(name)
                if v is not None and (type(v) is not int or not low <= v <= high):
                    detail = f"{ts.topic}: {name}={v!r} is not an Avro {kind}"
                    raise InvalidEvent(INVALID_VALUE, _withheld(detail, record))


def _withheld(detail: str, record: Mapping[str, Any]) -> str:
    ref = record.get("customer_ref")
    if ref is not None and str(ref):
        detail = detail.replace(repr(ref), WITHHELD).replace(str(ref), WITHHELD)
    return detail


def _read_error(topic: str, exc: Exception, position: int, size: int) -> InvalidEvent:
    # fastavro reports a short body as EOFError, or as IndexError("string index out of
    # range") when a varint runs off the end. A read that failed inside the buffer, a
    # bad enum/union index (IndexError on a list) or a negative length prefix
    # ("Expected -3 bytes") is corruption, not truncation.
    message = str(exc)
    short_read = isinstance(exc, EOFError | StopIteration) or (
        isinstance(exc, IndexError) and "list" not in message
    )
    if short_read and position >= size and not message.startswith("Expected -"):
        return InvalidEvent(TRUNCATED, f"{topic}: body ends early after {size} bytes {message}".rstrip())
    return InvalidEvent(UNDECODABLE, f"{topic}: {type(exc).__name__}: {message}")
