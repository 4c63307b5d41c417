"""Apicurio Registry (Confluent-compatible Schema Registry API) from Maven Central.

`ensure_apicurio_app` runs `mvn dependency:unpack-dependencies` on
deploy/local/apicurio/pom.xml once: it unpacks the application distribution Apicurio
publishes on Maven Central (io.apicurio:apicurio-registry-app:<version>:tar.gz:all,
Quarkus' build output) into the cache dir. The thin jar + quarkus-maven-plugin route does
not resolve here (docs/operations.md). Apicurio 3.3 is compiled for Java 21: it runs on
the newest JDK >= 21 under /usr/lib/jvm (`java21_home`; this kind of machine has Temurin
25 beside Debian's Java 17, which Kafka keeps).

`ApicurioRegistry(work_dir).start()` runs it on a free 127.0.0.1 port (and a free
management port) with in-memory storage (H2 in memory: gone when it stops). `url` is the
Confluent-compatible API, ``http://127.0.0.1:PORT/apis/ccompat/v7``: what
confluent-kafka's SchemaRegistryClient, kcat's ``-r`` and ``CCPULSE_SCHEMA_REGISTRY_URL``
take. Readiness: GET ``{url}/subjects`` answers 200.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from streams.services.base import ManagedProcess, ServiceError, free_port, require_binary, tail

APICURIO_VERSION = "3.3.3"
MIN_JAVA = 21
UNPACK_GOAL = "dependency:unpack-dependencies"
POM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "local" / "apicurio"
DEFAULT_CACHE = Path.home() / ".cache" / "ccpulse"
CCOMPAT_PATH = "/apis/ccompat/v7"
JVM_OPTS = ["-Xms128m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]


def _java_major(java_home: Path) -> int:
    """The major version a JDK's `release` file names (0 when unreadable)."""
    try:
        text = (java_home / "release").read_text()
    except OSError:
        return 0
    found = re.search(r'^JAVA_VERSION="(\d+)', text, re.MULTILINE)
    return int(found.group(1)) if found else 0


def java21_home() -> Path:
    """A JDK >= 21: $CCPULSE_APICURIO_JAVA_HOME or $JAVA_HOME when new enough, else the newest
    under /usr/lib/jvm."""
    for explicit in filter(None, (os.environ.get("CCPULSE_APICURIO_JAVA_HOME"), os.environ.get("JAVA_HOME"))):
        if _java_major(Path(explicit)) >= MIN_JAVA:
            return Path(explicit)
    jvms = sorted(Path("/usr/lib/jvm").glob("*"), key=_java_major, reverse=True)
    if jvms and _java_major(jvms[0]) >= MIN_JAVA and (jvms[0] / "bin" / "java").is_file():
        return jvms[0]
    msg = (
        f"Apicurio Registry {APICURIO_VERSION} needs Java >= {MIN_JAVA}; no such JDK under /usr/lib/jvm "
        "(set CCPULSE_APICURIO_JAVA_HOME to one)"
    )
    raise ServiceError(msg)


def app_dir(version: str = APICURIO_VERSION, cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Where the unpacked distribution keeps quarkus-run.jar."""
    return cache_dir / f"apicurio-{version}"


def _runner(root: Path) -> Path | None:
    return next(iter(sorted(root.glob("**/quarkus-run.jar"))), None) if root.is_dir() else None


def ensure_apicurio_app(
    version: str = APICURIO_VERSION, cache_dir: Path = DEFAULT_CACHE, quiet: bool = False
) -> Path:
    """The quarkus-run.jar of the registry, unpacking it with Maven when missing."""
    root = app_dir(version, cache_dir)
    runner = _runner(root)
    if runner is not None:
        return runner
    mvn = require_binary("mvn", "maven")
    if not quiet:
        print(f"unpacking Apicurio Registry {version} from Maven Central into {root} ...", file=sys.stderr)
    result = subprocess.run(
        [mvn, "-B", "-q", f"-Dapicurio.version={version}", f"-Dapicurio.dir={root}", UNPACK_GOAL],
        cwd=POM_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    runner = _runner(root)
    if result.returncode != 0 or runner is None:
        msg = (
            f"mvn could not fetch Apicurio Registry {version} (exit {result.returncode}):\n"
            f"{(result.stdout + result.stderr)[-3000:]}"
        )
        raise ServiceError(msg)
    if not quiet:
        print(f"Apicurio Registry ready: {runner}", file=sys.stderr)
    return runner


class ApicurioRegistry:
    """One Apicurio Registry with in-memory storage on loopback."""

    def __init__(
        self, work_dir: Path, version: str = APICURIO_VERSION, cache_dir: Path = DEFAULT_CACHE
    ) -> None:
        self.work_dir = work_dir
        self.version = version
        self.runner = ensure_apicurio_app(version, cache_dir)
        self.java = str(java21_home() / "bin" / "java")
        self.port = free_port()
        self.management_port = free_port()
        self.process: ManagedProcess | None = None
        self.ready_seconds = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The Confluent-compatible Schema Registry API (give this to clients)."""
        return f"{self.base_url}{CCOMPAT_PATH}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def argv(self) -> list[str]:
        settings = {
            "quarkus.http.host": "127.0.0.1",
            "quarkus.http.port": self.port,
            "quarkus.management.host": "127.0.0.1",
            "quarkus.management.port": self.management_port,
            "apicurio.storage.kind": "sql",
            "apicurio.storage.sql.kind": "h2",
            "apicurio.rest.deletion.artifact.enabled": "true",
            "apicurio.rest.deletion.artifact-version.enabled": "true",
            "apicurio.rest.deletion.group.enabled": "true",
            "quarkus.log.level": "WARN",
        }
        return [self.java, *JVM_OPTS, *(f"-D{k}={v}" for k, v in settings.items()), "-jar", str(self.runner)]

    def start(self, timeout_s: float = 180.0) -> ApicurioRegistry:
        self.process = ManagedProcess("apicurio", self.argv(), self.work_dir)
        self.process.start()
        self.ready_seconds = self.process.wait_ready(self._ready, timeout_s, f"GET {CCOMPAT_PATH}/subjects")
        return self

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/subjects", timeout=2).status_code == 200

    def log_tail(self) -> str:
        return "(not started)" if self.process is None else tail(self.process.log_path)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
