"""Mail any client can read: packet versions follow the recipient's key, so GnuPG 2.2 decrypts what GnuPG keys get."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pysequoia as sq
import pytest

from coffer.notify.errors import NotifyError
from coffer.notify.gnupg import HOME_CHARS_MAX
from coffer.notify.pgp import advertises_seipd_v2, check_message_versions, decrypt, encrypt, message_versions
from tests.notify.helpers import Gpg

# gpg's own names: (primary, encryption subkey or None when --quick-gen-key makes it): ed25519 + cv25519, RSA-3072
GPG_KINDS = {"ed25519": ("future-default", None), "rsa3072": ("rsa3072", "rsa3072")}


@pytest.fixture(scope="module")
def gpg_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gpg]:
    """A GnuPG home with one key of each kind, made by `gpg --quick-gen-key` as a client would."""
    with Gpg(tmp_path_factory.mktemp("gnupg-kinds") / "home") as gpg:
        for name, (primary, subkey) in GPG_KINDS.items():
            gpg.generate(f"{name} <{name}@example.com>", primary)
            if subkey is not None:  # with an explicit algorithm gpg makes the primary key only
                gpg.add_subkey(f"{name} <{name}@example.com>", subkey, "encr")
        yield gpg


def _public(gpg: Gpg, name: str) -> str:
    return gpg.export(f"{name} <{name}@example.com>").decode()


@pytest.mark.parametrize("name", list(GPG_KINDS))
def test_gnupg_key_gets_seipd_v1_and_gpg_decrypts(gpg_client: Gpg, name: str) -> None:
    """A key GnuPG made advertises no SEIPDv2: v3 PKESK + SEIPDv1, which `gpg --decrypt` reads."""
    public = _public(gpg_client, name)
    assert advertises_seipd_v2(sq.Cert.from_bytes(public.encode())) is False
    message = encrypt(f"mail for {name}".encode(), [public])
    assert ((3,), 1) == message_versions(message.encode())
    assert f"mail for {name}" == gpg_client.decrypt(message)


@pytest.mark.parametrize("profile", [sq.Profile.RFC9580, sq.Profile.RFC4880], ids=["rfc9580", "rfc4880"])
def test_sequoia_key_gets_seipd_v2_and_sequoia_decrypts(profile: sq.Profile) -> None:
    """A key Sequoia made advertises SEIPDv2: v6 PKESK + SEIPDv2, which Sequoia decrypts."""
    tsk = sq.Tsk.generate("Sq <sq@example.com>", profile=profile)
    public = str(tsk.extract_certificate())
    assert advertises_seipd_v2(tsk.extract_certificate()) is True
    message = encrypt(b"mail for a Sequoia user", [public])
    assert ((6,), 2) == message_versions(message.encode())
    assert b"mail for a Sequoia user" == decrypt(message, bytes(tsk))


def test_mixed_recipients_get_what_all_can_read(gpg_client: Gpg) -> None:
    """A GnuPG key and a Sequoia key together get SEIPDv1: gpg and Sequoia both decrypt."""
    tsk = sq.Tsk.generate("Team <team@example.com>")
    message = encrypt(b"ticket", [_public(gpg_client, "ed25519"), str(tsk.extract_certificate())])
    assert ((3, 3), 1) == message_versions(message.encode())
    assert "ticket" == gpg_client.decrypt(message)
    assert b"ticket" == decrypt(message, bytes(tsk))


def test_seipd_v2_to_a_gnupg_key_is_refused(gpg_client: Gpg) -> None:
    """The check after encryption refuses a SEIPDv2 message for a key that advertises only SEIPDv1."""
    v2_message = sq.encrypt(b"x", recipients=[sq.Tsk.generate("Sq <sq@example.com>").extract_certificate()])
    with pytest.raises(NotifyError, match="ask for SEIPDv1"):
        check_message_versions(v2_message, [sq.Cert.from_bytes(_public(gpg_client, "ed25519").encode())])


def test_gnupg_home_with_a_long_path_works_and_cleans_up(tmp_path: Path) -> None:
    """A home too long for gpg-agent's socket path (like a demo client's) makes a key and decrypts; close() removes
    the short alias it used."""
    home = tmp_path / ("long-directory-name-" * 4) / "clients" / "client-01" / "gnupg"
    assert len(str(home)) > HOME_CHARS_MAX
    with Gpg(home) as gpg:
        gpg.generate("long <long@example.com>")
        assert "to a long home" == gpg.decrypt(encrypt(b"to a long home", [_public(gpg, "long")]))
        alias = gpg._alias
        assert alias is not None and alias.is_symlink()
    assert not alias.exists() and not alias.parent.exists()

