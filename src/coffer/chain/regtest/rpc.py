"""Bitcoin Core's JSON-RPC methods over the embedded node: Core's names, parameters, result
shapes and error codes, so that tools written for bitcoind work unchanged.

Transport-free: `RpcDispatcher.call(method, params)` returns a JSON-able result or raises
`RpcFault(code, message)`; `server.py` puts it on HTTP. Never trusts a parameter's type.
"""

from __future__ import annotations

import hashlib
import re
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from coffer.chain.descriptors import (
    add_checksum,
    address_to_script,
    descriptor_normal_form,
    descriptor_scripts,
    is_ranged,
    script_to_address,
    strip_checksum,
)
from coffer.chain.errors import BlockNotFound, BlockRejected, BroadcastRejected, DecodeError
from coffer.chain.regtest import policy
from coffer.chain.regtest.index import Coin
from coffer.chain.regtest.jsonout import Btc
from coffer.chain.regtest.jsonrpc import (
    RPC_INVALID_REQUEST,
    RPC_METHOD_NOT_FOUND,
    RPC_MISC_ERROR,
    RPC_PARSE_ERROR,
    RpcFault,
)
from coffer.chain.regtest.kernel import kernel_version
from coffer.chain.regtest.mempool import MEMPOOL_HEIGHT
from coffer.chain.regtest.node import HeaderInfo, RegtestNode
from coffer.chain.regtest.scan import SCAN_RANGE_DEFAULT, hash160, parse_range, scan_scripts
from coffer.chain.regtest.utxostats import HASH_TYPES, utxo_stats
from coffer.chain.regtest.wire import Tx, compact_size, parse_tx, sha256d

__all__ = ["RpcDispatcher", "RpcFault", "CORE_VERSION", "CORE_SUBVERSION", "CORE_VERSION_TEXT", "CORE_COMMIT",
           "RPC_MISC_ERROR", "RPC_TYPE_ERROR", "RPC_INVALID_PARAMETER", "RPC_INVALID_ADDRESS_OR_KEY",
           "RPC_METHOD_NOT_FOUND", "RPC_PARSE_ERROR", "RPC_INVALID_REQUEST", "RPC_VERIFY_ERROR",
           "RPC_VERIFY_REJECTED", "RPC_VERIFY_ALREADY_IN_CHAIN", "RPC_DESERIALIZATION_ERROR"]

# The Bitcoin Core whose libbitcoinkernel py-bitcoinkernel 0.1.0a5 embeds: master at 859215218667
# ("v31.99.0" in the library), so RPC shapes and policy defaults follow that commit.
CORE_VERSION = 319900
CORE_VERSION_TEXT = "31.99.0"
CORE_COMMIT = "859215218667ca9f35d5adae0289e4a125798087"
CORE_SUBVERSION = f"/Satoshi:{CORE_VERSION_TEXT}(coffer-regtest)/"
RPC_TYPE_ERROR = -3
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_INVALID_PARAMETER = -8
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27
DEFAULT_MAX_FEE_RATE_SAT_PER_KVB = 10_000_000  # 0.10 BTC/kvB, Core's default maxfeerate
TESTMEMPOOLACCEPT_TXS_MAX = 25
GENERATE_RPC_BLOCKS_MAX = 10_000
DIFFICULTY_REGTEST = 4.656542373906925e-10
STOP_WAIT_MS_MAX = 60_000
MAX_SCRIPT_SIZE = 10_000
MAX_SCRIPT_ELEMENT_SIZE = 520
MAX_OPCODE = 0xBA  # OP_CHECKSIGADD
TIP_RECENT_S = 2 * 60 * 60
NETWORK_HASHPS_BLOCKS_DEFAULT = 120
DIFFICULTY_ADJUSTMENT_INTERVAL = 144  # regtest: a one-day retarget timespan of ten-minute blocks
CHAIN_TX_STATS_WINDOW_MAX = 30 * 24 * 60 * 60 // 600  # a month of ten-minute blocks
VERIFICATION_PROGRESS_OLD_TIP = 0.999999  # Core estimates the missing work; an old tip is never "done"
MEMPOOL_ENTRY_OVERHEAD_BYTES = 560  # rough per-entry memory of Core's mempool, for "usage"
MOCK_TIME_MAX = 9_223_372_036  # Core: seconds in std::chrono::nanoseconds::max()
GENERATE_REPLACED = ("generate\n\nhas been replaced by the -generate cli option. "
                     "Refer to -help for more information.\n")
HIDDEN_METHODS = frozenset({"generate", "setmocktime", "syncwithvalidationinterfacequeue", "waitforblock",
                            "waitforblockheight", "waitfornewblock", "invalidateblock", "reconsiderblock"})
_MISSING = object()


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


@dataclass(frozen=True, slots=True)
class _Spec:
    handler: Callable[[Any, list[Any]], object]
    names: tuple[str, ...]
    required: int
    usage: str


class _Params(list[Any]):
    """Positional parameters that remember the method's parameter names (for Core's type errors)."""

    names: tuple[str, ...] = ()


_ALLOWED = {"int": ("number",), "num": ("number",), "str": ("string",), "bool": ("bool",), "array": ("array",),
            "object": ("object",), "amount": ("number", "string"), "verbosity": ("number", "bool"),
            "scanobject": ("string", "object"), "outputs": ("object", "array")}


def _mismatch(value: object, kind: str) -> str | None:
    """Core's RPCArg::MatchesType text for a wrong JSON type, or None (null always matches)."""
    actual = _json_type(value)
    if value is None or actual in _ALLOWED[kind]:
        return None
    return f"JSON value of type {actual} is not of expected type {' or '.join(_ALLOWED[kind])}"


def _wrong_types(mismatches: list[tuple[int, str, str]]) -> RpcFault:
    """Core's RPCHelpMan type error: every mismatched position, as UniValue writes it (indent 4)."""
    lines = ",\n".join(f'    "Position {i + 1} ({name})": "{text}"' for i, name, text in mismatches)
    return RpcFault(RPC_TYPE_ERROR, "Wrong type passed:\n{\n" + lines + "\n}")


class _Args:
    """Positional arguments after Core's named-parameter mapping, with Core's type errors."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values
        self.names: tuple[str, ...] = getattr(values, "names", ())

    def name(self, index: int) -> str:
        return self.names[index].split("|")[0] if index < len(self.names) else f"arg{index + 1}"

    def check(self, kinds: list[str]) -> None:
        """Core checks every argument's type before running a method and names all that are wrong."""
        mismatches = []
        for index, kind in enumerate(kinds):
            text = _mismatch(self.values[index] if index < len(self.values) else None, kind)
            if text is not None:
                mismatches.append((index, self.name(index), text))
        if mismatches:
            raise _wrong_types(mismatches)

    def get(self, index: int, kind: str, default: Any = _MISSING) -> Any:
        value = self.values[index] if index < len(self.values) else None
        if value is None:
            return None if default is _MISSING else default
        text = _mismatch(value, kind)
        if text is not None:
            raise _wrong_types([(index, self.name(index), text)])
        if kind == "int" and (isinstance(value, float) and not value.is_integer()):
            raise RpcFault(RPC_MISC_ERROR, "JSON integer out of range")  # UniValue's getInt, as Core reports it
        if kind == "int":
            return int(value)
        if kind == "verbosity":
            return int(value)
        return value


def _hash_arg(value: str, name: str) -> bytes:
    if len(value) != 64:
        raise RpcFault(RPC_INVALID_PARAMETER, f"{name} must be of length 64 (not {len(value)}, for '{value}')")
    try:
        return bytes.fromhex(value)[::-1]
    except ValueError:
        raise RpcFault(RPC_INVALID_PARAMETER, f"{name} must be hexadecimal string (not '{value}')") from None


def _amount_sats(value: object) -> int:
    """Core's AmountFromValue: a number or numeric string of at most 8 decimals within MoneyRange."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise RpcFault(RPC_TYPE_ERROR, "Amount is not a number or string")
    try:
        amount = Decimal(str(value)) * 100_000_000
    except (InvalidOperation, ValueError):
        raise RpcFault(RPC_TYPE_ERROR, "Invalid amount") from None
    if not amount.is_finite() or amount != amount.to_integral_value() or abs(amount) >= 10**18:
        raise RpcFault(RPC_TYPE_ERROR, "Invalid amount")
    if not 0 <= amount <= policy.MAX_MONEY_SATS:
        raise RpcFault(RPC_TYPE_ERROR, "Amount out of range")
    return int(amount)


def _fee_rate_sat_per_kvb(value: object) -> int:
    """Core's ParseFeeRate: an amount per kvB below 1 BTC/kvB."""
    rate = _amount_sats(value)
    if rate >= 100_000_000:
        raise RpcFault(RPC_INVALID_PARAMETER, "Fee rates larger than or equal to 1BTC/kvB are not accepted")
    return rate


def _is_burn(script_pubkey: bytes) -> bool:
    """Core's IsUnspendable() || !HasValidOps(): an output nobody can ever spend."""
    if (script_pubkey[:1] == b"\x6a") or len(script_pubkey) > MAX_SCRIPT_SIZE:
        return True
    pos = 0
    while pos < len(script_pubkey):
        op = script_pubkey[pos]
        pos += 1
        size = op if op < 0x4C else 0
        if 0x4C <= op <= 0x4E:
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            if pos + width > len(script_pubkey):
                return True
            size = int.from_bytes(script_pubkey[pos:pos + width], "little")
            pos += width
        if op > MAX_OPCODE or size > MAX_SCRIPT_ELEMENT_SIZE or pos + size > len(script_pubkey):
            return True
        pos += size
    return False


_OPCODES = {0x00: "0", 0x4F: "-1", 0x61: "OP_NOP", 0x69: "OP_VERIFY", 0x6A: "OP_RETURN", 0x75: "OP_DROP",
            0x76: "OP_DUP", 0x87: "OP_EQUAL", 0x88: "OP_EQUALVERIFY", 0xA9: "OP_HASH160", 0xAA: "OP_HASH256",
            0xA8: "OP_SHA256", 0xAC: "OP_CHECKSIG", 0xAD: "OP_CHECKSIGVERIFY", 0xAE: "OP_CHECKMULTISIG",
            0xAF: "OP_CHECKMULTISIGVERIFY", 0xB1: "OP_CHECKLOCKTIMEVERIFY", 0xB2: "OP_CHECKSEQUENCEVERIFY",
            0xBA: "OP_CHECKSIGADD", 0x82: "OP_SIZE", 0x63: "OP_IF", 0x64: "OP_NOTIF", 0x67: "OP_ELSE",
            0x68: "OP_ENDIF", 0x7C: "OP_SWAP", 0x6B: "OP_TOALTSTACK", 0x6C: "OP_FROMALTSTACK"}


def _script_num(data: bytes) -> int:
    value = int.from_bytes(data, "little")
    if data[-1] & 0x80:
        value = -(value & ~(0x80 << (8 * (len(data) - 1))))
    return value


def script_asm(script: bytes) -> str:
    """Core's ScriptToAsmStr for the common opcodes; pushes as hex, small ones as numbers."""
    parts, pos = [], 0
    while pos < len(script):
        op = script[pos]
        pos += 1
        if 0x01 <= op <= 0x4E:
            if op < 0x4C:
                size = op
            else:
                width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
                size = int.from_bytes(script[pos:pos + width], "little")
                pos += width
            data = script[pos:pos + size]
            pos += size
            if len(data) < size:
                parts.append("[error]")
                break
            parts.append(str(_script_num(data)) if size <= 4 else data.hex())
        elif 0x51 <= op <= 0x60:
            parts.append(str(op - 0x50))
        else:
            parts.append(_OPCODES.get(op, f"OP_UNKNOWN_{op:#04x}"))
    return " ".join(parts)


def script_pubkey_json(spk: bytes) -> dict[str, object]:
    kind = policy.script_type(spk)
    address = script_to_address(spk)
    desc = add_checksum(f"addr({address})" if address else f"raw({spk.hex()})")
    result: dict[str, object] = {"asm": script_asm(spk), "desc": desc, "hex": spk.hex()}
    if address:
        result["address"] = address
    result["type"] = kind
    return result


def _p2sh(script: bytes) -> bytes:
    return b"\xa9\x14" + hash160(script) + b"\x87"


def decode_script(script: bytes) -> dict[str, object]:
    """Core's decodescript: the script's asm, desc, type and address, and its P2SH and segwit wraps."""
    result = script_pubkey_json(script)
    result.pop("hex")
    kind = policy.script_type(script)
    wrappable = kind in ("multisig", "nonstandard", "pubkey", "pubkeyhash", "witness_v0_keyhash",
                         "witness_v0_scripthash")
    if not wrappable or _is_burn(script) or 0xBA in _opcodes(script):
        return result
    result["p2sh"] = script_to_address(_p2sh(script))
    if kind not in ("multisig", "pubkey", "nonstandard", "pubkeyhash"):
        return result
    if kind == "pubkey":
        if len(script) != 35:
            return result  # an uncompressed key cannot be used in segwit
        segwit = b"\x00\x14" + hash160(script[1:34])
    elif kind == "pubkeyhash":
        segwit = b"\x00\x14" + script[3:23]
    else:
        if kind == "multisig" and b"\x41" in script[1:2]:
            return result
        segwit = b"\x00\x20" + hashlib.sha256(script).digest()
    wrapped = script_pubkey_json(segwit)
    wrapped["p2sh-segwit"] = script_to_address(_p2sh(segwit))
    result["segwit"] = wrapped
    return result


def _opcodes(script: bytes) -> list[int]:
    ops, pos = [], 0
    while pos < len(script):
        op = script[pos]
        ops.append(op)
        pos += 1 + (op if op < 0x4C else 0)
        if 0x4C <= op <= 0x4E:
            width = {0x4C: 1, 0x4D: 2, 0x4E: 4}[op]
            pos += width + int.from_bytes(script[pos:pos + width], "little")
    return ops


class RpcDispatcher:
    """Core's RPC methods over one RegtestNode."""

    def __init__(self, node: RegtestNode, *, started_at: float | None = None,
                 deprecated_rpc: frozenset[str] = frozenset(), log_path: str = "",
                 ua_comments: tuple[str, ...] = (), prune_mib: int = 0) -> None:
        self.node = node
        self.prune_mib = prune_mib
        self.subversion = f"/Satoshi:{CORE_VERSION_TEXT}({'; '.join(('coffer-regtest', *ua_comments))})/"
        self.deprecated_rpc = deprecated_rpc
        self.log_path = log_path
        self.started_at = time.time() if started_at is None else started_at
        self.stop_requested: Callable[[], None] | None = None
        self._methods = self._table()
        self._active: dict[object, tuple[str, float]] = {}
        self._active_lock = threading.Lock()

    def methods(self) -> list[str]:
        return sorted(self._methods)

    def call(self, method: object, params: object) -> object:
        if not isinstance(method, str):
            raise RpcFault(RPC_INVALID_REQUEST, "Method must be a string")
        spec = self._methods.get(method)
        if spec is None:
            raise RpcFault(RPC_METHOD_NOT_FOUND, "Method not found")
        values = self._positional(spec, method, params)
        token = object()
        with self._active_lock:
            self._active[token] = (method, time.monotonic())
        try:
            return spec.handler(self, values)
        except BlockNotFound:
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Block not found") from None
        finally:
            with self._active_lock:
                del self._active[token]

    def getrpcinfo(self, _a: list[Any]) -> object:
        now = time.monotonic()
        with self._active_lock:
            active = [{"method": method, "duration": int((now - started) * 1_000_000)}
                      for method, started in self._active.values()]
        return {"active_commands": active, "logpath": self.log_path}

    def help(self, raw: list[Any]) -> object:
        command = _Args(raw).get(0, "str", None)
        if command is None:
            return "\n".join(f"{name} {self._methods[name].usage}".rstrip()
                             for name in self.methods() if name not in HIDDEN_METHODS)
        if command == "generate":
            return GENERATE_REPLACED
        spec = self._methods.get(command)
        if spec is None:
            return f"help: unknown command: {command}"
        return f"{command} {spec.usage}".rstrip() + "\n"

    def createrawtransaction(self, raw: list[Any]) -> object:
        args = _Args(raw)
        args.check(["array", "outputs", "int", "bool", "int"])
        inputs, outputs = args.get(0, "array"), raw[1]
        locktime, rbf, version = args.get(2, "int", 0), args.get(3, "bool", None), args.get(4, "int", 2)
        if not 0 <= locktime <= 0xFFFFFFFF:
            raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, locktime out of range")
        if not 1 <= version <= policy.TX_MAX_STANDARD_VERSION:
            raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, version out of range(1~3)")
        default_sequence = 0xFFFFFFFD if rbf is None or rbf else (0xFFFFFFFE if locktime else 0xFFFFFFFF)
        encoded = [_raw_input(item, default_sequence) for item in inputs]
        if rbf and encoded and all(int.from_bytes(item[-4:], "little") > 0xFFFFFFFD for item in encoded):
            raise RpcFault(RPC_INVALID_PARAMETER,
                           "Invalid parameter combination: Sequence number(s) contradict replaceable option")
        parsed = _raw_outputs(outputs)
        body = compact_size(len(encoded)) + b"".join(encoded) + compact_size(len(parsed)) + b"".join(
            struct.pack("<q", value) + compact_size(len(spk)) + spk for spk, value in parsed)
        return (struct.pack("<i", version) + body + struct.pack("<I", locktime)).hex()

    def decodescript(self, raw: list[Any]) -> object:
        text = _Args(raw).get(0, "str")
        try:
            script = bytes.fromhex(text)
        except ValueError:
            raise RpcFault(RPC_INVALID_PARAMETER, f"argument must be hexadecimal string (not '{text}')") from None
        return decode_script(script)

    def getnetworkhashps(self, raw: list[Any]) -> object:
        args = _Args(raw)
        args.check(["int", "int"])
        lookup, height = args.get(0, "int", NETWORK_HASHPS_BLOCKS_DEFAULT), args.get(1, "int", -1)
        if lookup < -1 or lookup == 0:
            raise RpcFault(RPC_INVALID_PARAMETER, "Invalid nblocks. Must be a positive number or -1.")
        with self.node.lock:
            if height < -1 or height > self.node.height:
                raise RpcFault(RPC_INVALID_PARAMETER, "Block does not exist at specified height")
            top = self.node.height if height == -1 else height
            if top == 0:
                return 0
            lookup = min(top % DIFFICULTY_ADJUSTMENT_INTERVAL + 1 if lookup == -1 else lookup, top)
            times = [self.node.header(self.node.active_hash(h)).time for h in range(top - lookup, top + 1)]
        if min(times) == max(times):
            return 0
        return (2 * lookup) / (max(times) - min(times))  # every regtest block is 2 hashes of work

    def getmininginfo(self, _a: list[Any]) -> object:
        with self.node.lock:
            header = self.node.header(self.node.best_hash)
        return {"blocks": header.height, "bits": f"{header.bits:08x}", "difficulty": DIFFICULTY_REGTEST,
                "target": _target_hex(header.bits), "networkhashps": self.getnetworkhashps(_Params()),
                "pooledtx": len(self.node.mempool_entries()), "blockmintxfee": Btc(1), "chain": "regtest",
                "next": {"height": header.height + 1, "bits": f"{header.bits:08x}",
                         "difficulty": DIFFICULTY_REGTEST, "target": _target_hex(header.bits)},
                "warnings": []}

    def _chain_tx_count(self, height: int) -> int:
        return sum(self.node.header(self.node.active_hash(h)).tx_count for h in range(height + 1))

    def getchaintxstats(self, raw: list[Any]) -> object:
        args = _Args(raw)
        nblocks = args.get(0, "int", None)
        block_arg = args.get(1, "str", None)
        with self.node.lock:
            block_hash = self.node.best_hash if block_arg is None else _hash_arg(block_arg, "blockhash")
            header = self.node.header(block_hash)
            if header.confirmations < 1:
                raise RpcFault(RPC_INVALID_PARAMETER, "Block is not in main chain")
            count = min(max(header.height - 1, 0), CHAIN_TX_STATS_WINDOW_MAX) if nblocks is None else nblocks
            if count < 0 or (count > 0 and count >= header.height):
                raise RpcFault(RPC_INVALID_PARAMETER, "Invalid block count: should be between 0 and the block's height - 1")
            past = self.node.header(self.node.active_hash(header.height - count))
            total = self._chain_tx_count(header.height)
            result: dict[str, object] = {
                "time": header.time, "txcount": total, "window_final_block_hash": header.hash[::-1].hex(),
                "window_final_block_height": header.height, "window_block_count": count}
            if count > 0:
                window_txs = total - self._chain_tx_count(past.height)
                interval = header.median_time - past.median_time
                result.update({"window_tx_count": window_txs, "window_interval": interval})
                if interval > 0:
                    result["txrate"] = window_txs / interval
            return result

    def gettxoutsetinfo(self, raw: list[Any]) -> object:
        args = _Args(raw)
        hash_type = args.get(0, "str", "hash_serialized_3")
        if hash_type not in HASH_TYPES:
            raise RpcFault(RPC_INVALID_PARAMETER, f"'{hash_type}' is not a valid hash_type")
        if len(raw) > 1 and raw[1] is not None:
            raise RpcFault(RPC_INVALID_PARAMETER, "Querying specific block heights requires coinstatsindex")
        with self.node.lock:
            height, best = self.node.height, self.node.best_hash
            coins = self.node.utxo_snapshot()
        stats = utxo_stats(coins, hash_type)
        result: dict[str, object] = {"height": height, "bestblock": best[::-1].hex(), "txouts": stats.txouts,
                                     "bogosize": stats.bogosize}
        if stats.hash_hex is not None:
            result[hash_type] = stats.hash_hex
        result.update({"total_amount": Btc(stats.total_sats), "transactions": stats.transactions,
                       "disk_size": stats.serialized_bytes})
        return result

    def getindexinfo(self, raw: list[Any]) -> object:
        """The node always keeps a transaction index of the active chain, in step with the tip."""
        name = _Args(raw).get(0, "str", None)
        indexes = {"txindex": {"synced": True, "best_block_height": self.node.height}}
        return indexes if name is None else {k: v for k, v in indexes.items() if k == name}

    def generate(self, _a: list[Any]) -> object:
        raise RpcFault(RPC_METHOD_NOT_FOUND, GENERATE_REPLACED)

    @staticmethod
    def _positional(spec: _Spec, method: str, params: object) -> list[Any]:
        if params is None:
            values: list[Any] = []
        elif isinstance(params, list):
            values = list(params)
        elif isinstance(params, dict):
            values = [None] * len(spec.names)
            for key, value in params.items():
                position = next((i for i, n in enumerate(spec.names) if key in n.split("|")), None)
                if position is None:
                    raise RpcFault(RPC_INVALID_PARAMETER, f"Unknown named parameter {key}")
                if values[position] is not None:
                    raise RpcFault(RPC_INVALID_PARAMETER, f"Parameter {key} specified twice both as positional and named argument")
                values[position] = value
            while values and values[-1] is None:
                values.pop()
        else:
            raise RpcFault(RPC_INVALID_REQUEST, "Params must be an array or object")
        if len(values) > len(spec.names) or any(
                i >= len(values) or values[i] is None for i in range(spec.required)):
            raise RpcFault(RPC_MISC_ERROR, f"{method} {spec.usage}".rstrip())
        params_list = _Params(values)
        params_list.names = spec.names
        return params_list

    def _table(self) -> dict[str, _Spec]:
        def spec(handler: Callable[[Any, list[Any]], object], names: str = "", required: int = 0,
                 usage: str | None = None) -> _Spec:
            split = tuple(names.split()) if names else ()
            shown = [n.split("|")[0] for n in split]
            default = " ".join(n if i < required else f"( {n} )" for i, n in enumerate(shown))
            return _Spec(handler, split, required, default if usage is None else usage)

        return {
            "getnetworkinfo": spec(RpcDispatcher.getnetworkinfo),
            "getblockchaininfo": spec(RpcDispatcher.getblockchaininfo),
            "getblockcount": spec(lambda s, a: s.node.height),
            "getbestblockhash": spec(lambda s, a: s.node.best_hash[::-1].hex()),
            "getdifficulty": spec(lambda s, a: DIFFICULTY_REGTEST),
            "getblockhash": spec(RpcDispatcher.getblockhash, "height", 1),
            "getblock": spec(RpcDispatcher.getblock, "blockhash verbosity|verbose", 1),
            "getblockheader": spec(RpcDispatcher.getblockheader, "blockhash verbose", 1),
            "getrawtransaction": spec(RpcDispatcher.getrawtransaction, "txid verbosity|verbose blockhash", 1),
            "gettxout": spec(RpcDispatcher.gettxout, "txid n include_mempool", 2),
            "sendrawtransaction": spec(RpcDispatcher.sendrawtransaction, "hexstring maxfeerate maxburnamount", 1),
            "testmempoolaccept": spec(RpcDispatcher.testmempoolaccept, "rawtxs maxfeerate", 1),
            "getrawmempool": spec(RpcDispatcher.getrawmempool, "verbose mempool_sequence"),
            "getmempoolentry": spec(RpcDispatcher.getmempoolentry, "txid", 1),
            "getmempoolinfo": spec(RpcDispatcher.getmempoolinfo),
            "scantxoutset": spec(RpcDispatcher.scantxoutset, "action scanobjects", 1,
                                 '"action" ( [scanobjects,...] )'),
            "invalidateblock": spec(RpcDispatcher.invalidateblock, "blockhash", 1),
            "reconsiderblock": spec(RpcDispatcher.reconsiderblock, "blockhash", 1),
            "generatetoaddress": spec(RpcDispatcher.generatetoaddress, "nblocks address maxtries", 2),
            "generatetodescriptor": spec(RpcDispatcher.generatetodescriptor, "num_blocks descriptor maxtries", 2),
            "generateblock": spec(RpcDispatcher.generateblock, "output transactions submit", 2),
            "submitblock": spec(RpcDispatcher.submitblock, "hexdata dummy", 1),
            "estimatesmartfee": spec(RpcDispatcher.estimatesmartfee, "conf_target estimate_mode", 1),
            "decoderawtransaction": spec(RpcDispatcher.decoderawtransaction, "hexstring iswitness", 1),
            "getchaintips": spec(RpcDispatcher.getchaintips),
            "getdescriptorinfo": spec(RpcDispatcher.getdescriptorinfo, "descriptor", 1),
            "deriveaddresses": spec(RpcDispatcher.deriveaddresses, "descriptor range", 1),
            "uptime": spec(lambda s, a: int(time.time() - s.started_at)),
            "ping": spec(lambda s, a: None),
            "help": spec(RpcDispatcher.help, "command"),
            "getrpcinfo": spec(RpcDispatcher.getrpcinfo),
            "createrawtransaction": spec(RpcDispatcher.createrawtransaction, "inputs outputs locktime replaceable version", 2),
            "decodescript": spec(RpcDispatcher.decodescript, "hexstring", 1),
            "getnetworkhashps": spec(RpcDispatcher.getnetworkhashps, "nblocks height"),
            "getmininginfo": spec(RpcDispatcher.getmininginfo),
            "getchaintxstats": spec(RpcDispatcher.getchaintxstats, "nblocks blockhash"),
            "gettxoutsetinfo": spec(RpcDispatcher.gettxoutsetinfo, "hash_type hash_or_height use_index"),
            "getindexinfo": spec(RpcDispatcher.getindexinfo, "index_name"),
            "generate": spec(RpcDispatcher.generate, "nblocks maxtries"),
            "stop": spec(RpcDispatcher.stop, "wait"),
            "waitfornewblock": spec(RpcDispatcher.waitfornewblock, "timeout current_tip"),
            "waitforblock": spec(RpcDispatcher.waitforblock, "blockhash timeout", 1),
            "waitforblockheight": spec(RpcDispatcher.waitforblockheight, "height timeout", 1),
            "setmocktime": spec(RpcDispatcher.setmocktime, "timestamp", 1),
            "syncwithvalidationinterfacequeue": spec(lambda s, a: None),
        }

    # ---- node and chain --------------------------------------------------------------------

    def getnetworkinfo(self, _a: list[Any]) -> object:
        return {
            "version": CORE_VERSION, "subversion": self.subversion, "protocolversion": 70016,
            "localservices": "0000000000000c09", "localservicesnames": ["NETWORK", "WITNESS", "NETWORK_LIMITED", "P2P_V2"],
            "localrelay": True, "timeoffset": 0, "networkactive": True, "connections": 0, "connections_in": 0,
            "connections_out": 0, "networks": [], "relayfee": Btc(self.node.policy.min_relay_fee_sat_per_kvb),
            "incrementalfee": Btc(self.node.policy.incremental_relay_fee_sat_per_kvb), "localaddresses": [],
            "warnings": [f"embedded regtest node; consensus by {kernel_version()}"],
        }

    def getblockchaininfo(self, _a: list[Any]) -> object:
        node = self.node
        with node.lock:
            header = node.header(node.best_hash)
        result: dict[str, object] = {
            "chain": "regtest", "blocks": header.height, "headers": header.height,
            "bestblockhash": header.hash[::-1].hex(), "bits": f"{header.bits:08x}",
            "target": _target_hex(header.bits), "difficulty": DIFFICULTY_REGTEST,
            "time": header.time, "mediantime": header.median_time,
            "verificationprogress": 1 if header.time + TIP_RECENT_S >= node.now() else VERIFICATION_PROGRESS_OLD_TIP,
            "initialblockdownload": False, "chainwork": _chainwork(header.height),
            "size_on_disk": node.disk_size(), "pruned": self.prune_mib > 0, "warnings": [],
        }
        if self.prune_mib:  # the node keeps every block: nothing below height 0 is pruned
            info = dict(result)
            warnings = info.pop("warnings")
            info.update({"pruneheight": 0, "automatic_pruning": self.prune_mib > 1})
            if self.prune_mib > 1:
                info["prune_target_size"] = self.prune_mib * 1024 * 1024
            info["warnings"] = warnings
            return info
        return result

    def getblockhash(self, raw: list[Any]) -> object:
        height = _Args(raw).get(0, "int")
        try:
            return self.node.active_hash(height)[::-1].hex()
        except BlockNotFound:
            raise RpcFault(RPC_INVALID_PARAMETER, "Block height out of range") from None

    def _header_json(self, header: HeaderInfo) -> dict[str, object]:
        result: dict[str, object] = {
            "hash": header.hash[::-1].hex(), "confirmations": header.confirmations, "height": header.height,
            "version": header.version, "versionHex": f"{header.version & 0xFFFFFFFF:08x}",
            "merkleroot": header.merkle_root[::-1].hex(), "time": header.time, "mediantime": header.median_time,
            "nonce": header.nonce, "bits": f"{header.bits:08x}", "target": _target_hex(header.bits),
            "difficulty": DIFFICULTY_REGTEST, "chainwork": _chainwork(header.height), "nTx": header.tx_count,
        }
        if header.height > 0:
            result["previousblockhash"] = header.prev[::-1].hex()
        if header.next_hash is not None:
            result["nextblockhash"] = header.next_hash[::-1].hex()
        return result

    def getblockheader(self, raw: list[Any]) -> object:
        args = _Args(raw)
        block_hash = _hash_arg(args.get(0, "str"), "hash")
        verbose = args.get(1, "bool", True)
        header = self.node.header(block_hash)
        return self._header_json(header) if verbose else header.header.hex()

    def getblock(self, raw: list[Any]) -> object:
        args = _Args(raw)
        block_hash = _hash_arg(args.get(0, "str"), "blockhash")
        verbosity = args.get(1, "verbosity", 1)
        header = self.node.header(block_hash)
        if verbosity <= 0:
            return self.node.raw_block(block_hash).hex()
        txs = self.node.block_txs(block_hash)
        result = self._header_json(header)
        stripped = 80 + len(_varint_len(len(txs))) + sum(tx.base_size for tx in txs)
        result["strippedsize"] = stripped
        result["size"] = header.size
        result["weight"] = stripped * 3 + header.size
        if verbosity == 1:
            result["tx"] = [tx.txid_hex for tx in txs]
        else:
            undo = self.node.spent_coins(block_hash)
            result["tx"] = [self._tx_json(tx, spent=undo[i - 1] if undo and i else None, prevout=verbosity >= 3)
                            for i, tx in enumerate(txs)]
        keys = ["hash", "confirmations", "height", "version", "versionHex", "merkleroot", "time", "mediantime",
                "nonce", "bits", "target", "difficulty", "chainwork", "nTx", "previousblockhash", "nextblockhash",
                "strippedsize", "size", "weight", "tx"]
        return {key: result[key] for key in keys if key in result}

    def _prevout_value(self, txin_txid: bytes, vout: int) -> int | None:
        try:
            prev, _block = self.node.find_transaction(txin_txid)
        except KeyError:
            return None
        return prev.outputs[vout].value_sats if vout < len(prev.outputs) else None

    def _tx_json(self, tx: Tx, *, fee: bool = False, spent: list[Coin] | None = None,
                 prevout: bool = False) -> dict[str, object]:
        vin: list[object] = []
        for index, txin in enumerate(tx.inputs):
            item: dict[str, object]
            if txin.is_coinbase:
                item = {"coinbase": txin.script_sig.hex()}
            else:
                item = {"txid": txin.prev_txid[::-1].hex(), "vout": txin.prev_vout,
                        "scriptSig": {"asm": script_asm(txin.script_sig), "hex": txin.script_sig.hex()}}
            if txin.witness:
                item["txinwitness"] = [w.hex() for w in txin.witness]
            if prevout and spent is not None:
                coin = spent[index]
                item["prevout"] = {"generated": coin.coinbase, "height": coin.height, "value": Btc(coin.value_sats),
                                   "scriptPubKey": script_pubkey_json(coin.script_pubkey)}
            item["sequence"] = txin.sequence
            vin.append(item)
        vout = [{"value": Btc(out.value_sats), "n": n, "scriptPubKey": script_pubkey_json(out.script_pubkey)}
                for n, out in enumerate(tx.outputs)]
        result: dict[str, object] = {
            "txid": tx.txid_hex, "hash": tx.wtxid_hex, "version": tx.version, "size": len(tx.raw),
            "vsize": tx.vsize, "weight": tx.weight, "locktime": tx.locktime, "vin": vin, "vout": vout,
        }
        if spent is not None:
            result["fee"] = Btc(sum(c.value_sats for c in spent) - sum(o.value_sats for o in tx.outputs))
        elif fee and not tx.is_coinbase:
            values = [self._prevout_value(i.prev_txid, i.prev_vout) for i in tx.inputs]
            if all(v is not None for v in values):
                result["fee"] = Btc(sum(v for v in values if v is not None) - sum(o.value_sats for o in tx.outputs))
        result["hex"] = tx.raw.hex()
        return result

    def getrawtransaction(self, raw: list[Any]) -> object:
        args = _Args(raw)
        txid = _hash_arg(args.get(0, "str"), "parameter 1")
        verbose = args.get(1, "verbosity", 0)
        block_arg = args.get(2, "str", None)
        block_hash = _hash_arg(block_arg, "parameter 3") if block_arg is not None else None
        if block_hash is not None:
            self.node.header(block_hash)  # -5 Block hash not found
        try:
            tx, found_in = self.node.find_transaction(txid, block_hash)
        except KeyError:
            message = ("No such transaction found in the provided block." if block_hash else
                       "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.")
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, message) from None
        if not verbose:
            return tx.raw.hex()
        result: dict[str, object] = {}
        if block_hash is not None:
            result["in_active_chain"] = self.node.is_active(block_hash)
        result.update(self._tx_json(tx, **self._undo_of(tx, found_in, verbose)))
        if found_in is not None:
            header = self.node.header(found_in)
            result["blockhash"] = found_in[::-1].hex()
            if header.confirmations > 0:
                result["confirmations"] = header.confirmations
                result["time"] = header.time
                result["blocktime"] = header.time
        return result

    def _undo_of(self, tx: Tx, block_hash: bytes | None, verbosity: int) -> dict[str, Any]:
        """Core shows fee and vin[].prevout (verbosity 2) only for a confirmed, non-coinbase transaction
        whose block undo data it has."""
        if verbosity < 2 or block_hash is None or tx.is_coinbase:
            return {}
        undo = self.node.spent_coins(block_hash)
        position = next((i for i, t in enumerate(self.node.block_txs(block_hash)) if t.txid == tx.txid), 0)
        if undo is None or not 0 < position <= len(undo):
            return {}
        return {"spent": undo[position - 1], "prevout": True}

    def decoderawtransaction(self, raw: list[Any]) -> object:
        hexstring = _Args(raw).get(0, "str")
        try:
            tx = parse_tx(bytes.fromhex(hexstring))
        except (ValueError, DecodeError):
            raise RpcFault(RPC_DESERIALIZATION_ERROR, "TX decode failed") from None
        result = self._tx_json(tx)
        result.pop("hex")
        return result

    def gettxout(self, raw: list[Any]) -> object:
        args = _Args(raw)
        txid = _hash_arg(args.get(0, "str"), "txid")
        vout = args.get(1, "int")
        include_mempool = args.get(2, "bool", True)
        with self.node.lock:
            coin = self.node.coin((txid, vout), include_mempool=include_mempool)
            if coin is None:
                return None
            best = self.node.best_hash
            confirmations = 0 if coin.height == MEMPOOL_HEIGHT else self.node.height - coin.height + 1
        return {"bestblock": best[::-1].hex(), "confirmations": confirmations, "value": Btc(coin.value_sats),
                "scriptPubKey": script_pubkey_json(coin.script_pubkey), "coinbase": coin.coinbase}

    # ---- mempool ---------------------------------------------------------------------------

    def _max_fee_rate(self, value: object) -> int | None:
        if value is None:
            return DEFAULT_MAX_FEE_RATE_SAT_PER_KVB
        return _fee_rate_sat_per_kvb(value) or None

    def sendrawtransaction(self, raw: list[Any]) -> object:
        args = _Args(raw)
        hexstring = args.get(0, "str")
        burn_value = args.get(2, "amount", None)
        max_burn_sats = 0 if burn_value is None else _amount_sats(burn_value)
        try:
            data = bytes.fromhex(hexstring)
            decoded = parse_tx(data)
        except (ValueError, DecodeError):
            raise RpcFault(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.") from None
        if any(_is_burn(out.script_pubkey) and out.value_sats > max_burn_sats for out in decoded.outputs):
            raise RpcFault(RPC_VERIFY_ERROR, "Unspendable output exceeds maximum configured by user (maxburnamount)")
        max_rate = self._max_fee_rate(args.get(1, "amount", None))
        try:
            tx, _fee = self.node.accept_transaction(data, max_fee_rate_sat_per_kvb=max_rate)
        except BroadcastRejected as exc:
            raise _broadcast_fault(exc) from None
        return tx.txid_hex

    def testmempoolaccept(self, raw: list[Any]) -> object:
        args = _Args(raw)
        rawtxs = args.get(0, "array")
        max_rate = self._max_fee_rate(args.get(1, "amount", None))
        if not 1 <= len(rawtxs) <= TESTMEMPOOLACCEPT_TXS_MAX:
            raise RpcFault(RPC_INVALID_PARAMETER, "Array must contain between 1 and 25 transactions.")
        txs = []
        for item in rawtxs:
            if not isinstance(item, str):
                raise RpcFault(RPC_TYPE_ERROR, f"JSON value of type {_json_type(item)} is not of expected type string")
            try:
                txs.append(parse_tx(bytes.fromhex(item)))
            except (ValueError, DecodeError):
                raise RpcFault(RPC_DESERIALIZATION_ERROR, f"TX decode failed: {item[:64]}") from None
        verdicts = self.node.test_accept_package(txs, max_fee_rate_sat_per_kvb=max_rate)
        return [self._test_result(tx, verdict) for tx, verdict in zip(txs, verdicts, strict=True)]

    @staticmethod
    def _test_result(tx: Tx, verdict: int | BroadcastRejected) -> dict[str, object]:
        result: dict[str, object] = {"txid": tx.txid_hex, "wtxid": tx.wtxid_hex}
        if isinstance(verdict, BroadcastRejected):
            result["allowed"] = False
            reason = {"bad-txns-inputs-missingorspent": "missing-inputs"}.get(verdict.reason, verdict.reason)
            result["reject-reason"] = reason
            if verdict.details:
                result["reject-details"] = verdict.message
            return result
        result.update({"allowed": True, "vsize": tx.vsize, "fees": {
            "base": Btc(verdict), "effective-feerate": Btc(verdict * 1000 // tx.vsize),
            "effective-includes": [tx.wtxid_hex]}})
        return result

    def _entry_json(self, txid: bytes) -> dict[str, object]:
        entries = self.node.mempool_entries()
        entry = entries[txid]
        ancestors, descendants = self.node.mempool_relatives(txid)
        anc_fee = entry.fee_sats + sum(entries[a].fee_sats for a in ancestors if a in entries)
        desc_fee = entry.fee_sats + sum(entries[d].fee_sats for d in descendants if d in entries)
        spent_by = [d for d in descendants if txid in entries[d].parents] if descendants else []
        result: dict[str, object] = {
            "vsize": entry.vsize, "weight": entry.tx.weight, "time": entry.time, "height": entry.height,
            "descendantcount": 1 + len(descendants),
            "descendantsize": entry.vsize + sum(entries[d].vsize for d in descendants if d in entries),
            "ancestorcount": 1 + len(ancestors),
            "ancestorsize": entry.vsize + sum(entries[a].vsize for a in ancestors if a in entries),
            "wtxid": entry.tx.wtxid_hex,
            "fees": {"base": Btc(entry.fee_sats), "modified": Btc(entry.fee_sats), "ancestor": Btc(anc_fee),
                     "descendant": Btc(desc_fee)},
            "depends": [p[::-1].hex() for p in sorted(entry.parents)],
            "spentby": [s[::-1].hex() for s in sorted(spent_by)],
            "unbroadcast": False,
        }
        if "bip125" in self.deprecated_rpc:
            result["bip125-replaceable"] = any(
                i.sequence <= 0xFFFFFFFD for t in [txid, *ancestors] if t in entries for i in entries[t].tx.inputs)
        return result

    def getrawmempool(self, raw: list[Any]) -> object:
        args = _Args(raw)
        verbose = args.get(0, "bool", False)
        sequence = args.get(1, "bool", False)
        if verbose and sequence:
            raise RpcFault(RPC_INVALID_PARAMETER, "Verbose results cannot contain mempool sequence values.")
        with self.node.lock:
            txids = list(self.node.mempool_entries())
            mempool_sequence = self.node.mempool_sequence
            if verbose:
                return {t[::-1].hex(): self._entry_json(t) for t in txids}
        listing = [t[::-1].hex() for t in txids]
        return {"txids": listing, "mempool_sequence": mempool_sequence} if sequence else listing

    def getmempoolentry(self, raw: list[Any]) -> object:
        txid = _hash_arg(_Args(raw).get(0, "str"), "txid")
        with self.node.lock:
            if txid not in self.node.mempool_entries():
                raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Transaction not in mempool")
            return self._entry_json(txid)

    def getmempoolinfo(self, _a: list[Any]) -> object:
        entries = self.node.mempool_entries()
        settings = self.node.policy
        total_fee = sum(e.fee_sats for e in entries.values())
        info: dict[str, object] = {
            "loaded": True, "size": len(entries), "bytes": sum(e.vsize for e in entries.values()),
            "usage": sum(len(e.tx.raw) + MEMPOOL_ENTRY_OVERHEAD_BYTES for e in entries.values()),
            "total_fee": Btc(total_fee), "maxmempool": settings.max_mempool_bytes,
            "mempoolminfee": Btc(settings.min_relay_fee_sat_per_kvb),
            "minrelaytxfee": Btc(settings.min_relay_fee_sat_per_kvb),
            "incrementalrelayfee": Btc(settings.incremental_relay_fee_sat_per_kvb), "unbroadcastcount": 0,
            "permitbaremultisig": settings.permit_bare_multisig,
            "maxdatacarriersize": settings.datacarrier_size if settings.datacarrier else 0,
            "limitclustercount": settings.cluster_count_max, "limitclustersize": settings.cluster_vsize_max,
            "optimal": True}
        if "fullrbf" in self.deprecated_rpc:
            info["fullrbf"] = True
        return info

    # ---- scantxoutset ----------------------------------------------------------------------

    def scantxoutset(self, raw: list[Any]) -> object:
        args = _Args(raw)
        action = args.get(0, "str")
        if action == "abort":
            return False
        if action == "status":
            return None
        if action != "start":
            raise RpcFault(RPC_INVALID_PARAMETER, f"Invalid action '{action}'")
        objects = args.get(1, "array", None)
        if objects is None:
            raise RpcFault(RPC_MISC_ERROR, "scanobjects argument is required for the start action")
        scripts: dict[bytes, str] = {}
        for item in objects:
            scripts.update(_scan_object(item))
        with self.node.lock:
            found = self.node.unspent(scripts)
            height, best = self.node.height, self.node.best_hash
            unspents = []
            for (txid, vout), coin in found:
                unspents.append({
                    "txid": txid[::-1].hex(), "vout": vout, "scriptPubKey": coin.script_pubkey.hex(),
                    "desc": scripts[coin.script_pubkey], "amount": Btc(coin.value_sats), "coinbase": coin.coinbase,
                    "height": coin.height, "blockhash": self.node.active_hash(coin.height)[::-1].hex(),
                    "confirmations": height - coin.height + 1})
            total = sum(coin.value_sats for _op, coin in found)
            return {"success": True, "txouts": self.node.utxo_count(), "height": height,
                    "bestblock": best[::-1].hex(), "unspents": unspents, "total_amount": Btc(total)}

    # ---- blocks ----------------------------------------------------------------------------

    def invalidateblock(self, raw: list[Any]) -> object:
        self.node.invalidate_block(_hash_arg(_Args(raw).get(0, "str"), "blockhash"))
        return None

    def reconsiderblock(self, raw: list[Any]) -> object:
        self.node.reconsider_block(_hash_arg(_Args(raw).get(0, "str"), "blockhash"))
        return None

    def _generate(self, count: int, spk: bytes) -> list[str]:
        if count < 0:
            return []  # Core's generate loop simply runs zero times
        if count > GENERATE_RPC_BLOCKS_MAX:
            raise RpcFault(RPC_INVALID_PARAMETER, f"nblocks must be between 0 and {GENERATE_RPC_BLOCKS_MAX}")
        try:
            return [h[::-1].hex() for h in self.node.generate(count, spk)]
        except BlockRejected as exc:
            raise RpcFault(RPC_VERIFY_ERROR, exc.reason) from None

    def generatetoaddress(self, raw: list[Any]) -> object:
        args = _Args(raw)
        count = args.get(0, "int")
        address = args.get(1, "str")
        args.get(2, "int", 1_000_000)
        try:
            spk = address_to_script(address)
        except DecodeError:
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None
        return self._generate(count, spk)

    def generatetodescriptor(self, raw: list[Any]) -> object:
        args = _Args(raw)
        count = args.get(0, "int")
        descriptor = args.get(1, "str")
        args.get(2, "int", 1_000_000)
        return self._generate(count, _single_descriptor_script(descriptor))

    def generateblock(self, raw: list[Any]) -> object:
        args = _Args(raw)
        output = args.get(0, "str")
        items = args.get(1, "array")
        submit = args.get(2, "bool", True)
        spk = _output_script(output)
        txs = [self._generateblock_tx(item) for item in items]
        try:
            raw_block = self.node.generate_block(spk, txs, submit=submit)
        except BlockRejected as exc:
            raise RpcFault(RPC_VERIFY_ERROR, f"TestBlockValidity failed: {exc.reason}") from None
        result: dict[str, object] = {"hash": parse_block_hash(raw_block)}
        if not submit:
            result["hex"] = raw_block.hex()
        return result

    def _generateblock_tx(self, item: object) -> Tx:
        if not isinstance(item, str):
            raise RpcFault(RPC_TYPE_ERROR, f"JSON value of type {_json_type(item)} is not of expected type string")
        if len(item) == 64:
            txid = _hash_arg(item, "txid")
            entry = self.node.mempool_entries().get(txid)
            if entry is None:
                raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, f"Transaction {item} not in mempool.")
            return entry.tx
        try:
            return parse_tx(bytes.fromhex(item))
        except (ValueError, DecodeError):
            raise RpcFault(RPC_DESERIALIZATION_ERROR, f"Transaction decode failed for {item}") from None

    def submitblock(self, raw: list[Any]) -> object:
        hexdata = _Args(raw).get(0, "str")
        try:
            return self.node.submit_block(bytes.fromhex(hexdata))
        except (ValueError, DecodeError):
            raise RpcFault(RPC_DESERIALIZATION_ERROR, "Block decode failed") from None

    def estimatesmartfee(self, raw: list[Any]) -> object:
        args = _Args(raw)
        target = args.get(0, "int")
        mode = args.get(1, "str", "economical")
        if not 1 <= target <= 1008:
            raise RpcFault(RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008")
        if mode.lower() not in ("unset", "economical", "conservative"):
            raise RpcFault(RPC_INVALID_PARAMETER, "Invalid estimate_mode parameter, must be one of: \"unset\", \"economical\", \"conservative\"")
        rate = self.node.estimate_fee_rate(target)
        blocks = max(target, 2)
        if rate is None:
            return {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
        return {"feerate": Btc(rate), "blocks": blocks}

    def getchaintips(self, _a: list[Any]) -> object:
        return [{"height": height, "hash": block_hash[::-1].hex(), "branchlen": branch, "status": status}
                for block_hash, height, branch, status in self.node.chain_tips()]

    def getdescriptorinfo(self, raw: list[Any]) -> object:
        descriptor = _Args(raw).get(0, "str")
        try:
            body = strip_checksum(descriptor)
            ranged = is_ranged(body)
            normalised = add_checksum(descriptor_normal_form(body))
        except DecodeError as exc:
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
        return {"descriptor": normalised, "checksum": add_checksum(body).partition("#")[2], "isrange": ranged,
                "issolvable": not body.startswith(("addr(", "raw(")), "hasprivatekeys": "prv" in body}

    def deriveaddresses(self, raw: list[Any]) -> object:
        args = _Args(raw)
        descriptor = args.get(0, "str")
        range_value = raw[1] if len(raw) > 1 else None
        try:
            ranged = is_ranged(descriptor)
            if ranged and range_value is None:
                raise RpcFault(RPC_INVALID_PARAMETER, "Range must be specified for a ranged descriptor")
            if not ranged and range_value is not None:
                raise RpcFault(RPC_INVALID_PARAMETER, "Range should not be specified for an un-ranged descriptor")
            start, end = _range(range_value) if ranged else (0, 0)
            scripts = descriptor_scripts(descriptor, start, end)
        except DecodeError as exc:
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
        addresses = [script_to_address(spk) for spk, _desc in scripts]
        if any(address is None for address in addresses):
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Descriptor does not have a corresponding address")
        return addresses

    def stop(self, raw: list[Any]) -> object:
        wait_ms = _Args(raw).get(0, "int", 0)
        if self.stop_requested is not None:
            self.stop_requested()
        if wait_ms > 0:  # Core's hidden test argument: wait before answering
            time.sleep(min(wait_ms, STOP_WAIT_MS_MAX) / 1000)
        return "Bitcoin Core stopping"

    def _wait_until(self, done: Callable[[bytes, int], bool], timeout_ms: int) -> object:
        if timeout_ms < 0:
            raise RpcFault(RPC_MISC_ERROR, "Negative timeout")
        deadline = time.monotonic() + timeout_ms / 1000 if timeout_ms else None
        with self.node.lock:
            tip, height = self.node.best_hash, self.node.height
        while not done(tip, height):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            new_tip, height = self.node.wait_tip_changed(tip, remaining)
            if new_tip == tip:  # timed out, or the node is closing
                break
            tip = new_tip
        return {"hash": tip[::-1].hex(), "height": height}

    def waitfornewblock(self, raw: list[Any]) -> object:
        args = _Args(raw)
        timeout_ms = args.get(0, "int", 0)
        current = args.get(1, "str", None)
        start = _hash_arg(current, "current_tip") if current is not None else self.node.best_hash
        if timeout_ms < 0:
            raise RpcFault(RPC_MISC_ERROR, "Negative timeout")
        tip, height = self.node.wait_tip_changed(start, timeout_ms / 1000 if timeout_ms else None)
        return {"hash": tip[::-1].hex(), "height": height}

    def waitforblock(self, raw: list[Any]) -> object:
        args = _Args(raw)
        wanted = _hash_arg(args.get(0, "str"), "blockhash")
        return self._wait_until(lambda tip, _height: tip == wanted, args.get(1, "int", 0))

    def waitforblockheight(self, raw: list[Any]) -> object:
        args = _Args(raw)
        wanted = args.get(0, "int")
        return self._wait_until(lambda _tip, height: height >= wanted, args.get(1, "int", 0))

    def setmocktime(self, raw: list[Any]) -> object:
        timestamp = _Args(raw).get(0, "int")
        if not 0 <= timestamp <= MOCK_TIME_MAX:
            raise RpcFault(RPC_INVALID_PARAMETER, f"Mocktime must be in the range [0, {MOCK_TIME_MAX}], not {timestamp}.")
        self.node.set_mock_time(timestamp)
        return None


def parse_block_hash(raw_block: bytes) -> str:
    return sha256d(raw_block[:80])[::-1].hex()


_HARDENED_FROM_PUBLIC = re.compile(r"[xt]pub[1-9A-HJ-NP-Za-km-z]{100,}(/[0-9]+)*/[0-9]+['hH]")
_COMBO = re.compile(r"combo\((?P<key>(02|03)[0-9a-fA-F]{64}|04[0-9a-fA-F]{128})\)")


def _combo_script(body: str) -> bytes | None:
    """Core's choice among combo()'s scripts for a coinbase: P2WPKH for a compressed key, else P2PKH."""
    match = _COMBO.fullmatch(body)
    if match is None:
        return None
    key = bytes.fromhex(match.group("key"))
    key_hash = hash160(key)
    if len(key) == 33:
        return b"\x00\x14" + key_hash
    return b"\x76\xa9\x14" + key_hash + b"\x88\xac"


def _single_descriptor_script(descriptor: str) -> bytes:
    script = _descriptor_script(descriptor)
    if script is None:
        raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Invalid descriptor")
    return script


def _descriptor_script(descriptor: str) -> bytes | None:
    """Core's getScriptFromDescriptor: the one script of a descriptor, None when it does not parse."""
    try:
        body = strip_checksum(descriptor)
    except DecodeError:
        return None
    combo = _combo_script(body)
    if combo is not None:
        return combo
    if _HARDENED_FROM_PUBLIC.search(body) and "prv" not in body:
        raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Cannot derive script without private keys")
    try:
        if is_ranged(body):
            raise RpcFault(RPC_INVALID_PARAMETER, "Ranged descriptor not accepted. Maybe pass through deriveaddresses first?")
        return descriptor_scripts(body)[0][0]
    except DecodeError:
        return None


def _raw_input(item: object, default_sequence: int) -> bytes:
    """One createrawtransaction input {"txid", "vout", "sequence"?} as Core's AddInputs reads it."""
    if not isinstance(item, dict):
        raise RpcFault(RPC_TYPE_ERROR, f"JSON value of type {_json_type(item)} is not of expected type object")
    txid_text = item.get("txid")
    if not isinstance(txid_text, str):
        raise RpcFault(RPC_TYPE_ERROR, "JSON value of type null is not of expected type string")
    txid = _hash_arg(txid_text, "txid")
    vout = item.get("vout")
    if not isinstance(vout, int) or isinstance(vout, bool):
        raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, missing vout key")
    if vout > 0x7FFFFFFF:
        raise RpcFault(RPC_MISC_ERROR, "JSON integer out of range")  # UniValue's getInt<int>
    if vout < 0:
        raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, vout cannot be negative")
    sequence = item.get("sequence", default_sequence)
    if not isinstance(sequence, int) or isinstance(sequence, bool) or not 0 <= sequence <= 0xFFFFFFFF:
        raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, sequence number is out of range")
    return txid + struct.pack("<I", vout) + b"\x00" + struct.pack("<I", sequence)


def _raw_outputs(outputs: object) -> list[tuple[bytes, int]]:
    """createrawtransaction outputs, an object or an array of one-key objects, as (script, sats)."""
    if isinstance(outputs, list):
        pairs: list[tuple[str, object]] = []
        for output in outputs:
            if not isinstance(output, dict):
                raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, key-value pair not an object as expected")
            if len(output) != 1:
                raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, key-value pair must contain exactly one key")
            pairs.extend(output.items())
    elif isinstance(outputs, dict):
        pairs = list(outputs.items())
    else:
        raise RpcFault(RPC_INVALID_PARAMETER, "Invalid parameter, output argument must be non-null")
    parsed, seen = [], set()
    for name, value in pairs:
        if name in seen:
            message = "duplicate key: data" if name == "data" else f"duplicated address: {name}"
            raise RpcFault(RPC_INVALID_PARAMETER, f"Invalid parameter, {message}")
        seen.add(name)
        if name == "data":
            try:
                data = bytes.fromhex(str(value))
            except ValueError:
                raise RpcFault(RPC_INVALID_PARAMETER, f"Data must be hexadecimal string (not '{value}')") from None
            parsed.append((b"\x6a" + _push(data), 0))
            continue
        try:
            spk = address_to_script(name)
        except DecodeError:
            raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, f"Invalid Bitcoin address: {name}") from None
        parsed.append((spk, _amount_sats(value)))
    return parsed


def _push(data: bytes) -> bytes:
    """The minimal push of `data` (Core's CScript << data)."""
    if len(data) < 0x4C:
        return bytes([len(data)]) + data
    if len(data) <= 0xFF:
        return b"\x4c" + bytes([len(data)]) + data
    if len(data) <= 0xFFFF:
        return b"\x4d" + struct.pack("<H", len(data)) + data
    return b"\x4e" + struct.pack("<I", len(data)) + data


def _output_script(text: str) -> bytes:
    """generateblock's output: a descriptor, else an address (-5 when neither)."""
    script = _descriptor_script(text)
    if script is not None:
        return script
    try:
        return address_to_script(text)
    except DecodeError:
        raise RpcFault(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address or descriptor") from None


def _scan_object(item: object) -> dict[bytes, str]:
    """Core's EvalDescriptorStringOrObject: a descriptor string, or {"desc", "range"} (default [0, 1000])."""
    if isinstance(item, str):
        return scan_scripts(item, 0, SCAN_RANGE_DEFAULT)
    if not isinstance(item, dict):
        raise RpcFault(RPC_INVALID_PARAMETER, "Scan object needs to be either a string or an object")
    descriptor = item.get("desc")
    if descriptor is None:
        raise RpcFault(RPC_INVALID_PARAMETER, "Descriptor needs to be provided in scan object")
    low, high = (0, SCAN_RANGE_DEFAULT) if item.get("range") is None else parse_range(item["range"])
    if not isinstance(descriptor, str):
        raise RpcFault(RPC_TYPE_ERROR, f"JSON value of type {_json_type(descriptor)} is not of expected type string")
    return scan_scripts(descriptor, low, high)


def _range(value: object) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise RpcFault(RPC_INVALID_PARAMETER, "Range should be greater or equal than 0")
        return 0, value
    if (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                             for v in value)):
        start, end = value
        if start < 0 or end < start:
            raise RpcFault(RPC_INVALID_PARAMETER, "Range specified as [begin,end] must not have begin after end")
        return start, end
    raise RpcFault(RPC_INVALID_PARAMETER, "Range must be specified as end or as [begin,end]")


def _broadcast_fault(exc: BroadcastRejected) -> RpcFault:
    if exc.code == -22:
        return RpcFault(RPC_DESERIALIZATION_ERROR, "TX decode failed. Make sure the tx has at least one input.")
    if exc.reason == "txn-already-known":
        return RpcFault(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction outputs already in utxo set")
    if exc.reason == "max-fee-exceeded":
        return RpcFault(RPC_VERIFY_ERROR, "Fee exceeds maximum configured by user (e.g. -maxtxfee, maxfeerate)")
    if exc.reason == "bad-txns-inputs-missingorspent":
        return RpcFault(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
    return RpcFault(RPC_VERIFY_REJECTED, exc.message)


def _target_hex(bits: int) -> str:
    exponent, mantissa = bits >> 24, bits & 0x007FFFFF
    return f"{mantissa << (8 * (exponent - 3)):064x}"


def _chainwork(height: int) -> str:
    # Every regtest block at bits 0x207fffff carries work 2 (2**256 // (target + 1)); genesis too.
    return f"{2 * (height + 1):064x}"


def _varint_len(n: int) -> bytes:
    return compact_size(n)
