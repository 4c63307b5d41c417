"""`ccpulse plan publish PLAN.json` (streams/cli/plan_publish.py, wired into `ccpulse plan` by
the lead): a plan file written by plan_file.write_plan goes to cc.staffing.plan on Apache
Kafka and into chdb's staffing_plan; a bad file is one clear error, exit 2."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition
from support.waiting import wait_until

from streams.cli.plan_publish import add_publish_parser
from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.history.chdb_store import ChdbStore
from streams.history.migrate import migrate
from streams.planning.plan_file import PlanFile, write_plan
from streams.planning.publish import stored_plan
from streams.settings import load_settings
from streams.wire.topic_admin import apply_topics
from streams.wire.topics import PLAN_TOPIC

pytestmark = [pytest.mark.e2e, pytest.mark.kafka, pytest.mark.clickhouse]
START = 1_778_490_000_000


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ccpulse")
    root.add_argument("--json", action="store_true")
    plan = root.add_subparsers(dest="command", required=True).add_parser("plan")
    add_publish_parser(plan.add_subparsers(dest="action", required=True))
    return root


def test_plan_publish_writes_kafka_and_history(kafka: Any, tmp_path: Path, capsys: Any) -> None:
    bootstrap = kafka.bootstrap_servers
    apply_topics(bootstrap)
    intervals = tuple(
        PlanInterval("cli-plan", "RU-SVE", "VOICE", START + i * INTERVAL_MS, 30.0, 140.0, 5.5, 6)
        for i in range(3)
    )
    path = tmp_path / "plan.json"
    write_plan(path, PlanFile("cli-plan", (), intervals))
    settings = load_settings(
        {"CCPULSE_HISTORY_BACKEND": "chdb", "CCPULSE_STATE_DIR": str(tmp_path / "state")}
    )
    store = ChdbStore(settings.chdb_path(), database=settings.clickhouse_database)
    migrate(store)
    store.close()

    argv = [
        "--json",
        "plan",
        "publish",
        str(path),
        "--bootstrap-servers",
        bootstrap,
        "--published-at",
        "1000",
    ]
    args = parser().parse_args(argv)
    assert args.func(args, settings) == 0
    assert '"intervals": 3' in capsys.readouterr().out

    store = ChdbStore(settings.chdb_path(), database=settings.clickhouse_database)
    try:
        assert stored_plan(store, "RU-SVE") == list(intervals)
    finally:
        store.close()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(PLAN_TOPIC, timeout=10).topics[PLAN_TOPIC].partitions
        consumer.assign([TopicPartition(PLAN_TOPIC, p, -2) for p in partitions])
        keys: set[bytes] = set()

        def read() -> bool:
            keys.update(m.key() or b"" for m in consumer.consume(100, 0.5) if m.error() is None)
            return {f"RU-SVE|VOICE|{i.interval_start_ms}".encode() for i in intervals} <= keys

        wait_until(read, 60, "the CLI's plan on cc.staffing.plan", seen=lambda: keys)
    finally:
        consumer.close()

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 99}')
    args = parser().parse_args(["plan", "publish", str(bad), "--no-kafka"])
    assert args.func(args, settings) == 2
