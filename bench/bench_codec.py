"""Codec throughput vs the raw ceiling (fastavro schemaless on the same bytes), one core.

    .venv/bin/python bench/bench_codec.py [--n 100000] [--json]

Prints events/s for encode and decode through streams.wire.codec (validating against
the region catalogue and not), the raw fastavro reader/writer on the same bytes,
and the ratio codec/raw measured in the same run.
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import time
from collections.abc import Callable

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from rich.console import Console
from rich.table import Table

from streams.domain.regions import region_codes
from streams.wire.codec import HEADER_SIZE, Codec
from streams.wire.topic_contracts import SCHEMAS_DIR, load_examples
from streams.wire.wire_schemas import wire_schema

TOPIC = "cc.contact.events"


def rate(n: int, func: Callable[[], None]) -> float:
    gc.collect()
    start = time.perf_counter()
    func()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = args.n
    example = dict(load_examples(TOPIC))["voice-ended-resolved-spe.json"]

    raw_schema = parse_schema(wire_schema((SCHEMAS_DIR / "contact_event.avsc").read_text()))
    plain = Codec.pinned()
    event = plain.from_record(TOPIC, example)
    data = plain.encode(TOPIC, event)
    record = schemaless_reader(io.BytesIO(data[HEADER_SIZE:]), raw_schema)

    def raw_read() -> None:
        for _ in range(n):
            buffer = io.BytesIO(data)
            buffer.seek(HEADER_SIZE)
            schemaless_reader(buffer, raw_schema)

    def raw_write() -> None:
        for _ in range(n):
            buffer = io.BytesIO()
            buffer.write(data[:HEADER_SIZE])
            schemaless_writer(buffer, raw_schema, record)
            buffer.getvalue()

    raw_decode, raw_encode = rate(n, raw_read), rate(n, raw_write)
    rows = []
    for label, codec in (("codec, validating", Codec.pinned(known_regions=region_codes())), ("codec", plain)):
        encode = rate(n, lambda c=codec: [c.encode(TOPIC, event) for _ in range(n)] and None)
        decode = rate(n, lambda c=codec: [c.decode(TOPIC, data) for _ in range(n)] and None)
        rows.append(
            {
                "path": label,
                "encode_per_s": round(encode),
                "decode_per_s": round(decode),
                "encode_ratio": round(encode / raw_encode, 3),
                "decode_ratio": round(decode / raw_decode, 3),
            }
        )
    rows.append(
        {
            "path": "raw fastavro (ceiling)",
            "encode_per_s": round(raw_encode),
            "decode_per_s": round(raw_decode),
            "encode_ratio": 1.0,
            "decode_ratio": 1.0,
        }
    )
    if args.json:
        print(json.dumps({"n": n, "message_bytes": len(data), "rows": rows}))
        return
    table = Table(title=f"contact event codec, {len(data)} bytes, n={n}, one core")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
