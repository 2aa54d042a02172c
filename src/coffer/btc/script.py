"""Output scripts and addresses: P2WPKH, P2WSH (multisig templates) and P2TR, strictly per network."""

from __future__ import annotations

import hashlib
from typing import Any, Final

from embit.networks import NETWORKS
from embit.script import Script, address_to_scriptpubkey

from coffer.btc.errors import InvalidAddress, InvalidScript
from coffer.btc.hashes import hash160

__all__ = ["p2wpkh_script", "p2pkh_script_code", "p2wsh_script", "p2tr_script", "multisig_template",
           "network_params", "address_script", "script_address", "NETWORK_NAMES", "ADDRESS_CHARS_SHOWN"]

# Coffer's network names to embit's.
NETWORK_NAMES: Final = {"regtest": "regtest", "testnet": "test", "signet": "signet", "main": "main"}
ADDRESS_CHARS_SHOWN: Final = 90  # how much of a bad address an error message repeats
_OP_CHECKMULTISIG: Final = 0xAE
_OP_1: Final = 0x51
_OP_16: Final = 0x60
_KEY_PUSH: Final = 33


def p2wpkh_script(pubkey: bytes) -> bytes:
    return b"\x00\x14" + hash160(pubkey)


def p2pkh_script_code(pubkey: bytes) -> bytes:
    """The BIP-143 script code of a P2WPKH input."""
    return b"\x76\xa9\x14" + hash160(pubkey) + b"\x88\xac"


def p2wsh_script(witness_script: bytes) -> bytes:
    return b"\x00\x20" + hashlib.sha256(witness_script).digest()


def p2tr_script(output_key_xonly: bytes) -> bytes:
    if len(output_key_xonly) != 32:
        raise InvalidScript("an x-only output key is 32 bytes")
    return b"\x51\x20" + output_key_xonly


def multisig_template(witness_script: bytes) -> tuple[int, list[bytes]]:
    """(m, keys) of `OP_m <33-byte key>... OP_n OP_CHECKMULTISIG`, nothing else."""
    script = witness_script
    if (len(script) < 37 or script[-1] != _OP_CHECKMULTISIG or not _OP_1 <= script[0] <= _OP_16
            or not _OP_1 <= script[-2] <= _OP_16):
        raise InvalidScript("witness script is not a multisig template")
    threshold, count = script[0] - 0x50, script[-2] - 0x50
    body = script[1:-2]
    if len(body) != 34 * count or threshold > count:
        raise InvalidScript("witness script is not a multisig template")
    if any(body[34 * i] != _KEY_PUSH for i in range(count)):
        raise InvalidScript("keys must be compressed")
    return threshold, [body[34 * i + 1:34 * i + 34] for i in range(count)]


def network_params(network: str) -> dict[str, Any]:
    """embit's parameters (address prefixes, key versions) of a Coffer network name."""
    try:
        return dict(NETWORKS[NETWORK_NAMES[network]])
    except KeyError:
        raise InvalidAddress(f"unknown network {network!r}") from None


def script_address(script_pubkey: bytes, network: str) -> str:
    try:
        return str(Script(script_pubkey).address(network_params(network)))
    except InvalidAddress:
        raise
    except Exception:  # embit raises several unrelated types for a script with no address
        raise InvalidScript("this script has no address") from None


def address_script(address: str, network: str) -> bytes:
    """The scriptPubKey of `address`, refusing a malformed address or one of another network."""
    shown = address[:ADDRESS_CHARS_SHOWN]
    params = network_params(network)
    try:
        script = address_to_scriptpubkey(address)
        canonical = str(script.address(params))
    except Exception:  # embit raises several unrelated types for a malformed address
        raise InvalidAddress(f"malformed address {shown!r}") from None
    if canonical != address:
        raise InvalidAddress(f"address {shown!r} is for another network")
    return bytes(script.data)
