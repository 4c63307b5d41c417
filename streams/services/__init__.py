"""Real local services without Docker, for tests, the demo and developers.

    start_services(["kafka", "clickhouse"], state_dir) -> {name: ServiceInfo}
    services_status(state_dir) -> [ServiceStatus]
    stop_services(state_dir) -> [names stopped]

Services started here keep running after the calling process exits (each in its
own session); their PIDs, ports and work dirs are recorded as JSON under
state_dir, which is how `status` and `down` find them. Tests use the classes
directly (KafkaCluster, ClickHouseServer, PrometheusServer, TansuBroker) and stop
them at the end of the session.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.services.base import ServiceError, ServiceInfo, pid_alive, process_start_ticks, stop_pid
from streams.services.clickhouse import ClickHouseServer
from streams.services.kafka import KafkaCluster
from streams.services.prometheus import PrometheusServer
from streams.services.tansu import TansuBroker

__all__ = [
    "ServiceError",
    "ServiceInfo",
    "ServiceStatus",
    "running_broker",
    "running_registry",
    "services_status",
    "start_services",
    "stop_services",
]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | stale (process gone) | partial
    pids: tuple[int, ...]
    endpoint: str

    def as_row(self) -> dict[str, Any]:
        return {
            "service": self.name,
            "state": self.state,
            "pids": ",".join(map(str, self.pids)),
            "endpoint": self.endpoint,
        }


def _pids(info: ServiceInfo) -> tuple[int, ...]:
    """The recorded PIDs that still belong to the processes we started."""
    recorded = tuple(info.extra.get("pids", [info.pid]))
    ticks = info.extra.get("start_ticks", {})
    return tuple(p for p in recorded if str(p) not in ticks or process_start_ticks(p) == ticks[str(p)])


def _recorded_pids(info: ServiceInfo) -> tuple[int, ...]:
    return tuple(info.extra.get("pids", [info.pid]))


def _start_one(name: str, work_dir: Path, started: dict[str, ServiceInfo]) -> ServiceInfo:
    service: Any
    ports: dict[str, int]
    extra: dict[str, Any] = {}
    if name in ("kafka", "kafka-cluster"):
        cluster = KafkaCluster(work_dir, nodes=3 if name == "kafka-cluster" else 1).start()
        service, endpoint = cluster, cluster.bootstrap_servers
        ports = {f"broker-{i + 1}": p for i, p in enumerate(cluster.broker_ports)}
        extra["pids"] = [p.pid for p in cluster.processes if p is not None]
        version = cluster.server_version()
    elif name == "clickhouse":
        ch = ClickHouseServer(work_dir).start()
        service, endpoint, ports, version = (
            ch,
            ch.endpoint,
            {"tcp": ch.tcp_port, "http": ch.http_port},
            ch.version,
        )
    elif name == "prometheus":
        targets = [i.endpoint for i in started.values() if i.extra.get("metrics")]
        prom = PrometheusServer(work_dir, targets=targets).start()
        service, endpoint, ports, version = prom, prom.url, {"http": prom.port}, prom.version
    elif name == "apicurio":
        from streams.services.apicurio import ApicurioRegistry

        registry = ApicurioRegistry(work_dir).start()
        service, endpoint, ports, version = (
            registry,
            registry.url,
            {"http": registry.port, "management": registry.management_port},
            registry.version,
        )
    elif name == "tansu":
        tansu = TansuBroker(work_dir).start()
        service, endpoint, ports, version = (
            tansu,
            tansu.bootstrap_servers,
            {"kafka": tansu.port},
            tansu.version,
        )
    else:
        expected = "kafka, kafka-cluster, clickhouse, prometheus, tansu or apicurio"
        msg = f"unknown service {name!r}; expected {expected}"
        raise ServiceError(msg)
    process = service.processes[0] if isinstance(service, KafkaCluster) else service.process
    assert process is not None
    pids = extra.setdefault("pids", [service.pid])
    extra["start_ticks"] = {str(pid): process_start_ticks(pid) for pid in pids}
    return ServiceInfo(
        name=name,
        pid=service.pid,
        endpoint=endpoint,
        ports=ports,
        work_dir=str(work_dir),
        log=str(process.log_path),
        started_at=process.started_at,
        ready_seconds=service.ready_seconds,
        version=version,
        extra=extra,
    )


def start_services(names: list[str], state_dir: Path) -> dict[str, ServiceInfo]:
    # Absolute from here on: services start with their own working directory, so a relative
    # path (the default `.ccpulse`) would point somewhere else inside them (issue 16).
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    running = {s.name for s in services_status(state_dir) if s.state == "running"}
    infos: dict[str, ServiceInfo] = {}
    for name in names:
        if name in running:
            msg = f"{name} is already running (see `ccpulse services status`); `ccpulse services down` first"
            raise ServiceError(msg)
        work_dir = state_dir / name
        if work_dir.exists():
            shutil.rmtree(work_dir)
        try:
            infos[name] = _start_one(name, work_dir, infos)
        except BaseException:
            # all or nothing: stop what this call started, then report the failure
            for info in infos.values():
                for pid in _pids(info):
                    stop_pid(pid)
                (state_dir / f"{info.name}.json").unlink(missing_ok=True)
            raise
        infos[name].save(state_dir)
    return infos


def services_status(state_dir: Path) -> list[ServiceStatus]:
    statuses = []
    for path in sorted(state_dir.glob("*.json")):
        info = ServiceInfo.load(path)
        pids = _recorded_pids(info)
        alive = [p for p in _pids(info) if pid_alive(p)]
        state = "running" if len(alive) == len(pids) else ("partial" if alive else "stale")
        statuses.append(ServiceStatus(info.name, state, pids, info.endpoint))
    return statuses


def running_broker(state_dir: Path) -> str | None:
    """Bootstrap servers of a Kafka or Tansu started by `services up`, if one is running."""
    statuses = {s.name: s for s in services_status(state_dir)}
    for name in ("kafka", "kafka-cluster", "tansu"):
        status = statuses.get(name)
        if status is not None and status.state == "running":
            return status.endpoint
    return None


def running_registry(state_dir: Path) -> str | None:
    """The Confluent-compatible URL of an Apicurio started by `services up`, if one is running."""
    status = {s.name: s for s in services_status(state_dir)}.get("apicurio")
    return status.endpoint if status is not None and status.state == "running" else None


def stop_services(state_dir: Path) -> list[str]:
    stopped = []
    for path in sorted(state_dir.glob("*.json")):
        info = ServiceInfo.load(path)
        for pid in _pids(info):
            stop_pid(pid)
        path.unlink()
        stopped.append(info.name)
    return stopped
