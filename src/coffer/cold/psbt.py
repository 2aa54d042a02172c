"""Batched withdrawal PSBTs (BIP-174) over the cold wallet: build, parse strictly, combine, finalise.

The coordinator builds; signers check with `classify_outputs` / `check_inputs` (they never
trust the coordinator's annotations: every input and change output is re-derived from the
registered descriptor).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from embit.ec import PublicKey
from embit.finalizer import finalize_psbt
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from coffer.btc import script as btc_script
from coffer.btc.errors import BtcError
from coffer.cold.descriptor import CHANGE, RECEIVE, ColdWallet
from coffer.cold.errors import InsufficientFunds, PsbtInvalid, SignerRefused

__all__ = [
    "Utxo", "Payment", "BatchPlan", "build_batch_psbt", "parse_psbt", "serialize_psbt", "check_inputs",
    "classify_outputs", "combine_partial_signatures", "finalize", "PSBT_INPUTS_MAX", "PSBT_OUTPUTS_MAX",
    "PSBT_BYTES_MAX", "FEE_RATE_SAT_VB_MAX", "DUST_SATS", "estimate_vsize", "address_script",
]

PSBT_INPUTS_MAX = 500
PSBT_OUTPUTS_MAX = 2500
PSBT_BYTES_MAX = 4_000_000
FEE_RATE_SAT_VB_MAX = 1_000
DUST_SATS = 546
HARDENED = 0x80000000


@dataclass(frozen=True, slots=True)
class Utxo:
    txid: str
    vout: int
    amount_sats: int
    branch: int
    index: int


@dataclass(frozen=True, slots=True)
class Payment:
    address: str
    amount_sats: int


@dataclass(frozen=True, slots=True)
class BatchPlan:
    psbt: PSBT
    inputs: tuple[Utxo, ...]
    fee_sats: int
    change_sats: int
    change_index: int | None
    vsize: int


def address_script(address: str, network: str) -> bytes:
    """The scriptPubKey of a payment's address, refusing a malformed one or one of another network."""
    try:
        return btc_script.address_script(address, network)
    except BtcError as exc:
        raise PsbtInvalid(str(exc)) from None


def estimate_vsize(inputs: int, output_scripts: list[int], threshold: int, keys: int) -> int:
    """Virtual size of a P2WSH m-of-n spend with these outputs (signatures counted at 73 bytes)."""
    script_len = 3 + 34 * keys
    witness = 1 + 1 + threshold * 73 + (1 if script_len < 253 else 3) + script_len
    base = 4 + 4 + 1 + 1 + inputs * 41 + sum(8 + 1 + length for length in output_scripts)
    weight = base * 4 + 2 + inputs * witness
    return math.ceil(weight / 4)


def _derivations(wallet: ColdWallet, branch: int, index: int) -> dict[PublicKey, DerivationPath]:
    return {PublicKey.parse(sec): DerivationPath(bytes.fromhex(fp), path)
            for sec, (fp, path) in wallet.derived_pubkeys(branch, index).items()}


def build_batch_psbt(wallet: ColdWallet, utxos: list[Utxo], payments: list[Payment], *, fee_rate_sat_vb: int,
                     change_index: int) -> BatchPlan:
    """Select coins (largest first), pay every payment, send change to `change_index` of the change branch."""
    if not payments:
        raise PsbtInvalid("a batch needs at least one payment")
    if not 1 <= fee_rate_sat_vb <= FEE_RATE_SAT_VB_MAX:
        raise PsbtInvalid("fee rate out of range")
    scripts = [address_script(p.address, wallet.network) for p in payments]
    total_out = sum(p.amount_sats for p in payments)
    change_script = wallet.script_pubkey(CHANGE, change_index)
    keys = len(wallet.keys)
    chosen: list[Utxo] = []
    for utxo in sorted(utxos, key=lambda u: (-u.amount_sats, u.txid, u.vout)):
        chosen.append(utxo)
        fee = fee_rate_sat_vb * estimate_vsize(len(chosen), [len(s) for s in scripts] + [34], wallet.threshold, keys)
        if sum(u.amount_sats for u in chosen) >= total_out + fee + DUST_SATS:
            break
        if len(chosen) >= PSBT_INPUTS_MAX:
            break
    total_in = sum(u.amount_sats for u in chosen)
    vsize = estimate_vsize(len(chosen), [len(s) for s in scripts] + [34], wallet.threshold, keys)
    fee = fee_rate_sat_vb * vsize
    change = total_in - total_out - fee
    if change < 0:
        raise InsufficientFunds(f"cold coins {total_in} sats do not cover {total_out} sats plus fee {fee}")
    if change < DUST_SATS:  # no change output; the remainder goes to the fee
        vsize = estimate_vsize(len(chosen), [len(s) for s in scripts], wallet.threshold, keys)
        fee, change = total_in - total_out, 0
    vin = [TransactionInput(bytes.fromhex(u.txid), u.vout, sequence=0xFFFFFFFD) for u in chosen]
    vout = [TransactionOutput(p.amount_sats, Script(s)) for p, s in zip(payments, scripts, strict=True)]
    if change:
        vout.append(TransactionOutput(change, Script(change_script)))
    psbt = PSBT(Transaction(version=2, vin=vin, vout=vout, locktime=0))
    for i, utxo in enumerate(chosen):
        psbt.inputs[i].witness_utxo = TransactionOutput(utxo.amount_sats,
                                                        Script(wallet.script_pubkey(utxo.branch, utxo.index)))
        psbt.inputs[i].witness_script = Script(wallet.witness_script(utxo.branch, utxo.index))
        psbt.inputs[i].bip32_derivations = _derivations(wallet, utxo.branch, utxo.index)
    if change:
        out = psbt.outputs[len(vout) - 1]
        out.witness_script = Script(wallet.witness_script(CHANGE, change_index))
        out.bip32_derivations = _derivations(wallet, CHANGE, change_index)
    return BatchPlan(psbt, tuple(chosen), fee, change, change_index if change else None, vsize)


def serialize_psbt(psbt: PSBT) -> bytes:
    return bytes(psbt.serialize())


def parse_psbt(raw: bytes) -> PSBT:
    """Strict parse: size bound, magic, no trailing bytes, no duplicate inputs, limits on counts."""
    if not isinstance(raw, bytes | bytearray) or len(raw) > PSBT_BYTES_MAX:
        raise PsbtInvalid("PSBT missing or too large")
    try:
        psbt = PSBT.parse(bytes(raw))
    except Exception as exc:  # embit raises many types for malformed input
        raise PsbtInvalid(f"malformed PSBT: {type(exc).__name__}: {str(exc)[:120]}") from None
    if psbt.version not in (None, 0):
        raise PsbtInvalid("only PSBT version 0 is accepted")
    if not psbt.tx.vin or not psbt.tx.vout:
        raise PsbtInvalid("PSBT has no inputs or no outputs")
    if len(psbt.tx.vin) > PSBT_INPUTS_MAX or len(psbt.tx.vout) > PSBT_OUTPUTS_MAX:
        raise PsbtInvalid("too many inputs or outputs")
    outpoints = [(bytes(i.txid), i.vout) for i in psbt.tx.vin]
    if len(set(outpoints)) != len(outpoints):
        raise PsbtInvalid("duplicate inputs")
    return psbt


def _our_derivation(derivations: dict[PublicKey, DerivationPath], fingerprint: bytes,
                    account_path: list[int]) -> tuple[int, int] | None:
    for path in derivations.values():
        if path.fingerprint != fingerprint:
            continue
        tail = list(path.derivation)
        if tail[: len(account_path)] != account_path or len(tail) != len(account_path) + 2:
            return None
        branch, index = tail[-2], tail[-1]
        if branch not in (RECEIVE, CHANGE) or index >= HARDENED:
            return None
        return branch, index
    return None


def account_path_ints(path: str) -> list[int]:
    return [int(p[:-1]) + HARDENED if p.endswith("h") else int(p) for p in path.split("/")]


def check_inputs(psbt: PSBT, wallet: ColdWallet, fingerprint: str, account_path: str, *,
                 signer_id: int | None = None) -> int:
    """Every input must be a coin of `wallet`, re-derived here; return the total input amount."""
    fp = bytes.fromhex(fingerprint)
    account = account_path_ints(account_path)
    total = 0
    for i, inp in enumerate(psbt.inputs):
        utxo = inp.witness_utxo
        if utxo is None or inp.witness_script is None:
            raise SignerRefused(f"input {i} lacks its witness UTXO or script", rule="input.incomplete",
                                signer_id=signer_id)
        if inp.sighash_type not in (None, 1):
            raise SignerRefused(f"input {i} asks for sighash {inp.sighash_type}", rule="input.sighash",
                                signer_id=signer_id)
        where = _our_derivation(inp.bip32_derivations, fp, account)
        if where is None:
            raise SignerRefused(f"input {i} is not derived from our key", rule="input.not_ours", signer_id=signer_id)
        branch, index = where
        if (bytes(utxo.script_pubkey.data) != wallet.script_pubkey(branch, index)
                or bytes(inp.witness_script.data) != wallet.witness_script(branch, index)):
            raise SignerRefused(f"input {i} is not from the registered descriptor", rule="input.not_registered",
                                signer_id=signer_id)
        total += int(utxo.value)
    return total


def classify_outputs(psbt: PSBT, wallet: ColdWallet, fingerprint: str, account_path: str, *,
                     signer_id: int | None = None) -> tuple[list[tuple[bytes, int]], int]:
    """Split outputs into external payments [(script, amount)] and our verified change total."""
    fp = bytes.fromhex(fingerprint)
    account = account_path_ints(account_path)
    external: list[tuple[bytes, int]] = []
    change_total = 0
    for j, (out, vout) in enumerate(zip(psbt.outputs, psbt.tx.vout, strict=True)):
        script = bytes(vout.script_pubkey.data)
        if out.bip32_derivations:
            where = _our_derivation(out.bip32_derivations, fp, account)
            if where is None or where[0] != CHANGE or wallet.script_pubkey(CHANGE, where[1]) != script:
                raise SignerRefused(f"output {j} claims to be change but is not ours", rule="change.foreign",
                                    signer_id=signer_id)
            change_total += int(vout.value)
        else:
            if vout.value < DUST_SATS:
                raise SignerRefused(f"output {j} is dust", rule="output.dust", signer_id=signer_id)
            external.append((script, int(vout.value)))
    return external, change_total


def payments_match(external: list[tuple[bytes, int]], approved: list[tuple[bytes, int]]) -> bool:
    return Counter(external) == Counter(approved)


def combine_partial_signatures(base: PSBT, signed: list[PSBT]) -> PSBT:
    """Merge each signer's partial signatures into `base` (same unsigned transaction required)."""
    txid = base.tx.txid()
    for other in signed:
        if other.tx.txid() != txid:
            raise PsbtInvalid("a signed PSBT is for another transaction")
        for mine, theirs in zip(base.inputs, other.inputs, strict=True):
            for pub, sig in theirs.partial_sigs.items():
                if pub not in mine.bip32_derivations:
                    raise PsbtInvalid("partial signature from a key that is not in the input")
                mine.partial_sigs[pub] = sig
    return base


def finalize(psbt: PSBT) -> bytes:
    """Finalised raw transaction, or PsbtInvalid when signatures are missing."""
    tx = finalize_psbt(psbt)
    if tx is None:
        raise PsbtInvalid("not enough signatures to finalise")
    return bytes(tx.serialize())
