"""Settings -> KafkaSecurity -> librdkafka keys: what each setting becomes, and what is refused."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from pydantic import SecretStr

from streams.settings import load_settings
from streams.wire.kafka_config import KafkaSecurity, client_config

pytestmark = pytest.mark.unit

SERVERS = "broker-1:9093,broker-2:9093"


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")  # existence is what settings check
    return path


def test_plaintext_is_the_bootstrap_servers_alone() -> None:
    assert client_config(SERVERS) == {"bootstrap.servers": SERVERS}
    assert client_config(SERVERS, KafkaSecurity()) == {"bootstrap.servers": SERVERS}
    assert load_settings({}).kafka_security() == KafkaSecurity()


def test_sasl_ssl_scram_from_the_environment_with_a_password_file(tmp_path: Path, pem: Path) -> None:
    password = secrets.token_urlsafe(24)
    secret = tmp_path / "kafka-password"
    secret.write_text(password + "\n")
    settings = load_settings(
        {
            "CCPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CCPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CCPULSE_KAFKA_SASL_USERNAME": "ccpulse-worker",
            "CCPULSE_KAFKA_SASL_PASSWORD": "overridden-by-the-file",
            "CCPULSE_KAFKA_SASL_PASSWORD_FILE": str(secret),
            "CCPULSE_KAFKA_SSL_CA_LOCATION": str(pem),
        }
    )
    assert client_config(SERVERS, settings.kafka_security()) == {
        "bootstrap.servers": SERVERS,
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ccpulse-worker",
        "sasl.password": password,
        "ssl.endpoint.identification.algorithm": "https",
        "ssl.ca.location": str(pem),
    }
    for shown in (repr(settings), str(settings), repr(settings.kafka_security()), settings.model_dump_json()):
        assert password not in shown


def test_sasl_plaintext_sets_no_tls_keys() -> None:
    password = secrets.token_urlsafe(16)
    security = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-256", "u", SecretStr(password))
    assert client_config(SERVERS, security) == {
        "bootstrap.servers": SERVERS,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "u",
        "sasl.password": password,
    }


def test_mutual_tls_without_sasl(pem: Path) -> None:
    key_password = secrets.token_urlsafe(16)
    security = KafkaSecurity(
        protocol="SSL",
        ssl_ca_location=pem,
        ssl_certificate_location=Path("/etc/ccpulse/client.crt"),
        ssl_key_location=Path("/etc/ccpulse/client.key"),
        ssl_key_password=SecretStr(key_password),
        ssl_endpoint_identification="none",
    )
    assert client_config(SERVERS, security) == {
        "bootstrap.servers": SERVERS,
        "security.protocol": "SSL",
        "ssl.endpoint.identification.algorithm": "none",
        "ssl.ca.location": str(pem),
        "ssl.certificate.location": "/etc/ccpulse/client.crt",
        "ssl.key.location": "/etc/ccpulse/client.key",
        "ssl.key.password": key_password,
    }
    assert key_password not in repr(security)


def test_incomplete_sasl_settings_name_what_is_missing() -> None:
    password = secrets.token_urlsafe(16)
    environ = {"CCPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CCPULSE_KAFKA_SASL_PASSWORD": password}
    with pytest.raises(
        ValueError, match="SASL_SSL needs CCPULSE_KAFKA_SASL_MECHANISM, CCPULSE_KAFKA_SASL_USERNAME"
    ) as info:
        load_settings(environ)
    assert password not in str(info.value)  # a validation error does not echo its input


def test_a_certificate_without_its_key_is_refused(pem: Path) -> None:
    with pytest.raises(ValueError, match="both CCPULSE_KAFKA_SSL_CERTIFICATE_LOCATION and"):
        KafkaSecurity(protocol="SSL", ssl_certificate_location=pem)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("CCPULSE_KAFKA_SASL_MECHANISM", "GSSAPI", "'PLAIN', 'SCRAM-SHA-256' or 'SCRAM-SHA-512'"),
        ("CCPULSE_KAFKA_SECURITY_PROTOCOL", "TLS", "'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
        ("CCPULSE_KAFKA_SSL_CA_LOCATION", "/nonexistent/ca.pem", "Path does not point to a file"),
        ("CCPULSE_KAFKA_SSL_ENDPOINT_IDENTIFICATION", "off", "'https' or 'none'"),
    ],
)
def test_invalid_values_are_refused_at_load(name: str, value: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        load_settings({name: value})


def test_empty_variables_count_as_unset(tmp_path: Path) -> None:
    """docker compose passes an optional ``${NAME:-}`` as an empty variable."""
    empty = {
        "CCPULSE_KAFKA_SECURITY_PROTOCOL": "",
        "CCPULSE_KAFKA_SASL_MECHANISM": "",
        "CCPULSE_KAFKA_SASL_PASSWORD": "",
        "CCPULSE_KAFKA_SASL_PASSWORD_FILE": "",
        "CCPULSE_KAFKA_SSL_CA_LOCATION": "",
    }
    assert load_settings(empty).kafka_security() == KafkaSecurity()
