"""The OpenPGP key gate: each bad key gets a clear, typed refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pysequoia as sq
import pytest

from coffer.notify import KeyRejected, check_public_key
from coffer.notify.pgp import KEY_BYTES_MAX, decrypt, encrypt
from tests.notify.helpers import Gpg


def _now() -> datetime:
    """A little ahead of the clock, so the key made to expire after one second has expired."""
    return datetime.now(UTC) + timedelta(seconds=30)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One gpg home with one key of each kind."""
    with Gpg(tmp_path_factory.mktemp("gnupg-bad") / "home") as gpg:
        return _keys(gpg)


def _keys(gpg: Gpg) -> dict[str, bytes]:
    gpg.generate("Good <good@example.com>")
    gpg.generate("Sign <sign@example.com>", "ed25519", "sign")
    gpg.generate("Weak <weak@example.com>", "rsa1024", "sign")
    gpg.add_subkey("Weak <weak@example.com>", "rsa1024", "encr")
    gpg.generate("Expired <expired@example.com>", expire="seconds=1")
    gpg.generate("Revoked <revoked@example.com>")
    gpg.revoke("Revoked <revoked@example.com>")
    gpg.generate("Dsa <dsa@example.com>", "dsa2048", "sign")
    out = {name: gpg.export(f"{name.title()} <{name}@example.com>")
           for name in ("good", "sign", "weak", "expired", "revoked", "dsa")}
    out["secret"] = gpg.export_secret("Good <good@example.com>")
    out["secret_binary"] = gpg.run("--export-secret-keys", "Good <good@example.com>")
    return out


def test_good_key_accepted(keys: dict[str, bytes]) -> None:
    """An ed25519/cv25519 key passes and its fingerprint is reported."""
    checked = check_public_key(keys["good"], now=_now())
    assert 40 == len(checked.fingerprint)
    assert ("Good <good@example.com>",) == checked.user_ids
    assert "PRIVATE" not in checked.armored


@pytest.mark.slow
def test_rsa_3072_accepted() -> None:
    """RSA at the minimum size (3072) passes."""
    tsk = sq.Tsk.generate("Rsa <rsa@example.com>", cipher_suite=sq.CipherSuite.RSA3k)
    checked = check_public_key(str(tsk.extract_certificate()).encode(), now=_now())
    assert "RSA-3072" in checked.algorithms


@pytest.mark.parametrize(("name", "reason"), [
    ("sign", "no_encryption_key"), ("weak", "weak_rsa"), ("expired", "expired"), ("revoked", "revoked"),
    ("dsa", "weak_algorithm"), ("secret", "secret_key"), ("secret_binary", "secret_key"),
])
def test_bad_keys_refused(keys: dict[str, bytes], name: str, reason: str) -> None:
    """Each bad kind of key is refused with its own reason code."""
    with pytest.raises(KeyRejected) as caught:
        check_public_key(keys[name], now=_now())
    assert reason == caught.value.reason


def test_secret_key_never_echoed(keys: dict[str, bytes]) -> None:
    """The refusal of a secret key does not contain any of its text."""
    with pytest.raises(KeyRejected) as caught:
        check_public_key(keys["secret"], now=_now())
    body = keys["secret"].decode().splitlines()[3]
    assert body not in str(caught.value)


@pytest.mark.slow
def test_rsa_2048_refused() -> None:
    """RSA-2048 is below the 3072-bit minimum."""
    tsk = sq.Tsk.generate("Rsa2 <rsa2@example.com>", cipher_suite=sq.CipherSuite.RSA2k)
    with pytest.raises(KeyRejected) as caught:
        check_public_key(str(tsk.extract_certificate()).encode(), now=_now())
    assert "weak_rsa" == caught.value.reason


@pytest.mark.parametrize(("data", "reason"), [
    (b"garbage that is not a key", "malformed"), (b"", "empty"), (b"x" * (10 * 1024 * 1024), "too_large"),
])
def test_garbage_empty_and_huge_refused(data: bytes, reason: str) -> None:
    """Garbage, nothing and a 10 MB blob are refused (the blob before parsing)."""
    with pytest.raises(KeyRejected) as caught:
        check_public_key(data, now=_now())
    assert reason == caught.value.reason


def test_truncated_refused(keys: dict[str, bytes]) -> None:
    """A key cut in the middle does not parse."""
    with pytest.raises(KeyRejected) as caught:
        check_public_key(keys["good"][: len(keys["good"]) // 2], now=_now())
    assert "malformed" == caught.value.reason


def test_two_certificates_refused(keys: dict[str, bytes]) -> None:
    """A keyring with two certificates is refused: one key per client."""
    with pytest.raises(KeyRejected) as caught:
        check_public_key(keys["good"] + keys["sign"], now=_now())
    assert "not_single" == caught.value.reason


def test_limit_is_checked_before_parsing() -> None:
    """The size limit applies to raw bytes, one byte over is enough."""
    with pytest.raises(KeyRejected):
        check_public_key(b" " * (KEY_BYTES_MAX + 1), now=_now())


def test_encrypt_decrypt_roundtrip(tmp_path: Path) -> None:
    """What Coffer encrypts, the holder of the secret key decrypts."""
    tsk = sq.Tsk.generate("Rt <rt@example.com>")
    message = encrypt(b"hello", [str(tsk.extract_certificate())])
    assert message.startswith("-----BEGIN PGP MESSAGE-----")
    assert b"hello" == decrypt(message, bytes(tsk))
