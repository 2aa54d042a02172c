"""BIP-322 proofs of control from the key holders' side: the digests they sign, and assembly.

Each key holder signs a digest on its own: `*_sighash` gives the digest that a cold signer, an
HSM or the FROST co-signers sign, and `assemble_*` builds the signature from what they return, so
no key ever has to come here. `sign_*` are conveniences for keys held in this process (tests,
demo). Verification is `coffer.btc.bip322.verify`; the public verifier never imports this module.
Never log a private key or a signing nonce.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from coincurve import PrivateKey, PublicKeyXOnly
from embit.script import Script

from coffer.btc import bip322, taproot
from coffer.btc.errors import Bip322Invalid, InvalidScript
from coffer.btc.script import multisig_template, p2pkh_script_code, p2tr_script, p2wpkh_script, p2wsh_script

__all__ = ["RESERVES_CHALLENGE", "p2wpkh_sighash", "p2tr_sighash", "p2wsh_sighash", "assemble_p2wpkh", "assemble_p2tr",
           "assemble_p2wsh_multisig", "sign_p2wpkh", "sign_p2tr", "sign_p2wsh_multisig"]

# The only message a key holder signs as a BIP-322 proof of control: Coffer's reserves challenge
# for BTC, bound to a height and block hash (`coffer.por.verify.reserves_challenge` writes it).
RESERVES_CHALLENGE: Final = re.compile(rb"Coffer proof of reserves\nasset: BTC\nchain: [a-z]{1,16}\n"
                                       rb"height: \d{1,10}\nblock: [0-9a-f]{64}\n")
SIGHASH_ALL: Final = 1
SIGHASH_DEFAULT: Final = 0


def _virtual_to_sign(script_pubkey: bytes, message: bytes) -> Any:
    return bip322.to_sign(bip322.to_spend(script_pubkey, message).txid(), [])


def p2wpkh_sighash(pubkey: bytes, message: bytes) -> bytes:
    to_sign = _virtual_to_sign(p2wpkh_script(pubkey), message)
    digest: bytes = to_sign.sighash_segwit(0, Script(p2pkh_script_code(pubkey)), 0, sighash=SIGHASH_ALL)
    return digest


def p2tr_sighash(output_key_xonly: bytes, message: bytes) -> bytes:
    """The BIP-341 key-path digest the (tweaked) output key signs, e.g. by FROST co-signers."""
    script = p2tr_script(output_key_xonly)
    to_sign = _virtual_to_sign(script, message)
    digest: bytes = to_sign.sighash_taproot(0, [Script(script)], [0], sighash=SIGHASH_DEFAULT)
    return digest


def p2wsh_sighash(witness_script: bytes, message: bytes) -> bytes:
    to_sign = _virtual_to_sign(p2wsh_script(witness_script), message)
    digest: bytes = to_sign.sighash_segwit(0, Script(witness_script), 0, sighash=SIGHASH_ALL)
    return digest


def assemble_p2wpkh(pubkey: bytes, message: bytes, der_signature: bytes, *, full: bool = False) -> str:
    return bip322.encode(p2wpkh_script(pubkey), message, [der_signature + bytes([SIGHASH_ALL]), pubkey], full=full)


def assemble_p2tr(output_key_xonly: bytes, message: bytes, signature: bytes, *, full: bool = False) -> str:
    """Checks the signature (made elsewhere, e.g. by FROST) before it is encoded."""
    if len(signature) != 64 or not PublicKeyXOnly(output_key_xonly).verify(
            signature, p2tr_sighash(output_key_xonly, message)):
        raise Bip322Invalid("the Taproot signature does not verify under the output key")
    return bip322.encode(p2tr_script(output_key_xonly), message, [signature], full=full)


def assemble_p2wsh_multisig(witness_script: bytes, message: bytes, der_signatures: Mapping[bytes, bytes], *,
                            full: bool = True) -> str:
    """Signatures by public key; the first `m` in script order are used (CHECKMULTISIG order)."""
    try:
        threshold, keys = multisig_template(witness_script)
    except InvalidScript as exc:
        raise Bip322Invalid(f"not a multisig witness script: {exc}") from None
    ordered = [der_signatures[key] + bytes([SIGHASH_ALL]) for key in keys if key in der_signatures][:threshold]
    if len(ordered) < threshold:
        raise Bip322Invalid(f"{threshold} signatures are needed, {len(ordered)} given")
    return bip322.encode(p2wsh_script(witness_script), message, [b"", *ordered, witness_script], full=full)


def sign_p2wpkh(secret: bytes, message: bytes, *, full: bool = False) -> str:
    key = PrivateKey(secret)
    pubkey = key.public_key.format(compressed=True)
    return assemble_p2wpkh(pubkey, message, key.sign(p2wpkh_sighash(pubkey, message), hasher=None), full=full)


def sign_p2tr(secret: bytes, message: bytes, *, full: bool = False, aux: bytes | None = None) -> str:
    """Key-path signature of the BIP-86 output key of `secret`'s public key."""
    internal = PrivateKey(secret).public_key.format(compressed=True)[1:]
    output_key = taproot.output_key(internal)
    tweaked = PrivateKey(taproot.tweak_secret(secret))
    signature = tweaked.sign_schnorr(p2tr_sighash(output_key, message), aux if aux is not None else os.urandom(32))
    return assemble_p2tr(output_key, message, signature, full=full)


def sign_p2wsh_multisig(witness_script: bytes, secrets: Sequence[bytes], message: bytes, *, full: bool = True) -> str:
    digest = p2wsh_sighash(witness_script, message)
    signatures = {}
    for secret in secrets:
        key = PrivateKey(secret)
        signatures[key.public_key.format(compressed=True)] = key.sign(digest, hasher=None)
    return assemble_p2wsh_multisig(witness_script, message, signatures, full=full)
