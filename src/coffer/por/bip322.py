"""BIP-322 generic signed messages: making proofs of control for reserves.

Three script types: P2WPKH, P2TR key path (BIP-86 output key) and P2WSH multisig, in the simple
and full formats. Each signer signs a digest on its own: `*_sighash` gives the digest that a
cold signer, an HSM or the FROST co-signers sign, and `assemble_*` builds the signature from
what they return, so no key ever has to come here. `sign_*` are conveniences for keys held in
this process (tests, demo). Verification lives in `coffer.por.verify` (stand-alone).
Never log a private key or a signing nonce.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from coincurve import PrivateKey, PublicKey, PublicKeyXOnly
from embit.script import Script, Witness

from coffer.por.errors import Bip322Error
from coffer.por.verify import bip322_to_sign, bip322_to_spend

__all__ = ["p2wpkh_script", "p2tr_script", "p2wsh_script", "taproot_output_key", "taproot_tweak_private_key",
           "p2wpkh_sighash", "p2tr_sighash", "p2wsh_sighash", "assemble_p2wpkh", "assemble_p2tr",
           "assemble_p2wsh_multisig", "sign_p2wpkh", "sign_p2tr", "sign_p2wsh_multisig", "encode"]

SIGHASH_ALL = 1
SIGHASH_DEFAULT = 0


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def _tagged(tag: str, data: bytes) -> bytes:
    tag_hash = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(tag_hash + tag_hash + data).digest()


def p2wpkh_script(pubkey: bytes) -> bytes:
    return b"\x00\x14" + _hash160(pubkey)


def p2tr_script(output_key_xonly: bytes) -> bytes:
    return b"\x51\x20" + output_key_xonly


def p2wsh_script(witness_script: bytes) -> bytes:
    return b"\x00\x20" + hashlib.sha256(witness_script).digest()


def taproot_output_key(internal_key_xonly: bytes) -> bytes:
    """BIP-86 output key (no script tree) of an x-only internal key."""
    tweak = _tagged("TapTweak", internal_key_xonly)
    point = PublicKey(b"\x02" + internal_key_xonly).add(tweak)
    return point.format(compressed=True)[1:]


def taproot_tweak_private_key(secret: bytes) -> bytes:
    """The BIP-86 tweaked secret: negate for an odd-y public key, then add the TapTweak."""
    key = PrivateKey(secret)
    compressed = key.public_key.format(compressed=True)
    scalar = key.to_int() if compressed[0] == 2 else _ORDER - key.to_int()
    tweak = int.from_bytes(_tagged("TapTweak", compressed[1:]), "big")
    return ((scalar + tweak) % _ORDER).to_bytes(32, "big")


_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _virtual(script_pubkey: bytes, message: bytes) -> tuple[Any, Any]:
    to_spend = bip322_to_spend(script_pubkey, message)
    return to_spend, bip322_to_sign(to_spend.txid(), [])


def p2wpkh_sighash(pubkey: bytes, message: bytes) -> bytes:
    _, to_sign = _virtual(p2wpkh_script(pubkey), message)
    code = Script(b"\x76\xa9\x14" + _hash160(pubkey) + b"\x88\xac")
    digest: bytes = to_sign.sighash_segwit(0, code, 0, sighash=SIGHASH_ALL)
    return digest


def p2tr_sighash(output_key_xonly: bytes, message: bytes) -> bytes:
    """The BIP-341 key-path digest the (tweaked) output key signs, e.g. by FROST co-signers."""
    script = p2tr_script(output_key_xonly)
    _, to_sign = _virtual(script, message)
    digest: bytes = to_sign.sighash_taproot(0, [Script(script)], [0], sighash=SIGHASH_DEFAULT)
    return digest


def p2wsh_sighash(witness_script: bytes, message: bytes) -> bytes:
    _, to_sign = _virtual(p2wsh_script(witness_script), message)
    digest: bytes = to_sign.sighash_segwit(0, Script(witness_script), 0, sighash=SIGHASH_ALL)
    return digest


def encode(script_pubkey: bytes, message: bytes, witness_items: Sequence[bytes], *, full: bool) -> str:
    """`smp`+base64(witness) or `ful`+base64(to_sign transaction)."""
    if full:
        to_spend = bip322_to_spend(script_pubkey, message)
        raw: bytes = bip322_to_sign(to_spend.txid(), witness_items).serialize()
        return "ful" + base64.b64encode(raw).decode()
    return "smp" + base64.b64encode(Witness(list(witness_items)).serialize()).decode()


def assemble_p2wpkh(pubkey: bytes, message: bytes, der_signature: bytes, *, full: bool = False) -> str:
    return encode(p2wpkh_script(pubkey), message, [der_signature + bytes([SIGHASH_ALL]), pubkey], full=full)


def assemble_p2tr(output_key_xonly: bytes, message: bytes, signature: bytes, *, full: bool = False) -> str:
    if len(signature) != 64 or not PublicKeyXOnly(output_key_xonly).verify(signature, p2tr_sighash(output_key_xonly, message)):
        raise Bip322Error("the Taproot signature does not verify under the output key")
    return encode(p2tr_script(output_key_xonly), message, [signature], full=full)


def _multisig_keys(witness_script: bytes) -> tuple[int, list[bytes]]:
    if len(witness_script) < 37 or witness_script[-1] != 0xAE:
        raise Bip322Error("not a multisig witness script")
    threshold, count = witness_script[0] - 0x50, witness_script[-2] - 0x50
    body = witness_script[1:-2]
    if not 1 <= threshold <= count <= 16 or len(body) != 34 * count:
        raise Bip322Error("not a multisig witness script with compressed keys")
    return threshold, [body[34 * i + 1:34 * i + 34] for i in range(count)]


def assemble_p2wsh_multisig(witness_script: bytes, message: bytes, der_signatures: Mapping[bytes, bytes], *,
                            full: bool = True) -> str:
    """Signatures by public key; the first `m` in script order are used (CHECKMULTISIG order)."""
    threshold, keys = _multisig_keys(witness_script)
    ordered = [der_signatures[key] + bytes([SIGHASH_ALL]) for key in keys if key in der_signatures][:threshold]
    if len(ordered) < threshold:
        raise Bip322Error(f"{threshold} signatures are needed, {len(ordered)} given")
    return encode(p2wsh_script(witness_script), message, [b"", *ordered, witness_script], full=full)


def sign_p2wpkh(secret: bytes, message: bytes, *, full: bool = False) -> str:
    key = PrivateKey(secret)
    pubkey = key.public_key.format(compressed=True)
    return assemble_p2wpkh(pubkey, message, key.sign(p2wpkh_sighash(pubkey, message), hasher=None), full=full)


def sign_p2tr(secret: bytes, message: bytes, *, full: bool = False, aux: bytes | None = None) -> str:
    """Key-path signature of the BIP-86 output key of `secret`'s public key."""
    internal = PrivateKey(secret).public_key.format(compressed=True)[1:]
    output_key = taproot_output_key(internal)
    tweaked = PrivateKey(taproot_tweak_private_key(secret))
    signature = tweaked.sign_schnorr(p2tr_sighash(output_key, message), aux if aux is not None else os.urandom(32))
    return assemble_p2tr(output_key, message, signature, full=full)


def sign_p2wsh_multisig(witness_script: bytes, secrets: Sequence[bytes], message: bytes, *, full: bool = True) -> str:
    digest = p2wsh_sighash(witness_script, message)
    signatures = {}
    for secret in secrets:
        key = PrivateKey(secret)
        signatures[key.public_key.format(compressed=True)] = key.sign(digest, hasher=None)
    return assemble_p2wsh_multisig(witness_script, message, signatures, full=full)
