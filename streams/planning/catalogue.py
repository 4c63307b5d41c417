"""The shift catalogue: every weekly shift variant an agent may work, from a small config.

A variant is a daily shape (start time, length, one lunch and short breaks at fixed
places) worked on the days of one weekly day pattern (5/2, 4/3, 6/1 with every
rotation of the days off; 2/2 and 3/3 with every phase of their cycle inside one
week). Times are the region's local time: slot 0 is local Monday 00:00, one slot is
15 minutes, a week is 672 slots; ``to_assignment`` places a variant in a concrete week
as UTC ``ShiftAssignment``s (one per working day).

Rules (``CatalogueConfig``; defaults documented in docs/planning.md):
- starts every 15 minutes, lengths 4-12 h in whole hours;
- a 15-minute break in each half of a shift longer than 4 h (one in the middle of a
  4 h shift); a 30-minute lunch for shifts of 6 h or more, placed at one of
  ``lunch_choices`` offsets around the middle; breaks never touch the first or last
  hour and never overlap the lunch;
- a night shift (one with at least ``night_min_h`` hours inside 22:00-06:00) lasts at
  most ``night_max_h``; a pattern repeats the same start each working day, so a day
  shift never starts the day after a night shift (the rest between two working days
  is 24 h - length >= 12 h).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.domain.shift_plan import INTERVAL_MS, Break, ShiftAssignment

SLOTS_PER_DAY = 96
SLOTS_PER_WEEK = 7 * SLOTS_PER_DAY
DAY_MS = 86_400_000


def _rotations(work: int, off: int) -> list[tuple[int, ...]]:
    """Every rotation of `work` consecutive days then `off` days off in a 7-day week."""
    base = [1] * work + [0] * off
    return [tuple(base[(d - r) % 7] for d in range(7)) for r in range(7)]


def _cycle_phases(work: int, off: int) -> list[tuple[int, ...]]:
    """Each phase of a work/off cycle longer or shorter than a week, seen over one week."""
    period = work + off
    return [tuple(1 if (d + p) % period < work else 0 for d in range(7)) for p in range(period)]


def default_patterns() -> dict[str, list[tuple[int, ...]]]:
    return {
        "5/2": _rotations(5, 2),
        "4/3": _rotations(4, 3),
        "6/1": _rotations(6, 1),
        "2/2": _cycle_phases(2, 2),
        "3/3": _cycle_phases(3, 3),
    }


@dataclass(frozen=True, slots=True)
class CatalogueConfig:
    start_step_slots: int = 1  # 15 minutes
    lengths_h: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 11, 12)
    lunch_from_h: int = 6  # shifts at least this long get a 30-minute lunch
    lunch_slots: int = 2
    lunch_choices: tuple[int, ...] = (-2, 0, 2)  # lunch start offsets (slots) around the middle
    break_slots: int = 1
    night_window_h: tuple[int, int] = (22, 6)
    night_min_h: int = 3  # hours inside the night window that make a shift a night shift
    night_max_h: int = 10
    part_time_max_weekly_h: float = 30.0
    patterns: dict[str, list[tuple[int, ...]]] = field(default_factory=default_patterns)


@dataclass(frozen=True, slots=True)
class DailyShape:
    start_slot: int  # local slot of the day, 0..95
    length_slots: int
    breaks: tuple[tuple[int, int, str], ...]  # (offset slot, length slots, reason) from the start

    def on_floor_offsets(self) -> list[int]:
        off = {o + k for o, n, _ in self.breaks for k in range(n)}
        return [k for k in range(self.length_slots) if k not in off]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Variants as parallel numpy arrays (shape index x pattern), plus the coverage of each."""

    config: CatalogueConfig
    shapes: tuple[DailyShape, ...]
    pattern_names: tuple[str, ...]
    pattern_days: np.ndarray  # (patterns, 7) 0/1
    shape_of: np.ndarray  # (variants,) index into shapes
    pattern_of: np.ndarray  # (variants,) index into pattern_days
    paid_hours: np.ndarray  # (variants,) weekly paid hours (lunch and breaks included)
    part_time: np.ndarray  # (variants,) bool

    @property
    def size(self) -> int:
        return int(self.shape_of.size)

    def variant_id(self, j: int) -> str:
        shape = self.shapes[int(self.shape_of[j])]
        p = int(self.pattern_of[j])
        days = "".join(str(d) for d in self.pattern_days[p])
        start = f"{shape.start_slot // 4:02d}{15 * (shape.start_slot % 4):02d}"
        lunch = next((o for o, _, r in shape.breaks if r == "LUNCH"), -1)
        return f"{start}-{shape.length_slots // 4}h-L{lunch}-{self.pattern_names[p]}-{days}"

    def covered_slots(self, j: int) -> np.ndarray:
        """Local week slots (0..671) in which variant j's agents are on the floor."""
        shape = self.shapes[int(self.shape_of[j])]
        offsets = np.asarray(shape.on_floor_offsets(), dtype=np.int32)
        days = np.flatnonzero(self.pattern_days[int(self.pattern_of[j])])
        slots = (days[:, None] * SLOTS_PER_DAY + shape.start_slot + offsets[None, :]).ravel()
        return slots[slots < SLOTS_PER_WEEK]

    def coverage_csc(self) -> tuple[np.ndarray, np.ndarray]:
        """(indptr, indices) of the 672 x variants 0/1 coverage matrix, column-wise."""
        cols = [self.covered_slots(j) for j in range(self.size)]
        indptr = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum([c.size for c in cols], out=indptr[1:])
        return indptr, np.concatenate(cols).astype(np.int32)

    def to_assignments(
        self, j: int, agents: int, region: str, channel: str, week_start_ms: int
    ) -> list[ShiftAssignment]:
        """Variant j placed in the week whose local Monday 00:00 is ``week_start_ms`` (UTC ms)."""
        shape = self.shapes[int(self.shape_of[j])]
        out = []
        for day in np.flatnonzero(self.pattern_days[int(self.pattern_of[j])]):
            start = week_start_ms + int(day) * DAY_MS + shape.start_slot * INTERVAL_MS
            breaks = tuple(
                Break(start + o * INTERVAL_MS, start + (o + n) * INTERVAL_MS, reason)
                for o, n, reason in shape.breaks
            )
            end = start + shape.length_slots * INTERVAL_MS
            out.append(ShiftAssignment(region, channel, self.variant_id(j), start, end, agents, breaks))
        return out


def night_slots(config: CatalogueConfig, start_slot: int, length_slots: int) -> int:
    begin, end = config.night_window_h
    night = {s % SLOTS_PER_DAY for s in range(begin * 4, (24 + end) * 4)}
    return sum(1 for k in range(length_slots) if (start_slot + k) % SLOTS_PER_DAY in night)


def daily_shapes(config: CatalogueConfig) -> list[DailyShape]:
    shapes = []
    for start in range(0, SLOTS_PER_DAY, config.start_step_slots):
        for hours in config.lengths_h:
            length = hours * 4
            is_night = night_slots(config, start, length) >= config.night_min_h * 4
            if is_night and hours > config.night_max_h:
                continue
            for breaks in _break_layouts(config, length):
                shapes.append(DailyShape(start, length, breaks))
    return shapes


def _break_layouts(config: CatalogueConfig, length: int) -> list[tuple[tuple[int, int, str], ...]]:
    b = config.break_slots
    if length < config.lunch_from_h * 4:
        if length <= 16:
            return [((length // 2, b, "BREAK"),)]
        return [((length // 4, b, "BREAK"), (3 * length // 4, b, "BREAK"))]
    layouts: list[tuple[tuple[int, int, str], ...]] = []
    for shift in config.lunch_choices:
        lunch = length // 2 - config.lunch_slots // 2 + shift
        first = max(4, lunch // 2)
        second = min(length - 4 - b, (lunch + config.lunch_slots + length) // 2)
        layouts.append(((first, b, "BREAK"), (lunch, config.lunch_slots, "LUNCH"), (second, b, "BREAK")))
    return layouts


def build_catalogue(config: CatalogueConfig | None = None) -> Catalogue:
    config = config or CatalogueConfig()
    shapes = daily_shapes(config)
    names, days = [], []
    for name, rows in config.patterns.items():
        for row in rows:
            names.append(name)
            days.append(row)
    pattern_days = np.asarray(days, dtype=np.int8)
    n_s, n_p = len(shapes), len(days)
    shape_of = np.repeat(np.arange(n_s, dtype=np.int32), n_p)
    pattern_of = np.tile(np.arange(n_p, dtype=np.int32), n_s)
    lengths_h = np.asarray([s.length_slots / 4 for s in shapes])
    paid = lengths_h[shape_of] * pattern_days.sum(axis=1)[pattern_of]
    return Catalogue(
        config=config,
        shapes=tuple(shapes),
        pattern_names=tuple(names),
        pattern_days=pattern_days,
        shape_of=shape_of,
        pattern_of=pattern_of,
        paid_hours=paid,
        part_time=paid <= config.part_time_max_weekly_h,
    )
