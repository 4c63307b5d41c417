"""Debian's prometheus (2.42) with a generated scrape config, on a free loopback port.

Readiness: GET /-/ready. `query()` runs an instant PromQL query over the HTTP API.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from streams.services.base import ManagedProcess, ServiceError, free_port, require_binary


def prometheus_binary() -> str:
    return require_binary("prometheus", "prometheus")


class PrometheusServer:
    def __init__(
        self,
        work_dir: Path,
        targets: Sequence[str] = (),
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
        evaluation_interval: str | None = None,
    ) -> None:
        self.work_dir = work_dir
        self.alertmanagers = list(alertmanagers)  # host:port of each Alertmanager the alerts go to
        self.evaluation_interval = evaluation_interval or scrape_interval
        self.port = free_port()
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.rule_files = [str(p) for p in rule_files]
        self.process: ManagedProcess | None = None
        self.ready_seconds = 0.0
        self.version = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": self.scrape_interval,
                "evaluation_interval": self.evaluation_interval,
            },
            "scrape_configs": [
                {"job_name": "ccpulse", "static_configs": [{"targets": self.targets}]},
            ],
        }
        if self.rule_files:
            config["rule_files"] = self.rule_files
        if self.alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]}
        return config

    def start(self, timeout_s: float = 30.0) -> PrometheusServer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        argv = [
            prometheus_binary(),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.work_dir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        self.process = ManagedProcess("prometheus", argv, self.work_dir)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "GET /-/ready")
        return self

    def _ready(self) -> bool:
        if httpx.get(f"{self.url}/-/ready", timeout=2).status_code != 200:
            return False
        info = httpx.get(f"{self.url}/api/v1/status/buildinfo", timeout=2).json()
        self.version = str(info.get("data", {}).get("version", ""))
        return True

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            msg = f"PromQL {promql!r} failed: {body.get('error', response.text)}"
            raise ServiceError(msg)
        return list(body["data"]["result"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
