"""Repeat-contact first-contact resolution in SQL (the rule of streams/domain/fcr.py).

Portable to ClickHouse 18.16 and chdb: one row per contact (arrival, customer,
handled), an ALL INNER JOIN on the customer for the later arrivals within the
horizon, and IN for "was repeated". Duplicated events count once (grouped by
contact_id).
"""

from __future__ import annotations

from streams.domain.fcr import DEFAULT_HORIZON_MS, RepeatFcr
from streams.history.store import HistoryStore

_CONTACTS = """
SELECT contact_id,
       argMin(customer_ref, event_time_ms) AS customer_ref,
       argMin(region, event_time_ms) AS region,
       toString(argMin(channel, event_time_ms)) AS channel,
       minIf(event_time_ms, type = 'ARRIVED') AS arrived,
       countIf(type = 'ACW_ENDED') > 0 AS handled
FROM {db}.contact_events
GROUP BY contact_id
HAVING arrived > 0
"""


def repeat_fcr_select(database: str, as_of_ms: int, horizon_ms: int = DEFAULT_HORIZON_MS) -> str:
    contacts = _CONTACTS.format(db=database)
    horizon, as_of = int(horizon_ms), int(as_of_ms)
    repeated = (  # subquery aliases: current ClickHouse requires them in a JOIN, 18.16 accepts them
        "SELECT contact_id FROM "  # noqa: S608
        f"(SELECT contact_id, customer_ref, arrived FROM ({contacts}) WHERE handled) AS h "
        f"ALL INNER JOIN (SELECT customer_ref, arrived AS later FROM ({contacts})) AS o USING customer_ref "
        f"WHERE later > arrived AND later <= arrived + {horizon}"
    )
    return (
        "SELECT region, channel, count() AS matured, "  # noqa: S608
        f"countIf(contact_id NOT IN ({repeated})) AS resolved "
        f"FROM ({contacts}) WHERE handled AND arrived + {horizon} <= {as_of} "
        "GROUP BY region, channel ORDER BY region, channel"
    )


def repeat_contact_fcr(
    store: HistoryStore, as_of_ms: int, horizon_ms: int = DEFAULT_HORIZON_MS
) -> dict[tuple[str, str], RepeatFcr]:
    rows = store.query(repeat_fcr_select(store.database, as_of_ms, horizon_ms))
    return {(str(r[0]), str(r[1])): RepeatFcr(int(r[2]), int(r[3])) for r in rows}
