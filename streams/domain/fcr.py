"""Repeat-contact first-contact resolution (DESIGN.md section 3): a handled contact counts as
resolved when its customer did not contact again within the horizon (default 7 days).

A contact's time is its arrival; "contacted again" is any later arrival of the same
pseudonymised customer in (arrival, arrival + horizon], on any channel or region. A
contact matures when arrival + horizon <= as_of; only matured contacts are counted,
in the region x channel of the contact. Pure: the stream cannot hold 7 days of
customers per partition cheaply, so history computes it (streams/history/fcr_sql.py,
the same rule in SQL, checked against this function by a contract test).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_HORIZON_MS = 7 * 86_400_000


@dataclass(frozen=True, slots=True)
class ContactArrival:
    contact_id: str
    customer_ref: str
    region: str
    channel: str
    arrived_ms: int
    handled: bool


@dataclass(frozen=True, slots=True)
class RepeatFcr:
    matured: int  # handled contacts whose horizon has passed
    resolved: int  # ... whose customer did not contact again within it

    @property
    def ratio(self) -> float | None:
        return self.resolved / self.matured if self.matured else None


def repeat_contact_fcr(
    contacts: Iterable[ContactArrival], as_of_ms: int, horizon_ms: int = DEFAULT_HORIZON_MS
) -> dict[tuple[str, str], RepeatFcr]:
    """(region, channel) -> matured and resolved handled contacts; duplicates of a contact_id count once."""
    unique = {c.contact_id: c for c in contacts}
    arrivals: dict[str, list[int]] = {}
    for c in unique.values():
        arrivals.setdefault(c.customer_ref, []).append(c.arrived_ms)
    for times in arrivals.values():
        times.sort()
    counts: dict[tuple[str, str], list[int]] = {}
    for c in unique.values():
        if not c.handled or c.arrived_ms + horizon_ms > as_of_ms:
            continue
        times = arrivals[c.customer_ref]
        later = bisect_right(times, c.arrived_ms)  # first arrival strictly after this one
        repeated = later < len(times) and times[later] <= c.arrived_ms + horizon_ms
        entry = counts.setdefault((c.region, c.channel), [0, 0])
        entry[0] += 1
        entry[1] += not repeated
    return {key: RepeatFcr(matured, resolved) for key, (matured, resolved) in counts.items()}
