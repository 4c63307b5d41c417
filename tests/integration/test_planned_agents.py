"""`ccpulse worker` on real Apache Kafka exposes ccpulse_planned_agents from cc.staffing.plan.

A plan is published for RU-MOW before any traffic; an hour of simulated RU-MOW traffic goes
through the topics; the worker process (the real composition root: plan table, collector,
/metrics over HTTP) shows the plan's agents beside staffed and required for the channels the
plan covers, nothing for those it does not. A republished plan reaches the running worker
(the table follows the topic) and replaces the earlier publication.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.waiting import wait_until

from streams.domain.shift_plan import INTERVAL_MS, PlanInterval
from streams.planning.publish import publish_plan
from streams.simulator import run
from streams.wire.codec import Codec

pytestmark = pytest.mark.kafka
HOURS = 1


def plan(start_ms: int, voice: int, chat: int, plan_id: str) -> list[PlanInterval]:
    """The same agents in every interval the simulation's event time reaches: an hour of
    traffic, then the queues drain and agents log out (2.5 h of event time), and a margin."""
    return [
        PlanInterval(
            plan_id, "RU-MOW", channel, start_ms + i * INTERVAL_MS, 50.0, 140.0, agents - 1.5, agents
        )
        for channel, agents in (("VOICE", voice), ("CHAT", chat))
        for i in range(-4, (HOURS + 3) * 4)
    ]


def samples(url: str) -> dict[tuple[str, str, str], float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL we started
        text = response.read().decode()
    wanted = ("ccpulse_planned_agents", "ccpulse_staffed_agents", "ccpulse_required_agents")
    return {
        (s.name, s.labels["region"], s.labels["channel"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in wanted
    }


def metrics_url(log: Path) -> str | None:
    for line in log.read_text().splitlines():
        if line.startswith('{"event": "metrics"'):
            return str(json.loads(line)["url"])
    return None


def test_worker_exposes_the_published_plan_beside_staffed_and_required(
    fresh_kafka: Any, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    codec = Codec.pinned()
    start = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
    start_ms = int(start.timestamp() * 1000)
    publish_plan({"bootstrap.servers": bootstrap}, codec, plan(start_ms, 17, 6, "p1"), start_ms - 86_400_000)
    run(
        regions=("RU-MOW",),
        duration_s=HOURS * 3600,
        seed=5,
        out="kafka",
        bootstrap_servers=bootstrap,
        start=start,
    )

    log = tmp_path / "worker.log"
    command = [sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", bootstrap,
               "--metrics-port", "0", "--checkpoint-interval", "1"]  # fmt: skip
    with log.open("ab") as out:
        worker = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        url = wait_until(lambda: metrics_url(log), 120, "the worker's metrics URL", seen=log.read_text)
        seen: dict[str, Any] = {}

        def plan_visible(voice: float) -> bool:
            seen["samples"] = got = samples(url)
            return got.get(("ccpulse_planned_agents", "RU-MOW", "VOICE")) == voice

        wait_until(lambda: plan_visible(17), 180, "planned 17 for RU-MOW VOICE", seen=lambda: seen)
        got = seen["samples"]
        assert got[("ccpulse_planned_agents", "RU-MOW", "CHAT")] == 6
        assert ("ccpulse_planned_agents", "RU-MOW", "MESSENGER") not in got  # no plan for it
        assert ("ccpulse_staffed_agents", "RU-MOW", "MESSENGER") in got
        assert ("ccpulse_staffed_agents", "RU-MOW", "VOICE") in got
        # the worker runs on until every input is read: the end of the simulated span
        assert any(name == "ccpulse_required_agents" for name, _r, _c in got)

        # a new publication replaces the plan while the worker runs
        publish_plan(
            {"bootstrap.servers": bootstrap}, codec, plan(start_ms, 23, 6, "p2"), start_ms - 3_600_000
        )
        wait_until(lambda: plan_visible(23), 60, "planned 23 after the republication", seen=lambda: seen)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    assert worker.returncode == 0, log.read_text()[-2000:]
