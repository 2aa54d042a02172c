"""Bitcoin wire formats the regtest node needs: a strict transaction parser and block building.

Pure functions over bytes. Consensus is never decided here: every block built here is judged by
libbitcoinkernel. The parser is strict (no trailing bytes) because its results key the indexes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from coffer.btc.hashes import sha256d
from coffer.btc.reader import ByteReader, compact_size
from coffer.chain.errors import DecodeError

__all__ = [
    "TxIn", "TxOut", "Tx", "parse_tx", "parse_block", "sha256d", "merkle_root", "bip34_push",
    "build_coinbase", "build_block", "header_hash", "serialize_header", "compact_size",
    "WITNESS_COMMITMENT_PREFIX", "REGTEST_BITS", "TX_BYTES_MAX",
]

TX_BYTES_MAX = 4_000_000
REGTEST_BITS = 0x207FFFFF
WITNESS_COMMITMENT_PREFIX = bytes.fromhex("6a24aa21a9ed")
NULL_TXID = b"\x00" * 32
_INPUTS_MAX = 100_000


@dataclass(frozen=True, slots=True)
class TxIn:
    prev_txid: bytes  # internal byte order
    prev_vout: int
    script_sig: bytes
    sequence: int
    witness: tuple[bytes, ...]

    @property
    def is_coinbase(self) -> bool:
        return self.prev_txid == NULL_TXID and self.prev_vout == 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class TxOut:
    value_sats: int
    script_pubkey: bytes


@dataclass(frozen=True, slots=True)
class Tx:
    version: int
    inputs: tuple[TxIn, ...]
    outputs: tuple[TxOut, ...]
    locktime: int
    raw: bytes
    txid: bytes  # internal byte order; display is reversed
    wtxid: bytes
    base_size: int

    @property
    def txid_hex(self) -> str:
        return self.txid[::-1].hex()

    @property
    def wtxid_hex(self) -> str:
        return self.wtxid[::-1].hex()

    @property
    def weight(self) -> int:
        return self.base_size * 3 + len(self.raw)

    @property
    def vsize(self) -> int:
        return (self.weight + 3) // 4

    @property
    def is_coinbase(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].is_coinbase

    @property
    def has_witness(self) -> bool:
        return any(i.witness for i in self.inputs)


class _Reader(ByteReader):
    """The strict reader with Bitcoin's little-endian fields; failures are DecodeError."""

    __slots__ = ()

    def __init__(self, data: bytes, offset: int = 0) -> None:
        super().__init__(data, error=DecodeError, offset=offset)

    def u32(self) -> int:
        return self.uint_le(4)

    def i32(self) -> int:
        return int.from_bytes(self.take(4), "little", signed=True)

    def i64(self) -> int:
        return int.from_bytes(self.take(8), "little", signed=True)  # CAmount is signed: -1 must stay -1


def _read_tx(reader: _Reader) -> Tx:
    start = reader.offset
    version = reader.i32()
    flag_pos = reader.offset
    count = reader.compact_size()
    segwit = False
    if count == 0:
        if reader.take(1) != b"\x01":
            raise DecodeError("bad segwit flag")
        segwit = True
        count = reader.compact_size()
    if count > _INPUTS_MAX:
        raise DecodeError("too many inputs")
    ins_raw = []
    for _ in range(count):
        txid = reader.take(32)
        vout = reader.u32()
        script_sig = reader.var_bytes(TX_BYTES_MAX)
        sequence = reader.u32()
        ins_raw.append((txid, vout, script_sig, sequence))
    n_out = reader.compact_size()
    if n_out > _INPUTS_MAX:
        raise DecodeError("too many outputs")
    outputs = []
    for _ in range(n_out):
        value = reader.i64()
        outputs.append(TxOut(value, reader.var_bytes(TX_BYTES_MAX)))
    outs_end = reader.offset
    witnesses: list[tuple[bytes, ...]] = [()] * count
    if segwit:
        for i in range(count):
            n_items = reader.compact_size()
            if n_items > TX_BYTES_MAX:
                raise DecodeError("witness too large")
            witnesses[i] = tuple(reader.var_bytes(TX_BYTES_MAX) for _ in range(n_items))
        if not any(witnesses):
            raise DecodeError("superfluous witness record")
    locktime_bytes = reader.take(4)
    raw = reader.data[start:reader.offset]
    if segwit:
        stripped = (reader.data[start:start + 4] + reader.data[flag_pos + 2:outs_end] + locktime_bytes)
    else:
        stripped = raw
    txid = sha256d(stripped)
    inputs = tuple(TxIn(t, v, s, q, w) for (t, v, s, q), w in zip(ins_raw, witnesses, strict=True))
    return Tx(version, inputs, tuple(outputs), int.from_bytes(locktime_bytes, "little"), raw, txid,
              sha256d(raw) if segwit else txid, len(stripped))


def parse_tx(raw: bytes) -> Tx:
    """Parse one serialized transaction; trailing bytes are an error."""
    reader = _Reader(raw)
    tx = _read_tx(reader)
    if reader.offset != len(raw):
        raise DecodeError("unexpected extra bytes after transaction")
    return tx


def parse_block(raw: bytes) -> tuple[bytes, list[Tx]]:
    """Split a serialized block into its 80-byte header and parsed transactions."""
    if len(raw) < 81:
        raise DecodeError("block too short")
    reader = _Reader(raw, 80)
    count = reader.compact_size()
    txs = [_read_tx(reader) for _ in range(count)]
    if reader.offset != len(raw):
        raise DecodeError("unexpected extra bytes after block")
    return raw[:80], txs


def merkle_root(hashes: list[bytes]) -> bytes:
    if not hashes:
        return b"\x00" * 32
    level = list(hashes)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [sha256d(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def bip34_push(height: int) -> bytes:
    """The script push of the height, exactly as Core's `CScript() << nHeight` makes it."""
    if height == 0:
        return b"\x00"
    if 1 <= height <= 16:
        return bytes([0x50 + height])
    body = bytearray()
    value = height
    while value:
        body.append(value & 0xFF)
        value >>= 8
    if body[-1] & 0x80:
        body.append(0)
    return bytes([len(body)]) + bytes(body)


def build_coinbase(height: int, value_sats: int, payout_script: bytes, witness_root: bytes | None,
                   extra_nonce: int = 0) -> bytes:
    """A coinbase paying `value_sats` to `payout_script`, with the segwit commitment when asked."""
    script_sig = bip34_push(height) + b"\x08" + extra_nonce.to_bytes(8, "little")
    outputs = struct.pack("<Q", value_sats) + compact_size(len(payout_script)) + payout_script
    n_out = 1
    if witness_root is not None:
        commitment = WITNESS_COMMITMENT_PREFIX + sha256d(witness_root + b"\x00" * 32)
        outputs += struct.pack("<Q", 0) + compact_size(len(commitment)) + commitment
        n_out = 2
    body_in = (b"\x01" + NULL_TXID + b"\xff\xff\xff\xff" + compact_size(len(script_sig)) + script_sig
               + b"\xff\xff\xff\xff")
    body_out = compact_size(n_out) + outputs
    locktime = b"\x00\x00\x00\x00"
    if witness_root is None:
        return struct.pack("<i", 2) + body_in + body_out + locktime
    witness = b"\x01\x20" + b"\x00" * 32
    return struct.pack("<i", 2) + b"\x00\x01" + body_in + body_out + witness + locktime


def serialize_header(version: int, prev_hash: bytes, merkle: bytes, time: int, bits: int, nonce: int) -> bytes:
    return struct.pack("<i", version) + prev_hash + merkle + struct.pack("<III", time, bits, nonce)


def header_hash(header: bytes) -> bytes:
    return sha256d(header)


def _target(bits: int) -> int:
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    return mantissa << (8 * (exponent - 3))


def build_block(prev_hash: bytes, height: int, time: int, coinbase_value_sats: int, payout_script: bytes,
                txs: list[Tx], bits: int = REGTEST_BITS, version: int = 0x20000000,
                extra_nonce: int = 0) -> bytes:
    """Assemble and mine a block on `prev_hash`; `txs` must already be in a valid order."""
    wtxids = [b"\x00" * 32] + [tx.wtxid for tx in txs]
    coinbase = parse_tx(build_coinbase(height, coinbase_value_sats, payout_script, merkle_root(wtxids),
                                       extra_nonce))
    all_txs = [coinbase, *txs]
    merkle = merkle_root([tx.txid for tx in all_txs])
    target = _target(bits)
    prefix = struct.pack("<i", version) + prev_hash + merkle + struct.pack("<II", time, bits)
    nonce = 0
    while True:
        header = prefix + struct.pack("<I", nonce)
        if int.from_bytes(sha256d(header), "little") <= target:
            break
        nonce += 1
    return header + compact_size(len(all_txs)) + b"".join(tx.raw for tx in all_txs)
