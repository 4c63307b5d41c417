"""Parameters of the digital twin, with their defaults and where each default comes from.

Everything the simulator draws from is here, in one frozen object, so that a run is
reproducible from (config, seed). Sources are in the comments and docs/simulator.md;
"DESIGN" means /work/shared/DESIGN.md (the reference operation's published targets),
"assumed" means a plausible value chosen here, to be replaced by measured data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal, TypeVar

from streams.domain.events import Channel, Platform

if TYPE_CHECKING:
    from streams.domain.shift_plan import ShiftAssignment

Distribution = Literal["lognormal", "exponential"]
MONTH_DAYS = 365.25 / 12
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class HandleTime:
    """Total handle time (talk + hold + ACW) of one contact on one channel."""

    mean_s: float
    cv: float = 1.2
    distribution: Distribution = "lognormal"
    acw_share: float = 0.15  # part of the handle time spent in after-call work (assumed)

    def lognormal_params(self) -> tuple[float, float]:
        """(mu, sigma) of the underlying normal for the given mean and coefficient of variation."""
        sigma2 = math.log1p(self.cv * self.cv)
        return math.log(self.mean_s) - sigma2 / 2.0, math.sqrt(sigma2)


@dataclass(frozen=True, slots=True)
class ChannelParams:
    share: float  # of all contacts
    handle: HandleTime
    answer_target_s: float  # service level threshold T (DESIGN section 3)
    patience_mean_s: float | None  # exponential patience; None = never abandons
    concurrency: int = 1  # contacts one agent serves at once
    queue: str = "general"


def _frozen(mapping: dict[K, V]) -> MappingProxyType[K, V]:
    return MappingProxyType(mapping)


# Channel mix: the project brief (voice 60 %, chat 20 %, messenger 12 %, email 8 %).
# Voice handle time: DESIGN "average handling time about 2 min 20 s" (140 s), CV 1.2
# from the lognormal fits of Brown et al. (2005, JASA, "Statistical analysis of a
# telephone call center"). Chat/messenger/email handle times, concurrency and
# patience means: assumed (within the brief's 1-5 min patience range).
DEFAULT_CHANNELS: MappingProxyType[Channel, ChannelParams] = _frozen(
    {
        Channel.VOICE: ChannelParams(0.60, HandleTime(140.0), 40.0, 120.0, 1, "voice"),
        Channel.CHAT: ChannelParams(0.20, HandleTime(420.0, acw_share=0.05), 60.0, 180.0, 2, "chat"),
        Channel.MESSENGER: ChannelParams(
            0.12, HandleTime(600.0, acw_share=0.05), 120.0, 300.0, 3, "messenger"
        ),
        Channel.EMAIL: ChannelParams(0.08, HandleTime(300.0, cv=1.0), 86_400.0, None, 1, "email"),
    }
)

# Messenger platforms outside the WeChat regions (assumed, Russian market shares).
DEFAULT_PLATFORMS: MappingProxyType[Platform, float] = _frozen(
    {Platform.WHATSAPP: 0.40, Platform.TELEGRAM: 0.38, Platform.VIBER: 0.12, Platform.VK: 0.10}
)
# WeChat contacts (language zh) come from the Far East and the two capitals (assumed);
# those regions staff Chinese-speaking messenger agents (queue "messenger-zh").
WECHAT_REGIONS = frozenset({"RU-PRI", "RU-KHA", "RU-AMU", "RU-YEV", "RU-ZAB", "RU-SAK", "RU-MOW", "RU-SPE"})
WECHAT_SHARE = 0.10  # of messenger contacts in those regions (assumed)
ZH_QUEUE = "messenger-zh"

# Hour-of-day shape in LOCAL time, 00..23 (assumed B2C telecom profile: night trough,
# morning ramp, plateau 10-17 with a lunch dip, evening decline; the two-hump shape of
# Brown et al. 2005 and Gans, Koole & Mandelbaum 2003, "Telephone call centers").
DEFAULT_HOURLY_SHAPE: tuple[float, ...] = (
    0.6, 0.4, 0.3, 0.25, 0.25, 0.35, 0.8, 2.0, 4.2, 6.4, 7.6, 7.8,
    7.2, 6.8, 7.2, 7.1, 6.8, 6.3, 5.6, 4.8, 4.0, 3.2, 2.1, 1.2,
)  # fmt: skip
# Day-of-week factors Monday..Sunday, normalised to mean 1 in use (assumed).
DEFAULT_DOW: tuple[float, ...] = (1.12, 1.05, 1.02, 1.00, 1.00, 0.85, 0.80)
FLAT_HOURLY_SHAPE: tuple[float, ...] = (1.0,) * 24
FLAT_DOW: tuple[float, ...] = (1.0,) * 7

SEGMENTS = (("STANDARD", 0.90, 0), ("BUSINESS", 0.08, 3), ("VIP", 0.02, 6))  # (segment, share, priority)
REASON_CODES: MappingProxyType[Channel, tuple[str, ...]] = _frozen(
    {
        Channel.VOICE: ("billing.balance", "billing.dispute", "internet.no_connection", "tariff.change"),
        Channel.CHAT: ("billing.balance", "tariff.change", "device.setup", "order.status"),
        Channel.MESSENGER: ("roaming.activation", "billing.balance", "order.status", "device.setup"),
        Channel.EMAIL: ("claims.refund", "billing.dispute", "contract.documents", "order.status"),
    }
)
# Survey score distribution 1..5 (DESIGN: about 95 % rate 5 of 5).
DEFAULT_SCORES: tuple[float, ...] = (0.008, 0.007, 0.01, 0.025, 0.95)


@dataclass(frozen=True, slots=True)
class Faults:
    """Rates (per emitted message) of deliberate faults, for testing the pipeline's handling."""

    duplicate: float = 0.0  # the same message (same event_id) sent twice
    late: float = 0.0  # held back and sent after later events (out of order), same event time
    malformed: float = 0.0  # value replaced by bytes that fail decoding or validation
    late_min_s: float = 30.0
    late_max_s: float = 900.0  # beyond DESIGN's 10 min allowed lateness for some

    def __post_init__(self) -> None:
        for name in ("duplicate", "late", "malformed"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 1.0:
                msg = f"fault rate {name}={rate} is outside [0, 1)"
                raise ValueError(msg)

    @property
    def any(self) -> bool:
        return self.duplicate > 0 or self.late > 0 or self.malformed > 0


EDGE_SHAPES = (
    "overflow_share",
    "second_transfer_share",
    "end_on_hold_share",
    "abandon_end_share",
    "direct_answer_share",
)


@dataclass(frozen=True)
class TwinShrinkage:
    """Shrinkage the twin plays out on a plan's agents, drawn per agent: ``absence`` of them
    do not come for a shift (they never log in), and of those present ``offline`` are off the
    phones in each 15-minute interval (NOT_READY with reason OFFLINE: training, coaching,
    meetings, off-phone work). The share of scheduled agent-time on the floor outside breaks
    is then (1 - absence) x (1 - offline)."""

    absence: float = 0.0
    offline: float = 0.0

    def __post_init__(self) -> None:
        for name in ("absence", "offline"):
            if not 0.0 <= getattr(self, name) < 1.0:
                msg = f"{name}={getattr(self, name)} is outside [0, 1)"
                raise ValueError(msg)

    @classmethod
    def of_total(cls, total: float, absence: float = 0.05) -> TwinShrinkage:
        """The planner's shrinkage (the share of scheduled time off the floor outside breaks)
        split into ``absence`` and the offline share that makes up the rest."""
        if not 0.0 <= absence <= total < 1.0:
            msg = f"expected 0 <= absence ({absence}) <= total shrinkage ({total}) < 1"
            raise ValueError(msg)
        return cls(absence, 1.0 - (1.0 - total) / (1.0 - absence))


@dataclass(frozen=True, slots=True)
class SimConfig:
    """One simulation: which regions, how much traffic, how it is served."""

    regions: tuple[str, ...] | None = None  # None = all 67 of the catalogue
    contacts_per_month: float = 3_800_000.0  # DESIGN: up to 3.8 M contacts a month, all regions
    channels: MappingProxyType[Channel, ChannelParams] = field(default_factory=lambda: DEFAULT_CHANNELS)
    hourly_shape: tuple[float, ...] = DEFAULT_HOURLY_SHAPE
    dow_factors: tuple[float, ...] = DEFAULT_DOW
    # variance/mean of a region's 5-minute counts at its daily peak (2-3 in real data:
    # Brown et al. 2005; Avramidis, Deslauriers & L'Ecuyer 2004); None = plain Poisson
    dispersion: float | None = 2.5
    min_day_factor_shape: float = 25.0  # caps the day factor's CV at 0.2 for small regions (assumed)
    service_level_target: float = 0.80  # share within the channel's T (80/40 for voice, assumed)
    max_occupancy: float = 0.90  # WFM staffing cap (assumed)
    fixed_agents: MappingProxyType[str, int] | None = None  # queue -> agents, all day (validation)
    staffing_factors: MappingProxyType[str, float] | None = None  # region -> x planned agents (what-if)
    short_abandon_share: float = 0.03  # patience 2-5 s (DESIGN counts < 5 s apart; share assumed)
    first_line_resolution: float = 0.99  # DESIGN
    escalated_share_of_rest: float = 0.7  # the rest: escalated to second line vs unresolved
    hold_share: float = 0.15  # voice contacts with a hold segment (assumed)
    transfer_share: float = 0.04  # answered voice/chat/messenger contacts transferred by the agent (assumed)
    survey_share: float = 0.20  # contacts answering the post-contact survey (assumed)
    scores: tuple[float, ...] = DEFAULT_SCORES
    repeat_share: float = 0.12  # contacts from a customer seen recently (assumed)
    recent_customers: int = 2000  # per region: the pool repeat contacts are drawn from
    faults: Faults = field(default_factory=Faults)
    pseudonym_key: bytes = b"ccpulse-simulator"
    # Edge shapes (docs/simulator.md "Edge shapes"): contact lifecycles that real ACDs emit and
    # that KPI code gets wrong. All 0 by default, so default runs keep their bytes.
    overflow_share: float = 0.0  # of contacts: queued in another simulated region, whatever the EWT
    second_transfer_share: float = 0.0  # of transferred contacts: transferred a second time
    end_on_hold_share: float = 0.0  # of held voice contacts: ENDED while on hold (no HOLD_ENDED)
    abandon_end_share: float = 0.0  # of abandoned contacts: an ENDED (UNRESOLVED, no agent) follows
    abandon_end_delay_s: tuple[float, float] = (2.0, 30.0)  # ENDED this long after ABANDONED
    direct_answer_share: float = 0.0  # of contacts: answered by an agent with no QUEUED (callback)
    # A staffing plan to follow instead of the simulator's own (streams/simulator/planned.py): the
    # regions with at least one shift follow it; None = the simulator's own Erlang staffing.
    shifts: tuple[ShiftAssignment, ...] | None = None
    # The plan's agents as people are (planned.py): some absent for a shift, some off the phones
    # for an interval (training, coaching, meetings); None = every agent present and adherent.
    # Without shifts it does nothing (the simulator's own staffing is already on the floor).
    shrinkage: TwinShrinkage | None = None

    def __post_init__(self) -> None:
        if len(self.hourly_shape) != 24 or len(self.dow_factors) != 7:
            msg = f"hourly_shape needs 24 values and dow_factors 7, got {len(self.hourly_shape)}, "
            msg += f"{len(self.dow_factors)}"
            raise ValueError(msg)
        total = math.fsum(p.share for p in self.channels.values())
        if abs(total - 1.0) > 1e-9:
            msg = f"channel shares sum to {total}, expected 1"
            raise ValueError(msg)
        if abs(math.fsum(self.scores) - 1.0) > 1e-9 or len(self.scores) != 5:
            msg = f"scores must be 5 probabilities summing to 1, got {self.scores}"
            raise ValueError(msg)
        if self.dispersion is not None and self.dispersion <= 1.0:
            msg = f"dispersion {self.dispersion} must exceed 1 (1 = Poisson: pass None)"
            raise ValueError(msg)
        for name in EDGE_SHAPES:
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                msg = f"{name}={share} is outside [0, 1]"
                raise ValueError(msg)
        low, high = self.abandon_end_delay_s
        if not 0.0 <= low <= high:
            msg = f"abandon_end_delay_s={self.abandon_end_delay_s}: expected 0 <= low <= high"
            raise ValueError(msg)

    @property
    def edge_shapes(self) -> bool:
        """True when any edge shape is switched on (the engine then draws their random numbers)."""
        return any(getattr(self, name) > 0 for name in EDGE_SHAPES)

    def with_edge_shapes(self, rate: float = 0.03, of_eligible: float = 0.25) -> SimConfig:
        """This configuration with every edge shape on, at test rates: overflow and direct
        answers in ``rate`` of all contacts; a second transfer, ending on hold and an ENDED
        after abandoning in ``of_eligible`` of the contacts they can happen to (transferred,
        held voice, abandoned contacts)."""
        return replace(
            self,
            overflow_share=rate,
            direct_answer_share=rate,
            second_transfer_share=of_eligible,
            end_on_hold_share=of_eligible,
            abandon_end_share=of_eligible,
        )


def channels(**shares: float) -> MappingProxyType[Channel, ChannelParams]:
    """The default channel parameters with other shares, e.g. channels(VOICE=1.0)."""
    out = {}
    for name, share in shares.items():
        base = DEFAULT_CHANNELS[Channel(name)]
        out[Channel(name)] = ChannelParams(
            share, base.handle, base.answer_target_s, base.patience_mean_s, base.concurrency, base.queue
        )
    return MappingProxyType(out)
