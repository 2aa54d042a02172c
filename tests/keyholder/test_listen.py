"""Where a key holder listens: one address its certificate names, never every interface."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from coffer.keyholder.errors import ListenAddressRefused
from coffer.keyholder.server import KeyholderServer, Mount
from coffer.tls import issue_certificate

from .conftest import TOY_ROUTES, Pki, ToyEngine, toy_status


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", " "])  # noqa: S104 - the wildcards being refused
def test_wildcard_listen_address_is_refused(pki: Pki, host: str) -> None:
    """A key-holder server asked to listen on every interface raises ListenAddressRefused."""
    with pytest.raises(ListenAddressRefused, match="one address"):
        KeyholderServer([Mount(TOY_ROUTES, ToyEngine(), toy_status)], pki.files("cosigner-1"), port=0, host=host)


def test_certificate_carries_the_extra_addresses(tmp_path: Path) -> None:
    """`issue_certificate(..., ip_addresses=...)` adds each address to the subjectAltName beside 127.0.0.1."""
    files = issue_certificate(tmp_path / "ca", tmp_path / "out", "cosigner-4",
                              ip_addresses=("198.18.0.6",))
    names = x509.load_pem_x509_certificate(files.cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("198.18.0.6")] == names.get_values_for_type(
        x509.IPAddress)


@pytest.mark.parametrize("command", [["cosigner", "--id", "1"], ["signer", "--id", "1"]])
def test_key_holder_commands_refuse_a_wildcard_host(tmp_path: Path, command: list[str]) -> None:
    """`coffer cosigner|signer --host 0.0.0.0` exits with the ListenAddressRefused message before opening anything."""
    done = subprocess.run([sys.executable, "-m", "coffer.cli", *command, "--home", str(tmp_path / "home"),
                           "--host", "0.0.0.0"], capture_output=True, text=True, timeout=120, check=False)  # noqa: S104
    assert 2 == done.returncode
    assert "a key holder listens on one address" in done.stdout + done.stderr
    assert not (tmp_path / "home").exists()
