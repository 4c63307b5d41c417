"""The one frozen settings object, read from CCPULSE_* environment variables.

Built once at the composition root (cli.py / the app factory) and passed down as
plain values; library code never reads the environment. Secrets are SecretStr
(never printed) and may come from files: CCPULSE_<NAME>_FILE wins over the
variable itself, as in Docker/Kubernetes secrets. An empty variable counts as unset
(docker compose passes an optional ``${NAME:-}`` that way).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.wire.kafka_config import EndpointIdentification, KafkaSecurity, SaslMechanism, SecurityProtocol

ENV_PREFIX = "CCPULSE_"
_SECRET_FIELDS = ("pseudonym_key", "clickhouse_password", "kafka_sasl_password", "kafka_ssl_key_password")


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error would otherwise echo the raw input, secrets included
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", hide_input_in_errors=True, env_ignore_empty=True
    )

    # Broker: "apache" (Apache Kafka, tests/production) or "tansu" (embedded demo).
    broker: Literal["apache", "tansu"] = "apache"
    bootstrap_servers: str = "127.0.0.1:9092"
    schema_registry_url: str | None = None
    # Kafka client security (docs/operations.md "Kafka TLS and SASL/SCRAM"); PLAINTEXT by default.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: FilePath | None = None  # PEM CA bundle; unset: the system trust store
    kafka_ssl_certificate_location: FilePath | None = None  # mutual TLS only: client certificate, PEM
    kafka_ssl_key_location: FilePath | None = None  # and its private key, PEM
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_endpoint_identification: EndpointIdentification = "https"

    # History: "chdb" (embedded) or "clickhouse" (server over the native protocol).
    history_backend: Literal["chdb", "clickhouse"] = "chdb"
    clickhouse_host: str = "127.0.0.1"
    clickhouse_port: int = 9000
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr | None = None
    clickhouse_database: str = "ccpulse"

    pseudonym_key: SecretStr | None = None
    state_dir: Path = Path(".ccpulse")
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0  # 0 = pick a free port and print it
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("metrics_port", "clickhouse_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            msg = f"port {value} is outside [0, 65535]"
            raise ValueError(msg)
        return value

    @field_validator("state_dir")
    @classmethod
    def _absolute_state_dir(cls, value: Path) -> Path:
        """Resolved against the working directory at start: services run elsewhere."""
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Settings:
        self.kafka_security()  # raises ValueError naming what is missing
        return self

    def kafka_security(self) -> KafkaSecurity:
        """The Kafka client security as plain values for library code (see streams.wire.kafka_config)."""
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_ca_location=self.kafka_ssl_ca_location,
            ssl_certificate_location=self.kafka_ssl_certificate_location,
            ssl_key_location=self.kafka_ssl_key_location,
            ssl_key_password=self.kafka_ssl_key_password,
            ssl_endpoint_identification=self.kafka_ssl_endpoint_identification,
        )

    def chdb_path(self) -> Path:
        return self.state_dir / "chdb"


def _secret_file_overrides(environ: dict[str, str]) -> dict[str, SecretStr]:
    overrides: dict[str, SecretStr] = {}
    for name in _SECRET_FIELDS:
        file_var = f"{ENV_PREFIX}{name.upper()}_FILE"
        if environ.get(file_var):
            path = Path(environ[file_var])
            try:
                overrides[name] = SecretStr(path.read_text().strip())
            except OSError as exc:
                msg = f"{file_var} points to {path}, which cannot be read: {exc.strerror}"
                raise ValueError(msg) from exc
    return overrides


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment (or ``environ``), secret files, then explicit overrides."""
    env = dict(os.environ if environ is None else environ)
    values: dict[str, object] = dict(_secret_file_overrides(env))
    values.update({k: v for k, v in overrides.items() if v is not None})
    if environ is None:
        return Settings(**values)  # type: ignore[arg-type]
    # An explicit environ must not be mixed with the process environment.
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(ENV_PREFIX) and not key.endswith("_FILE") and value != ""
    }
    return Settings(**{**from_env, **values})  # type: ignore[arg-type]
