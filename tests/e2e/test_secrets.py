"""Secrets are never printed: not by --help, not by the settings object, not by a command's
output or logs, not in a configuration or connection error.

Every secret setting (each SecretStr field of Settings: the ClickHouse password, the Kafka
SASL password, the pseudonym key, ...) gets a random value from its CCPULSE_<NAME>
variable and another from the file its CCPULSE_<NAME>_FILE names; neither may appear.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from support.cli import ccpulse as run_ccpulse

from streams.cli.main import build_parser, main
from streams.services.base import free_port
from streams.settings import Settings, load_settings

pytestmark = pytest.mark.e2e

SECRET_FIELDS = sorted(
    name
    for name, field in Settings.model_fields.items()
    if SecretStr in getattr(field.annotation, "__args__", ())
)


def test_the_named_secrets_are_secret_fields() -> None:
    assert {"clickhouse_password", "kafka_sasl_password", "pseudonym_key"} <= set(SECRET_FIELDS)


class Secrets:
    """Random values for every secret: ``env`` in the variables, ``files`` in the *_FILE files."""

    def __init__(self, directory: Path, *, with_files: bool) -> None:
        self.env: dict[str, str] = {}
        self.values: list[str] = []
        for name in SECRET_FIELDS:
            variable = f"CCPULSE_{name.upper()}"
            self.env[variable] = self._new()
            if with_files:
                path = directory / f"{name}.secret"
                path.write_text(self._new() + "\n")
                self.env[f"{variable}_FILE"] = str(path)

    def _new(self) -> str:
        value = f"s3cr3t-{secrets.token_hex(12)}"
        self.values.append(value)
        return value

    def assert_absent(self, text: str, where: str) -> None:
        leaked = [value for value in self.values if value in text]
        assert not leaked, f"{where} shows {len(leaked)} secret value(s)"


@pytest.fixture(params=["env", "env+file"])
def planted(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Secrets]:
    found = Secrets(tmp_path, with_files=request.param == "env+file")
    for name in list(os.environ):
        if name.startswith("CCPULSE_"):
            monkeypatch.delenv(name)
    for name, value in found.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CCPULSE_STATE_DIR", str(tmp_path / "state"))
    yield found


def test_settings_repr_str_and_dumps_mask_every_secret(planted: Secrets) -> None:
    settings = load_settings()
    loaded = [getattr(settings, name) for name in SECRET_FIELDS]
    assert all(isinstance(v, SecretStr) and v.get_secret_value() in planted.values for v in loaded)
    shown = {
        "repr": repr(settings),
        "str": str(settings),
        "model_dump_json": settings.model_dump_json(),
        "model_dump(mode=json)": json.dumps(settings.model_dump(mode="json")),
        "model_dump": str(settings.model_dump()),
        "kafka_security()": repr(settings.kafka_security()),
    }
    for where, text in shown.items():
        planted.assert_absent(text, where)
    assert "**********" in shown["model_dump_json"]


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


def test_every_help_text_hides_the_secrets(planted: Secrets, capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(command_paths(build_parser()))
    assert ("history", "migrate") in paths and ("worker",) in paths and len(paths) > 20
    for path in paths:
        # `simulate` hands its options to the simulator: its help is `simulate -- --help`
        argv = [*path, "--", "--help"] if path == ("simulate",) else [*path, "--help"]
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0, argv
        printed = capsys.readouterr()
        assert "usage:" in printed.out, argv
        planted.assert_absent(printed.out + printed.err, f"ccpulse {' '.join(argv)}")
    process = subprocess.run(
        [sys.executable, "-m", "streams.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert process.returncode == 0 and "CCPULSE_" in process.stdout
    planted.assert_absent(process.stdout + process.stderr, "ccpulse --help (a process)")


def ccpulse(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The command as a process, with this process's CCPULSE_* secrets plus ``env``."""
    return run_ccpulse(*args, env={**os.environ, "CCPULSE_LOG_LEVEL": "debug", **env}, timeout_s=120)


def test_command_output_logs_and_errors_hide_the_secrets(planted: Secrets) -> None:
    migrate = ccpulse("--json", "history", "migrate")  # chdb under the tmp state dir
    assert migrate.returncode == 0, migrate.stderr
    assert {row["status"] for row in json.loads(migrate.stdout)} == {"applied"}
    planted.assert_absent(migrate.stdout + migrate.stderr, "history migrate")

    # the ClickHouse password is used on a connection that fails: the error names the target
    unreachable = ccpulse(
        "history", "migrate",
        CCPULSE_HISTORY_BACKEND="clickhouse", CCPULSE_CLICKHOUSE_PORT=str(free_port()),
        CCPULSE_CLICKHOUSE_USER="ccpulse_writer",
    )  # fmt: skip
    assert unreachable.returncode == 1 and "error:" in unreachable.stderr, unreachable.stderr
    planted.assert_absent(unreachable.stdout + unreachable.stderr, "a failed ClickHouse connection")

    # a configuration error (pydantic) must not echo any input value
    invalid = ccpulse(
        "history", "migrate",
        CCPULSE_CLICKHOUSE_PORT="not-a-port", CCPULSE_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
    )  # fmt: skip
    assert invalid.returncode == 2 and "configuration error" in invalid.stderr, invalid.stderr
    planted.assert_absent(invalid.stdout + invalid.stderr, "a configuration error")
