"""scantxoutset's scan objects as Core expands them: ranges, combo(), multipath, key origins, and
the descriptor Core infers for each script found (e.g. "pkh([0c5f9a1e/0h/0h/0]02…)#checksum").

Single-key descriptors (combo, pk, pkh, wpkh, sh(wpkh), tr with a key) are expanded here with
their key origins; any other descriptor goes through `coffer.chain.descriptors`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from embit import bip32

from coffer.chain.descriptors import add_checksum, descriptor_scripts, script_to_address, strip_checksum
from coffer.chain.errors import DecodeError
from coffer.chain.regtest.jsonrpc import RpcFault

__all__ = ["scan_scripts", "parse_range", "hash160", "SCAN_RANGE_DEFAULT", "RANGE_ITEMS_MAX"]

SCAN_RANGE_DEFAULT = 1000
RANGE_ITEMS_MAX = 1_000_000
HARDENED = 0x80000000
_RPC_INVALID_PARAMETER = -8
_RPC_INVALID_ADDRESS_OR_KEY = -5
_WRAPPERS = {"pk": ("pk",), "pkh": ("pkh",), "wpkh": ("wpkh",), "sh(wpkh": ("sh(wpkh",), "tr": ("tr",)}
_SINGLE = re.compile(r"(?P<kind>combo|pkh|pk|wpkh|sh\(wpkh|tr)\((?P<key>[^(),]+)\)\)?")
_KEY = re.compile(r"(\[(?P<origin>[0-9a-fA-F]{8}(/[0-9]+['hH]?)*)\])?(?P<base>[^/\[\]]+)(?P<path>(/[0-9<;>*'hH]+)*)")


def parse_range(value: object) -> tuple[int, int]:
    """Core's ParseDescriptorRange: N means [0, N]; both ends inclusive."""
    if isinstance(value, int) and not isinstance(value, bool):
        low, high = 0, value
    elif (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        low, high = value
        if low > high:
            raise RpcFault(_RPC_INVALID_PARAMETER, "Range specified as [begin,end] must not have begin after end")
    else:
        raise RpcFault(_RPC_INVALID_PARAMETER, "Range must be specified as end or as [begin,end]")
    if low < 0:
        raise RpcFault(_RPC_INVALID_PARAMETER, "Range should be greater or equal than 0")
    if high >> 31:
        raise RpcFault(_RPC_INVALID_PARAMETER, "End of range is too high")
    if high >= low + RANGE_ITEMS_MAX:
        raise RpcFault(_RPC_INVALID_PARAMETER, "Range is too large")
    return low, high


@dataclass(frozen=True, slots=True)
class _Key:
    sec: bytes
    origin: str  # "[fingerprint/path]" or ""


def _step(text: str) -> int:
    hardened = text[-1:] in ("'", "h", "H")
    return int(text.rstrip("'hH")) + (HARDENED if hardened else 0)


def _path_text(steps: list[int]) -> str:
    return "".join(f"/{s - HARDENED}h" if s >= HARDENED else f"/{s}" for s in steps)


def _multipath(path: str) -> list[str]:
    match = re.search(r"<([0-9;'hH]+)>", path)
    if match is None:
        return [path]
    return [path[:match.start()] + choice + path[match.end():] for choice in match.group(1).split(";")]


def _keys(expression: str, low: int, high: int, original: str) -> list[_Key]:
    match = _KEY.fullmatch(expression)
    if match is None:
        raise DecodeError("key")
    base, path = match.group("base"), match.group("path") or ""
    origin_fp, origin_steps = "", []
    if match.group("origin"):
        parts = match.group("origin").split("/")
        origin_fp, origin_steps = parts[0].lower(), [_step(p) for p in parts[1:]]
    if re.fullmatch(r"0[23][0-9a-fA-F]{64}|04[0-9a-fA-F]{128}", base):
        origin = f"[{origin_fp}{_path_text(origin_steps)}]" if origin_fp else ""
        return [_Key(bytes.fromhex(base), origin)]
    try:
        root = bip32.HDKey.from_string(base)
    except Exception as exc:  # embit raises several types for a bad extended key
        raise DecodeError("key") from exc
    fingerprint = origin_fp or root.my_fingerprint.hex()
    keys = []
    for one_path in _multipath(path):
        texts = [t for t in one_path.split("/") if t]
        indexes = range(low, high + 1) if texts and texts[-1].startswith("*") else [None]
        for index in indexes:
            steps = [_step(t.replace("*", str(index))) for t in texts]
            if any(s >= HARDENED for s in steps) and not root.is_private:
                raise RpcFault(_RPC_INVALID_ADDRESS_OR_KEY, f"Cannot derive script without private keys: '{original}'")
            child = root.derive(steps) if steps else root
            public = child.to_public() if child.is_private else child
            keys.append(_Key(public.key.sec(), f"[{fingerprint}{_path_text(origin_steps + steps)}]"))
    return keys


def hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def _single_key_scripts(kind: str, key: _Key) -> list[tuple[bytes, str]]:
    name = f"{key.origin}{key.sec.hex()}"
    pk = (bytes([len(key.sec)]) + key.sec + b"\xac", f"pk({name})")
    pkh = (b"\x76\xa9\x14" + hash160(key.sec) + b"\x88\xac", f"pkh({name})")
    wpkh = (b"\x00\x14" + hash160(key.sec), f"wpkh({name})")
    sh_wpkh = (b"\xa9\x14" + hash160(wpkh[0]) + b"\x87", f"sh(wpkh({name}))")
    compressed = len(key.sec) == 33
    choices = {"pk": [pk], "pkh": [pkh], "wpkh": [wpkh] if compressed else [], "sh(wpkh": [sh_wpkh] if compressed else [],
               "combo": [pk, pkh, wpkh, sh_wpkh] if compressed else [pk, pkh]}
    return [(script, add_checksum(desc)) for script, desc in choices.get(kind, [])]


def _inferred(script: bytes) -> str:
    address = script_to_address(script)
    return add_checksum(f"addr({address})" if address is not None else f"raw({script.hex()})")


def scan_scripts(descriptor: str, low: int, high: int) -> dict[bytes, str]:
    """scriptPubKey -> the descriptor Core reports for it, for one scan descriptor over [low, high]."""
    try:
        body = strip_checksum(descriptor)
    except DecodeError as exc:
        raise RpcFault(_RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
    single = _SINGLE.fullmatch(body)
    if single is not None and single.group("kind") != "tr" and (single.group("kind") != "sh(wpkh" or body.endswith("))")):
        try:
            keys = _keys(single.group("key"), low, high, descriptor)
        except DecodeError:
            raise RpcFault(_RPC_INVALID_ADDRESS_OR_KEY, f"key '{single.group('key')}' is not valid") from None
        return {script: desc for key in keys for script, desc in _single_key_scripts(single.group("kind"), key)}
    try:
        return {script: _inferred(script) if body.startswith(("addr(", "raw(")) else desc
                for script, desc in descriptor_scripts(body, low, high)}
    except DecodeError as exc:
        raise RpcFault(_RPC_INVALID_ADDRESS_OR_KEY, str(exc)) from None
