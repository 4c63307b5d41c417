"""Apache Kafka (KRaft) from the jars Maven resolves from Maven Central, run with Java 17.

`ensure_kafka_jars` runs `mvn dependency:copy-dependencies` on deploy/local/kafka/pom.xml
into a cache dir once. `KafkaCluster(n)` formats storage with kafka.tools.StorageTool
and starts n combined broker+controller nodes on free 127.0.0.1 ports with a static
controller quorum; `KafkaBroker` is the single-node case. Readiness: the AdminClient
sees all n brokers.

``sasl_ssl=True`` adds a client listener with TLS (a CA generated per cluster by
streams.services.tls) and SASL/SCRAM-SHA-512 on its own ports
(`secure_bootstrap_servers`); users are added with `add_scram_user`. The inter-broker
and controller listeners stay PLAINTEXT on loopback, as does the PLAINTEXT client
listener (`bootstrap_servers`) that readiness checks and user creation use.
"""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from pydantic import SecretStr

from streams.services.base import ManagedProcess, ServiceError, free_port, require_binary, signal_group, tail
from streams.services.tls import LocalCa, make_local_ca
from streams.wire.kafka_config import KafkaSecurity, SaslMechanism, client_config

KAFKA_VERSION = "4.1.1"
POM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "local" / "kafka"
DEFAULT_CACHE = Path.home() / ".cache" / "ccpulse"
# Local brokers for development and tests (production runs deploy/): tuned to start fast, not
# for peak throughput. C1 only and the serial collector: 4.8 instead of 8.7 CPU seconds per
# start-and-stop with the storage format (2 starts each, load 2), ~1 s sooner ready; test traffic
# (hundreds of messages a second) is far below what C1-compiled brokers carry.
JVM_OPTS = ["-Xms256m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]
TOOL_OPTS = ["-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xshare:auto"]  # the one-shot storage format
SCRAM_MECHANISM: SaslMechanism = "SCRAM-SHA-512"
LOG_OPTS = [
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
]


def libs_dir(version: str = KAFKA_VERSION, cache_dir: Path = DEFAULT_CACHE) -> Path:
    return cache_dir / f"kafka-{version}" / "libs"


def ensure_kafka_jars(
    version: str = KAFKA_VERSION, cache_dir: Path = DEFAULT_CACHE, quiet: bool = False
) -> Path:
    """The libs dir with the broker jars, resolving them with Maven when missing."""
    libs = libs_dir(version, cache_dir)
    if libs.is_dir() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    mvn = require_binary("mvn", "maven")
    if not quiet:
        print(f"resolving Apache Kafka {version} jars from Maven Central into {libs} ...", file=sys.stderr)
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={libs}",
        ],
        cwd=POM_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        msg = f"mvn could not resolve Kafka {version} (exit {result.returncode}):\n{result.stdout[-2000:]}"
        raise ServiceError(msg)
    if not quiet:
        print(f"{len(list(libs.glob('*.jar')))} jars ready", file=sys.stderr)
    return libs


def java_bin() -> str:
    return require_binary("java", "openjdk-17-jre-headless")


def new_cluster_id() -> str:
    """A Kafka Uuid (base64url, 22 chars); like Kafka's own, never starting with '-'."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaCluster:
    """n combined (broker + controller) KRaft nodes on loopback."""

    def __init__(
        self,
        work_dir: Path,
        nodes: int = 1,
        version: str = KAFKA_VERSION,
        cache_dir: Path = DEFAULT_CACHE,
        sasl_ssl: bool = False,
    ) -> None:
        self.work_dir = work_dir
        self.n = nodes
        self.version = version
        self.libs = ensure_kafka_jars(version, cache_dir)
        self.cluster_id = new_cluster_id()
        self.broker_ports = [free_port() for _ in range(nodes)]
        self.controller_ports = [free_port() for _ in range(nodes)]
        self.processes: list[ManagedProcess | None] = [None] * nodes
        self.ready_seconds = 0.0
        self.secure_ports = [free_port() for _ in range(nodes)] if sasl_ssl else []
        self.tls: LocalCa | None = make_local_ca(work_dir / "tls") if sasl_ssl else None

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"127.0.0.1:{p}" for p in self.broker_ports)

    @property
    def secure_bootstrap_servers(self) -> str:
        """The SASL_SSL (SCRAM-SHA-512) client listener; only with ``sasl_ssl=True``."""
        if not self.secure_ports:
            msg = "this cluster was started without sasl_ssl=True: it has no secure listener"
            raise ServiceError(msg)
        return ",".join(f"127.0.0.1:{p}" for p in self.secure_ports)

    def client_security(self, username: str, password: SecretStr) -> KafkaSecurity:
        """What a client of the secure listener needs: SCRAM credentials and this cluster's CA."""
        assert self.tls is not None, "no secure listener (sasl_ssl=False)"
        return KafkaSecurity(
            protocol="SASL_SSL",
            sasl_mechanism=SCRAM_MECHANISM,
            sasl_username=username,
            sasl_password=password,
            ssl_ca_location=self.tls.ca_certificate,
        )

    @property
    def pid(self) -> int:
        first = self.processes[0]
        assert first is not None
        return first.pid

    def node_dir(self, i: int) -> Path:
        return self.work_dir / f"node-{i + 1}"

    def _properties(self, i: int) -> str:
        rf = min(3, self.n)
        voters = ",".join(f"{j + 1}@127.0.0.1:{p}" for j, p in enumerate(self.controller_ports))
        props = {
            "process.roles": "broker,controller",
            "node.id": str(i + 1),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://127.0.0.1:{self.broker_ports[i]},"
            f"CONTROLLER://127.0.0.1:{self.controller_ports[i]}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.broker_ports[i]}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.node_dir(i) / "data"),
            "num.partitions": "1",
            "default.replication.factor": str(rf),
            "min.insync.replicas": str(min(2, rf)),
            "offsets.topic.replication.factor": str(rf),
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": str(rf),
            "transaction.state.log.min.isr": str(min(2, rf)),
            "share.coordinator.state.topic.replication.factor": str(rf),
            "share.coordinator.state.topic.min.isr": str(min(2, rf)),
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.segment.bytes": str(64 * 1024 * 1024),
            # message timestamps are event times, and simulated or example events may be older
            # than the topics' 7-day retention: the default 5-minute retention check deleted
            # them in the middle of a test session. Local brokers check once a day.
            "log.retention.check.interval.ms": str(24 * 3600 * 1000),
        }
        if self.tls is not None:
            props.update(self._secure_listener(i, props))
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _secure_listener(self, i: int, props: dict[str, str]) -> dict[str, str]:
        """A CLIENT listener with SASL_SSL: TLS from a PEM key store, SCRAM-SHA-512 logins."""
        assert self.tls is not None
        address = f"CLIENT://127.0.0.1:{self.secure_ports[i]}"
        prefix = "listener.name.client."
        return {
            "listeners": f"{props['listeners']},{address}",
            "advertised.listeners": f"{props['advertised.listeners']},{address}",
            "listener.security.protocol.map": f"{props['listener.security.protocol.map']},CLIENT:SASL_SSL",
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}sasl.enabled.mechanisms": SCRAM_MECHANISM,
            f"{prefix}{SCRAM_MECHANISM.lower()}.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            f"{prefix}ssl.keystore.type": "PEM",
            f"{prefix}ssl.keystore.location": str(self.tls.server_keystore),
            f"{prefix}ssl.client.auth": "none",
        }

    def _format(self, i: int) -> Path:
        node_dir = self.node_dir(i)
        node_dir.mkdir(parents=True, exist_ok=True)
        config = node_dir / "server.properties"
        config.write_text(self._properties(i))
        result = subprocess.run(
            [
                java_bin(),
                *TOOL_OPTS,
                *LOG_OPTS,
                "-cp",
                f"{self.libs}/*",
                "kafka.tools.StorageTool",
                "format",
                "--config",
                str(config),
                f"--cluster-id={self.cluster_id}",
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            msg = f"formatting Kafka storage of node {i + 1} failed: {result.stdout}{result.stderr}"
            raise ServiceError(msg)
        return config

    def start(self, timeout_s: float = 90.0) -> KafkaCluster:
        configs = [self._format(i) for i in range(self.n)]
        try:
            for i in range(self.n):
                self._start_node(i, configs[i])
            first = self.processes[0]
            assert first is not None
            self.ready_seconds = first.wait_ready(self._all_brokers_up, timeout_s, f"{self.n} broker(s) up")
        except BaseException:
            self.stop()
            raise
        return self

    def _start_node(self, i: int, config: Path) -> None:
        argv = [java_bin(), *JVM_OPTS, *LOG_OPTS, "-cp", f"{self.libs}/*", "kafka.Kafka", str(config)]
        process = ManagedProcess(f"kafka-{i + 1}", argv, self.node_dir(i))
        process.start()
        self.processes[i] = process

    def admin(self, quiet: bool = False) -> AdminClient:
        config = client_config(self.bootstrap_servers) | {"socket.timeout.ms": 3000}
        if quiet:  # readiness probes: connection refusals are expected, not worth a log line
            config["log_level"] = 0
        return AdminClient(config)

    def _all_brokers_up(self, expected: int | None = None) -> bool:
        metadata = self.admin(quiet=True).list_topics(timeout=3)
        return len(metadata.brokers) >= (expected or self.n)

    def kill_node(self, i: int) -> None:
        """SIGKILL one node (fault injection); `start_node(i)` brings it back."""
        process = self.processes[i]
        if process is not None:
            process.kill()

    def stop_node(self, i: int) -> None:
        process = self.processes[i]
        if process is not None:
            process.stop()

    def start_node(self, i: int, timeout_s: float = 180.0) -> float:  # a loaded JVM start: 38 s seen
        self._start_node(i, self.node_dir(i) / "server.properties")
        process = self.processes[i]
        assert process is not None
        return process.wait_ready(lambda: self._node_up(i), timeout_s, f"node {i + 1} rejoined")

    def _node_up(self, i: int) -> bool:
        """The node itself answers metadata and sees the full cluster."""
        config = client_config(f"127.0.0.1:{self.broker_ports[i]}")
        admin = AdminClient(config | {"socket.timeout.ms": 3000, "log_level": 0})
        metadata = admin.list_topics(timeout=3)
        return metadata.orig_broker_id == i + 1 and len(metadata.brokers) >= self.n

    def add_scram_user(self, username: str, password: SecretStr, timeout_s: float = 30.0) -> KafkaSecurity:
        """Create or update a SCRAM-SHA-512 user (through the loopback PLAINTEXT listener, as
        `kafka-configs.sh --alter --add-config` would) and wait until it can log in over
        SASL_SSL; returns the client security for it."""
        upsert = UserScramCredentialUpsertion(
            username,
            ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
            password.get_secret_value().encode(),
        )
        admin = self.admin()  # referenced until the futures resolve: a collected handle fails them
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(timeout=timeout_s)
        security = self.client_security(username, password)
        probe = client_config(self.secure_bootstrap_servers, security)
        admin = AdminClient(probe | {"socket.timeout.ms": 3000, "log_level": 0})
        deadline = time.monotonic() + timeout_s
        while True:  # the broker applies the credential from the metadata log a moment later
            try:
                admin.list_topics(timeout=3)
                return security
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def server_version(self) -> str:
        jars = sorted(self.libs.glob("kafka-clients-*.jar"))
        return jars[0].stem.removeprefix("kafka-clients-") if jars else self.version

    def log_tail(self, i: int = 0) -> str:
        return tail(self.node_dir(i) / f"kafka-{i + 1}.log")

    def stop(self) -> None:
        """SIGTERM every node first, then wait: controlled shutdowns run in parallel."""
        running = [p for p in self.processes if p is not None and p.process is not None]
        for process in running:
            signal_group(process.pid, signal.SIGTERM)
        for process in running:
            process.stop(timeout_s=20)


def KafkaBroker(  # noqa: N802 - reads as a class at call sites
    work_dir: Path, version: str = KAFKA_VERSION, cache_dir: Path = DEFAULT_CACHE
) -> KafkaCluster:
    """A single combined broker + controller node."""
    return KafkaCluster(work_dir, nodes=1, version=version, cache_dir=cache_dir)
