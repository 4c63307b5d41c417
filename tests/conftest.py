"""Session fixtures that start real services once, lazily, and stop them by PID.

A fixture that cannot start its service fails the test with the service's log
tail: never a skip. Every service listens on 127.0.0.1 on free ports.

Markers come from the fixtures: a test that uses a service or an external tool (directly,
through another fixture, or by a parameter that asks for one) is marked ``services`` and
the service's own marker at collection, so ``make unit`` (``-m "not services"``) selects
none of them. Tests that start a service of their own (a 3-broker cluster, a SASL_SSL
broker) carry the service's marker on the module, which implies ``services``. And a guard:
a service process started while a test not marked ``services`` runs fails that test.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from support.registry import CountingRegistry, empty_registry

from streams.history.chdb_store import ChdbStore
from streams.history.clickhouse_store import ClickHouseDriverStore
from streams.history.store import HistoryStore
from streams.services.alertmanager import AlertmanagerServer
from streams.services.apicurio import ApicurioRegistry
from streams.services.base import ManagedProcess
from streams.services.clickhouse import ClickHouseServer
from streams.services.kafka import KafkaCluster
from streams.services.prometheus import PrometheusServer
from streams.services.tansu import TansuBroker
from streams.wire.schema_registry import ConfluentSchemaRegistry, InMemorySchemaRegistry

# fixture -> the marker of what it starts or runs
SERVICE_FIXTURES = {
    "kafka": "kafka", "fresh_kafka": "kafka", "kafka_cluster": "kafka",
    "clickhouse_server": "clickhouse", "history_stores": "clickhouse", "tansu": "tansu",
    "prometheus_factory": "prometheus", "alertmanager_factory": "prometheus",
    "promtool": "prometheus", "amtool": "prometheus",
    "apicurio": "registry", "registry_url": "registry", "registry_client": "registry",
    "chromium": "chromium",
}  # fmt: skip
# (parametrised fixture, parameter) -> the marker of the service that parameter starts
SERVICE_PARAMS = {
    ("history_store", "clickhouse-18.16"): "clickhouse",
    ("schema_registry", "apicurio"): "registry",
    ("broker", "kafka"): "kafka",
}


SERVICE_MARKERS = {"kafka", "tansu", "clickhouse", "prometheus", "registry", "kcat", "chromium", "e2e"}


def services_of(item: pytest.Item) -> set[str]:
    names = set(getattr(item, "fixturenames", ()))
    found = {marker for fixture, marker in SERVICE_FIXTURES.items() if fixture in names}
    params = getattr(getattr(item, "callspec", None), "params", {})
    found |= {marker for (fixture, value), marker in SERVICE_PARAMS.items() if params.get(fixture) == value}
    found |= {m.name for m in item.iter_markers() if m.name in SERVICE_MARKERS}  # e.g. a module's own cluster
    return found


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        found = services_of(item)
        for marker in sorted(found):
            item.add_marker(marker)
        if found:
            item.add_marker("services")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker's collection is the order the controller hands out
        longest_first(items)


# Scheduling: under pytest-xdist (`make test` runs `-n`), the tests start longest first, by
# the durations of an earlier run (tests/durations.json; `make durations` refreshes it), so
# that no long test starts last. A test not in the file counts as short. Order only: every
# test runs either way, and each one waits on its own conditions.
DURATIONS_FILE = Path(__file__).with_name("durations.json")


def longest_first(items: list[pytest.Item]) -> None:
    known = json.loads(DURATIONS_FILE.read_text()) if DURATIONS_FILE.exists() else {}
    items.sort(key=lambda item: -float(known.get(item.nodeid, 0.0)))  # stable: ties keep their order


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-durations", action="store_true",
        help=f"write each test's setup + call + teardown seconds to {DURATIONS_FILE.name}",
    )  # fmt: skip


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    if session.config.getoption("record_durations") and not hasattr(session.config, "workerinput"):
        rounded = {nodeid: round(seconds, 2) for nodeid, seconds in sorted(_durations.items())}
        DURATIONS_FILE.write_text(json.dumps(rounded, indent=0) + "\n")


# The guard: a service process started while a test not marked ``services`` runs (its setup,
# call or teardown) fails that test, however the test reached it.
_running: list[pytest.Item] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _running.append(item)
    yield
    _running.pop()


def _guarded(start: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(start)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        item = _running[-1] if _running else None
        if item is not None and item.get_closest_marker("services") is None:
            msg = (
                f"{item.nodeid} starts {type(self).__name__} but is not marked services: mark the module "
                "with the service's marker, or add its fixture to SERVICE_FIXTURES in tests/conftest.py"
            )
            raise RuntimeError(msg)
        return start(self, *args, **kwargs)

    return guarded


ManagedProcess.start = _guarded(ManagedProcess.start)  # type: ignore[method-assign]
KafkaCluster.start = _guarded(KafkaCluster.start)  # type: ignore[method-assign]


def _tool(name: str, package: str) -> Any:
    """A session fixture ``name``: the path of the external tool, or the test fails saying how
    to install it (never a skip)."""

    @pytest.fixture(scope="session", name=name)
    def found() -> str:
        path = shutil.which(name)
        assert path, f"{name} is not installed: apt-get install {package} (make test does it)"
        return path

    return found


promtool = _tool("promtool", "prometheus")
amtool = _tool("amtool", "prometheus-alertmanager")
chromium = _tool("chromium", "chromium")


def session_service(name: str, directory: str, make: Callable[[Path], Any]) -> Any:
    """A session fixture ``name``: ``make(a temporary directory)`` started once, lazily, for the
    tests of this process (each pytest-xdist worker has its own), stopped by PID at the end."""

    @pytest.fixture(scope="session", name=name)
    def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
        started = make(tmp_path_factory.mktemp(directory))
        started.start()
        try:
            yield started
        finally:
            started.stop()

    return service


kafka = session_service("kafka", "kafka", lambda path: KafkaCluster(path, nodes=1))
kafka_cluster = session_service("kafka_cluster", "kafka-cluster", lambda path: KafkaCluster(path, nodes=3))
clickhouse_server = session_service("clickhouse_server", "clickhouse", ClickHouseServer)
tansu = session_service("tansu", "tansu", TansuBroker)


@pytest.fixture
def fresh_kafka(tmp_path: Path) -> Iterator[KafkaCluster]:
    """A broker of its own, with the contract topics: for tests that read the input topics
    from the start (event-time watermarks would mix other tests' traffic)."""
    from streams.wire.topic_admin import apply_topics

    broker = KafkaCluster(tmp_path / "kafka", nodes=1).start()
    try:
        apply_topics(broker.bootstrap_servers)
        yield broker
    finally:
        broker.stop()


@pytest.fixture(params=["clickhouse-18.16", "chdb"])
def history_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    """Each HistoryStore adapter in turn, on a fresh database: the same tests run on both."""
    database = f"t_{uuid.uuid4().hex[:10]}"
    store: HistoryStore
    if request.param == "chdb":
        store = ChdbStore(tmp_path / "chdb", database=database)
    else:
        server: ClickHouseServer = request.getfixturevalue("clickhouse_server")
        store = ClickHouseDriverStore(server.host, server.tcp_port, database=database)
    yield store
    store.close()


@pytest.fixture
def history_stores(clickhouse_server: ClickHouseServer, tmp_path: Path) -> Iterator[list[HistoryStore]]:
    """Both HistoryStore adapters at once (ClickHouse 18.16, then chdb), each on a fresh
    database: for tests whose costly part (a simulated day through Kafka and the worker) is the
    same for both stores; they run it once and hold each store to the same assertions."""
    server = clickhouse_server
    stores: list[HistoryStore] = [
        ClickHouseDriverStore(server.host, server.tcp_port, database=f"t_{uuid.uuid4().hex[:10]}"),
        ChdbStore(tmp_path / "chdb", database=f"t_{uuid.uuid4().hex[:10]}"),
    ]
    try:
        yield stores
    finally:
        for store in stores:
            store.close()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    """Start a Prometheus scraping the given host:port targets (alerts to the given
    Alertmanagers, host:port); stopped after the test."""
    started: list[PrometheusServer] = []

    def start(
        targets: Sequence[str], rule_files: Sequence[Path] = (), alertmanagers: Sequence[str] = ()
    ) -> PrometheusServer:
        work_dir = tmp_path / f"prometheus-{len(started)}"
        server = PrometheusServer(
            work_dir, targets=targets, rule_files=rule_files, alertmanagers=alertmanagers
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def alertmanager_factory(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], AlertmanagerServer]]:
    """Start Debian's Alertmanager with the given config (a dict); stopped after the test."""
    started: list[AlertmanagerServer] = []

    def start(config: dict[str, Any]) -> AlertmanagerServer:
        server = AlertmanagerServer(tmp_path / f"alertmanager-{len(started)}", config)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


# a real Schema Registry: Apicurio Registry 3.3.3 (in-memory storage), Confluent API at ``.url``
apicurio = session_service("apicurio", "apicurio", ApicurioRegistry)


@pytest.fixture
def registry_url(apicurio: ApicurioRegistry) -> str:
    """The Confluent-compatible URL of the session's Apicurio, emptied of subjects first."""
    empty_registry(apicurio.url)
    return apicurio.url


@pytest.fixture
def registry_client(registry_url: str) -> Iterator[ConfluentSchemaRegistry]:
    """confluent-kafka's client on the session's (emptied) Apicurio, closed after the test."""
    client = ConfluentSchemaRegistry(registry_url)
    yield client
    client.close()


@pytest.fixture(params=["in-memory", pytest.param("apicurio", marks=pytest.mark.registry)])
def schema_registry(request: pytest.FixtureRequest) -> Iterator[CountingRegistry]:
    """Each SchemaRegistry in turn, with no subjects and look-ups counted: the in-memory one
    and the real Apicurio Registry through confluent-kafka's client."""
    if request.param == "in-memory":
        yield CountingRegistry(InMemorySchemaRegistry())
        return
    yield CountingRegistry(request.getfixturevalue("registry_client"))
