"""OpenPGP with Sequoia (pysequoia): check a client's public key, encrypt to keys, decrypt.

`check_public_key` is the one gate a pasted or uploaded key passes: size limit first (before any
parsing), exactly one certificate, no secret key material, not revoked or expired, only strong
algorithms, and a valid encryption-capable key that Sequoia's standard policy accepts.
The coordinator only ever holds public keys: `decrypt` is for the security team's own machines
(the `coffer tickets` command) and for tests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pysequoia as sq
from pysequoia.packet import PacketPile, PublicKeyAlgorithm, SignatureType, Tag

from coffer.notify.errors import KeyRejected, NotifyError

__all__ = ["CheckedKey", "check_public_key", "encrypt", "decrypt", "load_cert", "KEY_BYTES_MAX",
           "RSA_BITS_MIN", "sequoia_message", "expiry", "advertises_seipd_v2", "message_versions",
           "check_message_versions",
           "SEIPD_V2_FEATURE"]

KEY_BYTES_MAX = 64 * 1024  # a real public key block is a few KB; anything bigger is refused unparsed
RSA_BITS_MIN = 3072  # NIST SP 800-57: RSA-2048 is only ~112-bit security; 3072 gives 128
_SECRET_MARKERS = (b"PRIVATE KEY BLOCK", b"SECRET KEY BLOCK")
# pysequoia's enums are not hashable: compare by their integer value.
_RSA = {int(a) for a in (PublicKeyAlgorithm.RSAEncryptSign, PublicKeyAlgorithm.RSAEncrypt, PublicKeyAlgorithm.RSASign)}
# DSA and ElGamal are deprecated by RFC 9580 and limited to weak parameter sizes in practice.
_REFUSED = {int(PublicKeyAlgorithm.DSA): "DSA", int(PublicKeyAlgorithm.ElGamalEncrypt): "ElGamal",
            int(PublicKeyAlgorithm.ElGamalEncryptSign): "ElGamal"}
_KEY_TAGS = {int(Tag.PublicKey), int(Tag.PublicSubkey)}
_SECRET_TAGS = {int(Tag.SecretKey), int(Tag.SecretSubkey)}
SEIPD_V2_FEATURE = 0x08  # RFC 9580 §5.2.3.32: features bit for SEIPDv2 (0x01 is SEIPDv1)
_FEATURES = 30  # subpacket type
# pysequoia's SignatureType values (not RFC numbers) of self-signatures that carry a key's preferences
_SELF_SIGNATURES = {int(t) for t in (SignatureType.DirectKey, SignatureType.PositiveCertification,
                                     SignatureType.CasualCertification, SignatureType.PersonaCertification,
                                     SignatureType.GenericCertification)}
_FINGERPRINT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")


@dataclass(frozen=True, slots=True)
class CheckedKey:
    """A public key that passed every check; `armored` is Sequoia's re-serialised public cert."""

    fingerprint: str
    armored: str
    user_ids: tuple[str, ...]
    expires_at: datetime | None
    algorithms: tuple[str, ...]


def sequoia_message(exc: BaseException) -> str:
    """The first line of a Sequoia error, without the Rust backtrace."""
    return str(exc).split("\n", 1)[0].strip()[:200]


def _parse_single(data: bytes) -> sq.Cert:
    try:
        certs = sq.Cert.split_bytes(data)
    except Exception as exc:  # pysequoia raises RuntimeError/ValueError for any malformed input
        raise KeyRejected("malformed", f"not an OpenPGP public key ({sequoia_message(exc)})") from None
    if len(certs) != 1:
        raise KeyRejected("not_single", f"expected exactly one OpenPGP certificate, found {len(certs)}")
    return certs[0]


def _rsa_bits(body: bytes) -> int:
    """Modulus size of an RSA key packet body (v4: MPI after 6 bytes; v6: after 10)."""
    version = body[0] if body else 0
    offset = {4: 6, 6: 10}.get(version)
    if offset is None or len(body) < offset + 2:
        raise KeyRejected("unsupported_version", f"unsupported RSA key packet version {version}")
    return int.from_bytes(body[offset:offset + 2], "big")


def _contains_secret(data: bytes) -> bool:
    try:
        packets = list(PacketPile.from_bytes(data))
    except Exception:  # not parseable as packets: _parse_single gives the clear error
        return False
    return any(_tag(packet) in _SECRET_TAGS for packet in packets)


def _tag(packet: Any) -> int | None:
    """The packet's tag; None for a tag the binding does not know (it raises RuntimeError there)."""
    try:
        return int(packet.tag)
    except Exception:  # pysequoia: "Unknown packet tag"
        return None


def _check_algorithms(binary: bytes) -> tuple[str, ...]:
    names: list[str] = []
    for packet in PacketPile.from_bytes(binary):
        tag = _tag(packet)
        if tag is None:
            raise KeyRejected("malformed", "the key holds an OpenPGP packet of an unknown kind")
        if tag in _SECRET_TAGS:
            raise KeyRejected("secret_key", "this is a SECRET key: never share it; paste the PUBLIC key")
        if tag not in _KEY_TAGS or packet.key_algorithm is None:
            continue
        algorithm = packet.key_algorithm
        if int(algorithm) in _REFUSED:
            raise KeyRejected("weak_algorithm", f"{_REFUSED[int(algorithm)]} keys are not accepted")
        if int(algorithm) in _RSA:
            bits = _rsa_bits(packet.body)
            if bits < RSA_BITS_MIN:
                raise KeyRejected("weak_rsa", f"RSA-{bits} is too weak: at least RSA-{RSA_BITS_MIN} is required")
            names.append(f"RSA-{bits}")
        else:
            names.append(repr(algorithm).rsplit(".", 1)[-1])
    return tuple(names)


def check_public_key(data: bytes, *, now: datetime) -> CheckedKey:
    """Check a pasted/uploaded key; raises KeyRejected with a stable `reason` and a clear message."""
    try:
        return _check_public_key(data, now=now)
    except KeyRejected:
        raise
    except Exception as exc:  # the OpenPGP library refuses some malformed input with untyped errors
        raise KeyRejected("malformed", f"not a usable OpenPGP public key ({sequoia_message(exc)})") from None


def _check_public_key(data: bytes, *, now: datetime) -> CheckedKey:
    if len(data) > KEY_BYTES_MAX:
        raise KeyRejected("too_large", f"key is too large (more than {KEY_BYTES_MAX // 1024} KiB)")
    if not data.strip():
        raise KeyRejected("empty", "no key given")
    if any(marker in data for marker in _SECRET_MARKERS):
        raise KeyRejected("secret_key", "this is a SECRET key: never share it; paste the PUBLIC key")
    if _contains_secret(data):
        raise KeyRejected("secret_key", "this is a SECRET key: never share it; paste the PUBLIC key")
    cert = _parse_single(data)
    algorithms = _check_algorithms(bytes(cert))
    if cert.is_revoked:
        raise KeyRejected("revoked", "this key has been revoked")
    try:
        expires_at = cert.expiration
    except Exception as exc:  # Sequoia's policy refuses the primary key
        raise KeyRejected("policy", f"key refused by the OpenPGP policy ({sequoia_message(exc)})") from None
    if expires_at is not None and expires_at <= now:
        raise KeyRejected("expired", f"this key expired on {expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    try:
        sq.encrypt(b"coffer key check", recipients=[cert])
    except Exception:
        raise KeyRejected("no_encryption_key", "the key has no valid encryption-capable (sub)key") from None
    user_ids = tuple(str(uid) for uid in cert.user_ids)
    return CheckedKey(cert.fingerprint, str(cert), user_ids, expires_at, algorithms)


def expiry(armored: str) -> datetime | None:
    """When a stored key expires (None: never, or unknown under the current policy)."""
    try:
        return load_cert(armored).expiration
    except Exception:  # a key the policy no longer accepts: the caller shows it as unknown
        return None


def load_cert(armored: str) -> sq.Cert:
    """A stored public certificate (already checked once)."""
    try:
        return sq.Cert.from_bytes(armored.encode())
    except Exception as exc:
        raise NotifyError(f"stored OpenPGP key does not parse ({sequoia_message(exc)})") from None


def _subpackets(area: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, data) of each signature subpacket (RFC 9580 §5.2.3.7 length encoding)."""
    offset = 0
    while offset < len(area):
        first = area[offset]
        if first < 192:
            length, offset = first, offset + 1
        elif first < 255:
            length, offset = ((first - 192) << 8) + area[offset + 1] + 192, offset + 2
        else:
            length, offset = int.from_bytes(area[offset + 1:offset + 5], "big"), offset + 5
        if length == 0 or offset + length > len(area):
            raise NotifyError("malformed signature subpacket")
        yield area[offset] & 0x7F, area[offset + 1:offset + length]
        offset += length


def _hashed_area(body: bytes) -> bytes:
    """The hashed subpacket area of a v4 (2-byte length) or v6 (4-byte length) signature packet."""
    width = {4: 2, 6: 4}.get(body[0] if body else 0)
    if width is None:
        raise NotifyError("unsupported signature packet version")
    length = int.from_bytes(body[4:4 + width], "big")
    return body[4 + width:4 + width + length]


def _features(packet: Any) -> int:
    return next((data[0] for kind, data in _subpackets(_hashed_area(packet.body)) if kind == _FEATURES and data), 0)


def _issued_by(packet: Any, fingerprint: str) -> bool:
    """By the primary key: its issuer fingerprint, or (older signatures) its 64-bit key id."""
    if packet.issuer_fingerprint is not None:
        return bool(packet.issuer_fingerprint == fingerprint)
    key_id = packet.issuer_key_id
    return key_id is not None and fingerprint.endswith(str(key_id).lower())


def advertises_seipd_v2(cert: sq.Cert) -> bool:
    """Whether the key's newest self-signature (direct-key or user-ID certification) lists SEIPDv2 in its
    features: only then may a message to it use v6 PKESK + SEIPDv2 packets (GnuPG 2.2 reads neither)."""
    newest: Any = None
    for packet in PacketPile.from_bytes(bytes(cert)):
        if int(packet.tag) != int(Tag.Signature) or not _issued_by(packet, cert.fingerprint):
            continue
        if int(packet.signature_type) not in _SELF_SIGNATURES:
            continue
        if newest is None or packet.signature_created > newest.signature_created:
            newest = packet
    return newest is not None and bool(_features(newest) & SEIPD_V2_FEATURE)


def message_versions(message: bytes) -> tuple[tuple[int, ...], int]:
    """(the PKESK packets' versions, the SEIPD packet's version) of an encrypted message."""
    packets = list(PacketPile.from_bytes(message))
    pkesk = tuple(packet.body[0] for packet in packets if int(packet.tag) == int(Tag.PKESK))
    seipd = [packet.body[0] for packet in packets if int(packet.tag) == int(Tag.SEIP)]
    if len(seipd) != 1:
        raise NotifyError("an encrypted message needs exactly one SEIPD packet")
    return pkesk, seipd[0]


def check_message_versions(message: bytes, certs: Sequence[sq.Cert]) -> None:
    """SEIPDv2 (and v6 PKESKs) only when every recipient advertises it; SEIPDv1 with v3 PKESKs otherwise."""
    pkesk, seipd = message_versions(message)
    expected = (6, 2) if all(advertises_seipd_v2(cert) for cert in certs) else (3, 1)
    if seipd != expected[1] or any(version != expected[0] for version in pkesk) or len(pkesk) < len(certs):
        raise NotifyError(f"OpenPGP encryption produced SEIPDv{seipd} with PKESK {pkesk}, "
                          f"the recipients' keys ask for SEIPDv{expected[1]} with v{expected[0]} PKESKs")


def encrypt(plaintext: bytes, recipients: Sequence[str], *, signer: sq.PySigner | None = None) -> str:
    """Armored OpenPGP message to every armored public key in `recipients`; never falls back.

    Sequoia picks the packet versions every recipient's key advertises (SEIPDv1 for keys GnuPG made,
    which GnuPG 2.2 can read); the result is checked against the keys' features before it leaves."""
    if not recipients:
        raise NotifyError("no recipient key")
    certs = [load_cert(armored) for armored in recipients]
    try:
        message = sq.encrypt(plaintext, recipients=certs, signer=signer)
    except Exception as exc:
        raise NotifyError(f"OpenPGP encryption failed ({sequoia_message(exc)})") from None
    check_message_versions(message, certs)
    return message.decode("ascii")


def decrypt(armored_message: str | bytes, secret_key: bytes, *, password: str | None = None) -> bytes:
    """Decrypt with a secret key held by the caller (the security team's machine, or a test)."""
    message = armored_message.encode() if isinstance(armored_message, str) else armored_message
    try:
        tsk = sq.Tsk.from_bytes(secret_key)
        result = sq.decrypt(message, decryptor=tsk.decryptor(password))
    except Exception as exc:
        raise NotifyError(f"OpenPGP decryption failed ({sequoia_message(exc)})") from None
    if result.bytes is None:
        raise NotifyError("OpenPGP decryption produced no data")
    return result.bytes


def is_fingerprint(text: str) -> bool:
    return _FINGERPRINT.fullmatch(text) is not None
