"""The engine's consumer loop runs any job, not only the KPI job: a word-count job with its own
state and serialisation, on the memory broker (held to Kafka's behaviour by
tests/contract/test_memory_broker.py). Counts are exact after a crash mid-stream and a
restart, bad input goes to the dead-letter topic once, and each takeover takes a new epoch."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic
from support.word_count import WordCount, Words

from streams.engine import memory_broker, memory_cluster
from streams.engine.checkpoints import restore
from streams.engine.dead_letters import DeadLetterSanitiser
from streams.engine.loop import StreamLoop
from streams.engine.loop_options import LoopOptions, LoopStats
from streams.engine.read_to_end import read_to_end
from streams.wire.codec import Codec
from streams.wire.topics import DEAD_LETTER_TOPIC

pytestmark = pytest.mark.unit
TOPICS, PARTITIONS = ("words.a", "words.b"), 4


@pytest.fixture
def config() -> Iterator[dict[str, Any]]:
    name = f"loop-{uuid.uuid4().hex[:8]}"
    config = {"bootstrap.servers": f"memory://{name}"}
    admin = memory_broker.AdminClient(config)
    for topic in (*TOPICS, DEAD_LETTER_TOPIC):
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result()
    yield config
    memory_cluster.forget(name)


def produce(config: dict[str, Any], words: list[str]) -> Counter[str]:
    producer = memory_broker.Producer(config)
    for i, word in enumerate(words):
        producer.produce(TOPICS[i % 2], word.encode(), word.encode())  # keyed: a word stays on a partition
    assert producer.flush(10) == 0
    return Counter(w for w in words if w.isalpha())


def run(config: dict[str, Any], job: WordCount, options: LoopOptions) -> tuple[StreamLoop[Words], LoopStats]:
    stop = threading.Event()
    deadline = threading.Timer(60, stop.set)  # a fault must fail the test, not hang it
    deadline.start()
    loop: StreamLoop[Words] = StreamLoop(config, job, options, DeadLetterSanitiser(Codec.pinned()))
    try:
        loop.run(stop, idle_exit_s=0.5)
    finally:
        deadline.cancel()
    assert not stop.is_set(), "the loop ran into the deadline"
    return loop, loop.stats


def counted(config: dict[str, Any], app_id: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for data in restore(config, app_id, list(range(PARTITIONS))).values():
        total += WordCount().loads(data).counts
    return total


def test_a_job_of_its_own_counts_exactly_across_a_crash_and_a_restart(config: dict[str, Any]) -> None:
    options = LoopOptions(group_id="wc", app_id="wc", topics=TOPICS, batch_size=50, checkpoint_interval_s=0.0)
    words = ["abcdefghij"[i % 10] * (1 + i % 3) for i in range(600)]
    expected = produce(config, [*words[:300], "12", "", *words[300:]])  # two not words: dead letters

    with pytest.raises(RuntimeError, match="crash"):
        run(config, WordCount(crash_after=250), options)  # some checkpoints are written, then it dies
    assert 0 < sum(counted(config, "wc").values()) <= 250

    loop, stats = run(config, WordCount(), options)
    assert counted(config, "wc") == expected  # nothing lost, nothing counted twice
    assert 0 < stats.events < 602 and len(stats.restored) > 0  # resumed from the checkpoints, not from 0
    assert set(stats.epochs.values()) == {2}  # the crashed member took epoch 1
    codec = Codec.pinned()
    dead = [codec.decode_record(DEAD_LETTER_TOPIC, m.value()) for m in read_to_end(config, DEAD_LETTER_TOPIC)]
    # at least once without transactions (the crashed run may have sent one before its last
    # checkpoint): one per original message once keyed by its origin, as history stores them
    origins = {(d["original_topic"], d["original_partition"], d["original_offset"]) for d in dead}
    assert len(origins) == 2 and {d["reason"] for d in dead} == {"not_a_word"}

    more = produce(config, ["zz", "zz", "yy"])
    _, again = run(config, WordCount(), options)
    assert again.events == 3 and set(again.epochs.values()) == {3}
    assert counted(config, "wc") == expected + more

    # the group's committed offsets gone (a new group id): the checkpoints' positions rule
    renamed = LoopOptions(group_id="wc-new", app_id="wc", topics=TOPICS, checkpoint_interval_s=0.0)
    _, fresh_group = run(config, WordCount(), renamed)
    assert fresh_group.events == 0 and counted(config, "wc") == expected + more


def test_a_topic_the_checkpoint_never_read_starts_at_its_beginning(config: dict[str, Any]) -> None:
    """A clean-clone CI run lost events after a takeover: the checkpoint had no position for
    a topic it had not read yet, and the consumer fell back to the group's committed offset,
    which a transactional commit of outputs between checkpoints had moved past events the
    checkpointed state never saw. The state is the only truth about what was applied."""
    options = LoopOptions(group_id="wc", app_id="wc", topics=TOPICS, batch_size=50, checkpoint_interval_s=0.0)
    producer = memory_broker.Producer(config)
    first = ["abc"[i % 3] * (1 + i % 2) for i in range(90)]
    for word in first:
        producer.produce(TOPICS[0], word.encode(), word.encode())
    assert producer.flush(10) == 0
    run(config, WordCount(), options)
    assert counted(config, "wc") == Counter(first)
    assert all(
        set(s.next_offsets) <= {TOPICS[0]}
        for s in map(WordCount().loads, restore(config, "wc", list(range(PARTITIONS))).values())
    )

    later = ["xyz"[i % 3] for i in range(60)]
    for word in later:
        producer.produce(TOPICS[1], word.encode(), word.encode())
    assert producer.flush(10) == 0
    member = memory_broker.Consumer({**config, "group.id": "wc", "enable.auto.commit": False})
    ends = [TopicPartition(TOPICS[1], p, member.get_watermark_offsets(TopicPartition(TOPICS[1], p))[1])
            for p in range(PARTITIONS)]  # fmt: skip
    member.commit(offsets=ends, asynchronous=False)  # the group's offsets past what any checkpoint holds
    member.close()

    _, stats = run(config, WordCount(), options)
    assert counted(config, "wc") == Counter(first) + Counter(later)  # the 60 on words.b were applied
    assert stats.events == len(later)


def test_the_idle_exit_asks_end_offsets_apart_from_the_live_consumer(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live consumer's uncached end-offset query waits behind its own fetch long-poll (up to
    fetch.wait.max.ms per partition on Apache Kafka): the loop's idle exit and the routing gate
    ask through EndOffsets, a consumer of its own that is in no group and never fetches."""
    asked: list[tuple[str | None, bool]] = []
    original = memory_broker.Consumer.get_watermark_offsets

    def recorded(self: Any, partition: Any, timeout: float | None = None, cached: bool = False) -> Any:
        asked.append((self._group, cached))
        return original(self, partition, timeout, cached)

    monkeypatch.setattr(memory_broker.Consumer, "get_watermark_offsets", recorded)
    expected = produce(config, ["abc", "de", "abc"])
    options = LoopOptions(group_id="ends", app_id="ends", topics=TOPICS, checkpoint_interval_s=0.0)
    _, stats = run(config, WordCount(), options)
    assert stats.events == 3 and counted(config, "ends") == expected  # exited once all was read
    uncached = {group for group, cached in asked if not cached}
    assert uncached, "the idle exit asked the broker for end offsets"
    assert "ends" not in uncached, "the live consumer was asked (it answers only after its fetch)"
    assert all(str(g).startswith("ccpulse-end-offsets-") or str(g).startswith("ccpulse-read-to-end-")
               for g in uncached), uncached  # fmt: skip


def test_outputs_are_acknowledged_before_the_checkpoint_that_counts_them(
    config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without transactions a checkpoint record acknowledged ahead of the outputs it counts as
    sent (a large record fills its batch and leaves at once, small outputs linger), then a
    SIGKILL, restores a state that never re-emits them. So every output produced before a
    checkpoint record is flushed before that record is produced."""
    log: list[str] = []
    expected = produce(config, ["ab", "12", "cd", "", "ef", "34"])  # 3 words, 3 dead letters (outputs)
    original_produce, original_flush = memory_broker.Producer.produce, memory_broker.Producer.flush

    def logged_produce(self: Any, topic: str, *args: Any, **kwargs: Any) -> Any:
        log.append("checkpoint" if topic.endswith("-changelog") else "output")
        return original_produce(self, topic, *args, **kwargs)

    def logged_flush(self: Any, *args: Any, **kwargs: Any) -> Any:
        log.append("flush")
        return original_flush(self, *args, **kwargs)

    monkeypatch.setattr(memory_broker.Producer, "produce", logged_produce)
    monkeypatch.setattr(memory_broker.Producer, "flush", logged_flush)
    options = LoopOptions(group_id="order", app_id="order", topics=TOPICS, checkpoint_interval_s=0.0,
                          transactional=False)  # fmt: skip
    _, stats = run(config, WordCount(), options)
    assert counted(config, "order") == expected and stats.dead_letters == 3
    assert log.count("output") == 3 and "checkpoint" in log
    unflushed = False
    for entry in log:
        if entry == "output":
            unflushed = True
        elif entry == "flush":
            unflushed = False
        else:
            assert not unflushed, f"a checkpoint produced before the outputs ahead of it were flushed: {log}"
