"""Reading cc.kpi.snapshots back: the current (highest-version) snapshot per key."""

from __future__ import annotations

from typing import Any

from streams.engine.read_to_end import read_to_end
from streams.wire.codec import Codec
from streams.wire.topics import SNAPSHOT_TOPIC


def latest_snapshots(
    client_config: dict[str, Any], codec: Codec, timeout_s: float = 60.0
) -> dict[str, dict[str, Any]]:
    """key -> decoded snapshot with the highest version, the topic read from its start to its end."""
    latest: dict[str, dict[str, Any]] = {}
    for message in read_to_end(client_config, SNAPSHOT_TOPIC, timeout_s=timeout_s):
        key = (message.key() or b"").decode()
        value = codec.decode(SNAPSHOT_TOPIC, message.value())
        current = latest.get(key)
        if current is None or value["version"] >= current["version"]:
            latest[key] = value
    return latest
