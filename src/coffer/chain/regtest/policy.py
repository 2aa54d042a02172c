"""Standardness policy of the embedded node's mempool, following Bitcoin Core's defaults.

Pure functions over parsed transactions. They return Core's reject reason strings so that tools
written for bitcoind read the same text. Consensus validity is never decided here.
"""

from __future__ import annotations

from dataclasses import dataclass

from coffer.chain.regtest.wire import Tx, compact_size

__all__ = [
    "MIN_RELAY_FEE_SAT_PER_KVB", "DUST_RELAY_FEE_SAT_PER_KVB", "MAX_STANDARD_TX_WEIGHT", "script_type",
    "dust_threshold_sats", "check_transaction", "check_standard", "fee_for_vsize", "MAX_MONEY_SATS",
    "sigop_cost", "MAX_STANDARD_TX_SIGOPS_COST", "MAX_BLOCK_SIGOPS_COST", "PolicySettings", "DEFAULT_POLICY",
    "check_size", "INCREMENTAL_RELAY_FEE_SAT_PER_KVB", "MAX_OP_RETURN_RELAY",
]

# Bitcoin Core's defaults at the commit whose libbitcoinkernel the node embeds (31.99, policy/policy.h).
MIN_RELAY_FEE_SAT_PER_KVB = 100
INCREMENTAL_RELAY_FEE_SAT_PER_KVB = 100
DUST_RELAY_FEE_SAT_PER_KVB = 3000
MAX_STANDARD_TX_WEIGHT = 400_000
MAX_BLOCK_WEIGHT = 4_000_000
MIN_STANDARD_TX_NONWITNESS_SIZE = 65
MAX_SCRIPT_SIG_SIZE = 1650
MAX_OP_RETURN_RELAY = MAX_STANDARD_TX_WEIGHT // 4  # all OP_RETURN outputs of a transaction together
MAX_DUST_OUTPUTS_PER_TX = 1
CLUSTER_COUNT_MAX = 64
CLUSTER_VSIZE_MAX = 101_000
MAX_MEMPOOL_BYTES = 300_000_000


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The relay policy bitcoind's options change (-minrelaytxfee, -datacarriersize, ...)."""

    min_relay_fee_sat_per_kvb: int = MIN_RELAY_FEE_SAT_PER_KVB
    incremental_relay_fee_sat_per_kvb: int = INCREMENTAL_RELAY_FEE_SAT_PER_KVB
    dust_relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB
    datacarrier: bool = True
    datacarrier_size: int = MAX_OP_RETURN_RELAY
    permit_bare_multisig: bool = True
    require_standard: bool = True
    cluster_count_max: int = CLUSTER_COUNT_MAX
    cluster_vsize_max: int = CLUSTER_VSIZE_MAX
    max_mempool_bytes: int = MAX_MEMPOOL_BYTES
    bytes_per_sigop: int = 20


DEFAULT_POLICY = PolicySettings()
TX_MAX_STANDARD_VERSION = 3
MAX_MONEY_SATS = 21_000_000 * 100_000_000
_OP_RETURN = 0x6A
_OP_PUSHDATA4 = 0x4E
_OP_16 = 0x60


def fee_for_vsize(rate_sat_per_kvb: int, vsize: int) -> int:
    """Core's CFeeRate::GetFee: truncating, but at least 1 sat for a nonzero rate."""
    fee = rate_sat_per_kvb * vsize // 1000
    if fee == 0 and vsize != 0 and rate_sat_per_kvb > 0:
        return 1
    return fee


def _is_push_only(script: bytes) -> bool:
    pos = 0
    while pos < len(script):
        op = script[pos]
        pos += 1
        if op > _OP_16:
            return False
        if 0 < op < 0x4C:
            pos += op
        elif op == 0x4C:
            if pos >= len(script):
                return False
            pos += 1 + script[pos]
        elif op == 0x4D:
            pos += 2 + int.from_bytes(script[pos:pos + 2], "little")
        elif op == _OP_PUSHDATA4:
            pos += 4 + int.from_bytes(script[pos:pos + 4], "little")
        if pos > len(script):
            return False
    return True


def _is_bare_multisig(spk: bytes) -> bool:
    if len(spk) < 37 or spk[-1] != 0xAE:
        return False
    m, n = spk[0] - 0x50, spk[-2] - 0x50
    if not (1 <= m <= n <= 3):
        return False
    pos, keys = 1, 0
    while pos < len(spk) - 2:
        size = spk[pos]
        if size not in (33, 65):
            return False
        pos += 1 + size
        keys += 1
    return pos == len(spk) - 2 and keys == n


def script_type(spk: bytes) -> str:
    """Core's output type name (`getrawtransaction` "type"): pubkeyhash, witness_v0_keyhash, ..."""
    n = len(spk)
    if n == 25 and spk[:3] == b"\x76\xa9\x14" and spk[23:] == b"\x88\xac":
        return "pubkeyhash"
    if n == 23 and spk[:2] == b"\xa9\x14" and spk[22] == 0x87:
        return "scripthash"
    if n == 22 and spk[:2] == b"\x00\x14":
        return "witness_v0_keyhash"
    if n == 34 and spk[:2] == b"\x00\x20":
        return "witness_v0_scripthash"
    if n == 34 and spk[:2] == b"\x51\x20":
        return "witness_v1_taproot"
    if spk == b"\x51\x02\x4e\x73":
        return "anchor"
    if 4 <= n <= 42 and (spk[0] == 0 or 0x51 <= spk[0] <= _OP_16) and spk[1] + 2 == n and 2 <= spk[1] <= 40:
        return "witness_unknown"
    if n >= 1 and spk[0] == _OP_RETURN and _is_push_only(spk[1:]):
        return "nulldata"
    if (n == 35 and spk[0] == 33 and spk[-1] == 0xAC) or (n == 67 and spk[0] == 65 and spk[-1] == 0xAC):
        return "pubkey"
    if _is_bare_multisig(spk):
        return "multisig"
    return "nonstandard"


def dust_threshold_sats(value_spk: bytes, dust_relay_fee_sat_per_kvb: int = DUST_RELAY_FEE_SAT_PER_KVB) -> int:
    """Core's GetDustThreshold (default dust relay fee 3000 sat/kvB)."""
    kind = script_type(value_spk)
    if kind == "nulldata" or (value_spk and value_spk[0] == _OP_RETURN):
        return 0
    size = 8 + len(compact_size(len(value_spk))) + len(value_spk)
    if kind.startswith("witness") or kind == "anchor":
        size += 32 + 4 + 1 + (107 // 4) + 4
    else:
        size += 32 + 4 + 1 + 107 + 4
    return fee_for_vsize(dust_relay_fee_sat_per_kvb, size)


def check_transaction(tx: Tx) -> str | None:
    """Core's CheckTransaction (context-free consensus checks): a reason, or None when fine."""
    if not tx.inputs:
        return "bad-txns-vin-empty"
    if not tx.outputs:
        return "bad-txns-vout-empty"
    if tx.base_size * 4 > MAX_BLOCK_WEIGHT:
        return "bad-txns-oversize"
    total = 0
    for out in tx.outputs:
        if out.value_sats < 0:
            return "bad-txns-vout-negative"
        if out.value_sats > MAX_MONEY_SATS:
            return "bad-txns-vout-toolarge"
        total += out.value_sats
        if total > MAX_MONEY_SATS:
            return "bad-txns-txouttotal-toolarge"
    prevouts = {(i.prev_txid, i.prev_vout) for i in tx.inputs}
    if len(prevouts) != len(tx.inputs):
        return "bad-txns-inputs-duplicate"
    if tx.is_coinbase:
        return "coinbase"
    if any(i.is_coinbase for i in tx.inputs):
        return "bad-txns-prevout-null"
    return None


def dust_outputs(tx: Tx, settings: PolicySettings = DEFAULT_POLICY) -> int:
    """Core's GetDust: how many outputs are below their dust threshold."""
    return sum(1 for out in tx.outputs
               if out.value_sats < dust_threshold_sats(out.script_pubkey, settings.dust_relay_fee_sat_per_kvb))


def check_standard(tx: Tx, settings: PolicySettings = DEFAULT_POLICY) -> str | None:
    """Core's IsStandardTx: a reason, or None when standard."""
    if not 1 <= tx.version <= TX_MAX_STANDARD_VERSION:
        return "version"
    if tx.weight > MAX_STANDARD_TX_WEIGHT:
        return "tx-size"
    for txin in tx.inputs:
        if len(txin.script_sig) > MAX_SCRIPT_SIG_SIZE:
            return "scriptsig-size"
        if not _is_push_only(txin.script_sig):
            return "scriptsig-not-pushonly"
    data_bytes_left = settings.datacarrier_size if settings.datacarrier else 0
    for out in tx.outputs:
        kind = script_type(out.script_pubkey)
        if kind == "nonstandard":
            return "scriptpubkey"
        if kind == "nulldata":
            if len(out.script_pubkey) > data_bytes_left:
                return "datacarrier"
            data_bytes_left -= len(out.script_pubkey)
        elif kind == "multisig" and not settings.permit_bare_multisig:
            return "bare-multisig"
    if dust_outputs(tx, settings) > MAX_DUST_OUTPUTS_PER_TX:
        return "dust"
    return None


def check_size(tx: Tx) -> str | None:
    """Core's small-transaction rule, which applies even with -acceptnonstdtxn."""
    if tx.base_size < MIN_STANDARD_TX_NONWITNESS_SIZE:
        return "tx-size-small"
    return None


MAX_STANDARD_TX_SIGOPS_COST = 16_000
MAX_BLOCK_SIGOPS_COST = 80_000
_CHECKSIG_OPS = (0xAC, 0xAD)
_CHECKMULTISIG_OPS = (0xAE, 0xAF)


def _sigops(script: bytes, accurate: bool) -> int:
    """Core's GetSigOpCount: CHECKSIG counts 1, CHECKMULTISIG counts n after OP_n (accurate) or 20."""
    count, pos, last = 0, 0, -1
    while pos < len(script):
        op = script[pos]
        pos += 1
        if 0 < op < 0x4C:
            pos += op
        elif op == 0x4C:
            pos += 1 + (script[pos] if pos < len(script) else 0)
        elif op == 0x4D:
            pos += 2 + int.from_bytes(script[pos:pos + 2], "little")
        elif op == _OP_PUSHDATA4:
            pos += 4 + int.from_bytes(script[pos:pos + 4], "little")
        elif op in _CHECKSIG_OPS:
            count += 1
        elif op in _CHECKMULTISIG_OPS:
            count += last - 0x50 if accurate and 0x51 <= last <= _OP_16 else 20
        last = op
    return count


def sigop_cost(tx: Tx, spent_scripts: list[bytes]) -> int:
    """Core's GetTransactionSigOpCost (legacy and P2SH times 4, witness times 1)."""
    cost = 4 * sum(_sigops(txin.script_sig, False) for txin in tx.inputs)
    cost += 4 * sum(_sigops(out.script_pubkey, False) for out in tx.outputs)
    for txin, spk in zip(tx.inputs, spent_scripts, strict=True):
        kind = script_type(spk)
        program = spk
        if kind == "scripthash" and txin.script_sig:
            redeem = _last_push(txin.script_sig)
            cost += 4 * _sigops(redeem, True)
            program = redeem
        if program[:2] == b"\x00\x14":
            cost += 1
        elif program[:2] == b"\x00\x20" and txin.witness:
            cost += _sigops(txin.witness[-1], True)
    return cost


def _last_push(script: bytes) -> bytes:
    pos, last = 0, b""
    while pos < len(script):
        op = script[pos]
        pos += 1
        size = op if 0 < op < 0x4C else 0
        if op == 0x4C and pos < len(script):
            size, pos = script[pos], pos + 1
        elif op == 0x4D:
            size, pos = int.from_bytes(script[pos:pos + 2], "little"), pos + 2
        last, pos = script[pos:pos + size], pos + size
    return last


MAX_STANDARD_P2WSH_SCRIPT_SIZE = 3600
MAX_STANDARD_P2WSH_STACK_ITEMS = 100
MAX_STANDARD_P2WSH_STACK_ITEM_SIZE = 80
_ANCHOR = b"\x51\x02\x4e\x73"


def witness_program(script: bytes) -> tuple[int, bytes] | None:
    """(version, program) of a witness program script, as Core's IsWitnessProgram."""
    if not 4 <= len(script) <= 42 or script[1] + 2 != len(script):
        return None
    if script[0] == 0:
        return 0, script[2:]
    if 0x51 <= script[0] <= _OP_16:
        return script[0] - 0x50, script[2:]
    return None


def witness_standard(tx: Tx, spent_scripts: list[bytes]) -> bool:
    """Core's IsWitnessStandard for the rules a regtest client meets: no witness on an anchor or
    on a non-witness input, P2WSH script and stack sizes, no Taproot annex."""
    for txin, spk in zip(tx.inputs, spent_scripts, strict=True):
        if not txin.witness:
            continue
        if spk == _ANCHOR:
            return False
        program_script = _last_push(txin.script_sig) if script_type(spk) == "scripthash" else spk
        program = witness_program(program_script)
        if program is None:
            return False
        version, data = program
        if version == 0 and len(data) == 32:
            if len(txin.witness[-1]) > MAX_STANDARD_P2WSH_SCRIPT_SIZE:
                return False
            if len(txin.witness) - 1 > MAX_STANDARD_P2WSH_STACK_ITEMS:
                return False
            if any(len(item) > MAX_STANDARD_P2WSH_STACK_ITEM_SIZE for item in txin.witness[:-1]):
                return False
        if version == 1 and len(data) == 32 and program_script is spk and len(txin.witness) >= 2 \
                and txin.witness[-1][:1] == b"\x50":
            return False  # an annex
    return True


def upgradable_witness(spk: bytes, script_sig: bytes) -> bool:
    """A spend of a witness program Core keeps for future soft forks (SCRIPT_VERIFY_DISCOURAGE_
    UPGRADABLE_WITNESS_PROGRAM): an unknown version, or a known version of unknown length, or an
    anchor nested in P2SH."""
    program_script = _last_push(script_sig) if script_type(spk) == "scripthash" else spk
    program = witness_program(program_script)
    if program is None:
        return False
    version, data = program
    if version == 0:
        return False
    if version == 1 and len(data) == 32:
        return False
    return not (program_script == _ANCHOR and program_script is spk)
