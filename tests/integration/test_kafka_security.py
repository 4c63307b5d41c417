"""Kafka over TLS with SASL/SCRAM-SHA-512, end to end, on a real Apache Kafka broker.

The broker gets a CA generated for this module (streams.services.tls) and a SASL_SSL
client listener; the user's password is generated here, written to a 0600 file and
reaches the CLI only through CCPULSE_KAFKA_SASL_PASSWORD_FILE. Topics, the simulator,
the worker and the snapshot reader all go through the secure listener; a wrong
password and a missing CA fail fast with one clear message; the password shows up
in no output, log or repr.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr
from support.cli import ccpulse as run_ccpulse

from streams.cli.main import main as ccpulse_main
from streams.jobs.snapshot_reader import latest_snapshots
from streams.services.kafka import KafkaCluster
from streams.settings import load_settings
from streams.wire.codec import Codec
from streams.wire.kafka_config import KafkaSecurity, KafkaSecurityError, check_connection, client_config
from streams.wire.topics import INPUT_TOPICS

pytestmark = pytest.mark.kafka

REGIONS = "RU-MOW,RU-KGD"
USERNAME = "ccpulse-worker"


@dataclass(frozen=True)
class SecureKafka:
    cluster: KafkaCluster
    password: str
    security: KafkaSecurity

    @property
    def servers(self) -> str:
        return self.cluster.secure_bootstrap_servers

    def env(self, tmp_path: Path, password: str | None = None) -> dict[str, str]:
        """The environment a deployment would give `ccpulse`: no CCPULSE_* from the outside."""
        secret = tmp_path / "kafka-password"
        secret.touch(mode=0o600)
        secret.write_text(self.password if password is None else password)
        assert self.security.ssl_ca_location is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCPULSE_")}
        return env | {
            "CCPULSE_BOOTSTRAP_SERVERS": self.servers,
            "CCPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CCPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CCPULSE_KAFKA_SASL_USERNAME": USERNAME,
            "CCPULSE_KAFKA_SASL_PASSWORD_FILE": str(secret),
            "CCPULSE_KAFKA_SSL_CA_LOCATION": str(self.security.ssl_ca_location),
            "CCPULSE_STATE_DIR": str(tmp_path / "state"),
        }


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    cluster = KafkaCluster(tmp_path_factory.mktemp("kafka-sasl-ssl"), nodes=1, sasl_ssl=True).start()
    try:
        password = secrets.token_urlsafe(24)
        security = cluster.add_scram_user(USERNAME, SecretStr(password))
        yield SecureKafka(cluster, password, security)
    finally:
        cluster.stop()


def ccpulse(env: dict[str, str], *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
    return run_ccpulse(*args, env=env, timeout_s=timeout_s)


def input_messages(config: dict[str, object]) -> int:
    """Messages in the input topics (a fresh broker: the high watermarks), read over SASL_SSL."""
    consumer = Consumer(config | {"group.id": "count-inputs"})
    try:
        total = 0
        for topic in INPUT_TOPICS:
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
        return total
    finally:
        consumer.close()


def test_topics_simulator_worker_and_reader_over_sasl_ssl(
    secure_kafka: SecureKafka,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    env = secure_kafka.env(tmp_path)
    outputs: list[str] = []

    applied = ccpulse(env, "--json", "topics", "apply")
    outputs += [applied.stdout, applied.stderr]
    assert applied.returncode == 0, applied.stderr
    assert {row["action"] for row in json.loads(applied.stdout)} == {"created"}

    start = (datetime.now(UTC) - timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    simulated = ccpulse(
        env, "simulate", "--", "--to", "kafka", "--regions", REGIONS, "--hours", "1", "--seed", "3",
        "--start", start.isoformat(),
    )  # fmt: skip
    outputs += [simulated.stdout, simulated.stderr]
    assert simulated.returncode == 0, simulated.stderr
    config = client_config(secure_kafka.servers, secure_kafka.security)
    sent = input_messages(config)
    assert sent > 5_000

    worker = ccpulse(
        env, "worker", "--group", "secure-kpi", "--metrics-port", "-1", "--checkpoint-interval", "1",
        "--idle-exit", "3", "--log-level", "debug",
    )  # fmt: skip
    outputs += [worker.stdout, worker.stderr]
    assert worker.returncode == 0, worker.stderr
    summary = json.loads(worker.stdout.splitlines()[-1])
    assert summary["event"] == "stopped"
    assert summary["events"] == sent  # every input message consumed over SASL_SSL
    assert summary["snapshots"] > 0 and summary["checkpoints"] > 0

    snapshots = latest_snapshots(config, Codec.pinned())
    minutes = [s for s in snapshots.values() if s["window"] == "MINUTE"]
    assert {s["region"] for s in minutes} == set(REGIONS.split(","))
    assert sum(s["offered"] for s in minutes) > 100

    captured = capfd.readouterr()
    outputs += [captured.out, captured.err, caplog.text]
    assert "assigned" in worker.stderr  # the worker's own log lines are part of what is checked
    leaks = [i for i, text in enumerate(outputs) if secure_kafka.password in text]
    assert leaks == [], "the SASL password appeared in the output of the CLI or the logs"


def test_a_wrong_password_ends_the_worker_with_an_authentication_error(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    wrong = secrets.token_urlsafe(24)
    began = time.monotonic()
    result = ccpulse(secure_kafka.env(tmp_path, password=wrong), "worker", "--metrics-port", "-1")
    elapsed = time.monotonic() - began
    assert result.returncode == 1
    error = " ".join(result.stderr.split())  # rich wraps long lines
    assert f"refused the login of user '{USERNAME}' with SCRAM-SHA-512" in error
    assert "Authentication failed during authentication due to invalid credentials" in error
    assert "CCPULSE_KAFKA_SASL_PASSWORD" in error
    assert elapsed < 30, f"took {elapsed:.1f} s: the refusal must end the command, not be retried"
    assert wrong not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_a_client_without_the_ca_fails_the_tls_handshake(secure_kafka: SecureKafka) -> None:
    without_ca = replace(secure_kafka.security, ssl_ca_location=None)  # the system trust store only
    began = time.monotonic()
    with pytest.raises(KafkaSecurityError) as info:
        check_connection(client_config(secure_kafka.servers, without_ca))
    assert time.monotonic() - began < 10
    message = str(info.value)
    assert f"TLS handshake with Kafka at {secure_kafka.servers} failed" in message
    assert "certificate verify failed" in message
    assert "CCPULSE_KAFKA_SSL_CA_LOCATION (now unset: the system trust store)" in message


def test_the_password_is_not_in_help_or_settings(
    secure_kafka: SecureKafka,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = secure_kafka.env(tmp_path) | {"CCPULSE_KAFKA_SASL_PASSWORD": secure_kafka.password}
    for name, value in env.items():
        if name.startswith("CCPULSE_"):
            monkeypatch.setenv(name, value)
    helps = []
    for argv in (
        ["--help"],
        ["worker", "--help"],
        ["topics", "apply", "--help"],
        ["history", "sink", "--help"],
    ):
        with pytest.raises(SystemExit) as exited:
            ccpulse_main(argv)
        assert exited.value.code == 0
        helps.append(capsys.readouterr().out)
    assert "CCPULSE_KAFKA_SASL_PASSWORD_FILE" in " ".join(helps[1].split())
    settings = load_settings()
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == secure_kafka.password
    shown = [
        *helps,
        repr(settings),
        str(settings),
        repr(settings.kafka_security()),
        settings.model_dump_json(),
    ]
    assert not [text for text in shown if secure_kafka.password in text]
