"""Ground truth: the KPIs the simulator knows to be true, per region x channel x minute.

Computed from the clean raw stream (before faults), independently of the streaming
code, with DESIGN.md's interval rule: offered counts in the minute the contact
entered the queue; answered / abandoned and their waits in the minute it left the
queue; handle time (talk, hold, ACW kept apart) and transfers in the minute ACW ended;
first-line resolution in the minute of ENDED; surveys in the minute of the survey.
Abandons after less than 5 s are short abandons, counted apart. The rules for the
edge shapes (overflow, transfers, holds open at ENDED, ENDED after ABANDONED,
answers without a queue) are on ``GroundTruth``. Every bucket is updated
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


@dataclass(slots=True)
class _Handling:
    """One answered contact until its ACW ends: what its later events add up to."""

    answered_ms: int
    hold_ms: int = 0  # sum of HOLD_ENDED times - sum of HOLD_STARTED times
    holds_open: int = 0
    transferred: bool = False
    ended_ms: int = -1


class GroundTruth:
    """DESIGN section 3 as decided (R1-R5), from the events alone:

    - R1: a contact's facts go to the region of its events after ARRIVED (the handling
      region, ``Contact.region``: the region of QUEUED, or of OFFERED when it has none);
    - R2: ``transferred`` is 1 per handled contact with at least one TRANSFERRED, in the
      minute of its ACW_ENDED;
    - R3: ENDED closes an open hold: its hold lasts until ENDED;
    - R5a: an ENDED of a contact never answered counts nothing;
    - R5b: a contact ANSWERED without a QUEUED is neither offered nor answered (no wait),
      but handled, ended and resolved like any other.
    """

    def __init__(self) -> None:
        self.buckets: dict[tuple[int, str, str], MinuteKpi] = {}
        self._queued: dict[str, int] = {}  # contact -> QUEUED time, until it leaves the queue
        self._handling: dict[str, _Handling] = {}  # contact -> its handling, ANSWERED to ACW_ENDED

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
            self._queued[cid] = t
            self._bucket(t, c).offered += 1
        elif etype is _T.ANSWERED:
            self._handling[cid] = _Handling(t)
            queued = self._queued.pop(cid, None)
            if queued is not None:  # else answered without a queue: no wait, not "answered" (R5b)
                bucket, wait = self._bucket(t, c), t - queued
                bucket.answered += 1
                bucket.wait_ms_answered += wait
                bucket.answered_within_target += wait <= c.target_ms
        elif etype is _T.ABANDONED:
            bucket = self._bucket(t, c)
            if t - self._queued.pop(cid) < SHORT_ABANDON_MS:
                bucket.short_abandoned += 1
            else:
                bucket.abandoned += 1
        elif etype is _T.HOLD_STARTED:
            handling = self._handling[cid]
            handling.hold_ms -= t
            handling.holds_open += 1
        elif etype is _T.HOLD_ENDED:
            handling = self._handling[cid]
            handling.hold_ms += t
            handling.holds_open -= 1
        elif etype is _T.TRANSFERRED:
            self._handling[cid].transferred = True  # counted once, when the contact is handled (R2)
        elif etype is _T.ENDED:
            self._ended(t, c, b)
        elif etype is _T.ACW_ENDED:
            handling = self._handling.pop(cid)
            bucket = self._bucket(t, c)
            bucket.handled += 1
            bucket.talk_ms += handling.ended_ms - handling.answered_ms - handling.hold_ms
            bucket.hold_ms += handling.hold_ms
            bucket.acw_ms += t - handling.ended_ms
            bucket.transferred += handling.transferred

    def _ended(self, t: int, c: Contact, b: object) -> None:
        handling = self._handling.get(c.contact_id)
        if handling is None:  # never answered (an ENDED after ABANDONED): counts nothing (R5a)
            return
        if handling.holds_open == 1:  # ENDED closes the open hold (R3)
            handling.hold_ms += t
            handling.holds_open = 0
        elif handling.holds_open:
            msg = f"{c.contact_id}: {handling.holds_open} holds open at ENDED, expected 0 or 1"
            raise AssertionError(msg)
        handling.ended_ms = t
        bucket = self._bucket(t, c)
        bucket.ended += 1
        bucket.resolved_first_line += b[1] is Resolution.RESOLVED_FIRST_LINE  # type: ignore[index]

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
