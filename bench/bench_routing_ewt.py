"""EWT accuracy: predicted vs actual wait of the simulator's answered contacts, per channel and method.

    .venv/bin/python bench/bench_routing_ewt.py [--hours 6] [--regions RU-MOW,...] [--seed 3] [--json]

Every contact waits at home (the simulator's default policy); at its arrival a wrapper
predicts its wait with the routing policy's own estimator (``streams.domain.routing.
estimate_wait``) from the simulator's exact queue view: contacts waiting, agents
staffed and ready, the channel's mean handle time, and the queue's arrival rate over
the last 15 simulated minutes. Both methods are computed for every contact
(POSITION when the queue has >= ``min_live_agents`` agents; ERLANG_A always), so
each is judged on the same contacts. Error = actual - predicted seconds: bias is its
mean (> 0: the estimate is optimistic), p50/p90 of its absolute value. Answered
contacts only (an abandoned contact has no actual wait).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from collections import defaultdict, deque
from pathlib import Path
from statistics import fmean, quantiles

from rich.console import Console
from rich.table import Table

from streams.domain.events import Channel
from streams.domain.routing import EwtMethod, QueueSnapshot, RoutingParams, estimate_wait
from streams.simulator import SimConfig, run
from streams.simulator.config import ZH_QUEUE
from streams.simulator.model import Contact, QueueView, Target
from streams.simulator.run import DEFAULT_START

REGIONS = "RU-MOW,RU-SPE,RU-NVS,RU-SVE,RU-KDA,RU-KGD"
RATE_WINDOW_MS = 15 * 60_000


class Predicting:
    """Routes home (as the default policy) and records both estimates of each contact's wait."""

    def __init__(self, config: SimConfig) -> None:
        aht = {channel: p.handle.mean_s for channel, p in config.channels.items()}
        self.params = dataclasses.replace(RoutingParams(), default_aht_s=aht)
        self._aht = aht
        self._arrivals: dict[tuple[str, str], deque[int]] = defaultdict(deque)
        self.predicted: list[tuple[Contact, dict[EwtMethod, float]]] = []

    def route(self, contact: Contact, state: QueueView) -> Target:
        region, queue, now = contact.home, contact.home_queue, contact.arrived_ms
        recent = self._arrivals[(region, queue)]
        while recent and recent[0] < now - RATE_WINDOW_MS:
            recent.popleft()
        rate = len(recent) / (RATE_WINDOW_MS / 1000) if recent else None
        recent.append(now)
        ready, staffed = state.ready(region, queue), state.staffed(region, queue)
        languages = frozenset({"ru", "zh"} if queue == ZH_QUEUE else {"ru"})
        snapshot = QueueSnapshot(
            region, queue, contact.channel, languages, state.waiting(region, queue), staffed, ready, ready,
            self._aht[contact.channel], rate, None, now,
        )  # fmt: skip
        estimates = {}
        ewt, method = estimate_wait(snapshot, self.params)
        if method is EwtMethod.POSITION:
            estimates[method] = ewt
        ewt, method = estimate_wait(dataclasses.replace(snapshot, aht_seconds=None), self.params)
        if method is EwtMethod.ERLANG_A:
            estimates[method] = ewt
        self.predicted.append((contact, estimates))
        return Target(region, queue)


def summarise(policy: Predicting) -> list[dict[str, object]]:
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    for contact, estimates in policy.predicted:
        if contact.answered_ms < 0 or contact.state != Contact.ANSWERED:
            continue
        actual = (contact.answered_ms - contact.arrived_ms) / 1000
        for method, predicted in estimates.items():
            errors[(contact.channel.value, method.value)].append(actual - predicted)
    rows = []
    for (channel, method), values in sorted(errors.items()):
        absolute = sorted(abs(v) for v in values)
        cuts = quantiles(absolute, n=10, method="inclusive") if len(absolute) > 1 else absolute * 9
        rows.append({
            "channel": channel, "method": method, "answered": len(values), "bias_s": round(fmean(values), 1),
            "p50_abs_error_s": round(cuts[4], 1), "p90_abs_error_s": round(cuts[8], 1),
            "threshold_s": RoutingParams().thresholds_ms[Channel(channel)] / 1000,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--regions", default=REGIONS)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args()
    config = SimConfig()
    policy = Predicting(config)
    start = DEFAULT_START.replace(hour=6)  # a Monday from 06:00 UTC: the Moscow day
    with tempfile.TemporaryDirectory() as tmp:
        run(regions=args.regions.split(","), duration_s=args.hours * 3600, seed=args.seed, out="file",
            path=Path(tmp) / "events.bin", start=start, routing=policy, config=config)  # fmt: skip
    rows = summarise(policy)
    if args.json:
        print(json.dumps({"hours": args.hours, "regions": args.regions, "seed": args.seed, "rows": rows}))
        return
    table = Table(
        title=f"EWT accuracy, {args.hours:g} h from {start:%a %H:%M} UTC, {args.regions}, seed {args.seed}"
    )
    for column in (
        "channel",
        "method",
        "answered",
        "bias s",
        "p50 |error| s",
        "p90 |error| s",
        "SL threshold s",
    ):
        table.add_column(column, justify="left" if column in ("channel", "method") else "right")
    for r in rows:
        table.add_row(*(str(v) for v in r.values()))
    Console().print(table)


if __name__ == "__main__":
    main()
