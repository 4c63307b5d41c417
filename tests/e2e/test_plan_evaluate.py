"""`ccpulse plan evaluate` and `ccpulse simulate --plan` on a small hand-written plan."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.cli import ccpulse as run_ccpulse

from streams.domain.events import AgentEvent, AgentState
from streams.domain.shift_plan import Break, PlanInterval, ShiftAssignment
from streams.planning.plan_file import PlanFile, write_plan
from streams.wire.record_file import read_records

pytestmark = pytest.mark.e2e
T0 = int(datetime(2026, 5, 11, 8, tzinfo=UTC).timestamp() * 1000)
H, Q = 3_600_000, 900_000


def ccpulse(state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_ccpulse(*args, state_dir=state_dir, timeout_s=300)


def small_plan(path: Path) -> PlanFile:
    shifts = [
        ShiftAssignment("RU-KGD", "VOICE", "a", T0, T0 + 2 * H, 3, (Break(T0 + H, T0 + H + Q, "BREAK"),)),
        ShiftAssignment("RU-KGD", "CHAT", "a", T0, T0 + 2 * H, 2),
        ShiftAssignment("RU-KGD", "MESSENGER", "a", T0, T0 + 2 * H, 1),
        ShiftAssignment("RU-KGD", "EMAIL", "a", T0, T0 + 2 * H, 1, (Break(T0 + Q, T0 + 3 * Q, "LUNCH"),)),
    ]
    intervals = [PlanInterval("small", "RU-KGD", "VOICE", T0 + k * Q, 12.0, 140.0, 3.0, 3 - (k == 4))
                 for k in range(8)]  # fmt: skip
    plan = PlanFile("small", tuple(shifts), tuple(intervals))
    write_plan(path, plan)
    return plan


def test_plan_evaluate_json_table_and_report(tmp_path: Path) -> None:
    small_plan(tmp_path / "plan.json")
    result = ccpulse(tmp_path, "plan", "evaluate", str(tmp_path / "plan.json"), "--json",
                     "--report", str(tmp_path / "out.html"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["plan_id"] == "small" and body["regions"] == ["RU-KGD"]
    # the planner's default shrinkage (0.20) played out: 5 % absent, the rest offline per interval
    assert body["shrinkage"]["absence"] == 0.05 and round(body["shrinkage"]["offline"], 4) == 0.1579
    assert {d["channel"] for d in body["days"]} == {"VOICE", "CHAT", "MESSENGER", "EMAIL"}
    voice = [i for i in body["intervals"] if i["channel"] == "VOICE"]
    assert len(voice) == 8 and [i["planned_agents"] for i in voice] == [3, 3, 3, 3, 0, 3, 3, 3]
    assert [i["required_agents"] for i in voice] == [3.0] * 8
    assert all(d["sl_verdict"] in ("met", "MISSED") for d in body["days"] if d["channel"] != "EMAIL")
    assert (tmp_path / "out.html").exists() and any((tmp_path / "out_files").glob("*.png"))

    table = ccpulse(tmp_path, "plan", "evaluate", str(tmp_path / "plan.json"), "--days", "0.05", "--adherent")
    assert table.returncode == 0, table.stderr
    assert "RU-KGD" in table.stdout and "VOICE" in table.stdout and "all agents present" in table.stdout

    bad = ccpulse(tmp_path, "plan", "evaluate", str(tmp_path / "plan.json"), "--days", "3")
    assert bad.returncode == 2 and "plan's span" in bad.stderr


def test_simulate_follows_the_plan(tmp_path: Path) -> None:
    small_plan(tmp_path / "plan.json")
    out = tmp_path / "sim.bin"
    result = ccpulse(tmp_path, "simulate", "--plan", str(tmp_path / "plan.json"), "--hours", "2",
                     "--path", str(out), "--seed", "2")  # fmt: skip  # starts at the plan's first shift
    assert result.returncode == 0, result.stderr
    from streams.wire.codec import Codec

    codec = Codec.pinned()
    agents = [codec.decode(r.topic, r.value) for r in read_records(out) if r.topic == "cc.agent.events"]
    assert agents and all(isinstance(a, AgentEvent) and a.region == "RU-KGD" for a in agents)
    log_ins = [a for a in agents if a.state is AgentState.LOGGED_IN]
    assert len(log_ins) == 3 + 2 + 1 + 1 and {a.event_time_ms for a in log_ins} == {T0}

    # the same plan with its agents as people are: some absent for the shift, some offline
    people = tmp_path / "people.bin"
    result = ccpulse(tmp_path, "simulate", "--plan", str(tmp_path / "plan.json"), "--hours", "2",
                     "--path", str(people), "--seed", "2",
                     "--shrinkage", "0.6", "--absence", "0.3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    agents = [codec.decode(r.topic, r.value) for r in read_records(people) if r.topic == "cc.agent.events"]
    assert 0 < sum(1 for a in agents if a.state is AgentState.LOGGED_IN) < 7
    assert any(a.state is AgentState.NOT_READY and a.reason == "OFFLINE" for a in agents)
    refused = ccpulse(tmp_path, "simulate", "--hours", "1", "--path", str(people), "--shrinkage", "0.2")
    assert refused.returncode == 2 and "give --plan" in refused.stderr
