"""`ccpulse demo`, contract stage: the embedded broker end to end, no Java needed.

Starts Tansu on a free loopback port, applies every topic contract, produces every
example message of schemas/ (Confluent-framed Avro), consumes them back with a
consumer group, decodes them and prints what came back. Stops what it started.
The live KPI view replaces the middle of this once the KPI engine lands (#8).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from streams.cli.smoke import build_messages, consume, produce
from streams.services.tansu import TansuBroker
from streams.wire.codec import Codec
from streams.wire.topic_admin import apply_topics
from streams.wire.topic_contracts import load_topic_contracts


def run_contract_demo(console: Console, *, json_output: bool, state_dir: Path) -> int:
    started = time.monotonic()
    state_dir.mkdir(parents=True, exist_ok=True)
    codec = Codec.pinned()
    with tempfile.TemporaryDirectory(prefix="tansu-", dir=state_dir) as work_dir:
        broker = TansuBroker(Path(work_dir))
        with console.status("starting Tansu (embedded broker)...", spinner="dots") as status:
            broker.start()
            try:
                ready = f"{broker.ready_seconds:.2f} s (pid {broker.pid})"
                console.print(f"Tansu ready on {broker.bootstrap_servers} in {ready}")
                status.update("applying topic contracts...")
                changes = apply_topics(broker.bootstrap_servers)
                console.print(f"{len(changes)} topics applied from schemas/topics/")
                messages = build_messages(codec)
                status.update(f"producing {len(messages)} example messages...")
                produce(broker.bootstrap_servers, messages, idempotent=False)  # Tansu: no idempotence
                status.update("consuming them back with a consumer group...")
                received = consume(
                    broker.bootstrap_servers,
                    sorted(load_topic_contracts()),
                    expected=len(messages),
                    codec=codec,
                    timeout_s=60,
                    on_progress=lambda n: status.update(f"consumed {n}/{len(messages)}..."),
                )
            finally:
                broker.stop()
    sent_by_topic = Counter(m.topic for m in messages)
    got_by_topic = Counter(m.topic for m in received)
    kinds = {m.topic: type(m.decoded).__name__ for m in received}
    rows = [
        {
            "topic": topic,
            "sent": sent_by_topic[topic],
            "received": got_by_topic[topic],
            "decoded as": kinds.get(topic, "-"),
        }
        for topic in sorted(sent_by_topic)
    ]
    ok = sent_by_topic == got_by_topic
    elapsed = time.monotonic() - started
    if json_output:
        print(json.dumps({"ok": ok, "seconds": round(elapsed, 2), "topics": rows}))
    else:
        table = Table(title="contract demo: examples through the embedded broker")
        for column in rows[0]:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
        verdict = "[green]all examples round-tripped[/green]" if ok else "[red]messages missing[/red]"
        console.print(
            f"{verdict} in {elapsed:.1f} s; Tansu stopped. The live KPI view arrives with issue #8."
        )
    return 0 if ok else 1
