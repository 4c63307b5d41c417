"""A staffing plan as a JSON file: what `ccpulse plan schedule` writes and the twin reads.

    {"format": 1, "plan_id": "...", "shifts": [ShiftAssignment...], "intervals": [PlanInterval...]}

Times are UTC epoch milliseconds. Unknown formats are refused with a clear error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from streams.domain.shift_plan import Break, PlanInterval, ShiftAssignment

FORMAT = 1


@dataclass(frozen=True, slots=True)
class PlanFile:
    plan_id: str
    shifts: tuple[ShiftAssignment, ...]
    intervals: tuple[PlanInterval, ...]


def write_plan(path: Path, plan: PlanFile) -> None:
    body = {
        "format": FORMAT,
        "plan_id": plan.plan_id,
        "shifts": [asdict(s) for s in plan.shifts],
        "intervals": [asdict(i) for i in plan.intervals],
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, separators=(",", ":")))
    tmp.replace(path)


def _shift(raw: dict[str, Any]) -> ShiftAssignment:
    breaks = tuple(Break(**b) for b in raw.pop("breaks", ()))
    return ShiftAssignment(**raw, breaks=breaks)


def read_plan(path: Path) -> PlanFile:
    body = json.loads(path.read_text())
    if body.get("format") != FORMAT:
        msg = f"{path}: plan format {body.get('format')!r} is not {FORMAT}"
        raise ValueError(msg)
    return PlanFile(
        plan_id=str(body["plan_id"]),
        shifts=tuple(_shift(dict(s)) for s in body["shifts"]),
        intervals=tuple(PlanInterval(**i) for i in body["intervals"]),
    )
