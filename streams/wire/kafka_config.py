"""The one place a librdkafka client configuration (``bootstrap.servers`` + security) is built.

`KafkaSecurity` carries plain values (the password stays a SecretStr, so reprs and logs
show ``**********``); the composition root builds it from Settings and passes it down.
`client_config` turns it into librdkafka keys, unwrapping the secret only into the dict
handed to the client. PLAINTEXT with no other key is the default, as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
EndpointIdentification = Literal["https", "none"]


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate and encrypt; validated on construction."""

    protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: Path | None = None  # PEM CA bundle; None: the system's trust store
    ssl_certificate_location: Path | None = None  # client certificate (mutual TLS), PEM
    ssl_key_location: Path | None = None  # its private key, PEM
    ssl_key_password: SecretStr | None = None
    ssl_endpoint_identification: EndpointIdentification = "https"  # check the broker's host name

    def __post_init__(self) -> None:
        if self.uses_sasl:
            missing = [
                f"CCPULSE_KAFKA_{name.upper()}"
                for name in ("sasl_mechanism", "sasl_username", "sasl_password")
                if not getattr(self, name)
            ]
            if missing:
                msg = f"security protocol {self.protocol} needs {', '.join(missing)} (not set)"
                raise ValueError(msg)
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            msg = (
                "mutual TLS needs both CCPULSE_KAFKA_SSL_CERTIFICATE_LOCATION and "
                "CCPULSE_KAFKA_SSL_KEY_LOCATION, or neither"
            )
            raise ValueError(msg)

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")


PLAINTEXT = KafkaSecurity()


def client_config(bootstrap_servers: str, security: KafkaSecurity | None = None) -> dict[str, Any]:
    """librdkafka properties for ``bootstrap_servers`` with ``security`` (default PLAINTEXT).

    Only keys that apply are set: a PLAINTEXT config is ``{"bootstrap.servers": ...}``
    alone, so that the embedded Tansu broker and older tests see what they always did.
    """
    config: dict[str, Any] = {"bootstrap.servers": bootstrap_servers}
    s = security or PLAINTEXT
    if s.protocol == "PLAINTEXT":
        return config
    config["security.protocol"] = s.protocol
    if s.uses_sasl:
        assert s.sasl_password is not None  # checked in __post_init__
        config["sasl.mechanism"] = s.sasl_mechanism
        config["sasl.username"] = s.sasl_username
        config["sasl.password"] = s.sasl_password.get_secret_value()
    if s.uses_tls:
        config["ssl.endpoint.identification.algorithm"] = s.ssl_endpoint_identification
        if s.ssl_ca_location is not None:
            config["ssl.ca.location"] = str(s.ssl_ca_location)
        if s.ssl_certificate_location is not None and s.ssl_key_location is not None:
            config["ssl.certificate.location"] = str(s.ssl_certificate_location)
            config["ssl.key.location"] = str(s.ssl_key_location)
            if s.ssl_key_password is not None:
                config["ssl.key.password"] = s.ssl_key_password.get_secret_value()
    return config


class KafkaSecurityError(RuntimeError):
    """The broker refused the login or the TLS handshake; the message says which and what to check."""


def check_connection(config: dict[str, Any], timeout_s: float = 15.0) -> None:
    """Fail fast, with one clear message, when the broker refuses the login or the TLS handshake.

    librdkafka logs such refusals and retries forever, so a worker with a wrong password
    would sit idle. An unreachable broker is not an error here: clients wait for it, as
    they always did. Returns as soon as metadata arrives (one round trip).
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient

    refusals: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
            refusals.append(error)

    probe: dict[str, Any] = {**config, "error_cb": on_error, "log_level": 0}  # raised below, not logged
    admin = AdminClient(probe)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            admin.list_topics(timeout=1.0)
            return
        except KafkaException:
            admin.poll(0)  # serves error_cb
        if refusals:
            first = refusals[0]
            login = first.code() == KafkaError._AUTHENTICATION
            raise KafkaSecurityError(_explain(config, first.str(), login=login))
        if time.monotonic() >= deadline:
            return


def _explain(config: dict[str, Any], reason: str, *, login: bool) -> str:
    servers = config["bootstrap.servers"]
    if login:
        return (
            f"Kafka at {servers} refused the login of user {config.get('sasl.username')!r} "
            f"with {config.get('sasl.mechanism')}: {reason}; check CCPULSE_KAFKA_SASL_USERNAME and "
            "CCPULSE_KAFKA_SASL_PASSWORD (or CCPULSE_KAFKA_SASL_PASSWORD_FILE)"
        )
    mutual = (
        "; and the client certificate (CCPULSE_KAFKA_SSL_CERTIFICATE_LOCATION, _KEY_LOCATION)"
        if "ssl.certificate.location" in config
        else ""
    )
    return (
        f"TLS handshake with Kafka at {servers} failed: {reason}; check CCPULSE_KAFKA_SSL_CA_LOCATION "
        f"(now {config.get('ssl.ca.location', 'unset: the system trust store')}), which must hold "
        f"the CA that signed the broker's certificate{mutual}"
    )
