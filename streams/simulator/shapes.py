"""Edge shapes: contact lifecycles that real ACDs and channels emit and KPI code gets wrong.

Each is off by default (``SimConfig.EDGE_SHAPES``) and switched on by a share; their random
numbers are drawn after every other draw of an hour (``ArrivalModel.chunk``) and only when
one is on, so default runs keep their bytes. What each emits, and the rule of DESIGN.md
section 3 it exercises (R1-R5, see ``truth.GroundTruth``):

- overflow (``overflow_share`` of contacts): QUEUED in another simulated region with the
  same queue, whatever the EWT (R1: the facts belong to the handling region);
- second transfer (``second_transfer_share`` of transferred contacts): two TRANSFERRED (R2);
- end on hold (``end_on_hold_share`` of held voice contacts): HOLD_STARTED, no HOLD_ENDED,
  then ENDED (R3);
- ENDED after ABANDONED (``abandon_end_share`` of abandoned contacts): the channel closes
  the contact, UNRESOLVED and with no agent, ``abandon_end_delay_s`` later (R5a);
- answer without a queue (``direct_answer_share`` of contacts): ARRIVED, OFFERED, ANSWERED
  ... with no QUEUED, as a callback or a personal queue (R5b).
"""

from __future__ import annotations

from streams.simulator.arrivals import ArrivalChunk
from streams.simulator.config import WECHAT_REGIONS, SimConfig
from streams.simulator.model import Contact

SECOND_TRANSFER_AT = 0.975  # of the talk: after the first transfer (0.95), before the talk ends


def mark_edge_shapes(contact: Contact, chunk: ArrivalChunk, i: int, config: SimConfig) -> None:
    """Set the edge shapes of arrival ``i`` on its contact (the forced overflow is the engine's:
    it depends on the routing decision)."""
    if contact.transfer_at >= 0 and chunk.second_transfer_u[i] < config.second_transfer_share:
        contact.second_transfer_at = SECOND_TRANSFER_AT
    if contact.hold_at >= 0 and chunk.end_on_hold_u[i] < config.end_on_hold_share:
        contact.end_on_hold = True
    u = chunk.abandon_end_u[i]
    if u < config.abandon_end_share:  # u rescaled to [0, 1) places the ENDED in the delay range
        low, high = config.abandon_end_delay_s
        contact.abandon_end_ms = int((low + (high - low) * u / config.abandon_end_share) * 1000)
    if chunk.direct_u[i] < config.direct_answer_share:
        contact.direct = True
        contact.patience_ms = -1  # the agent reaches the customer: nobody abandons a callback


def overflow_candidates(codes: tuple[str, ...]) -> dict[tuple[str, bool], tuple[str, ...]]:
    """(region, Chinese messenger queue?) -> the other simulated regions a forced overflow may
    pick: all of them, or for the zh queue the WeChat regions (the only ones staffing it)."""
    zh = tuple(c for c in codes if c in WECHAT_REGIONS)
    out = {}
    for code in codes:
        out[(code, False)] = tuple(c for c in codes if c != code)
        out[(code, True)] = tuple(c for c in zh if c != code)
    return out
