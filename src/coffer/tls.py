"""The local certificate authority made at `coffer init`, for mutual TLS between the
coordinator, the signers and the co-signers on one machine.

The CA key lives in the ceremony directory, never in the coordinator's home (coffer.layout); each
party's TLS directory is self-contained (its key, its certificate and a copy of the CA's public
certificate), so a key holder never reads another party's files. In production each party's key
would live in its HSM and the CA offline.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TlsFiles", "make_ca", "issue_certificate", "server_context", "client_context"]

CERT_VALIDITY_DAYS = 825


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # never readable by others, not even briefly
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    path.chmod(0o600)


def make_ca(directory: Path, *, now: dt.datetime | None = None) -> tuple[Path, Path]:
    """Create (or keep) ca.pem / ca.key in `directory`."""
    cert_path, key_path = directory / "ca.pem", directory / "ca.key"
    if cert_path.exists() and key_path.exists():
        return cert_path, key_path
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Coffer local CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_VALIDITY_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return cert_path, key_path


def issue_certificate(ca_dir: Path, out_dir: Path, common_name: str, *,
                      now: dt.datetime | None = None, ip_addresses: Sequence[str] = ()) -> TlsFiles:
    """A certificate for `common_name` (client and server use, valid for 127.0.0.1 and localhost,
    and for each of `ip_addresses`: where a key holder on a host of its own listens)."""
    extra = [x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses]
    ca_cert_path, ca_key_path = make_ca(ca_dir)
    ca_cert = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CERT_VALIDITY_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.DNSName(common_name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), *extra]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path, ca_copy = out_dir / "tls.pem", out_dir / "tls.key", out_dir / "ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    if ca_copy.resolve() != ca_cert_path.resolve():
        ca_copy.write_bytes(ca_cert_path.read_bytes())
    return TlsFiles(ca_copy, cert_path, key_path)


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """Server side of mutual TLS: a client certificate from our CA is required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(files.ca_cert))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


def client_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(files.ca_cert))
    context.load_cert_chain(str(files.cert), str(files.key))
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context
