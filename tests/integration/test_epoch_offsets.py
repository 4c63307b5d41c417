"""A takeover's restore-epoch transaction carries the restored positions as its offsets, on
Apache Kafka (streams/engine/loop.py ``_record_epochs``).

Why: a transaction without offsets is neither checked against the group's generation nor
waited for by the next owner's ``await_stable_offsets`` (tests/integration/test_stable_offsets.py
shows that wait for a transaction holding offsets). A member frozen inside its epoch
transaction could then commit its epoch records after the next owner's, the hole the
2026-12-01 closing note left open. The offsets it carries are the restored checkpoint's
positions, so what the group has committed is where the new owner really starts."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from typing import Any

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import NewTopic
from support.word_count import WordCount

from streams.engine.checkpoints import restore
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.engine.loop import StreamLoop
from streams.engine.loop_options import LoopOptions
from streams.engine.transactions import OutputCommitter
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC

pytestmark = pytest.mark.kafka
PARTITIONS = 2


def run(config: dict[str, Any], options: LoopOptions) -> None:
    stop = threading.Event()
    deadline = threading.Timer(120, stop.set)  # a fault must fail the test, not hang it
    deadline.start()
    try:
        StreamLoop(config, WordCount(), options, DeadLetterSanitiser(Codec.pinned())).run(
            stop, idle_exit_s=1.0
        )
    finally:
        deadline.cancel()
    assert not stop.is_set(), "the loop ran into the deadline"


def produce(config: dict[str, Any], topics: tuple[str, ...], words: list[str]) -> None:
    producer = Producer(config)
    for i, word in enumerate(words):
        topic, partition = topics[i % len(topics)], (i // 2) % PARTITIONS  # every one gets words
        producer.produce(topic, word.encode(), word.encode(), partition=partition)
    assert producer.flush(30) == 0


@pytest.mark.timeout(300)
def test_the_restore_epoch_transaction_commits_the_restored_positions(
    kafka: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"epochs-{uuid.uuid4().hex[:6]}"
    topics = (f"{name}.a", f"{name}.b")
    admin = kafka.admin()
    futures = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics])
    for future in futures.values():
        future.result()
    if DEAD_LETTER_TOPIC not in admin.list_topics(timeout=30).topics:
        admin.create_topics([NewTopic(DEAD_LETTER_TOPIC, 3, 1)])[DEAD_LETTER_TOPIC].result()
    config = {"bootstrap.servers": kafka.bootstrap_servers}
    options = LoopOptions(group_id=name, app_id=name, topics=topics, batch_size=50, checkpoint_interval_s=0.0)
    options.transactional = True
    commits: list[tuple[str, list[tuple[str, int, int]]]] = []
    real_commit = OutputCommitter.commit

    def recording(
        self: OutputCommitter, consumer: Any, offsets: list[TopicPartition], what: str = "outputs"
    ) -> None:
        commits.append((what, sorted((tp.topic, tp.partition, tp.offset) for tp in offsets)))
        real_commit(self, consumer, offsets, what)

    monkeypatch.setattr(OutputCommitter, "commit", recording)
    words = ["abcd"[i % 4] * (1 + i % 3) for i in range(80)]
    produce(config, topics, words)
    run(config, options)
    first = [offsets for what, offsets in commits if what == "restore epochs"]
    assert first and all(o == [] for o in first)  # nothing restored, no position to commit

    restored = restore(config, name, list(range(PARTITIONS)))
    positions = sorted(
        (topic, partition, offset)
        for partition, data in restored.items()
        for topic, offset in WordCount().loads(data).next_offsets.items()
    )
    assert len(positions) == 2 * PARTITIONS  # every partition of both topics was read
    commits.clear()
    more = ["xyz"[i % 3] for i in range(30)]
    produce(config, topics, more)
    run(config, options)
    epochs = [offsets for what, offsets in commits if what == "restore epochs"]
    assert epochs and epochs[0] == positions, f"the epoch transaction's offsets: {epochs}"
    counts: Counter[str] = Counter()
    for data in restore(config, name, list(range(PARTITIONS))).values():
        counts += WordCount().loads(data).counts
    assert counts == Counter(words) + Counter(more)  # exact across the takeover
