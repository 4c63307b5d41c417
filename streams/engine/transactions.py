"""How a job makes its outputs durable together with its input positions, and fences zombies.

Two modes, one interface (``OutputCommitter.commit``):

- **Transactional** (Apache Kafka; ``--transactions``, which deploy/ turns on): every output
  (snapshots, queue states, routing decisions, dead letters, checkpoint records) is produced
  inside a Kafka transaction, and each commit sends the input positions with the consumer's
  group metadata (KIP-447, what Kafka Streams calls exactly-once v2). The group coordinator
  refuses the offsets of a member whose generation is stale, so a *zombie* (a worker that
  was paused or cut off long enough for its partitions to move to another worker, then
  carries on) cannot commit: its transaction is aborted and nothing it produced after the
  takeover becomes visible to ``read_committed`` readers (librdkafka's default isolation).
  The job raises ``Fenced`` and the process exits; a restart rejoins and restores. Cost:
  outputs are visible at commit, so snapshot latency for a ``read_committed`` reader is up
  to the commit interval (docs/kpi-engine.md, "Transactions").
- **Idempotent, not transactional** (the CLI's default; Tansu has no transactions): flush
  and wait for every acknowledgement, then commit offsets (a hint only: restore seeks to
  the checkpoint's positions); a checkpoint's own records only after its outputs are
  acknowledged (``deliver``). No fencing beyond dropping lost partitions unwritten.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

log = logging.getLogger("ccpulse.engine.transactions")


class Fenced(RuntimeError):
    """This worker's outputs were refused: another member owns its partitions now (or the
    transaction failed otherwise). Nothing it produced since its last commit is visible."""


class NotDelivered(KafkaException):
    """Outputs were not acknowledged in time; the input positions were not committed."""


class OutputCommitter:
    def __init__(self, producer: Producer, *, transactional: bool, timeout_s: float = 60.0) -> None:
        self.producer, self.transactional, self.timeout_s = producer, transactional, timeout_s
        self.delivery_errors: list[str] = []
        self.commits = 0

    def start(self) -> None:
        """Initialise the transactional producer (fences older instances of the same id) and
        open the first transaction."""
        if self.transactional:
            self.producer.init_transactions(self.timeout_s)
            self.producer.begin_transaction()

    def delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self.delivery_errors.append(f"{message.topic()}: {error}")

    def deliver(self, what: str = "outputs") -> None:
        """Not transactional: wait until everything produced so far is acknowledged (raises
        NotDelivered). A checkpoint calls this before it produces its own records: a checkpoint
        acknowledged ahead of the outputs it counts as sent (another partition's batch, a
        SIGKILL in between) would restore a state that never re-emits them (133 routing
        decisions lost so in one CI run). Transactional: nothing to do, the commit is atomic."""
        if self.transactional:
            return
        remaining = self.producer.flush(self.timeout_s)
        if remaining or self.delivery_errors:
            errors, self.delivery_errors = self.delivery_errors, []
            msg = f"{what} not delivered ({remaining} pending; {errors[:3]}); offsets not committed"
            raise NotDelivered(msg)

    def commit(self, consumer: Any, offsets: list[TopicPartition], what: str = "outputs") -> None:
        """Make everything produced so far durable (and visible) with ``offsets``."""
        if not self.transactional:
            self.deliver(what)
            if offsets:
                try:
                    consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as exc:  # a hint only: restore seeks to the checkpoint's positions
                    log.warning(
                        "offset commit failed after delivered %s (%s); restore does not need it", what, exc
                    )
            self.commits += 1
            return
        try:
            if offsets:
                metadata = consumer.consumer_group_metadata()
                self.producer.send_offsets_to_transaction(offsets, metadata, self.timeout_s)
            self.producer.commit_transaction(self.timeout_s)
        except KafkaException as exc:
            error = exc.args[0]
            self._abort_quietly()
            msg = f"transaction with {what} not committed, outputs since the last commit discarded: {error}"
            raise Fenced(msg) from exc
        self.delivery_errors.clear()  # a failed delivery fails the commit above; none is left here
        self.commits += 1
        self.producer.begin_transaction()

    def discard(self) -> None:
        """Abort the open transaction and open a new one (transactional only): used when this
        member lost its partitions, so what it produced since its last commit may be stale."""
        if self.transactional:
            self._abort_quietly()
            try:
                self.producer.begin_transaction()
            except KafkaException as exc:
                # fenced or a commit still pending (it timed out: "retry call to resume"): this
                # producer commits nothing more; the next commit raises Fenced and the run ends
                log.warning("no new transaction after losing partitions: %s", exc.args[0])

    def close(self) -> None:
        """Abort what is open (uncommitted outputs are discarded, as a crash would); flush otherwise."""
        if self.transactional:
            self._abort_quietly()
        else:
            self.producer.flush(30)

    def _abort_quietly(self) -> None:
        try:
            self.producer.abort_transaction(10)
        except KafkaException as exc:  # fatal (fenced) producers cannot abort; nothing was committed
            log.info("abort_transaction: %s", exc.args[0])


def await_stable_offsets(consumer: Any, partitions: list[TopicPartition], within_s: float) -> float:
    """Wait until no other member's open transaction holds offsets of ``partitions``; returns
    the seconds waited. The other half of KIP-447's fencing, as Kafka Streams does it: the group
    coordinator checks a member's generation when its offsets join a transaction, not when it
    commits, so a member frozen between the two (SIGSTOP, a VM pause) commits after it wakes and
    its outputs land after the new owner's (seen: 11-31 snapshot keys whose version went down in
    test_zombie_fencing, 2 of 3 runs). A read_committed consumer's committed() (OffsetFetch with
    RequireStable) does not answer while such a transaction is open: a new owner that restores
    only after it answers writes everything after the old owner's last outputs. ``within_s``:
    longer than the producers' transaction.timeout.ms, after which the coordinator aborts it."""
    started = time.perf_counter()
    deadline = started + within_s
    asked = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    while True:
        try:
            consumer.committed(asked, timeout=max(1.0, min(10.0, deadline - time.perf_counter())))
            return time.perf_counter() - started
        except KafkaException as exc:
            if time.perf_counter() >= deadline:
                msg = f"offsets of {len(asked)} partitions still held by an open transaction: {exc}"
                raise RuntimeError(msg) from exc
