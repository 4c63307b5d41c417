"""Debian's clickhouse-server (18.16) with a generated config in a work dir.

Listens on 127.0.0.1 only, free TCP (native) and HTTP ports, data/tmp/logs in the
work dir, a passwordless `default` user limited to loopback. Readiness: HTTP /ping
answers "Ok." and `SELECT version()` works over the native protocol.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

import httpx
from clickhouse_driver import Client

from streams.services.base import ManagedProcess, free_port, require_binary

SERVER_CANDIDATES = ("/usr/bin/clickhouse-server", "/usr/sbin/clickhouse-server")

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger>
    <level>warning</level>
    <log>{dir}/log/clickhouse-server.log</log>
    <errorlog>{dir}/log/clickhouse-server.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <interserver_http_port>{interserver_port}</interserver_http_port>
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>3</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <mark_cache_size>268435456</mark_cache_size>
  <path>{dir}/data/</path>
  <tmp_path>{dir}/tmp/</tmp_path>
  <user_files_path>{dir}/user_files/</user_files_path>
  <format_schema_path>{dir}/format_schemas/</format_schema_path>
  <users_config>{dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
  <max_session_timeout>3600</max_session_timeout>
  <default_session_timeout>60</default_session_timeout>
</yandex>
"""

USERS = """<?xml version="1.0"?>
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
      <load_balancing>random</load_balancing>
    </default>
    <readonly><readonly>1</readonly></readonly>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
"""


def server_binary() -> str:
    return require_binary("clickhouse-server", "clickhouse-server", SERVER_CANDIDATES)


class ClickHouseServer:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.host = "127.0.0.1"
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.process: ManagedProcess | None = None
        self.version = ""
        self.ready_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.tcp_port}"

    def start(self, timeout_s: float = 60.0) -> ClickHouseServer:
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        directory = escape(str(self.work_dir))
        config = self.work_dir / "config.xml"
        config.write_text(
            CONFIG.format(
                dir=directory, http_port=self.http_port, tcp_port=self.tcp_port, interserver_port=free_port()
            )
        )
        (self.work_dir / "users.xml").write_text(USERS)
        self.process = ManagedProcess(
            "clickhouse", [server_binary(), f"--config-file={config}"], self.work_dir
        )
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "ping + SELECT version()")
        return self

    def _ready(self) -> bool:
        response = httpx.get(f"http://{self.host}:{self.http_port}/ping", timeout=2)
        if response.text.strip() != "Ok.":
            return False
        client = self.client()
        try:
            self.version = str(client.execute("SELECT version()")[0][0])
        finally:
            client.disconnect()
        return True

    def client(self, **settings: object) -> Client:
        return Client(self.host, port=self.tcp_port, connect_timeout=3, settings=settings or None)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout_s=20)

    def restart(self, timeout_s: float = 60.0) -> float:
        """Start again on the same ports and data (after `stop()`, for outage tests)."""
        config = self.work_dir / "config.xml"
        argv = [server_binary(), f"--config-file={config}"]
        self.process = ManagedProcess("clickhouse", argv, self.work_dir)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "ping + SELECT version()")
        return self.ready_seconds
