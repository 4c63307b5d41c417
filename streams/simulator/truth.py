"""Ground truth: the KPIs the simulator knows to be true, per region x channel x minute.

Computed from the clean raw stream (before faults), independently of the streaming
code, with DESIGN.md's interval rule: offered counts in the minute the contact
entered the queue; answered / abandoned and their waits in the minute it left the
queue; handle time (talk, hold, ACW kept apart) in the minute ACW ended; first-line
resolution in the minute of ENDED; surveys in the minute of the survey. Abandons
after less than 5 s are short abandons, counted apart. Every bucket is updated
only at the current event time, so a minute is final once the stream has moved
past it: ``observe`` hands out finished minutes as it goes (memory stays bounded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, fields

from streams.domain.events import ContactEventType, Resolution
from streams.simulator.model import CONTACT, SURVEY, Contact, RawItem

MINUTE_MS = 60_000
SHORT_ABANDON_MS = 5_000
_T = ContactEventType


@dataclass
class MinuteKpi:
    minute_ms: int
    region: str
    channel: str
    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0  # after the short-abandon threshold
    short_abandoned: int = 0
    wait_ms_answered: int = 0
    handled: int = 0
    talk_ms: int = 0
    hold_ms: int = 0
    acw_ms: int = 0
    transferred: int = 0
    ended: int = 0
    resolved_first_line: int = 0
    surveys: int = 0
    top_box: int = 0
    score_sum: int = 0

    @property
    def service_level(self) -> float | None:
        """Answered within T / (answered + abandoned after the short threshold)."""
        base = self.answered + self.abandoned
        return self.answered_within_target / base if base else None

    def as_row(self) -> dict[str, object]:
        return asdict(self)


COLUMNS = tuple(f.name for f in fields(MinuteKpi))


class GroundTruth:
    def __init__(self) -> None:
        self.buckets: dict[tuple[int, str, str], MinuteKpi] = {}
        self._hold_started: dict[str, int] = {}
        self._hold_ms: dict[str, int] = {}
        self._ended: dict[str, int] = {}

    def _bucket(self, t: int, contact: Contact) -> MinuteKpi:
        minute = t - t % MINUTE_MS
        key = (minute, contact.region, contact.channel.value)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = MinuteKpi(minute, contact.region, contact.channel.value)
        return bucket

    def add(self, item: RawItem) -> None:
        t, _, kind, subject, a, b = item
        if kind == SURVEY:
            bucket = self._bucket(t, subject)
            bucket.surveys += 1
            bucket.top_box += a == 5
            bucket.score_sum += a
            return
        if kind != CONTACT or a is _T.ARRIVED:
            return
        self._contact_step(t, subject, a, b)

    def _contact_step(self, t: int, c: Contact, etype: ContactEventType, b: object) -> None:
        cid = c.contact_id
        if etype is _T.QUEUED:
            self._bucket(t, c).offered += 1
        elif etype is _T.ANSWERED:
            bucket, wait = self._bucket(t, c), t - c.arrived_ms
            bucket.answered += 1
            bucket.wait_ms_answered += wait
            bucket.answered_within_target += wait <= c.target_ms
        elif etype is _T.ABANDONED:
            bucket = self._bucket(t, c)
            if t - c.arrived_ms < SHORT_ABANDON_MS:
                bucket.short_abandoned += 1
            else:
                bucket.abandoned += 1
        elif etype is _T.TRANSFERRED:
            self._bucket(t, c).transferred += 1
        elif etype is _T.HOLD_STARTED:
            self._hold_started[cid] = t
        elif etype is _T.HOLD_ENDED:
            self._hold_ms[cid] = self._hold_ms.get(cid, 0) + t - self._hold_started.pop(cid)
        elif etype is _T.ENDED:
            self._ended[cid] = t
            bucket = self._bucket(t, c)
            bucket.ended += 1
            bucket.resolved_first_line += b[1] is Resolution.RESOLVED_FIRST_LINE  # type: ignore[index]
        elif etype is _T.ACW_ENDED:
            ended, hold = self._ended.pop(cid), self._hold_ms.pop(cid, 0)
            bucket = self._bucket(t, c)
            bucket.handled += 1
            bucket.talk_ms += ended - c.answered_ms - hold
            bucket.hold_ms += hold
            bucket.acw_ms += t - ended

    def closed(self, before_ms: int) -> list[MinuteKpi]:
        """Remove and return the buckets of minutes that end at or before ``before_ms``."""
        done = [k for k in self.buckets if k[0] + MINUTE_MS <= before_ms]
        return [self.buckets.pop(k) for k in sorted(done)]


def observe(
    batches: Iterable[list[RawItem]], truth: GroundTruth, on_minutes: Callable[[list[MinuteKpi]], None]
) -> Iterator[list[RawItem]]:
    """Pass the batches through, feeding ``truth``; finished minutes go to ``on_minutes``."""
    for batch in batches:
        for item in batch:
            truth.add(item)
        if batch:
            finished = truth.closed(batch[-1][0] - batch[-1][0] % MINUTE_MS)
            if finished:
                on_minutes(finished)
        yield batch
    on_minutes(truth.closed(2**62))
