"""Dead letters without subscriber identities: what every writer of ``cc.dead-letter`` and of
the ``dead_letters`` history table stores in place of a rejected message's raw bytes.

A rejected message whose body still decodes (whatever the reason, not only
``not_pseudonymised``) is rewritten: each identity field of its topic (``IDENTITY_FIELDS``)
whose value is not a 32-hex-digit pseudonym becomes ``pseudonymise(value, key)``, or
``WITHHELD`` when no key is configured, and the record is re-encoded in the same Confluent
framing (current schema version). The raw values found are also taken out of the detail
text and the message key; e-mail addresses are withheld from every detail. Bytes that do
not decode cannot be inspected and pass unchanged (docs/security.md, "Dead letters").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.domain.errors import InvalidEvent
from streams.domain.events import CUSTOMER_REF_PATTERN
from streams.domain.pseudonym import pseudonymise
from streams.wire.codec import WITHHELD, Codec
from streams.wire.topics import CONTACT_TOPIC, DEAD_LETTER_TOPIC

# Fields that carry a subscriber identity, by topic (the schema docs say "Pseudonymised";
# tests/unit/test_dead_letters.py keeps this table and the schemas in step).
IDENTITY_FIELDS: Mapping[str, tuple[str, ...]] = {CONTACT_TOPIC: ("customer_ref",)}
_EMAIL = re.compile(r"[^\s@'\"<>()\[\],;:]+@[^\s@'\"<>()\[\],;:]+\.[^\s@'\"<>()\[\],;:]+")


@dataclass(frozen=True)
class Cleaned:
    value: bytes
    key: bytes | None
    detail: str
    replaced: int  # identity values rewritten in the body


@dataclass(frozen=True)
class DeadLetterSanitiser:
    """``codec``: decodes the rejected body (no validation) and re-encodes it.
    ``pseudonym_key``: CCPULSE_PSEUDONYM_KEY from the composition root; without it identity
    values are withheld instead of pseudonymised. Never shown in repr."""

    codec: Codec
    pseudonym_key: bytes | None = field(default=None, repr=False)

    def sanitise(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """A DeadLetter record (cc.dead-letter schema) with its original value, key and detail
        cleaned of raw identities; every other field as given."""
        topic, detail = str(record["original_topic"]), str(record.get("detail") or "")
        c = self.clean(topic, record.get("original_value"), record.get("original_key"), detail)
        return {**record, "original_value": c.value, "original_key": c.key, "detail": c.detail}

    def clean(self, topic: str, value: bytes | None, key: bytes | None, detail: str) -> Cleaned:
        """``value`` with its identity fields pseudonymised (re-encoded only when one changed),
        ``key`` and ``detail`` without the raw values found, ``detail`` without e-mail addresses."""
        body = bytes(value or b"")
        record = self._decoded(topic, body)
        replacements: dict[str, str] = {}  # raw value -> pseudonym (or WITHHELD)
        if record is not None:
            changed = {}
            for name in IDENTITY_FIELDS[topic]:
                raw = record.get(name)
                if isinstance(raw, str) and not _is_safe(raw):
                    changed[name] = replacements[raw] = self._replacement(raw)
            if changed:
                try:
                    body = self.codec.encode_record(topic, {**record, **changed})
                except InvalidEvent:  # not expected for a record the codec just decoded: fail closed
                    body = b""
        for raw, replacement in replacements.items():
            if raw.strip():  # an empty value would match everywhere
                detail = detail.replace(repr(raw), WITHHELD).replace(raw, WITHHELD)
                key = key.replace(raw.encode(), replacement.encode()) if key else key
        return Cleaned(body, key, _EMAIL.sub(WITHHELD, detail), len(replacements))

    def _decoded(self, topic: str, body: bytes) -> dict[str, Any] | None:
        if topic not in IDENTITY_FIELDS or not body:
            return None
        try:
            return self.codec.decode_record(topic, body)
        except InvalidEvent:  # undecodable: cannot be inspected, passes unchanged
            return None

    def _replacement(self, raw: str) -> str:
        return pseudonymise(raw, self.pseudonym_key) if self.pseudonym_key else WITHHELD


def _is_safe(value: str) -> bool:
    """Already a pseudonym, or already withheld by an earlier writer."""
    return value == WITHHELD or CUSTOMER_REF_PATTERN.match(value) is not None


def dead_letter(
    sanitiser: DeadLetterSanitiser, message: Any, exc: InvalidEvent, consumer: str, now_ms: int
) -> tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]:
    """The policy for a message a job rejects: the cc.dead-letter record (origin, reason,
    detail, when, by whom) with raw identities taken out, keyed by the original topic, with
    ``reason`` and ``original_topic`` headers for consumers that filter without decoding.
    Returns (value, key, headers) to produce to DEAD_LETTER_TOPIC."""
    topic = str(message.topic())
    record = {
        "original_topic": topic,
        "original_partition": message.partition(),
        "original_offset": message.offset(),
        "original_key": message.key(),
        "original_value": message.value() or b"",
        "reason": exc.reason,
        "detail": exc.detail,
        "failed_at_ms": now_ms,
        "consumer": consumer,
    }
    clean = sanitiser.sanitise(record)  # never a raw identity in Kafka, history or logs
    headers: list[tuple[str, str | bytes | None]] = [("reason", exc.reason), ("original_topic", topic)]
    return sanitiser.codec.encode(DEAD_LETTER_TOPIC, clean), topic.encode(), headers
