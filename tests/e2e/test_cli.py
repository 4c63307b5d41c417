"""The `ccpulse` command as a person or a script runs it: services, topics, demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.cli import ccpulse as run_ccpulse
from support.waiting import wait_until

from streams.services.base import pid_alive, stop_pid
from streams.simulator import SimConfig, Simulation

pytestmark = pytest.mark.e2e


def ccpulse(
    state_dir: Path, *args: str, timeout: float = 120, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if extra_env:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
        env.update(extra_env, CCPULSE_STATE_DIR=str(state_dir))
        return run_ccpulse(*args, env=env, timeout_s=timeout)
    return run_ccpulse(*args, state_dir=state_dir, timeout_s=timeout)


def test_services_up_status_topics_down(tmp_path: Path) -> None:
    up = ccpulse(tmp_path, "--json", "services", "up", "tansu", "clickhouse")
    try:
        assert up.returncode == 0, up.stderr
        started = {row["service"]: row for row in json.loads(up.stdout)}
        assert set(started) == {"tansu", "clickhouse"}
        pids = [int(row["pid"]) for row in started.values()]
        assert all(pid_alive(pid) for pid in pids)  # still running after `up` exited

        status = ccpulse(tmp_path, "--json", "services", "status")
        assert {r["service"]: r["state"] for r in json.loads(status.stdout)} == {
            "tansu": "running",
            "clickhouse": "running",
        }

        again = ccpulse(tmp_path, "services", "up", "tansu")
        assert again.returncode == 1 and "already running" in again.stderr

        topics = ccpulse(tmp_path, "--json", "topics", "apply")  # finds the running broker
        assert topics.returncode == 0, topics.stderr
        assert {r["action"] for r in json.loads(topics.stdout)} == {"created"}
    finally:
        down = ccpulse(tmp_path, "--json", "services", "down")
    assert down.returncode == 0, down.stderr
    assert {r["service"] for r in json.loads(down.stdout)} == {"tansu", "clickhouse"}
    assert not any(pid_alive(pid) for pid in pids)
    assert json.loads(ccpulse(tmp_path, "--json", "services", "status").stdout) == []


@pytest.mark.kafka
def test_services_up_kafka_with_the_default_relative_state_dir(tmp_path: Path) -> None:
    """Issue 16: with no CCPULSE_STATE_DIR the state dir is `.ccpulse` relative to where the
    command runs; Kafka used to fail with "server.properties not found" there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streams.cli", "--json", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    up = run("services", "up", "kafka")
    try:
        assert up.returncode == 0, up.stderr
        (row,) = json.loads(up.stdout)
        assert row["service"] == "kafka" and pid_alive(int(row["pid"]))
        assert (tmp_path / ".ccpulse" / "services" / "kafka.json").is_file()
        topics = run("topics", "apply")  # finds the running broker through the same state dir
        assert topics.returncode == 0, topics.stderr
    finally:
        down = run("services", "down")
    assert down.returncode == 0, down.stderr
    assert not pid_alive(int(row["pid"]))


@pytest.mark.registry
def test_services_up_apicurio_and_schemas_register(tmp_path: Path) -> None:
    """The Schema Registry as a developer starts it: `services up apicurio`, then `schemas
    register` finds it, registers every contract schema under <topic>-value with BACKWARD,
    and a second run changes no id; `services down` stops it by PID."""
    import httpx

    from streams.wire.topic_contracts import load_topic_contracts

    no_registry = ccpulse(tmp_path, "schemas", "register")
    assert no_registry.returncode == 2 and "no registry" in no_registry.stderr
    up = ccpulse(tmp_path, "--json", "services", "up", "apicurio", timeout=300)
    try:
        assert up.returncode == 0, up.stderr
        (row,) = json.loads(up.stdout)
        url, pid = row["endpoint"], int(row["pid"])
        assert url.endswith("/apis/ccompat/v7") and row["version"] == "3.3.3"
        first = ccpulse(tmp_path, "--json", "schemas", "register")
        assert first.returncode == 0, first.stderr
        rows = json.loads(first.stdout)
        assert {r["subject"] for r in rows} == {f"{t}-value" for t in load_topic_contracts()}
        assert {(r["compatibility"], r["versions"]) for r in rows} == {("BACKWARD", 1)}
        second = json.loads(ccpulse(tmp_path, "--json", "schemas", "register", "--registry", url).stdout)
        assert [(r["subject"], r["schema_id"], r["versions"]) for r in second] == [
            (r["subject"], r["schema_id"], r["versions"]) for r in rows
        ]
        assert httpx.get(f"{url}/config", timeout=10).json()["compatibilityLevel"] == "BACKWARD"
    finally:
        down = ccpulse(tmp_path, "--json", "services", "down")
    assert down.returncode == 0 and not pid_alive(pid), down.stderr


def test_unknown_service_is_a_clear_error(tmp_path: Path) -> None:
    result = ccpulse(tmp_path, "services", "up", "zookeeper")
    assert result.returncode == 2
    assert "unknown service(s) zookeeper" in result.stderr


def test_contract_demo_on_tansu(tmp_path: Path) -> None:
    result = ccpulse(tmp_path, "--json", "demo", "--contract")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] is True
    assert all(row["sent"] == row["received"] > 0 for row in summary["topics"])
    assert len(summary["topics"]) == 9  # the eight topics before issue 18, and cc.staffing.plan


def test_help_names_env_vars_and_shows_no_secret(tmp_path: Path) -> None:
    env_secret = "hunter2-do-not-print"
    env = {**os.environ, "CCPULSE_PSEUDONYM_KEY": env_secret}
    result = subprocess.run(
        [sys.executable, "-m", "streams.cli", "topics", "apply", "--help"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "CCPULSE_BOOTSTRAP_SERVERS" in result.stdout
    assert env_secret not in result.stdout + result.stderr


def test_down_never_signals_a_reused_pid(tmp_path: Path) -> None:
    up = ccpulse(tmp_path, "--json", "services", "up", "tansu")
    assert up.returncode == 0, up.stderr
    pid = int(json.loads(up.stdout)[0]["pid"])
    state_file = tmp_path / "services" / "tansu.json"
    state = json.loads(state_file.read_text())
    state["extra"]["start_ticks"] = {str(pid): 1}  # as if the PID now belonged to another process
    state_file.write_text(json.dumps(state))
    try:
        status = json.loads(ccpulse(tmp_path, "--json", "services", "status").stdout)
        assert status[0]["state"] == "stale"
        ccpulse(tmp_path, "services", "down")
        assert pid_alive(pid), "down signalled a process whose start time did not match"
    finally:
        stop_pid(pid)
    assert not pid_alive(pid)


def test_history_migrate_query_and_retention_on_chdb(tmp_path: Path) -> None:
    migrate = ccpulse(tmp_path, "--json", "history", "migrate")
    assert migrate.returncode == 0, migrate.stderr
    assert {r["status"] for r in json.loads(migrate.stdout)} == {"applied"}
    again = ccpulse(tmp_path, "--json", "history", "migrate")
    assert {r["status"] for r in json.loads(again.stdout)} == {"already applied"}
    tables = ccpulse(
        tmp_path, "--json", "history", "query", "SELECT name FROM system.tables WHERE database = 'ccpulse'"
    )
    assert {"contact_events", "kpi_minute", "sink_offsets"} <= {r["c0"] for r in json.loads(tables.stdout)}
    retention = ccpulse(tmp_path, "--json", "history", "retention", "--dry-run")
    assert retention.returncode == 0 and json.loads(retention.stdout) == []
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")} | {
        "CCPULSE_STATE_DIR": str(tmp_path),
        "PYTHONUNBUFFERED": "1",  # each run's line reaches the file as it is printed
    }
    out_path, err_path = tmp_path / "timer.out", tmp_path / "timer.err"
    command = ["--json", "history", "retention", "--dry-run", "--every", ".3"]
    with out_path.open("w") as out, err_path.open("w") as err:  # the child has its own descriptors
        timer = subprocess.Popen(
            [sys.executable, "-m", "streams.cli", *command], env=env, stdout=out, stderr=err
        )
    try:
        wait_until(
            lambda: out_path.read_text().count("\n") >= 2 or timer.poll() is not None, 60,
            "two runs of the retention timer printed",
            seen=lambda: {"exit": timer.poll(), "stdout": out_path.read_text()[-300:],
                          "stderr": err_path.read_text()[-1000:]},
        )  # fmt: skip
    finally:
        timer.terminate()
        try:
            timer.wait(timeout=30)
        except subprocess.TimeoutExpired:
            timer.kill()
            timer.wait()
            raise
    out = out_path.read_text()
    assert timer.returncode == 0, err_path.read_text()
    assert len(out.splitlines()) >= 2 and all(json.loads(line) == [] for line in out.splitlines())
    bad = ccpulse(tmp_path, "history", "query", "SELECT * FROM nope")
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr


def test_simulate_to_file_then_backfill_history(tmp_path: Path) -> None:
    from streams.domain.errors import InvalidEvent
    from streams.domain.events import ContactEvent, ContactEventType
    from streams.domain.regions import region_codes
    from streams.wire.codec import Codec
    from streams.wire.record_file import read_records

    sim_file = tmp_path / "sim.bin"
    simulate = ccpulse(
        tmp_path, "simulate", "--regions", "RU-MOW,RU-KAM", "--hours", "2", "--seed", "5",
        "--malformed", "0.01", "--duplicate", "0.01", "--path", str(sim_file),
    )  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    codec = Codec.pinned(known_regions=region_codes())
    records = list(read_records(sim_file))
    invalid, queued = 0, set()
    for record in records:
        try:
            event = codec.decode(record.topic, record.value)
        except InvalidEvent:
            invalid += 1
            continue
        if isinstance(event, ContactEvent) and event.type is ContactEventType.QUEUED:
            queued.add(event.contact_id)
    assert invalid > 0 and queued

    result = ccpulse(tmp_path, "--json", "history", "backfill", "--file", str(sim_file))
    assert result.returncode == 0, result.stderr
    (stats,) = json.loads(result.stdout)
    assert stats["messages"] == len(records)
    assert stats["dead_letters"] == invalid
    offered = ccpulse(tmp_path, "--json", "history", "query", "SELECT sum(offered) FROM ccpulse.kpi_minute")
    assert json.loads(offered.stdout) == [{"c0": len(queued)}]  # duplicates counted once


def test_simulate_pseudonymises_with_the_configured_key(tmp_path: Path) -> None:
    """CCPULSE_PSEUDONYM_KEY_FILE reaches the simulator: customer references are the keyed
    hash of that key (another key, other references); the key itself is never printed."""
    import secrets

    from streams.domain.events import ContactEvent
    from streams.domain.regions import region_codes
    from streams.wire.codec import Codec
    from streams.wire.record_file import read_records

    codec = Codec.pinned(known_regions=region_codes())
    refs = {}
    for name in ("k1", "k2"):
        key = secrets.token_urlsafe(24)
        key_file = tmp_path / f"{name}.key"
        key_file.write_text(key)
        out = tmp_path / f"{name}.bin"
        result = ccpulse(tmp_path, "simulate", "--regions", "RU-MOW", "--hours", "1", "--seed", "3",
                         "--start", "2026-05-11T06:00+00:00", "--path", str(out),
                         extra_env={"CCPULSE_PSEUDONYM_KEY_FILE": str(key_file)})  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert key not in result.stdout + result.stderr
        events = (codec.decode(r.topic, r.value) for r in read_records(out))
        refs[name] = [e.customer_ref for e in events if isinstance(e, ContactEvent)][:50]
    default = Simulation(SimConfig(regions=("RU-MOW",)), seed=3, start=datetime(2026, 5, 11, 6, tzinfo=UTC))
    default_refs = [r.event.customer_ref for r in default.records() if isinstance(r.event, ContactEvent)][:50]
    assert len(refs["k1"]) == 50
    assert not set(refs["k1"]) & set(refs["k2"]) and not set(refs["k1"]) & set(default_refs)


def test_whatif_prints_both_policies_per_region(tmp_path: Path) -> None:
    out = ccpulse(tmp_path, "--json", "whatif", "--regions", "RU-MOW,RU-SPE", "--hours", "3", "--seed", "2",
                  "--start", "2026-05-11T06:00+00:00", "--staffing", "RU-MOW=0.6")  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = {row["region"]: row for row in json.loads(out.stdout)}
    assert set(rows) == {"RU-MOW", "RU-SPE", "ALL"}
    assert float(rows["RU-MOW"]["sl_cust_pol"]) > float(rows["RU-MOW"]["sl_cust_base"])
    bad = ccpulse(tmp_path, "whatif", "--staffing", "RU-MOW")
    assert bad.returncode == 2 and "REGION=FACTOR" in bad.stdout + bad.stderr


@pytest.mark.kafka
def test_simulate_worker_sink_and_query(fresh_kafka: Any, tmp_path: Path) -> None:
    bootstrap = fresh_kafka.bootstrap_servers
    start = (
        datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=1)
    ).isoformat()
    options = ["--hours", "1", "--to", "kafka", "--bootstrap-servers", bootstrap, "--start", start]
    sim = ccpulse(
        tmp_path, "simulate", "--regions", "RU-MOW,RU-KAM", *options, "--duplicate", "0.02", "--seed", "4"
    )
    assert sim.returncode == 0, sim.stderr
    worker = ccpulse(
        tmp_path, "worker", "--bootstrap-servers", bootstrap, "--idle-exit", "5", "--metrics-port", "-1"
    )
    assert worker.returncode == 0, worker.stderr
    summary = json.loads(worker.stdout.strip().splitlines()[-1])
    assert summary["events"] > 1_000 and summary["decisions"] > 100 and summary["checkpoints"] >= 1
    sink = ccpulse(
        tmp_path, "--json", "history", "sink", "--bootstrap-servers", bootstrap, "--idle-exit", "5"
    )
    assert sink.returncode == 0, sink.stderr
    written = json.loads(sink.stdout)["rows_written"]
    assert written >= summary["events"]  # the duplicates are rows too; queries count distinct event ids
    query = ccpulse(tmp_path, "--json", "history", "query",
                    "SELECT count(), uniqExact(event_id) FROM ccpulse.contact_events")  # fmt: skip
    assert query.returncode == 0, query.stderr
    ((rows, distinct),) = [tuple(r.values()) for r in json.loads(query.stdout)]
    assert int(rows) >= int(distinct) > 1_000  # duplicates collapse on merge (ReplacingMergeTree)
    assert written > int(distinct)
    show = ccpulse(tmp_path, "--json", "kpi", "show", "--bootstrap-servers", bootstrap, "--window", "TODAY")
    assert show.returncode == 0 and {r["region"] for r in json.loads(show.stdout)} == {"RU-MOW", "RU-KAM"}
    targets = {r["channel"]: (r["sl_threshold_s"], r["asa_target_s"], r["aht_target_s"])
               for r in json.loads(show.stdout)}  # fmt: skip
    assert targets["VOICE"] == (40.0, 40.0, 140.0) and targets["EMAIL"] == (86400.0, 86400.0, None)
    assert all(r["aht_verdict"] in ("met", "MISSED", "no data") for r in json.loads(show.stdout)
               if r["channel"] == "VOICE")  # fmt: skip
    table = ccpulse(tmp_path, "kpi", "show", "--bootstrap-servers", bootstrap, "--window", "TODAY",
                    extra_env={"COLUMNS": "250"})  # fmt: skip
    assert table.returncode == 0 and "per channel, 2 regions" in table.stdout and "no target" in table.stdout


def test_live_demo_runs_the_pipeline_and_stops_everything(tmp_path: Path) -> None:
    result = ccpulse(tmp_path, "--json", "demo", "--duration", "60s", "--no-live", timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["ok"] and not summary["left_running"]
    assert summary["regions_with_traffic"] == 67 and min(summary["per_region_offered"].values()) > 0
    assert summary["time_to_first_kpi_s"] is not None
    # per channel, each against its own targets; all-channel only what adds up (offered, FLR, CSAT)
    channels = summary["per_channel"]
    assert list(channels) == ["VOICE", "CHAT", "MESSENGER", "EMAIL"]
    assert sum(c["offered"] for c in channels.values()) == summary["offered"]
    assert [c["sl_threshold_s"] for c in channels.values()] == [40.0, 60.0, 120.0, 86400.0]
    assert [c["aht_target_s"] for c in channels.values()] == [140.0, None, None, None]
    for c in channels.values():
        assert 0.0 <= c["service_level"] <= 1.0 and 0.0 <= c["abandonment_rate"] <= 1.0
        assert c["service_level_met"] is (c["service_level"] >= 0.8)
        assert c["asa_met"] is (c["asa_seconds"] <= c["asa_target_s"])
    assert channels["VOICE"]["aht_met"] is (channels["VOICE"]["aht_seconds"] <= 140.0)
    assert channels["EMAIL"]["aht_met"] is None  # no target
    assert summary["first_line_resolution_met"] is (summary["first_line_resolution"] >= 0.99)
    assert "service_level" not in summary and "aht_seconds" not in summary  # no all-channel SL/ASA/AHT
    report = Path(summary["report"]).read_text()
    assert all(code in report for code in summary["per_region_offered"])
    assert 'id="summary"' in report and "≤ 140 s" in report
    assert "slow checkpoint" not in result.stdout + result.stderr  # operational warnings: the log
    assert not (tmp_path / "demo" / "pids.json").exists()


def test_demo_stops_a_leftover_and_moves_off_a_taken_port(tmp_path: Path) -> None:
    import socket

    from streams.services.base import process_start_ticks

    leftover = subprocess.Popen(
        [sys.executable, "-c", "import signal; signal.pause()"],
        start_new_session=True,  # never exits
    )
    (tmp_path / "demo").mkdir(parents=True)
    entry = {"name": "Tansu", "pid": leftover.pid, "start_ticks": process_start_ticks(leftover.pid)}
    (tmp_path / "demo" / "pids.json").write_text(json.dumps([entry]))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ("demo", "--duration", "15s", "--regions", "RU-MOW,RU-KAM", "--metrics-port", str(port))
        result = ccpulse(tmp_path, "--json", *args, "--no-live", timeout=300)
    try:
        assert leftover.wait(timeout=10) is not None  # stopped by the demo
    finally:
        if leftover.poll() is None:
            leftover.kill()
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"stopped a leftover Tansu (pid {leftover.pid})" in result.stdout
    assert f"port {port} is in use; /metrics moved to" in result.stdout
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["regions_with_traffic"] == 2 and not summary["left_running"]
