"""An independent BIP-322 verifier for the tests: Bitcoin Core's consensus code (libbitcoinkernel
through py-bitcoinkernel) judges every input of the to_sign transaction, for any script type."""

from __future__ import annotations

import io

import pbk
from embit import compact
from embit.psbt import PSBT
from embit.script import Witness, address_to_scriptpubkey
from embit.transaction import Transaction

from coffer.btc import bip322


class KernelRejected(Exception):
    """Bitcoin Core's script interpreter refused an input, or the container is malformed."""


def _unsigned_tx(payload: bytes) -> Transaction:
    """The global unsigned transaction (key type 0x00) exactly as serialised in the PSBT."""
    stream = io.BytesIO(payload)
    if stream.read(5) != b"psbt\xff" or compact.read_from(stream) != 1 or stream.read(1) != b"\x00":
        raise KernelRejected("not a PSBT with a global unsigned transaction first")
    return Transaction.parse(stream.read(compact.read_from(stream)))


def _finalized_psbt_tx(payload: bytes) -> tuple[Transaction, list[tuple[bytes, int]]]:
    psbt = PSBT.parse(payload)
    tx = _unsigned_tx(payload)  # embit turns an input sequence of 0 into 0xffffffff: read the raw one
    spent: list[tuple[bytes, int]] = []
    for index, scope in enumerate(psbt.inputs):
        if scope.final_scriptsig is not None:
            tx.vin[index].script_sig = scope.final_scriptsig
        if scope.final_scriptwitness is not None:
            tx.vin[index].witness = scope.final_scriptwitness
        utxo = scope.utxo if index > 0 else None
        spent.append((utxo.script_pubkey.data, utxo.value) if utxo is not None else (b"", 0))
    return tx, spent


def kernel_verify(address: str, message: bytes, signature: str) -> None:
    """Raise KernelRejected unless every input of the to_sign transaction is valid by consensus."""
    try:
        kind, payload = bip322.decode(signature)
    except Exception as exc:
        raise KernelRejected(str(exc)) from None
    script_pubkey = address_to_scriptpubkey(address).data
    to_spend = bip322.to_spend(script_pubkey, message)
    try:
        if kind == "simple":
            witness = Witness.parse(payload)
            if witness.serialize() != payload:
                raise KernelRejected("trailing bytes")
            to_sign, spent = bip322.to_sign(to_spend.txid(), witness.items), [(b"", 0)]
        elif kind == "full":
            to_sign, spent = Transaction.parse(payload), [(b"", 0)]
        else:
            to_sign, spent = _finalized_psbt_tx(payload)
    except KernelRejected:
        raise
    except Exception as exc:
        raise KernelRejected(f"cannot parse: {exc}") from None
    if to_sign.vin[0].txid != to_spend.txid() or to_sign.vin[0].vout != 0:
        raise KernelRejected("to_sign does not spend to_spend:0")
    spent[0] = (script_pubkey, 0)
    raw = pbk.Transaction(to_sign.serialize())
    outputs = [pbk.TransactionOutput(pbk.ScriptPubkey(script), value) for script, value in spent]
    precomputed = pbk.script.PrecomputedTransactionData(raw, outputs)
    for index, (script, value) in enumerate(spent):
        try:
            valid = pbk.ScriptPubkey(script).verify(value, raw, precomputed, index, pbk.ScriptVerificationFlags.ALL)
        except pbk.ScriptVerifyException as exc:
            raise KernelRejected(f"input {index}: {exc}") from None
        if not valid:
            raise KernelRejected(f"input {index}: script evaluation failed")
