"""What a co-signer agrees to sign, derived by the co-signer itself (never an opaque digest).

* Taproot spends: the unsigned transaction and the outputs it spends come in; the co-signer
  checks every input spends its own P2TR output, every output is either an approved payment or
  change back to its own address, the fee is bounded, and computes each input's BIP-341 sighash.
* Publication documents (Ed25519 group key): exact statement bytes of a document type it knows
  (proof-of-reserves statements and log entries, halt/resume events), in canonical JSON, with
  the coordinator's HSM attestation over them.
* Refresh tests: a fixed message bound to a refresh session, signable only with pending shares.

Also the session id: a hash of key id, version, signer set, the messages and a fresh
coordinator nonce. Pure functions, no I/O.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from embit.script import Script
from embit.transaction import SIGHASH, Transaction

from coffer.btc import script as btc_script
from coffer.btc.bip322_sign import RESERVES_CHALLENGE
from coffer.btc.errors import BtcError
from coffer.btc.script import p2tr_script
from coffer.canonical import canonical_json
from coffer.hsm import Hsm, normalize_low_s
from coffer.mpc import frost
from coffer.mpc.service.errors import OpaqueMessageRefused, SpendNotApproved
from coffer.policy import ATTESTATION_KEY_LABEL, AttestationRefused

__all__ = [
    "Prevout", "SpendCheck", "taproot_key", "p2tr_script", "p2tr_address", "address_script", "check_taproot_spend",
    "PUBLICATION_PREFIXES", "check_publication", "publication_digest", "attest_publication",
    "verify_publication_attestation", "refresh_test_message", "session_id", "messages_digest",
    "FEE_RATE_SAT_VB_MAX", "TX_INPUTS_MAX", "TX_OUTPUTS_MAX", "PUBLICATION_BYTES_MAX", "RESERVES_CHALLENGE",
]

FEE_RATE_SAT_VB_MAX: Final = 500
TX_INPUTS_MAX: Final = 200
TX_OUTPUTS_MAX: Final = 200
PUBLICATION_BYTES_MAX: Final = 64 * 1024
PUBLICATION_PREFIXES: Final = (b"coffer-por-statement/1\n", b"coffer-por-log/1\n",
                               b"coffer/recon/halt-event/v1\x00")
HALT_PREFIX: Final = b"coffer/recon/halt-event/v1\x00"
PUBLICATION_ATTESTATION_TAG: Final = b"coffer/mpc/publication-attestation/v1"
REFRESH_TEST_TAG: Final = b"coffer/mpc/refresh-test/v1\x00"
SESSION_TAG: Final = b"coffer/mpc/session/v1"
_P256_ORDER: Final = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_TAPROOT_WITNESS_VBYTES: Final = 17  # 1 item count + 1 length + 64 signature bytes, / 4, rounded up


@dataclass(frozen=True, slots=True)
class Prevout:
    """The output an input spends: BIP-341 signs every input's amount and script."""

    amount_sats: int
    script_pubkey: bytes


@dataclass(frozen=True, slots=True)
class SpendCheck:
    txid: str
    messages: tuple[bytes, ...]  # one BIP-341 sighash per input
    fee_sats: int
    change_sats: int


def p2tr_address(output_key: bytes, network: str = "regtest") -> str:
    return btc_script.script_address(p2tr_script(output_key), network)


@functools.lru_cache(maxsize=64)
def taproot_key(public: frost.PublicKeyPackage) -> tuple[bytes, tuple[frost.Tweak, ...]]:
    """`frost.taproot_output_key` of a key package, computed once per package."""
    return frost.taproot_output_key(public)


@functools.lru_cache(maxsize=4096)
def address_script(address: str, network: str) -> bytes:
    """The scriptPubKey of `address`, refusing an address of another network."""
    try:
        return btc_script.address_script(address, network)
    except BtcError:
        raise SpendNotApproved(f"destination {address[:90]!r} is not a {network} address",
                               rule="spend.destination") from None


def check_taproot_spend(raw_tx: bytes, prevouts: Sequence[Prevout], own_script: bytes,
                        payments: Sequence[tuple[bytes, int]]) -> SpendCheck:
    """Judge an unsigned transaction against the approved payments; return what to sign."""
    try:
        tx = Transaction.parse(raw_tx)
    except Exception:  # embit's parser raises assorted types on garbage
        raise SpendNotApproved("the transaction does not parse", rule="spend.malformed") from None
    if bytes(tx.serialize()) != raw_tx:
        raise SpendNotApproved("the transaction is not in canonical unsigned form", rule="spend.malformed")
    if not 1 <= len(tx.vin) <= TX_INPUTS_MAX or not 1 <= len(tx.vout) <= TX_OUTPUTS_MAX:
        raise SpendNotApproved("input or output count out of range", rule="spend.malformed")
    if len(prevouts) != len(tx.vin):
        raise SpendNotApproved("one prevout per input is needed", rule="spend.prevouts")
    for vin in tx.vin:
        if len(vin.script_sig.data) or vin.witness.items:
            raise SpendNotApproved("inputs must be unsigned", rule="spend.malformed")
    if any(prevout.script_pubkey != own_script for prevout in prevouts):
        raise SpendNotApproved("an input does not spend this key's own output", rule="spend.foreign_input")
    outputs = [(bytes(out.script_pubkey.data), int(out.value)) for out in tx.vout]
    external = Counter(output for output in outputs if output[0] != own_script)
    if external != Counter(payments):
        raise SpendNotApproved("external outputs are not exactly the approved payments", rule="spend.outputs")
    change = sum(amount for script, amount in outputs if script == own_script)
    total_in = sum(prevout.amount_sats for prevout in prevouts)
    fee = total_in - sum(amount for _, amount in outputs)
    vsize = len(raw_tx) + 1 + _TAPROOT_WITNESS_VBYTES * len(tx.vin)
    if not 0 <= fee <= FEE_RATE_SAT_VB_MAX * vsize:
        raise SpendNotApproved(f"fee {fee} sats outside 0..{FEE_RATE_SAT_VB_MAX * vsize}", rule="spend.fee")
    scripts = [Script(prevout.script_pubkey) for prevout in prevouts]
    values = [prevout.amount_sats for prevout in prevouts]
    messages = tuple(bytes(tx.sighash_taproot(index, scripts, values, sighash=SIGHASH.DEFAULT))
                     for index in range(len(tx.vin)))
    return SpendCheck(tx.txid().hex(), messages, fee, change)


def check_publication(document: bytes) -> bytes:
    """Accept only a known publication type whose body is a canonical JSON object; return its prefix."""
    if len(document) > PUBLICATION_BYTES_MAX:
        raise OpaqueMessageRefused("publication document too large")
    prefix = next((p for p in PUBLICATION_PREFIXES if document.startswith(p)), None)
    if prefix is None:
        raise OpaqueMessageRefused("not a publication document type this co-signer signs")
    body = document[len(prefix):]
    try:
        value = json.loads(body.decode("ascii"))
        canonical = canonical_json(value)
    except Exception:  # not JSON, not ASCII, or a float: not one of ours
        raise OpaqueMessageRefused("publication body is not canonical JSON") from None
    if not isinstance(value, dict) or canonical != body:
        raise OpaqueMessageRefused("publication body is not a canonical JSON object")
    return prefix


def publication_digest(document: bytes) -> bytes:
    tag = PUBLICATION_ATTESTATION_TAG
    return hashlib.sha256(len(tag).to_bytes(2, "big") + tag + document).digest()


def attest_publication(hsm: Hsm, document: bytes, *, label: str = ATTESTATION_KEY_LABEL) -> bytes:
    """The coordinator's HSM vouches for a document it asks the co-signers to publish."""
    check_publication(document)
    return normalize_low_s(hsm.sign(label, publication_digest(document)), _P256_ORDER)


def verify_publication_attestation(document: bytes, signature: bytes, public_key: bytes) -> None:
    """Check the HSM's P-256 signature (low-S, raw r||s) over the document; raise AttestationRefused."""
    if len(signature) != 64:
        raise AttestationRefused("attestation signature must be 64 bytes", rule="attestation.signature")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < _P256_ORDER and 0 < s <= _P256_ORDER // 2):
        raise AttestationRefused("attestation signature out of range or not low-S", rule="attestation.signature")
    try:
        key = _p256_key(bytes(public_key))
        key.verify(utils.encode_dss_signature(r, s), publication_digest(document),
                   ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    except (InvalidSignature, ValueError):
        raise AttestationRefused("publication attestation does not verify under the pinned HSM key",
                                 rule="attestation.signature") from None


@functools.lru_cache(maxsize=8)
def _p256_key(public_key: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)


def refresh_test_message(session: bytes, group_public_key: bytes) -> bytes:
    return REFRESH_TEST_TAG + session + group_public_key


def _framed(*parts: bytes) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def messages_digest(kind: str, messages: Sequence[bytes]) -> bytes:
    return hashlib.sha256(_framed(kind.encode(), *messages)).digest()


def session_id(key_id: str, version: int, signers: Sequence[int], digest: bytes, coordinator_nonce: bytes) -> bytes:
    """hash(key id, version, signer set, message digest, fresh coordinator nonce)."""
    signer_bytes = b"".join(identifier.to_bytes(2, "big") for identifier in sorted(signers))
    return hashlib.sha256(_framed(SESSION_TAG, key_id.encode(), version.to_bytes(4, "big"), signer_bytes,
                                  digest, coordinator_nonce)).digest()
