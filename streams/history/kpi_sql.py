"""KPI minute buckets computed in SQL from the raw history: the interval rule of
streams/domain/intervals.py, written once more for ClickHouse (18.16 and current).

Used by backfill and to check history against real time: `tests/contract/
test_kpi_sql.py` asserts these buckets equal the domain aggregators' for the same
events, counter by counter. Duplicated events count once (DISTINCT on the event
columns); a fact needs all of its events (a missing time is 0: minIf of nothing).
"""

from __future__ import annotations

from streams.domain.kpi import COUNTERS, DEFAULT_SL_THRESHOLD_MS, MINUTE_MS, SHORT_ABANDON_MS
from streams.history.store import HistoryStore

_THRESHOLD = "multiIf({})".format(
    ", ".join(f"channel = '{ch.value}', {ms}" for ch, ms in DEFAULT_SL_THRESHOLD_MS.items()) + ", 0"
)

_PER_CONTACT = """
SELECT
    contact_id,
    if(countIf(type = 'QUEUED') > 0, argMinIf(region, event_time_ms, type = 'QUEUED'),
       argMinIf(region, event_time_ms, type != 'ARRIVED')) AS region,
    argMin(channel, event_time_ms) AS channel,
    minIf(event_time_ms, type = 'QUEUED') AS q,
    minIf(event_time_ms, type = 'ANSWERED') AS a,
    minIf(event_time_ms, type = 'ABANDONED') AS ab,
    minIf(event_time_ms, type = 'ENDED') AS e,
    minIf(event_time_ms, type = 'ACW_ENDED') AS acw,
    countIf(type = 'HOLD_STARTED') AS holds_started,
    countIf(type = 'HOLD_ENDED') AS holds_ended,
    sumIf(event_time_ms, type = 'HOLD_ENDED') - sumIf(event_time_ms, type = 'HOLD_STARTED')
        + if(holds_started = holds_ended + 1, e, 0) AS hold,
    argMinIf(resolution, event_time_ms, type = 'ENDED') AS resolution,
    groupArrayIf(event_time_ms, type = 'TRANSFERRED') AS transfers
FROM (
    SELECT DISTINCT event_id, contact_id, type, channel, region, event_time_ms, resolution
    FROM {db}.contact_events
    {where}
)
GROUP BY contact_id
"""
_STAGE_COLUMNS = (
    "contact_id, region, channel, q, a, ab, e, acw, holds_started, holds_ended, hold, resolution, transfers"
)
CONTACTS_PER_SLICE = 400_000  # contacts aggregated per query (~1 GB on 18.16)
SCAN_MARGIN_MS = 2 * 86_400_000  # a windowed select reads raw events this far around the window
WINDOW_MS = 7 * 86_400_000  # fact times per bucket query: a week of buckets (~1 M rows)

# fact -> (bucket time, condition, counters); every other counter is 0 in that row
_FACTS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("q", "q > 0", {"offered": "1"}),
    ("q", f"q > 0 AND ab > 0 AND a = 0 AND ab - q < {SHORT_ABANDON_MS}", {"short_offered": "1"}),
    (
        "a",
        "q > 0 AND a > 0",
        {
            "answered": "1",
            "total_wait_ms": "greatest(a - q, 0)",
            "answered_within_threshold": f"greatest(a - q, 0) <= {_THRESHOLD}",
        },
    ),
    (
        "ab",
        "q > 0 AND ab > 0 AND a = 0",
        {
            "abandoned": "1",
            "short_abandoned": f"greatest(ab - q, 0) < {SHORT_ABANDON_MS}",
            "abandoned_within_threshold": f"greatest(ab - q, 0) <= {_THRESHOLD}",
        },
    ),
    ("e", "a > 0 AND e > 0", {"ended": "1", "resolved_first_line": "resolution = 'RESOLVED_FIRST_LINE'"}),
    (
        "acw",
        # ENDED closes an open hold (`hold` adds e when one more hold started than ended)
        "a > 0 AND e > 0 AND acw > 0 AND (holds_started = holds_ended OR holds_started = holds_ended + 1)",
        {
            "handled": "1",
            "talk_ms": "greatest(e - a - greatest(hold, 0), 0)",
            "hold_ms": "greatest(hold, 0)",
            "acw_ms": "greatest(acw - e, 0)",
            "transferred": "length(transfers) > 0",  # once per handled contact, in its handle bucket
        },
    ),
)


def _select(time_expr: str, source: str, condition: str, counters: dict[str, str]) -> str:
    columns = ", ".join(f"toInt64({counters.get(name, '0')}) AS {name}" for name in COUNTERS)
    bucket = f"toInt64(intDiv({time_expr}, {MINUTE_MS}) * {MINUTE_MS}) AS bucket"
    return f"SELECT region, channel, {bucket}, {columns} FROM {source} WHERE {condition}"  # noqa: S608


def kpi_minute_select(
    database: str, contacts: str | None = None, window: tuple[int, int] | None = None
) -> str:
    """SELECT region, channel, bucket (epoch ms), <COUNTERS summed> over the whole raw history;
    or from per-contact rows already staged (``contacts``: a subquery or table with the
    columns of _PER_CONTACT), counting only facts whose time is in ``window`` [from, to) ms.
    With a window and no staged contacts, only raw events within SCAN_MARGIN_MS of the
    window are read (a report of one day does not aggregate a year of contacts): a contact
    whose lifecycle reaches further than that is cut there."""
    where = ""
    if window is not None and contacts is None:
        scan_from, scan_to = int(window[0]) - SCAN_MARGIN_MS, int(window[1]) + SCAN_MARGIN_MS
        where = f"WHERE event_time_ms >= {scan_from} AND event_time_ms < {scan_to}"
    per_contact = contacts or f"({_PER_CONTACT.format(db=database, where=where)})"

    def within(time_expr: str, condition: str) -> str:
        if window is None:
            return condition
        return f"({condition}) AND {time_expr} >= {int(window[0])} AND {time_expr} < {int(window[1])}"

    parts = [_select(t, per_contact, within(t, cond), counters) for t, cond, counters in _FACTS]
    surveys = (
        "(SELECT DISTINCT event_id, region, channel, score, event_time_ms "  # noqa: S608
        f"FROM {database}.survey_events)"
    )
    parts.append(
        _select(
            "event_time_ms",
            surveys,
            within("event_time_ms", "1"),
            {"surveys": "1", "survey_score_sum": "score", "top_box": "score = 5"},
        )
    )
    sums = ", ".join(f"sum({name}) AS {name}" for name in COUNTERS)
    union = "\nUNION ALL\n".join(parts)
    return f"SELECT region, channel, bucket, {sums} FROM (\n{union}\n) GROUP BY region, channel, bucket"  # noqa: S608


def recompute_kpi_minutes(store: HistoryStore, version: int) -> int:
    """Write every bucket into kpi_minute with ``version`` (newer versions supersede); returns rows.

    In bounded pieces, so that a month fits the server's per-query memory: (1) the
    per-contact facts into kpi_contact_stage, one hash slice of contact_id at a time (a
    contact's events always land in one slice); (2) the buckets, a week of fact
    times at a time, from the staged contacts and the surveys. Same numbers as
    ``kpi_minute_select`` over the whole history (tests/contract/test_kpi_sql.py).
    """
    db, run = store.database, int(version)
    stage = f"{db}.kpi_contact_stage"
    ((contacts, first_ms, last_ms),) = store.query(
        f"SELECT uniq(contact_id), min(event_time_ms), max(event_time_ms) FROM {db}.contact_events"  # noqa: S608
    )
    ((survey_first, survey_last, surveys),) = store.query(
        f"SELECT min(event_time_ms), max(event_time_ms), count() FROM {db}.survey_events"  # noqa: S608
    )
    if not contacts and not surveys:
        return 0
    store.execute(f"ALTER TABLE {stage} DROP PARTITION {run}")  # a rerun of the same version
    try:
        slices = max(1, -(-int(contacts) // CONTACTS_PER_SLICE))
        for k in range(slices):
            where = f"WHERE cityHash64(contact_id) % {slices} = {k}" if slices > 1 else ""
            store.execute(
                f"INSERT INTO {stage} (run, {_STAGE_COLUMNS}) "  # noqa: S608
                f"SELECT {run}, {_STAGE_COLUMNS} FROM ({_PER_CONTACT.format(db=db, where=where)})"
            )
        times = [int(t) for t in (first_ms, last_ms, survey_first, survey_last) if t]
        staged = f"(SELECT {_STAGE_COLUMNS} FROM {stage} WHERE run = {run})"  # noqa: S608
        columns = ", ".join(COUNTERS)
        for piece in range(min(times) // WINDOW_MS, max(times) // WINDOW_MS + 1):
            window = (piece * WINDOW_MS, (piece + 1) * WINDOW_MS)
            select = kpi_minute_select(db, contacts=staged, window=window)
            store.execute(
                f"INSERT INTO {db}.kpi_minute (region, channel, bucket_start, version, {columns}) "  # noqa: S608
                f"SELECT region, channel, toDateTime(intDiv(bucket, 1000), 'UTC'), {run}, {columns} "
                f"FROM ({select})"
            )
    finally:
        store.execute(f"ALTER TABLE {stage} DROP PARTITION {run}")
    (row,) = store.query(f"SELECT count() FROM {db}.kpi_minute WHERE version = {run}")  # noqa: S608
    return int(row[0])
