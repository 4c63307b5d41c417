"""A throwaway certificate authority and a server certificate for local test services.

`make_local_ca(dir)` writes PEM files only (Kafka reads PEM key stores and trust stores
directly, librdkafka reads PEM CA files): ``ca.pem`` (the CA certificate clients
trust), ``server.pem`` (the server's unencrypted PKCS#8 key followed by its
certificate chain, as Kafka's ``ssl.keystore.type=PEM`` expects) and ``server.crt``.
The server certificate names 127.0.0.1 and localhost, so host-name verification
(``ssl.endpoint.identification.algorithm=https``) passes on loopback. Keys never
leave the directory, which is created owner-only.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class LocalCa:
    ca_certificate: Path  # PEM; what a client passes as ssl.ca.location
    server_keystore: Path  # PEM: private key + certificate chain
    server_certificate: Path


def make_local_ca(directory: Path, common_name: str = "ccpulse test CA", days: int = 2) -> LocalCa:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.now(UTC)
    valid_from, valid_to = now - timedelta(minutes=5), now + timedelta(days=days)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from)
        .not_valid_after(valid_to)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    ca_pem = ca_cert.public_bytes(pem)
    server_pem = server_cert.public_bytes(pem)
    key_pem = server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    paths = LocalCa(directory / "ca.pem", directory / "server.pem", directory / "server.crt")
    paths.ca_certificate.write_bytes(ca_pem)
    paths.server_certificate.write_bytes(server_pem + ca_pem)
    paths.server_keystore.touch(mode=0o600)
    paths.server_keystore.write_bytes(key_pem + server_pem + ca_pem)
    return paths
