"""Progress probes and paced input for the fault scenarios (test_broker_faults.py,
test_worker_recovery.py): how far behind its input a consumer group is, in seconds.

`LagProbe` samples, every ``interval_s``, the high watermark of every watched partition and
the committed offsets of the watched groups. The **time lag** of a group on a partition at
a sample is how long the oldest message the group has not committed has been readable at
the broker (0 when the committed offset reaches the high watermark). The KPI worker
commits only after its checkpoint, i.e. once the state and the snapshots that include the
message are acknowledged by Kafka; the history sink commits once the rows are in
ClickHouse. So a group's time lag is the age of the oldest input its output does not
reflect yet, to the sampling interval: the staleness a downstream reader sees.

A sample that cannot be taken in full (a partition without a leader during a broker
failover, a coordinator moving) keeps the last known values and is counted.

High watermarks come from the fetch responses of a consumer tailing every partition
(``get_watermark_offsets(cached=True)``): a ListOffsets query per partition blocks for its
timeout on a dead leader (14 s without a sample during a broker kill) and keeps asking it
until a metadata refresh; the AdminClient's ListOffsets kept failing with
FENCED_LEADER_EPOCH (or answered -1001) for good after a broker restart. Committed offsets
come from a (never subscribed) Consumer of each group: the AdminClient's coordinator-based
requests (ListConsumerGroupOffsets, DescribeConsumerGroups) abort the whole process with
``rd_kafka_enq_once_del_source_return: Assertion `eonce->refcnt > 0' failed`` when a
broker restarts under them (seen here with librdkafka 2.16.0 during a rolling restart;
librdkafka issues #3663, #4605, PR #5397).
"""

from __future__ import annotations

import json
import threading
import time
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.simulator import RunSummary, run
from streams.simulator.sinks import Pacer

TP = tuple[str, int]


class PacedSimulation(threading.Thread):
    """``streams.simulator.run(**kwargs)`` to Kafka in a thread; keeps its summary or its error."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(name="paced-simulation", daemon=True)
        self.pacer = Pacer(kwargs.pop("speed", None))
        self.kwargs = kwargs | {"pacer": self.pacer}
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.summary = run(out="kafka", **self.kwargs)
        except BaseException as exc:
            self.error = exc

    def hurry(self) -> None:
        """The rest of the input as fast as possible: for a test whose faults are done, when
        only the totals still matter (the same messages, sent sooner)."""
        self.pacer.hurry()

    def result(self, timeout_s: float) -> RunSummary:
        self.join(timeout=timeout_s)
        assert not self.is_alive(), f"the simulation did not finish within {timeout_s:.0f} s"
        assert self.error is None and self.summary is not None, f"the simulation failed: {self.error!r}"
        return self.summary


@dataclass(frozen=True)
class Sample:
    t: float  # time.monotonic()
    high: dict[TP, int]
    committed: dict[str, dict[TP, int]]  # group -> partition -> next offset to process


class LagProbe:
    def __init__(self, bootstrap: str, groups: Mapping[str, Iterable[str]], interval_s: float = 0.25) -> None:
        """``groups``: consumer group -> the topics whose lag counts for it."""
        self._admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 2000, "log_level": 0})
        deadline = time.monotonic() + 30
        while True:  # a broker's metadata cache may not show a topic created a moment ago
            topics = self._admin.list_topics(timeout=10).topics
            missing = {t for names in groups.values() for t in names} - set(topics)
            if not missing:
                break
            assert time.monotonic() < deadline, f"topics {sorted(missing)} not visible"
            time.sleep(0.2)
        self.partitions_of = {
            group: [(t, p) for t in names for p in sorted(topics[t].partitions)]
            for group, names in groups.items()
        }
        self.all_partitions = sorted({tp for tps in self.partitions_of.values() for tp in tps})
        reader = {"bootstrap.servers": bootstrap, "enable.auto.commit": False, "log_level": 0}
        # high watermarks come from the fetch responses of a consumer tailing every partition:
        # it follows leader changes like any consumer and never blocks a sample
        self._watermarks = Consumer(reader | {"group.id": "lag-probe-watermarks", "fetch.wait.max.ms": 100})
        self._watermarks.assign([TopicPartition(t, p, OFFSET_END) for t, p in self.all_partitions])
        self._readers = {group: Consumer(reader | {"group.id": group}) for group in self.partitions_of}
        self.interval_s = interval_s
        self.samples: list[Sample] = []
        self.incomplete_samples = 0
        self.errors: Counter[str] = Counter()  # what made samples incomplete
        self.marks: list[tuple[str, float]] = []  # (what happened, time.monotonic()) for the dump
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-probe", daemon=True)

    def start(self) -> LagProbe:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        for reader in (self._watermarks, *self._readers.values()):
            reader.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            self._sample()
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - began)))

    def _sample(self) -> None:
        previous = self.samples[-1] if self.samples else None
        high = dict(previous.high) if previous else {}
        committed = {g: dict(previous.committed[g]) if previous else {} for g in self.partitions_of}
        incomplete = False
        for _ in range(20):  # the tail's messages are not needed, only its fetch responses
            if not self._watermarks.consume(10_000, timeout=0):
                break
        for t, p in self.all_partitions:
            _low, offset = self._watermarks.get_watermark_offsets(TopicPartition(t, p), cached=True)
            if offset is None or offset < 0:  # no fetch response yet (a leader failing over)
                incomplete = self._failed("high watermark", RuntimeError("no fetch response yet"))
            else:
                high[(t, p)] = max(high.get((t, p), 0), offset)
        for group, tps in self.partitions_of.items():
            try:
                request = [TopicPartition(t, p) for t, p in tps]
                for tp in self._readers[group].committed(request, timeout=1):
                    if tp.error is None:  # -1001: nothing committed yet, i.e. from the start
                        committed[group][(tp.topic, tp.partition)] = max(0, tp.offset)
            except Exception as exc:  # coordinator moving: keep the last known values
                incomplete = self._failed(f"committed offsets of {group}", exc)
        self.incomplete_samples += incomplete
        with self._lock:
            self.samples.append(Sample(time.monotonic(), high, committed))

    def _failed(self, what: str, exc: Exception) -> bool:
        self.errors[f"{what}: {str(exc)[:120]}"] += 1
        return True

    # -- analysis ---------------------------------------------------------------------------

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def time_lags(
        self, group: str, samples: list[Sample] | None = None
    ) -> list[tuple[float, dict[TP, float]]]:
        """Per sample: (t, partition -> time lag of ``group`` in seconds)."""
        samples = samples if samples is not None else self.snapshot()
        tps = self.partitions_of[group]
        highs = {tp: [s.high.get(tp, 0) for s in samples] for tp in tps}  # never decrease
        series = []
        for i, sample in enumerate(samples):
            lags = {}
            for tp in tps:
                offset = sample.committed[group].get(tp, 0)
                if offset >= highs[tp][i]:
                    lags[tp] = 0.0
                else:  # the first sample at which message `offset` was readable
                    first = bisect_right(highs[tp], offset, 0, i + 1)
                    lags[tp] = sample.t - samples[min(first, i)].t
            series.append((sample.t, lags))
        return series

    def max_lag(
        self, group: str, t0: float, t1: float, partitions: Iterable[TP] | None = None
    ) -> tuple[float, TP | None]:
        """The largest time lag of ``group`` between t0 and t1 (over ``partitions``, default all)."""
        wanted = set(partitions) if partitions is not None else None
        worst, where = 0.0, None
        for t, lags in self.time_lags(group):
            if t0 <= t <= t1:
                for tp, lag in lags.items():
                    if (wanted is None or tp in wanted) and lag > worst:
                        worst, where = lag, tp
        return worst, where

    def first_within(
        self, group: str, threshold_s: float, after: float, partitions: Iterable[TP] | None = None
    ) -> float | None:
        """The time of the first sample after ``after`` at which every time lag of ``group``
        (over ``partitions``, default all) is at most ``threshold_s``; None: not yet."""
        wanted = set(partitions) if partitions is not None else None
        for t, lags in self.time_lags(group):
            if t > after and all(
                lag <= threshold_s for tp, lag in lags.items() if wanted is None or tp in wanted
            ):
                return t
        return None

    def current_lag(self, group: str, partitions: Iterable[TP] | None = None) -> float:
        """The largest time lag of ``group`` at the latest sample."""
        _, lags = self.time_lags(group)[-1]
        wanted = set(partitions) if partitions is not None else set(lags)
        return max((lag for tp, lag in lags.items() if tp in wanted), default=0.0)

    def input_stall(self, tps: Iterable[TP], t0: float, t1: float) -> float:
        """The longest time between t0 and t1 in which none of ``tps`` got a new readable message
        (the input is a paced producer writing to them all the time)."""
        wanted = list(tps)
        longest, since, last, last_t = 0.0, t0, None, t0
        for sample in self.snapshot():
            if not t0 <= sample.t <= t1:
                continue
            total = sum(sample.high.get(tp, 0) for tp in wanted)
            if last is not None and total > last:
                longest, since = max(longest, sample.t - since), sample.t
            last, last_t = total, sample.t
        return max(longest, last_t - since)

    def mark(self, what: str) -> None:
        self.marks.append((what, time.monotonic()))

    def dump(self, path: Path) -> None:
        """The marks, then every sample as JSON lines: t, then per partition the high
        watermark and each group's committed offset."""
        with path.open("w") as out:
            out.write(json.dumps({"groups": list(self.partitions_of), "marks": self.marks}) + "\n")
            for sample in self.snapshot():
                row = {
                    f"{t}[{p}]": [
                        sample.high.get((t, p)),
                        *(c.get((t, p)) for c in sample.committed.values()),
                    ]
                    for t, p in self.all_partitions
                }
                out.write(json.dumps({"t": round(sample.t, 3), **row}) + "\n")

    def committed(self, group: str) -> dict[TP, int]:
        samples = self.snapshot()
        return dict(samples[-1].committed[group]) if samples else {}

    def high(self) -> dict[TP, int]:
        samples = self.snapshot()
        return dict(samples[-1].high) if samples else {}

    def caught_up(self, group: str) -> bool:
        """At the latest sample, the group has committed every message of its partitions."""
        samples = self.snapshot()
        if not samples:
            return False
        last = samples[-1]
        return all(
            last.committed[group].get(tp, 0) >= last.high.get(tp, 0) for tp in self.partitions_of[group]
        )

    def wait_caught_up(self, group: str, timeout_s: float) -> float:
        """Seconds until ``group`` caught up; AssertionError with the lagging partitions on timeout."""
        began = time.monotonic()
        while not self.caught_up(group):
            if time.monotonic() - began > timeout_s:
                last = self.snapshot()[-1]
                behind = {
                    f"{t}[{p}]": (last.committed[group].get((t, p), 0), last.high.get((t, p), 0))
                    for t, p in self.partitions_of[group]
                    if last.committed[group].get((t, p), 0) < last.high.get((t, p), 0)
                }
                msg = f"{group} not caught up after {timeout_s:.0f} s: (committed, high) {behind}"
                raise AssertionError(msg)
            time.sleep(self.interval_s)
        return time.monotonic() - began
