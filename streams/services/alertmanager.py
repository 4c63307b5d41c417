"""Debian's prometheus-alertmanager (0.25) with a given config, on a free loopback port.

Clustering is switched off (``--cluster.listen-address=``), else it binds 0.0.0.0:9094.
Readiness: GET /-/ready. ``alerts()`` lists what it holds (API v2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from streams.services.base import ManagedProcess, free_port, require_binary


def alertmanager_binary() -> str:
    return require_binary(
        "prometheus-alertmanager", "prometheus-alertmanager", ("/usr/bin/prometheus-alertmanager",)
    )


class AlertmanagerServer:
    def __init__(self, work_dir: Path, config: dict[str, Any]) -> None:
        self.work_dir = work_dir
        self.config = config
        self.port = free_port()
        self.process: ManagedProcess | None = None
        self.ready_seconds = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """host:port, as Prometheus' alerting static_configs want it."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout_s: float = 30.0) -> AlertmanagerServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        argv = [
            alertmanager_binary(),
            f"--config.file={config_path}",
            f"--storage.path={self.work_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]
        self.process = ManagedProcess("alertmanager", argv, self.work_dir)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "GET /-/ready")
        return self

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200

    def alerts(self) -> list[dict[str, Any]]:
        return list(httpx.get(f"{self.url}/api/v2/alerts", timeout=5).json())

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
