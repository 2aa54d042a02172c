"""Test wallets for the regtest node: keys, scripts and signed spends (P2WPKH, P2WSH multisig, Taproot)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import coincurve
from embit import ec, script
from embit.script import Script, Witness
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from coffer.chain.regtest.index import Coin

FEE_SATS = 2_000


def key(n: int) -> ec.PrivateKey:
    return ec.PrivateKey(n.to_bytes(32, "big"))


@dataclass(frozen=True)
class Prevout:
    txid: bytes  # internal byte order
    vout: int
    value_sats: int
    script_pubkey: bytes


def prevout(outpoint: tuple[bytes, int], coin: Coin) -> Prevout:
    return Prevout(outpoint[0], outpoint[1], coin.value_sats, coin.script_pubkey)


def p2wpkh_script(k: ec.PrivateKey) -> bytes:
    return script.p2wpkh(k.get_public_key()).data


def multisig_witness_script(keys: list[ec.PrivateKey], m: int = 2) -> Script:
    pubs = sorted((k.get_public_key() for k in keys), key=lambda p: p.sec())
    return script.multisig(m, pubs)


def p2wsh_script(witness_script: Script) -> bytes:
    return script.p2wsh(witness_script).data


def p2tr_script(k: ec.PrivateKey) -> bytes:
    return script.p2tr(k.get_public_key()).data


def unsigned(prevouts: list[Prevout], outputs: list[tuple[int, bytes]], *, version: int = 2,
             locktime: int = 0, sequence: int = 0xFFFFFFFF) -> Transaction:
    return Transaction(version=version, locktime=locktime,
                       vin=[TransactionInput(p.txid[::-1], p.vout, sequence=sequence) for p in prevouts],
                       vout=[TransactionOutput(value, Script(spk)) for value, spk in outputs])


def sign_p2wpkh(tx: Transaction, index: int, k: ec.PrivateKey, value_sats: int) -> None:
    digest = tx.sighash_segwit(index, script.p2pkh(k.get_public_key()), value_sats)
    sig = k.sign(digest).serialize() + bytes([SIGHASH.ALL])
    tx.vin[index].witness = Witness([sig, k.get_public_key().sec()])


def sign_p2wsh_multisig(tx: Transaction, index: int, witness_script: Script, signers: list[ec.PrivateKey],
                        value_sats: int) -> None:
    digest = tx.sighash_segwit(index, witness_script, value_sats)
    order = {k.get_public_key().sec(): k for k in signers}
    pubs = [witness_script.data[i + 1:i + 34] for i in range(1, len(witness_script.data) - 2, 34)]
    sigs = [order[p].sign(digest).serialize() + bytes([SIGHASH.ALL]) for p in pubs if p in order]
    tx.vin[index].witness = Witness([b"", *sigs, witness_script.data])


def sign_taproot_keypath(tx: Transaction, index: int, k: ec.PrivateKey, prevouts: list[Prevout]) -> None:
    """BIP-341 sighash from embit, BIP-340 signature from coincurve with the tweaked key."""
    digest = tx.sighash_taproot(index, [Script(p.script_pubkey) for p in prevouts],
                                [p.value_sats for p in prevouts], sighash=SIGHASH.DEFAULT)
    tweaked = k.taproot_tweak(b"")
    signature = coincurve.PrivateKey(tweaked.secret).sign_schnorr(digest, os.urandom(32))
    tx.vin[index].witness = Witness([signature])


def spend_p2wpkh(p: Prevout, k: ec.PrivateKey, outputs: list[tuple[int, bytes]], *,
                 sequence: int = 0xFFFFFFFF) -> bytes:
    tx = unsigned([p], outputs, sequence=sequence)
    sign_p2wpkh(tx, 0, k, p.value_sats)
    return bytes(tx.serialize())


def flip_signature_byte(raw: bytes, signature: bytes) -> bytes:
    position = raw.index(signature) + 10
    return raw[:position] + bytes([raw[position] ^ 0x01]) + raw[position + 1:]


def vsize(raw: bytes) -> int:
    """Virtual size of a signed transaction (a P2WPKH spend is 109 or 110 vbytes: its DER signature is
    71 or 72 bytes depending on r and s)."""
    stripped = Transaction.parse(raw)
    for txin in stripped.vin:
        txin.witness = Witness([])
    return -(-(3 * len(stripped.serialize()) + len(raw)) // 4)
