"""The interval rule: which minute bucket each contact event counts in (DESIGN.md section 3).

offered            -> bucket where the contact entered the queue (QUEUED)
answered/abandoned -> bucket where it left the queue (ANSWERED / ABANDONED), with its wait
short abandons     -> counted apart (wait < 5 s); also marked in the offered bucket
handle time        -> bucket where ACW ended (talk, hold, ACW kept apart); ENDED closes an
                      open hold at the ENDED time
transferred        -> 1 per handled contact transferred at least once, in its handle bucket
ended, FLR         -> bucket of ENDED, for answered contacts only (an ENDED after an
                      abandon counts nowhere)
surveys            -> bucket of the survey

Region: a contact's facts belong to the region of its QUEUED event (the handling region;
an overflowed contact's ARRIVED carries its home region); without a QUEUED event, to the
region of its first other non-ARRIVED event. Never to the region of whichever event a
partition happened to deliver first. A contact answered without a QUEUED event
(direct to an agent) is not offered nor answered (no queue wait) but is handled and ended.

`step` is pure: (progress of one contact, event) -> (new progress, bucket deltas). It
tolerates events out of order (a fact is emitted once everything it needs has
arrived) and duplicates (event ids already seen for the contact change nothing),
so replaying a contact's events yields the same deltas exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from streams.domain.events import Channel, ContactEvent, ContactEventType, Resolution, SurveyEvent
from streams.domain.kpi import DEFAULT_SL_THRESHOLD_MS, SHORT_ABANDON_MS, bucket_start

BucketKey = tuple[str, Channel, int]  # region, channel, bucket start (epoch ms)
Delta = tuple[BucketKey, dict[str, int]]

_T = ContactEventType


@dataclass(frozen=True, slots=True)
class ContactProgress:
    """What is known of one contact so far; plain values, serialisable."""

    region: str  # the handling region once `located` (see the module docstring)
    channel: Channel
    seen: frozenset[str] = frozenset()
    queued_at: int | None = None
    answered_at: int | None = None
    abandoned_at: int | None = None
    ended_at: int | None = None
    acw_ended_at: int | None = None
    hold_starts: tuple[int, ...] = ()
    hold_ends: tuple[int, ...] = ()
    emitted: frozenset[str] = field(default_factory=frozenset)
    handled_hold_ms: int = 0  # hold time already counted in the handle bucket
    located: bool = False  # region comes from a non-ARRIVED event (else the ARRIVED's home region)
    transferred: bool = False  # at least one TRANSFERRED event
    resolution: str | None = None  # of the first ENDED recorded

    @property
    def complete(self) -> bool:
        """Every fact of the contact has been emitted (only late hold or transfer events could
        still correct its handle bucket)."""
        return "handle" in self.emitted or "abandon" in self.emitted


def _key(progress: ContactProgress, time_ms: int) -> BucketKey:
    return (progress.region, progress.channel, bucket_start(time_ms))


_FIRST_TIME = {
    _T.QUEUED: "queued_at",
    _T.ANSWERED: "answered_at",
    _T.ABANDONED: "abandoned_at",
    _T.ENDED: "ended_at",
    _T.ACW_ENDED: "acw_ended_at",
}
_FIELDS = tuple(f.name for f in fields(ContactProgress))


def _copy(progress: ContactProgress, changes: dict[str, object]) -> ContactProgress:
    """``dataclasses.replace`` without its per-call field introspection (it was the hot spot)."""
    values = {name: getattr(progress, name) for name in _FIELDS}
    values.update(changes)
    return ContactProgress(**values)


def _record(progress: ContactProgress, event: ContactEvent) -> ContactProgress:
    t, kind = event.event_time_ms, event.type
    changes: dict[str, object] = {"seen": progress.seen | {event.event_id}}
    attribute = _FIRST_TIME.get(kind)
    if attribute is not None and getattr(progress, attribute) is None:
        changes[attribute] = t
        if kind is _T.QUEUED:  # the queue the contact entered decides its region
            changes["region"], changes["located"] = event.region, True
        elif kind is _T.ENDED:
            changes["resolution"] = None if event.resolution is None else event.resolution.value
    elif kind is _T.HOLD_STARTED:
        changes["hold_starts"] = (*progress.hold_starts, t)
    elif kind is _T.HOLD_ENDED:
        changes["hold_ends"] = (*progress.hold_ends, t)
    elif kind is _T.TRANSFERRED:
        changes["transferred"] = True
    if not progress.located and kind is not _T.ARRIVED and "located" not in changes:
        changes["region"], changes["located"] = event.region, True
    return _copy(progress, changes)


def _hold_ms(p: ContactProgress) -> int | None:
    """Total hold time once every hold is closed, by HOLD_ENDED or by ENDED (a call can end on
    hold: the open hold lasts until ENDED); None while a hold is still open."""
    opened = len(p.hold_starts) - len(p.hold_ends)
    if opened == 0:
        return max(0, sum(p.hold_ends) - sum(p.hold_starts))
    if opened == 1 and p.ended_at is not None:
        return max(0, sum(p.hold_ends) + p.ended_at - sum(p.hold_starts))
    return None


def _derive(p: ContactProgress, threshold_ms: int) -> tuple[list[Delta], set[str], int]:
    """Facts that became derivable, each at most once per contact."""
    deltas: list[Delta] = []
    done: set[str] = set()

    def emit(fact: str, time_ms: int, counters: dict[str, int]) -> None:
        deltas.append((_key(p, time_ms), counters))
        done.add(fact)

    if p.queued_at is not None and "offered" not in p.emitted:
        emit("offered", p.queued_at, {"offered": 1})
    if p.queued_at is not None and p.answered_at is not None and "answer" not in p.emitted:
        wait = max(0, p.answered_at - p.queued_at)
        emit(
            "answer",
            p.answered_at,
            {"answered": 1, "total_wait_ms": wait, "answered_within_threshold": int(wait <= threshold_ms)},
        )
    if p.queued_at is not None and p.abandoned_at is not None and p.answered_at is None:
        if "abandon" not in p.emitted:
            wait = max(0, p.abandoned_at - p.queued_at)
            short = wait < SHORT_ABANDON_MS
            emit(
                "abandon",
                p.abandoned_at,
                {
                    "abandoned": 1,
                    "short_abandoned": int(short),
                    "abandoned_within_threshold": int(wait <= threshold_ms),
                },
            )
            if short:
                deltas.append((_key(p, p.queued_at), {"short_offered": 1}))
    if p.ended_at is not None and p.answered_at is not None and "ended" not in p.emitted:
        resolved = p.resolution == Resolution.RESOLVED_FIRST_LINE.value
        emit("ended", p.ended_at, {"ended": 1, "resolved_first_line": int(resolved)})
    closed_hold = _hold_ms(p)
    hold = p.handled_hold_ms if closed_hold is None else closed_hold
    if "handle" not in p.emitted:
        if (
            p.answered_at is not None
            and p.ended_at is not None
            and p.acw_ended_at is not None
            and closed_hold is not None
        ):
            talk = max(0, p.ended_at - p.answered_at - hold)
            acw = max(0, p.acw_ended_at - p.ended_at)
            counters = {"handled": 1, "talk_ms": talk, "hold_ms": hold, "acw_ms": acw}
            if p.transferred:
                counters["transferred"] = 1
                done.add("transfer")
            emit("handle", p.acw_ended_at, counters)
    elif p.acw_ended_at is not None:
        if hold != p.handled_hold_ms:
            # a hold segment arrived after the handle time was emitted: move time from talk to hold
            moved = hold - p.handled_hold_ms
            deltas.append((_key(p, p.acw_ended_at), {"talk_ms": -moved, "hold_ms": moved}))
        if p.transferred and "transfer" not in p.emitted:  # a transfer delivered after the handle time
            emit("transfer", p.acw_ended_at, {"transferred": 1})
    return deltas, done, hold


def step(
    progress: ContactProgress | None,
    event: ContactEvent,
    thresholds_ms: Mapping[Channel, int] = DEFAULT_SL_THRESHOLD_MS,
) -> tuple[ContactProgress, list[Delta]]:
    """Apply one contact event; returns the new progress and the bucket deltas it releases."""
    if progress is None:
        progress = ContactProgress(region=event.region, channel=event.channel)
    if event.event_id in progress.seen:
        return progress, []
    progress = _record(progress, event)
    deltas, done, hold = _derive(progress, thresholds_ms[progress.channel])
    if done or ("handle" in progress.emitted and hold != progress.handled_hold_ms):
        handled_hold = (
            hold if ("handle" in done or "handle" in progress.emitted) else progress.handled_hold_ms
        )
        progress = _copy(progress, {"emitted": progress.emitted | done, "handled_hold_ms": handled_hold})
    return progress, deltas


def survey_delta(event: SurveyEvent) -> Delta:
    counters = {"surveys": 1, "survey_score_sum": event.score, "top_box": int(event.score == 5)}
    return (event.region, event.channel, bucket_start(event.event_time_ms)), counters
