"""BIP-322 generic signed messages: the virtual transactions, the encodings and verification.

Both sides use this module: the public verifier checks proofs of control with `verify`, and
`coffer.btc.bip322_sign` builds them from what key holders sign. It holds no key. Coffer
evaluates three script types: P2WPKH, P2TR key path and P2WSH multisig, in the simple and full
formats; anything else is `Bip322Unsupported`. Error messages carry the reasons BIP-322's
published vectors expect ("invalid signature", "signature too short", …).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from typing import Any, Final

from coincurve import PublicKey, PublicKeyXOnly
from embit.script import Script, Witness, address_to_scriptpubkey
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from coffer.btc.errors import Bip322Invalid, Bip322Unsupported, InvalidScript
from coffer.btc.hashes import hash160, tagged_hash
from coffer.btc.reader import ByteReader
from coffer.btc.script import multisig_template, p2pkh_script_code

__all__ = ["message_hash", "to_spend", "to_sign", "encode", "decode", "parse_witness", "verify",
           "WITNESS_ITEMS_MAX", "TAG_MESSAGE"]

TAG_MESSAGE: Final = "BIP0322-signed-message"
WITNESS_ITEMS_MAX: Final = 1000
WITNESS_ITEM_BYTES_MAX: Final = 4_000_000
_TAPROOT_SIGHASHES: Final = (0, 1, 2, 3, 0x81, 0x82, 0x83)
_PREFIXES: Final = (("smp", "simple"), ("ful", "full"), ("pof", "proof_of_funds"))


def message_hash(message: bytes) -> bytes:
    return tagged_hash(TAG_MESSAGE, message)


def to_spend(script_pubkey: bytes, message: bytes) -> Any:
    """The virtual transaction whose only output the signature spends."""
    script_sig = Script(b"\x00\x20" + message_hash(message))
    vin = TransactionInput(b"\x00" * 32, 0xFFFFFFFF, script_sig=script_sig, sequence=0)
    return Transaction(version=0, vin=[vin], vout=[TransactionOutput(0, Script(script_pubkey))], locktime=0)


def to_sign(to_spend_txid: bytes, witness_items: Sequence[bytes], *, version: int = 0,
            locktime: int = 0, sequence: int = 0) -> Any:
    """The virtual transaction that spends `to_spend`:0 to one OP_RETURN output of value 0."""
    vin = TransactionInput(to_spend_txid, 0, script_sig=Script(b""), sequence=sequence,
                           witness=Witness(list(witness_items)))
    return Transaction(version=version, vin=[vin], vout=[TransactionOutput(0, Script(b"\x6a"))], locktime=locktime)


def encode(script_pubkey: bytes, message: bytes, witness_items: Sequence[bytes], *, full: bool) -> str:
    """`smp`+base64(witness) or `ful`+base64(to_sign transaction)."""
    if full:
        raw: bytes = to_sign(to_spend(script_pubkey, message).txid(), witness_items).serialize()
        return "ful" + base64.b64encode(raw).decode()
    return "smp" + base64.b64encode(Witness(list(witness_items)).serialize()).decode()


def decode(signature: str) -> tuple[str, bytes]:
    """Split the format prefix (`smp`, `ful`, `pof`; none means simple) and decode base64."""
    if signature == "":
        raise Bip322Invalid("signature too short")
    kind, body = "simple", signature
    for prefix, name in _PREFIXES:
        if signature.startswith(prefix):
            kind, body = name, signature[len(prefix):]
            break
    try:
        payload = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise Bip322Invalid("error decoding signature as base64") from None
    if not payload:
        raise Bip322Invalid("signature too short")
    return kind, payload


def _invalid(reason: str) -> Bip322Invalid:
    return Bip322Invalid(f"invalid signature: {reason}")


def parse_witness(data: bytes) -> list[bytes]:
    """A serialized witness stack, strictly: canonical lengths, bounded, no trailing bytes."""
    reader = ByteReader(data, error=_invalid)
    count = reader.compact_size()
    if count > WITNESS_ITEMS_MAX:
        raise _invalid("too many witness items")
    items = [reader.var_bytes(WITNESS_ITEM_BYTES_MAX) for _ in range(count)]
    if reader.remaining:
        raise _invalid("trailing bytes after the witness")
    return items


def _strict_der(signature: bytes) -> bool:
    """BIP-66 strict DER (signature without the sighash byte)."""
    if not 8 <= len(signature) <= 72 or signature[0] != 0x30 or signature[1] != len(signature) - 2:
        return False
    r_len = signature[3]
    if signature[2] != 0x02 or r_len == 0 or 5 + r_len >= len(signature):
        return False
    s_len = signature[5 + r_len]
    if signature[4 + r_len] != 0x02 or s_len == 0 or r_len + s_len + 6 != len(signature):
        return False
    r, s = signature[4:4 + r_len], signature[6 + r_len:]
    return not (r[0] & 0x80 or (len(r) > 1 and r[0] == 0 and not r[1] & 0x80)
                or s[0] & 0x80 or (len(s) > 1 and s[0] == 0 and not s[1] & 0x80))


def _ecdsa_ok(tx: Any, script_code: bytes, pubkey: bytes, signature: bytes) -> bool:
    if len(signature) < 9 or not _strict_der(signature[:-1]) or len(pubkey) != 33 or pubkey[0] not in (2, 3):
        return False
    sighash = signature[-1]
    if sighash & 0x7F not in (1, 2, 3):
        return False
    digest = tx.sighash_segwit(0, Script(script_code), 0, sighash=sighash)
    try:
        return bool(PublicKey(pubkey).verify(signature[:-1], digest, hasher=None))
    except ValueError:
        return False


def _verify_p2wpkh(tx: Any, script_pubkey: bytes, witness: list[bytes]) -> None:
    if len(witness) != 2 or hash160(witness[1]) != script_pubkey[2:]:
        raise Bip322Invalid("invalid signature")
    if not _ecdsa_ok(tx, p2pkh_script_code(witness[1]), witness[1], witness[0]):
        raise Bip322Invalid("invalid signature")


def _verify_p2tr(tx: Any, script_pubkey: bytes, witness: list[bytes]) -> None:
    if len(witness) > 1:
        raise Bip322Unsupported("unsupported script type: Taproot script path or annex")
    if len(witness) != 1 or len(witness[0]) not in (64, 65) or witness[0][64:] == b"\x00":
        raise Bip322Invalid("invalid signature")
    sighash = witness[0][64] if len(witness[0]) == 65 else 0
    if sighash not in _TAPROOT_SIGHASHES:
        raise Bip322Invalid("invalid signature")
    digest = tx.sighash_taproot(0, [Script(script_pubkey)], [0], sighash=sighash)
    try:
        ok = PublicKeyXOnly(script_pubkey[2:]).verify(witness[0][:64], digest)
    except ValueError:
        ok = False
    if not ok:
        raise Bip322Invalid("invalid signature")


def _verify_p2wsh_multisig(tx: Any, script_pubkey: bytes, witness: list[bytes]) -> None:
    if not witness or hashlib.sha256(witness[-1]).digest() != script_pubkey[2:]:
        raise Bip322Invalid("invalid signature")
    try:
        threshold, keys = multisig_template(witness[-1])
    except InvalidScript as exc:
        raise Bip322Unsupported(f"unsupported script type: {exc}") from None
    if len(witness) != threshold + 2 or witness[0] != b"":
        raise Bip322Invalid("invalid signature")
    key_iter = iter(keys)
    for signature in witness[1:-1]:
        if not any(_ecdsa_ok(tx, witness[-1], key, signature) for key in key_iter):
            raise Bip322Invalid("invalid signature")


def _verify_input(tx: Any, script_pubkey: bytes) -> None:
    """Evaluate input 0 of `tx` against a P2WPKH, P2TR (key path) or P2WSH multisig output of value 0."""
    vin = tx.vin[0]
    witness = list(vin.witness.items)
    if vin.script_sig.data:
        raise Bip322Unsupported("unsupported script type: script_sig must be empty")
    if len(script_pubkey) == 22 and script_pubkey[:2] == b"\x00\x14":
        _verify_p2wpkh(tx, script_pubkey, witness)
    elif len(script_pubkey) == 34 and script_pubkey[:2] == b"\x51\x20":
        _verify_p2tr(tx, script_pubkey, witness)
    elif len(script_pubkey) == 34 and script_pubkey[:2] == b"\x00\x20":
        _verify_p2wsh_multisig(tx, script_pubkey, witness)
    else:
        raise Bip322Unsupported(
            "unsupported script type (Coffer verifies P2WPKH, P2TR key path, P2WSH multisig)")


def _parse_full(payload: bytes, spent: Any) -> Any:
    try:
        signed = Transaction.parse(payload)
    except Exception:  # embit raises several unrelated types for a malformed transaction
        raise Bip322Invalid("error parsing signature as full variant") from None
    if signed.serialize() != payload:
        raise Bip322Invalid("error parsing signature as full variant: trailing bytes")
    vin = signed.vin
    if len(vin) != 1 or vin[0].txid != spent.txid() or vin[0].vout != 0:
        raise Bip322Invalid("invalid signature: to_sign must spend to_spend:0 only")
    if len(signed.vout) != 1 or signed.vout[0].value != 0 or signed.vout[0].script_pubkey.data != b"\x6a":
        raise Bip322Invalid("invalid signature: to_sign must have one OP_RETURN output of value 0")
    return signed


def verify(address: str, message: bytes, signature: str) -> str:
    """Verify a simple or full BIP-322 signature for `address`; returns the format name."""
    kind, payload = decode(signature)
    try:
        script_pubkey = address_to_scriptpubkey(address).data
    except Exception:  # embit raises several unrelated types for a malformed address
        raise Bip322Invalid(f"invalid address {address!r}") from None
    spent = to_spend(script_pubkey, message)
    if kind == "simple":
        signed = to_sign(spent.txid(), parse_witness(payload))
    elif kind == "full":
        signed = _parse_full(payload, spent)
    else:
        raise Bip322Unsupported("proof-of-funds signatures are not used by Coffer's reserves")
    _verify_input(signed, script_pubkey)
    return kind
