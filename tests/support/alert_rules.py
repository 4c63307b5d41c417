"""Time-scaled copies of the real Prometheus rule files, for tests fed by an accelerated
simulator.

At speed S the simulator plays S event-time seconds per wall second, so a 15 min rate
window or a ``for: 15m`` in the real rules takes 15 min of *wall* time in a test. The copy
divides every duration (range selectors, ``for:``, group ``interval:``) by S, so the alert
logic sees the same amount of event time as in production: [15m] at S = 30 becomes [30s].
Durations never drop below ``floor_s`` (range windows need two scrapes at 1 s).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
RANGE = re.compile(r"\[(\d+)(ms|s|m|h|d|w|y)\]")


def seconds(duration: str) -> float:
    match = DURATION.match(duration)
    if match is None:
        msg = f"{duration!r} is not a single-unit Prometheus duration such as 15m"
        raise ValueError(msg)
    return int(match.group(1)) * UNITS[match.group(2)]


def scaled(duration_s: float, speed: float, floor_s: int) -> str:
    return f"{max(floor_s, math.ceil(duration_s / speed))}s"


def scale_rule_file(text: str, speed: float, floor_s: int = 1, range_floor_s: int = 3) -> dict[str, Any]:
    """The rule file ``text`` with every duration divided by ``speed``."""
    document = yaml.safe_load(text)
    for group in document["groups"]:
        if "interval" in group:
            group["interval"] = scaled(seconds(group["interval"]), speed, floor_s)
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = scaled(seconds(rule["for"]), speed, floor_s)
            rule["expr"] = RANGE.sub(
                lambda m: f"[{scaled(int(m.group(1)) * UNITS[m.group(2)], speed, range_floor_s)}]",
                rule["expr"],
            )
    return dict(document)


def write_scaled_rules(rule_files: list[Path], speed: float, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in rule_files:
        target = out_dir / path.name
        target.write_text(yaml.safe_dump(scale_rule_file(path.read_text(), speed), sort_keys=False))
        written.append(target)
    return written
