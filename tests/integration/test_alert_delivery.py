"""Alerts delivered end to end: simulator -> Kafka -> `ccpulse worker` -> Prometheus (our
rules) -> Alertmanager (deploy/alertmanager/alertmanager.yml) -> a webhook.

One region runs with 35 % of its planned agents until the webhook has received
CcpulseServiceLevelBelowTarget and CcpulseStaffingGap for it (region label, severity,
runbook URL); then staffing is restored (a second simulation continuing at the same event
time with the full plan) until both are delivered as resolved.

Time: the simulator runs at SPEED x real time and the rules are a copy of the real files
with every duration divided by SPEED (tests/support/alert_rules.py), so the alert logic
sees the same event time as in production; Alertmanager's timers are shortened the same
way. The measured latency, first breached minute (event time) -> webhook (wall clock), is
printed in wall seconds and in event-time minutes (wall x SPEED). See docs/runbook.md.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import MappingProxyType
from typing import Any

import httpx
import pytest
import yaml
from support.alert_rules import write_scaled_rules
from support.waiting import wait_until

from streams.services.base import free_port, stop_pid, tail
from streams.simulator import run
from streams.simulator.config import SimConfig

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus]
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SPEED = 30.0  # event-time seconds per wall second; the rules' durations are divided by it
TARGET = "RU-MOW"
REGIONS = (TARGET, "RU-NVS", "RU-SVE")
UNDERSTAFFED = 0.35  # share of the planned agents the target region gets in phase 1
ALERTS = ("CcpulseServiceLevelBelowTarget", "CcpulseStaffingGap")
FIRE_WITHIN_S = 360.0
RESOLVE_WITHIN_S = 360.0


class Webhook:
    """A loopback HTTP server that records every Alertmanager notification (wall time, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def first(self, alertname: str, status: str) -> tuple[float, dict[str, Any]] | None:
        """(wall time, alert) of the first delivered alert of ``alertname`` for TARGET in ``status``."""
        for at, body in list(self.received):
            for alert in body["alerts"]:
                labels = alert["labels"]
                if (
                    labels["alertname"] == alertname
                    and labels.get("region") == TARGET
                    and alert["status"] == status
                ):
                    return at, alert
        return None

    def names(self) -> list[tuple[str, str | None, str]]:
        return sorted({(a["labels"]["alertname"], a["labels"].get("region"), a["status"])
                       for _, body in list(self.received) for a in body["alerts"]})  # fmt: skip

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """deploy/alertmanager/alertmanager.yml with every webhook pointed at the test and the
    timers divided by SPEED (group_wait 30s -> 1s, group_interval 5m -> 10s)."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["send_resolved"] is True, f"{receiver['name']} would not tell on-call about a resolve"
            hook["url"] = webhook_url
    config["route"] |= {"group_wait": "1s", "group_interval": "10s", "repeat_interval": "8m"}
    return config


def start_worker(bootstrap: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streams.cli", "worker", "--bootstrap-servers", bootstrap,
               "--group", "ccpulse-alerts", "--metrics-port", str(port),
               "--checkpoint-interval", "1"]  # fmt: skip
    with log.open("ab") as out:
        # its own process group: stop_pid signals the group
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def breached_minutes(truth: Path) -> tuple[int, int]:
    """Event times (ms) of (the first minute in which TARGET's service level, all channels,
    answered within threshold / (answered + abandoned after 5 s), was below 80 %; the first
    minute ending a 15 minute span below 80 %, what the alert's rate15m sees)."""
    minutes: dict[int, list[int]] = {}
    with truth.open() as f:
        for row in csv.DictReader(f):
            if row["region"] == TARGET:
                sums = minutes.setdefault(int(row["minute_ms"]), [0, 0])
                sums[0] += int(row["answered_within_target"])
                sums[1] += int(row["answered"]) + int(row["abandoned"])
    ordered = sorted(minutes.items())
    breached = [m for m, (within, total) in ordered if total and within / total < 0.8]
    rolling = []
    for i, (minute, _) in enumerate(ordered):
        span = [sums for m, sums in ordered[: i + 1] if m > minute - 15 * 60_000]
        within, total = sum(s[0] for s in span), sum(s[1] for s in span)
        if total and within / total < 0.8:
            rolling.append(minute)
    assert breached and rolling, f"{TARGET} never fell below 80 % with {UNDERSTAFFED:.0%} staffing"
    return breached[0], rolling[0]


class Phase:
    """One paced simulation in a thread, stopped on demand; records (wall, event time) progress."""

    def __init__(self, bootstrap: str, start: datetime, seed: int, factors: dict[str, float], truth: Path):
        self.stop = threading.Event()
        self.progress: list[tuple[float, int]] = []
        self.messages = 0
        self.error: BaseException | None = None
        self.start_ms = int(start.timestamp() * 1000)
        config = replace(SimConfig(), staffing_factors=MappingProxyType(factors))

        def simulate() -> None:
            try:
                run(regions=REGIONS, duration_s=6 * 3600, speed=SPEED, seed=seed, out="kafka",
                    bootstrap_servers=bootstrap, start=start, config=config, truth_path=truth,
                    on_progress=self.on_progress,
                    stop=self.stop.is_set)  # fmt: skip
            except BaseException as exc:  # reported by the test
                self.error = exc

        self.thread = threading.Thread(target=simulate, daemon=True)
        self.began = time.time()
        self.thread.start()

    def on_progress(self, messages: int, simulated_ms: int) -> None:
        self.messages = messages
        self.progress.append((time.time(), self.start_ms + simulated_ms))

    def wall_when(self, event_ms: int) -> float:
        """Wall time at which the paced simulator wrote event time ``event_ms`` (the pacer
        maps event time to wall time from its first message; progress comes per batch of
        ~10 simulated minutes, too coarse to read this from)."""
        return self.began + (event_ms - self.start_ms) / 1000 / SPEED

    def behind_schedule_s(self) -> float:
        """How far the simulator fell behind its pacing at worst (a loaded machine)."""
        return max((wall - self.wall_when(ms) for wall, ms in self.progress), default=0.0)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(timeout=60)
        assert self.error is None, f"simulator failed: {self.error!r}"
        return self.progress[-1][1]


def test_understaffed_region_alerts_reach_the_webhook_and_resolve(
    fresh_kafka: Any, prometheus_factory: Any, alertmanager_factory: Any, tmp_path: Path
) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    webhook = Webhook()
    alertmanager = alertmanager_factory(alertmanager_config(webhook.url))
    port, log = free_port(), tmp_path / "worker.log"
    worker = start_worker(bootstrap, port, log)
    rules = write_scaled_rules(
        sorted((DEPLOY / "prometheus" / "rules").glob("*.yml")), SPEED, tmp_path / "rules"
    )
    prometheus = prometheus_factory([f"127.0.0.1:{port}"], rules, alertmanagers=[alertmanager.target])
    start = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0) - timedelta(days=1)
    figures: dict[str, Any] = {"speed": SPEED}

    def seen() -> str:
        sl = prometheus.query(f'region:ccpulse_service_level_ratio:rate15m{{region="{TARGET}"}}')
        gap = prometheus.query(f'max by (channel) (ccpulse_staffing_gap_agents{{region="{TARGET}"}})')
        gaps = [(g["metric"].get("channel"), g["value"][1]) for g in gap]
        return (f"webhook got {webhook.names()}; SL {[s['value'][1] for s in sl]}; "
                f"gap {gaps}; worker log: {tail(log, 5)}")  # fmt: skip

    try:
        understaffed = Phase(bootstrap, start, 1, {TARGET: UNDERSTAFFED}, tmp_path / "truth-1.csv")
        for name in ALERTS:
            wait_until(lambda name=name: webhook.first(name, "firing"), FIRE_WITHIN_S,  # type: ignore[misc]
                       f"{name} for {TARGET} firing at the webhook", seen=seen, interval_s=0.5)  # fmt: skip
        end_ms = understaffed.finish()
        breach_ms, rolling_ms = breached_minutes(tmp_path / "truth-1.csv")
        breached_wall = understaffed.wall_when(breach_ms + 60_000)  # the minute was complete
        rolling_wall = understaffed.wall_when(rolling_ms + 60_000)
        for name in ALERTS:
            at, alert = webhook.first(name, "firing")  # type: ignore[misc]
            assert alert["labels"]["region"] == TARGET
            assert alert["labels"]["severity"] == "warning"
            assert alert["annotations"]["runbook_url"] == f"docs/runbook.md#{name.lower()}"
            assert TARGET in alert["annotations"]["summary"]
            latency, after_rolling = at - breached_wall, at - rolling_wall
            figures[name] = {"firing_after_wall_s": round(latency, 1),
                             "firing_after_event_min": round(latency * SPEED / 60, 1),
                             "after_15m_breach_event_min": round(after_rolling * SPEED / 60, 1)}  # fmt: skip
        figures["first_breached_minute"] = datetime.fromtimestamp(breach_ms / 1000, UTC).isoformat()
        figures["first_15m_breach_minute"] = datetime.fromtimestamp(rolling_ms / 1000, UTC).isoformat()
        figures["simulation_start"] = start.isoformat()
        figures["simulator_behind_schedule_s"] = round(understaffed.behind_schedule_s(), 1)
        restore_wall = time.time()
        figures["understaffed_messages"] = understaffed.messages
        restored = Phase(
            bootstrap, datetime.fromtimestamp(end_ms / 1000 + 1, UTC), 2, {}, tmp_path / "truth-2.csv"
        )
        sl_query = f'region:ccpulse_service_level_ratio:rate15m{{region="{TARGET}"}} >= 0.8'
        wait_until(lambda: prometheus.query(sl_query), RESOLVE_WITHIN_S,
                   f"{TARGET}'s 15 min service level back at >= 80 % on restored staffing (not NaN: traffic)",
                   seen=seen, interval_s=0.5)  # fmt: skip
        for name in ALERTS:
            wait_until(lambda name=name: webhook.first(name, "resolved"), RESOLVE_WITHIN_S,  # type: ignore[misc]
                       f"{name} for {TARGET} resolved at the webhook", seen=seen, interval_s=0.5)  # fmt: skip
            at, alert = webhook.first(name, "resolved")  # type: ignore[misc]
            assert alert["labels"]["severity"] == "warning" and alert["endsAt"] > alert["startsAt"]
            figures[name]["resolved_after_restore_wall_s"] = round(at - restore_wall, 1)
        restored.finish()
        figures["restored_messages"] = restored.messages
    finally:
        stop_pid(worker.pid)
        worker.wait(timeout=30)
        webhook.close()
    assert httpx.get(f"{alertmanager.url}/-/healthy", timeout=5).status_code == 200
    print("alert delivery figures:", json.dumps(figures))
