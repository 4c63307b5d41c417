"""Debian's clickhouse-server (18.16) with a generated config in a work dir.

Listens on 127.0.0.1 only, free TCP (native) and HTTP ports, data/tmp/logs in the
work dir, a passwordless `default` user limited to loopback (the admin of the test
server). Readiness: HTTP /ping answers "Ok." and `SELECT version()` works over the
native protocol.

Least-privilege users: 18.16 has no SQL RBAC, users live in users.xml and users.d/.
``users`` writes ClickHouseUser definitions to users.d/ (passwords as
password_sha256_hex); ``users_files`` copies ready-made users.d files, such as those
of deploy/clickhouse/users.d, whose ``from_env`` passwords come from ``env``.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


USER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# The profiles of deploy/clickhouse/users.d, same names and limits.
USER_PROFILES = """    <ccpulse_writer><readonly>0</readonly></ccpulse_writer>
    <ccpulse_readonly><readonly>1</readonly><max_execution_time>30</max_execution_time></ccpulse_readonly>"""


@dataclass(frozen=True)
class ClickHouseUser:
    """A user confined to ``databases``: the writer (migrations, inserts) or a reader
    (profile readonly=1). Only loopback clients; the password is stored as its SHA-256."""

    name: str
    password: str = field(repr=False)
    readonly: bool = False
    databases: tuple[str, ...] = ("ccpulse",)

    def xml(self) -> str:
        digest = hashlib.sha256(self.password.encode()).hexdigest()
        profile = "ccpulse_readonly" if self.readonly else "ccpulse_writer"
        databases = "".join(f"<database>{escape(d)}</database>" for d in self.databases)
        return (
            f"    <{self.name}>\n"
            f"      <password_sha256_hex>{digest}</password_sha256_hex>\n"
            f"      <profile>{profile}</profile>\n"
            "      <quota>default</quota>\n"
            "      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>\n"
            f"      <allow_databases>{databases}</allow_databases>\n"
            f"    </{self.name}>\n"
        )


def users_xml(users: Sequence[ClickHouseUser]) -> str:
    """A users.d file defining ``users`` and the ccpulse profiles."""
    for user in users:
        checked_name(user.name)
    body = "".join(user.xml() for user in users)
    return (
        f'<?xml version="1.0"?>\n<yandex>\n  <profiles>\n{USER_PROFILES}\n  </profiles>\n'
        f"  <users>\n{body}  </users>\n</yandex>\n"
    )


def checked_name(name: str) -> str:
    """A user name becomes an XML element name: ASCII letters, digits and _ only."""
    if not USER_NAME.match(name):
        msg = f"ClickHouse user name {name!r}: expected letters, digits and _ (an XML element name)"
        raise ValueError(msg)
    return name


def server_binary() -> str:
    return require_binary("clickhouse-server", "clickhouse-server", SERVER_CANDIDATES)


class ClickHouseServer:
    def __init__(
        self,
        work_dir: Path,
        users: Sequence[ClickHouseUser] = (),
        users_files: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """``users``: written to users.d/; ``users_files``: copied to users.d/ as they are;
        ``env``: added to the server's environment (``from_env`` values of those files)."""
        self.work_dir = work_dir
        self.users = tuple(users)
        self.users_files = tuple(users_files)
        self.env = None if env is None else {**os.environ, **env}
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
        self._write_users_d()
        self.process = ManagedProcess(
            "clickhouse", [server_binary(), f"--config-file={config}"], self.work_dir, self.env
        )
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "ping + SELECT version()")
        return self

    def _write_users_d(self) -> None:
        # the server merges users.d/*.xml (next to users.xml) into users.xml
        users_d = self.work_dir / "users.d"
        shutil.rmtree(users_d, ignore_errors=True)
        if not self.users and not self.users_files:
            return
        users_d.mkdir()
        for source in self.users_files:
            shutil.copyfile(source, users_d / source.name)
        if self.users:
            (users_d / "ccpulse-test-users.xml").write_text(users_xml(self.users))

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
        self.process = ManagedProcess("clickhouse", argv, self.work_dir, self.env)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, "ping + SELECT version()")
        return self.ready_seconds
