"""Stand-alone verifier of Coffer's proof of reserves and liabilities (`coffer-verify`).

Anyone can run this module without the rest of Coffer: it imports only the standard library,
PyNaCl (Ed25519), coincurve (secp256k1), embit, and Coffer's own Bitcoin helpers `coffer.btc`
(hashes, the strict byte reader, scripts, BIP-322; themselves only embit and coincurve). It must
never import another Coffer module (no service, no key holder's code, not `coffer.btc.bip322_sign`),
open a database or serve anything: a client who distrusts the exchange must be able to read all
of it.

What it checks, each failure raising `VerificationFailed(check, reason)` with a clear reason:
- a client's inclusion proof against a published root (their leaves, the sibling path, the sums);
- a whole liabilities tree in the BitMEX file format (every node's digest and sum, the total);
- the reserves document: every address's script, balance and total, and every proof of control
  (BIP-322 signatures, simple and full formats, over a challenge bound to height and block hash);
- the reserves against a Bitcoin Core JSON-RPC node at the snapshot height;
- the solvency statement's Ed25519 signature and the hash chain of the public log.

Hash formats follow BitMEX's proof-of-liabilities tool so their validator accepts Coffer's files:
    sub_nonce   = SHA256(account_nonce || u64le(height) || u64le(account_number))
    leaf_digest = HMAC-SHA256(key=sub_nonce, u64le(value) || u64le(leaf_index))
    node_digest = SHA256(left_digest || u64le(left_value) || right_digest || u64le(right_value))
Values are unsigned 64-bit: a negative liability cannot be encoded and no sum may overflow.

A client's inclusion proof (binary, all integers little-endian, no trailing bytes):
    "CPIP" | u8 version=1 | u8 len | asset (ASCII [A-Z0-9]) | u64 height | u64 account_number
    | u8 depth | u8 k (1..64) | k x (u64 leaf_index, u64 value), indices strictly increasing
    | u16 s | s x (32-byte digest, u64 value)
The siblings are those `sibling_positions(indices, depth)` lists: level by level from the leaves,
left to right, skipping every node the proof's own leaves let the client compute.
The published root per asset (snapshot.json, and the signed statement) is (root, total, leaf_count).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import re
import struct
import sys
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from coincurve import PublicKey
from embit.script import address_to_scriptpubkey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from coffer.btc import bip322
from coffer.btc.errors import Bip322Invalid, Bip322Unsupported
from coffer.btc.reader import ByteReader

__all__ = [
    "VerificationFailed", "UnsupportedScript",
    "U64_MAX", "DEPTH_MAX", "PROOF_LEAVES_MAX", "PROOF_BYTES_MAX", "NONCE_BYTES",
    "sub_nonce", "leaf_digest", "node_digest", "sibling_positions",
    "InclusionProof", "ProofLeaf", "ProofSibling", "PublishedRoot", "InclusionResult",
    "parse_inclusion_proof", "serialize_inclusion_proof", "verify_inclusion",
    "inclusion_proof_to_json", "parse_inclusion_proof_json",
    "LiabilitiesFile", "parse_liabilities_file", "check_liabilities_tree", "scan_liabilities_file",
    "canonical_json", "reserves_challenge", "verify_reserves_document", "verify_reserves_rpc",
    "statement_message", "verify_statement", "log_entry_message", "log_entry_digest", "verify_log",
    "verify_log_entry",
    "bip322_verify",
    "main",
]

U64_MAX = 2**64 - 1
DEPTH_MAX = 48                # 2**48 leaves: far above any exchange's client count
PROOF_LEAVES_MAX = 64         # parts one account's balance may be split into
PROOF_BYTES_MAX = 64 * 1024
NONCE_BYTES = 32
ASSET_PATTERN = re.compile(r"^[A-Z0-9]{1,16}$")
PROOF_MAGIC = b"CPIP"
PROOF_VERSION = 1
STATEMENT_FORMAT = "coffer-por-statement/1"
LOG_FORMAT = "coffer-por-log/1"
RESERVES_FORMAT = "coffer-por-reserves/1"
LOG_ENTRIES_MAX = 1_000_000
RPC_TIMEOUT_S = 60.0
ZERO_HASH = "00" * 32


class VerificationFailed(Exception):
    """A check failed. `check` names which one, `reason` says why, in words a client understands."""

    def __init__(self, check: str, reason: str) -> None:
        super().__init__(f"{check}: {reason}")
        self.check = check
        self.reason = reason


class UnsupportedScript(VerificationFailed):
    """A BIP-322 signature for a script type this verifier does not evaluate."""


def _fail(check: str, reason: str) -> VerificationFailed:
    return VerificationFailed(check, reason)


# ---------------------------------------------------------------- tree primitives


def _u64(value: int, what: str) -> bytes:
    if not 0 <= value <= U64_MAX:
        raise _fail("encoding", f"{what} {value} is not an unsigned 64-bit integer")
    return struct.pack("<Q", value)


def sub_nonce(account_nonce: bytes, height: int, account_number: int) -> bytes:
    """The per-snapshot key of one account, derived from its lifetime account nonce."""
    if len(account_nonce) != NONCE_BYTES:
        raise _fail("nonce", f"an account nonce is {NONCE_BYTES} bytes, not {len(account_nonce)}")
    return hashlib.sha256(account_nonce + _u64(height, "height") + _u64(account_number, "account")).digest()


def leaf_digest(key: bytes, value: int, index: int) -> bytes:
    return hmac.digest(key, _u64(value, "leaf value") + _u64(index, "leaf index"), "sha256")


def node_digest(left_hash: bytes, left_value: int, right_hash: bytes, right_value: int) -> bytes:
    return hashlib.sha256(left_hash + _u64(left_value, "value") + right_hash + _u64(right_value, "value")).digest()


def _parent_value(left_value: int, right_value: int, check: str) -> int:
    total = left_value + right_value
    if total > U64_MAX:
        raise _fail(check, "a node's sum overflows 64 bits")
    return total


def sibling_positions(indices: Sequence[int], depth: int) -> list[tuple[int, int]]:
    """(level, position) of every sibling a multi-leaf proof must carry, in canonical order.

    Level 0 are the leaves. A node the proof can compute (an ancestor of one of its leaves) is
    never sent; the rest are listed level by level, left to right.
    """
    known = sorted(set(indices))
    needed: list[tuple[int, int]] = []
    for level in range(depth):
        known_set = set(known)
        for position in known:
            if position ^ 1 not in known_set:
                needed.append((level, position ^ 1))
        known = sorted({position >> 1 for position in known})
    return needed


# ---------------------------------------------------------------- inclusion proofs


@dataclass(frozen=True, slots=True)
class ProofLeaf:
    index: int
    value: int


@dataclass(frozen=True, slots=True)
class ProofSibling:
    digest: bytes
    value: int


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """One client's leaves and the siblings on their paths; never the whole tree."""

    asset: str
    height: int
    account_number: int
    depth: int
    leaves: tuple[ProofLeaf, ...]
    siblings: tuple[ProofSibling, ...]


@dataclass(frozen=True, slots=True)
class PublishedRoot:
    """What the exchange publishes for one asset: root digest, total liabilities, leaf count."""

    asset: str
    height: int
    root: bytes
    total: int
    leaf_count: int


@dataclass(frozen=True, slots=True)
class InclusionResult:
    account_number: int
    balance: int
    leaf_values: tuple[int, ...]
    total: int


def serialize_inclusion_proof(proof: InclusionProof) -> bytes:
    asset = proof.asset.encode("ascii")
    out = [PROOF_MAGIC, bytes([PROOF_VERSION, len(asset)]), asset,
           _u64(proof.height, "height"), _u64(proof.account_number, "account"),
           bytes([proof.depth, len(proof.leaves)])]
    for leaf in proof.leaves:
        out += [_u64(leaf.index, "leaf index"), _u64(leaf.value, "leaf value")]
    out.append(struct.pack("<H", len(proof.siblings)))
    for sibling in proof.siblings:
        out += [sibling.digest, _u64(sibling.value, "sibling value")]
    return b"".join(out)


def _proof_format_error(reason: str) -> VerificationFailed:
    return _fail("proof format", f"malformed proof: {reason}")


def parse_inclusion_proof(data: bytes) -> InclusionProof:
    """Strict parser: right magic and version, bounded counts, ordered leaves, no trailing bytes."""
    if len(data) > PROOF_BYTES_MAX:
        raise _fail("proof format", "the proof is too large")
    reader = ByteReader(data, error=_proof_format_error)
    if reader.take(4) != PROOF_MAGIC:
        raise _fail("proof format", "not a Coffer inclusion proof (bad magic)")
    if reader.u8() != PROOF_VERSION:
        raise _fail("proof format", "unknown proof version")
    asset = reader.take(reader.u8()).decode("ascii", errors="replace")
    if not ASSET_PATTERN.match(asset):
        raise _fail("proof format", "invalid asset name")
    height, account, depth, leaf_count = reader.uint_le(8), reader.uint_le(8), reader.u8(), reader.u8()
    if depth > DEPTH_MAX:
        raise _fail("proof format", "tree depth out of range")
    if not 1 <= leaf_count <= PROOF_LEAVES_MAX:
        raise _fail("proof format", "leaf count out of range")
    leaves = tuple(ProofLeaf(reader.uint_le(8), reader.uint_le(8)) for _ in range(leaf_count))
    indices = [leaf.index for leaf in leaves]
    if indices != sorted(set(indices)) or indices[-1] >= 1 << depth:
        raise _fail("proof format", "leaf indices must be distinct, increasing and inside the tree")
    sibling_count = reader.uint_le(2)
    if sibling_count > leaf_count * max(depth, 1):
        raise _fail("proof format", "too many siblings")
    siblings = tuple(ProofSibling(reader.take(32), reader.uint_le(8)) for _ in range(sibling_count))
    reader.finish()
    return InclusionProof(asset, height, account, depth, leaves, siblings)


def inclusion_proof_to_json(proof: InclusionProof) -> str:
    """The same proof as canonical JSON (for browsers): hex digests, integers as numbers."""
    return canonical_json({
        "format": "coffer-por-proof/1", "asset": proof.asset, "height": proof.height,
        "account_number": proof.account_number, "depth": proof.depth,
        "leaves": [[leaf.index, leaf.value] for leaf in proof.leaves],
        "siblings": [[sibling.digest.hex(), sibling.value] for sibling in proof.siblings]}).decode()


def parse_inclusion_proof_json(text: str) -> InclusionProof:
    """Strict: exact keys, integer ranges, 32-byte digests; the result re-encodes to the same bytes."""
    data = _strict_json(text, "proof format")
    keys = {"format", "asset", "height", "account_number", "depth", "leaves", "siblings"}
    if not isinstance(data, dict) or set(data) != keys or data["format"] != "coffer-por-proof/1":
        raise _fail("proof format", "unexpected or missing fields")
    try:
        leaves = [ProofLeaf(_check_int(i, "proof format", "index"), _check_int(v, "proof format", "value"))
                  for i, v in data["leaves"]]
        siblings = [ProofSibling(_hex(d, "proof format"), _check_int(v, "proof format", "value"))
                    for d, v in data["siblings"]]
    except (TypeError, ValueError):
        raise _fail("proof format", "leaves and siblings are pairs") from None
    if not isinstance(data["asset"], str) or not ASSET_PATTERN.match(data["asset"]):
        raise _fail("proof format", "invalid asset name")
    depth = _check_int(data["depth"], "proof format", "depth", bits=8)
    if any(len(sibling.digest) != 32 for sibling in siblings) or len(siblings) > 0xFFFF or len(leaves) > 255:
        raise _fail("proof format", "malformed sibling or too many entries")
    proof = InclusionProof(data["asset"], _check_int(data["height"], "proof format", "height"),
                           _check_int(data["account_number"], "proof format", "account"), depth,
                           tuple(leaves), tuple(siblings))
    return parse_inclusion_proof(serialize_inclusion_proof(proof))  # one set of rules for both forms


def _fold(proof: InclusionProof, digests: dict[int, tuple[bytes, int]]) -> tuple[bytes, int]:
    """Compute the root from the leaf nodes and the carried siblings."""
    positions = sibling_positions([leaf.index for leaf in proof.leaves], proof.depth)
    if len(positions) != len(proof.siblings):
        raise _fail("inclusion", f"the proof carries {len(proof.siblings)} siblings, the path needs {len(positions)}")
    siblings = iter(zip(positions, proof.siblings, strict=True))
    level_nodes = dict(digests)
    pending = next(siblings, None)
    for level in range(proof.depth):
        while pending is not None and pending[0][0] == level:
            (_, position), sibling = pending
            level_nodes[position] = (sibling.digest, sibling.value)
            pending = next(siblings, None)
        parents: dict[int, tuple[bytes, int]] = {}
        for position in sorted(level_nodes):
            if position & 1:
                continue
            left, right = level_nodes[position], level_nodes[position | 1]
            parents[position >> 1] = (node_digest(left[0], left[1], right[0], right[1]),
                                      _parent_value(left[1], right[1], "inclusion"))
        level_nodes = parents
    return level_nodes[0]


def verify_inclusion(proof: InclusionProof, account_nonce: bytes, published: PublishedRoot, *,
                     expected_balance: int | None = None) -> InclusionResult:
    """Check a client's proof against the published root; raises VerificationFailed."""
    if (proof.asset, proof.height) != (published.asset, published.height):
        raise _fail("inclusion", f"the proof is for {proof.asset} at height {proof.height}, "
                    f"the published root for {published.asset} at height {published.height}")
    if published.leaf_count != 1 << proof.depth:
        raise _fail("inclusion", "the proof's depth does not match the published tree size")
    key = sub_nonce(account_nonce, proof.height, proof.account_number)
    leaves = {leaf.index: (leaf_digest(key, leaf.value, leaf.index), leaf.value) for leaf in proof.leaves}
    root, total = _fold(proof, leaves)
    if root != published.root:
        raise _fail("inclusion", "the computed root differs from the published root: "
                    "your leaves or the path were altered, or you are not in this tree")
    if total != published.total:
        raise _fail("inclusion", f"the path sums to {total}, the published total is {published.total}")
    balance = sum(leaf.value for leaf in proof.leaves)
    if expected_balance is not None and balance != expected_balance:
        raise _fail("inclusion", f"the tree holds {balance} for your account, your balance is {expected_balance}")
    return InclusionResult(proof.account_number, balance, tuple(leaf.value for leaf in proof.leaves), total)


# ---------------------------------------------------------------- BitMEX-format liabilities file


@dataclass(frozen=True, slots=True)
class LiabilitiesFile:
    """A whole tree as in BitMEX's format: levels[0] are the leaves, levels[-1] is [root]."""

    height: int
    levels: tuple[tuple[tuple[bytes, int], ...], ...]

    @property
    def root(self) -> bytes:
        return self.levels[-1][0][0]

    @property
    def total(self) -> int:
        return self.levels[-1][0][1]


_LINE = re.compile(r"^([0-9a-f]{64}),(0|[1-9][0-9]{0,19})$")


def parse_liabilities_file(text: str) -> LiabilitiesFile:
    """Read the format from its description: `block_height:N`, then `hash,value` per node,
    root first, then each level left to right; the leaf level has a power-of-two length."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].startswith("block_height:"):
        raise _fail("liabilities file", "the first line must be block_height:<height>")
    height_text = lines[0][len("block_height:"):]
    if not re.fullmatch(r"0|[1-9][0-9]{0,19}", height_text):
        raise _fail("liabilities file", "the block height is not a number")
    rows: list[list[tuple[bytes, int]]] = []
    width = 1
    current: list[tuple[bytes, int]] = []
    for number, line in enumerate(lines[1:], start=2):
        match = _LINE.match(line)
        if match is None:
            raise _fail("liabilities file", f"line {number} is not <64 hex digits>,<value>")
        value = int(match.group(2))
        if value > U64_MAX:
            raise _fail("liabilities file", f"line {number}: value does not fit 64 bits")
        current.append((bytes.fromhex(match.group(1)), value))
        if len(current) == width:
            rows.append(current)
            current, width = [], width * 2
    if current or not rows:
        raise _fail("liabilities file", "the leaf level is incomplete (leaf count must be a power of two)")
    rows.reverse()
    return LiabilitiesFile(int(height_text), tuple(tuple(row) for row in rows))


def check_liabilities_tree(tree: LiabilitiesFile) -> None:
    """Every inner node is the digest and the sum of its two children."""
    for level in range(1, len(tree.levels)):
        below, nodes = tree.levels[level - 1], tree.levels[level]
        for position, (digest, value) in enumerate(nodes):
            left, right = below[2 * position], below[2 * position + 1]
            if value != _parent_value(left[1], right[1], "liabilities tree"):
                raise _fail("liabilities tree", f"level {level} node {position}: value is not the sum of its children")
            if digest != node_digest(left[0], left[1], right[0], right[1]):
                raise _fail("liabilities tree", f"level {level} node {position}: digest does not match its children")


def scan_liabilities_file(tree: LiabilitiesFile, account_number: int, account_nonce: bytes) -> list[ProofLeaf]:
    """A client's own leaves in a whole tree, found by recomputing every leaf digest."""
    key = sub_nonce(account_nonce, tree.height, account_number)
    return [ProofLeaf(index, value) for index, (digest, value) in enumerate(tree.levels[0])
            if hmac.compare_digest(leaf_digest(key, value, index), digest)]


# ---------------------------------------------------------------- statement and log


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, ASCII; floats refused (money is integers)."""
    def check(item: Any, depth: int) -> None:
        if depth > 32 or isinstance(item, float):
            raise _fail("encoding", "a value with no canonical encoding")
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    raise _fail("encoding", "object keys must be strings")
                check(sub, depth + 1)
        elif isinstance(item, list):
            for sub in item:
                check(sub, depth + 1)
    check(value, 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _strict_json(text: str | bytes, what: str) -> Any:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise _fail(what, f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_floats(text: str) -> Any:
        raise _fail(what, "floats are not allowed; amounts are integers")

    try:
        return json.loads(text, object_pairs_hook=no_duplicates, parse_float=no_floats,
                          parse_constant=no_floats)
    except ValueError as exc:
        raise _fail(what, f"not valid JSON ({exc})") from None


def statement_message(statement: Mapping[str, Any]) -> bytes:
    return STATEMENT_FORMAT.encode() + b"\n" + canonical_json(dict(statement))


def _ed25519_verify(public_key: bytes, message: bytes, signature: bytes, check: str) -> None:
    if len(public_key) != 32 or len(signature) != 64:
        raise _fail(check, "Ed25519 key must be 32 bytes and signature 64 bytes")
    try:
        VerifyKey(public_key).verify(message, signature)
    except (BadSignatureError, ValueError):
        raise _fail(check, "the Ed25519 signature does not verify under the group key") from None


_STATEMENT_KEYS = {"format", "asset", "chain", "height", "block_hash", "liabilities_root",
                   "liabilities_total", "leaf_count", "reserves_total", "reserves_digest", "solvent"}


def verify_statement(statement: Mapping[str, Any], signature: bytes, public_key: bytes) -> None:
    """The statement is well formed, says solvent only when reserves cover liabilities, and is signed."""
    if set(statement) != _STATEMENT_KEYS or statement.get("format") != STATEMENT_FORMAT:
        raise _fail("statement", "unexpected or missing fields")
    reserves, liabilities = statement["reserves_total"], statement["liabilities_total"]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v for v in (reserves, liabilities)):
        raise _fail("statement", "totals must be non-negative integers")
    if statement["solvent"] is not (reserves >= liabilities):
        raise _fail("statement", "the solvent flag contradicts the totals")
    _ed25519_verify(public_key, statement_message(statement), signature, "statement signature")
    if not statement["solvent"]:
        raise _fail("solvency", f"reserves {reserves} are below liabilities {liabilities}")


def log_entry_message(seq: int, prev: str, statement: Mapping[str, Any]) -> bytes:
    body = {"format": LOG_FORMAT, "seq": seq, "prev": prev, "statement": dict(statement)}
    return LOG_FORMAT.encode() + b"\n" + canonical_json(body)


def log_entry_digest(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(LOG_FORMAT.encode() + b"\n" + canonical_json(dict(entry))).hexdigest()


def verify_log_entry(number: int, prev: str, entry: Any, public_key: bytes) -> str:
    """Entry `number` of the log: its fields, its place in the chain and its signature; returns its digest."""
    if not isinstance(entry, dict) or set(entry) != {"seq", "prev", "statement", "signature"}:
        raise _fail("log", f"entry {number}: unexpected or missing fields")
    if entry["seq"] != number:
        raise _fail("log", f"entry {number}: sequence number {entry['seq']} breaks the chain")
    if entry["prev"] != prev:
        raise _fail("log", f"entry {number}: previous digest does not match entry {number - 1}")
    signature = _hex(entry["signature"], "log")
    _ed25519_verify(public_key, log_entry_message(number, prev, entry["statement"]), signature,
                    f"log entry {number} signature")
    return log_entry_digest(entry)


def verify_log(lines: Iterable[str], public_key: bytes) -> list[dict[str, Any]]:
    """Each entry names the digest of the one before it and is signed by the group key."""
    prev = ZERO_HASH
    entries: list[dict[str, Any]] = []
    for number, line in enumerate(lines):
        if number >= LOG_ENTRIES_MAX:
            raise _fail("log", "too many entries")
        entry = _strict_json(line, "log")
        prev = verify_log_entry(number, prev, entry, public_key)
        entries.append(entry)
    return entries


def _hex(value: Any, check: str) -> bytes:
    if not isinstance(value, str) or not re.fullmatch(r"(?:[0-9a-f]{2})*", value):
        raise _fail(check, "expected lower-case hex")
    return bytes.fromhex(value)


# ---------------------------------------------------------------- BIP-322


def bip322_verify(address: str, message: bytes, signature: str) -> str:
    """Verify a simple or full BIP-322 signature for `address`; returns the format name."""
    try:
        return bip322.verify(address, message, signature)
    except Bip322Unsupported as exc:
        raise UnsupportedScript("bip322", str(exc)) from None
    except Bip322Invalid as exc:
        raise _fail("bip322", str(exc)) from None


# ---------------------------------------------------------------- Ethereum (Keccak-256, EIP-191)

_KECCAK_RC = [
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000, 0x000000000000808B,
    0x0000000080000001, 0x8000000080008081, 0x8000000000008009, 0x000000000000008A, 0x0000000000000088,
    0x0000000080008009, 0x000000008000000A, 0x000000008000808B, 0x800000000000008B, 0x8000000000008089,
    0x8000000000008003, 0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
]
_KECCAK_ROT = [[0, 36, 3, 41, 18], [1, 44, 10, 45, 2], [62, 6, 43, 15, 61], [28, 55, 25, 21, 56], [27, 20, 39, 8, 14]]
_KECCAK_MASK = (1 << 64) - 1


def _rol(value: int, shift: int) -> int:
    return ((value << shift) | (value >> (64 - shift))) & _KECCAK_MASK if shift else value


def _keccak_f(state: list[list[int]]) -> None:
    for rc in _KECCAK_RC:
        c = [state[x][0] ^ state[x][1] ^ state[x][2] ^ state[x][3] ^ state[x][4] for x in range(5)]
        d = [c[(x - 1) % 5] ^ _rol(c[(x + 1) % 5], 1) for x in range(5)]
        for x in range(5):
            for y in range(5):
                state[x][y] ^= d[x]
        b = [[0] * 5 for _ in range(5)]
        for x in range(5):
            for y in range(5):
                b[y][(2 * x + 3 * y) % 5] = _rol(state[x][y], _KECCAK_ROT[x][y])
        for x in range(5):
            for y in range(5):
                state[x][y] = b[x][y] ^ (~b[(x + 1) % 5][y] & b[(x + 2) % 5][y])
        state[0][0] ^= rc


def keccak256(data: bytes) -> bytes:
    """Keccak-256 as Ethereum uses it (not SHA3-256: the padding differs)."""
    rate = 136
    pad = rate - len(data) % rate
    padded = bytes(data) + (b"\x81" if pad == 1 else b"\x01" + b"\x00" * (pad - 2) + b"\x80")
    state = [[0] * 5 for _ in range(5)]
    for offset in range(0, len(padded), rate):
        block = padded[offset:offset + rate]
        for i in range(rate // 8):
            state[i % 5][i // 5] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _keccak_f(state)
    return b"".join(state[i % 5][i // 5].to_bytes(8, "little") for i in range(4))


def eth_personal_digest(message: bytes) -> bytes:
    """EIP-191 version 0x45 (personal_sign) digest of a message."""
    return keccak256(b"\x19Ethereum Signed Message:\n" + str(len(message)).encode() + message)


def eth_address_of(public_key: bytes) -> str:
    """Lower-case 0x address of a secp256k1 public key (any encoding coincurve reads)."""
    return "0x" + keccak256(PublicKey(public_key).format(compressed=False)[1:])[-20:].hex()


_ETH_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def eth_verify(address: str, message: bytes, signature_hex: str) -> None:
    """A personal_sign signature (r || s || v, v in 27/28 or 0/1) by the key of `address`."""
    if not _ETH_ADDRESS.match(address):
        raise _fail("eth signature", f"invalid address {address!r}")
    raw = _hex(signature_hex.removeprefix("0x").lower(), "eth signature")
    if len(raw) != 65 or raw[64] not in (0, 1, 27, 28):
        raise _fail("eth signature", "a signature is 65 bytes r || s || v")
    if int.from_bytes(raw[32:64], "big") > _SECP256K1_ORDER // 2:
        raise _fail("eth signature", "high-s signature (EIP-2) refused")
    try:
        recovered = PublicKey.from_signature_and_message(raw[:64] + bytes([raw[64] % 27]),
                                                         eth_personal_digest(message), hasher=None)
    except (ValueError, TypeError):
        raise _fail("eth signature", "invalid signature") from None
    if eth_address_of(recovered.format()) != address.lower():
        raise _fail("eth signature", "invalid signature: signed by another key")


_SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


# ---------------------------------------------------------------- reserves


def reserves_challenge(asset: str, chain: str, height: int, block_hash: str) -> bytes:
    """The message every proof of control signs: bound to the snapshot height and block hash."""
    return f"Coffer proof of reserves\nasset: {asset}\nchain: {chain}\nheight: {height}\nblock: {block_hash}\n".encode()


_RESERVES_KEYS = {"format", "asset", "chain", "height", "block_hash", "challenge", "descriptors",
                  "entries", "key_proofs", "total"}
_ENTRY_KEYS = {"address", "descriptor", "script_pubkey", "balance", "kind", "proofs"}


def _check_int(value: Any, check: str, what: str, *, bits: int = 64) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
        raise _fail(check, f"{what} must be a non-negative {bits}-bit integer")
    return value


def verify_reserves_document(doc: Mapping[str, Any]) -> int:
    """Fields, scripts, balances and every proof of control; returns the total in minor units."""
    check = "reserves"
    if set(doc) != _RESERVES_KEYS or doc["format"] != RESERVES_FORMAT:
        raise _fail(check, "unexpected or missing fields")
    height = _check_int(doc["height"], check, "height")
    challenge = reserves_challenge(doc["asset"], doc["chain"], height, doc["block_hash"])
    if doc["challenge"] != challenge.decode():
        raise _fail(check, "the challenge is not bound to this snapshot's height and block hash")
    total = 0
    seen: set[str] = set()
    for number, entry in enumerate(doc["entries"]):
        where = f"reserves entry {number}"
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS:
            raise _fail(where, "unexpected or missing fields")
        # one address or script twice would count the same coins twice (as would a repeated descriptor)
        for item in filter(None, (entry["address"], entry["script_pubkey"], entry["descriptor"])):
            if item in seen:
                raise _fail(where, f"{item} listed twice")
            seen.add(item)
        total += _check_int(entry["balance"], where, "balance", bits=256)
        if doc["asset"] == "BTC":
            _check_btc_entry(entry, challenge, where)
        elif doc["asset"] == "ETH":
            _check_eth_entry(entry, challenge, where)
        else:
            raise _fail(where, f"unsupported asset {doc['asset']}")
        if not entry["proofs"]:
            raise _fail(where, f"no proof of control for {entry['address']}")
    for number, key_proof in enumerate(doc["key_proofs"]):
        where = f"key proof {number} ({key_proof.get('signer', '?')})"
        try:
            bip322_verify(key_proof["address"], challenge, key_proof["signature"])
        except VerificationFailed as exc:
            raise _fail(where, exc.reason) from None
    if total != doc["total"]:
        raise _fail(check, f"the entries sum to {total}, the document claims {doc['total']}")
    return total


def _check_btc_entry(entry: Mapping[str, Any], challenge: bytes, where: str) -> None:
    try:
        script = address_to_scriptpubkey(entry["address"]).data
    except Exception:
        raise _fail(where, "invalid address") from None
    if script.hex() != entry["script_pubkey"]:
        raise _fail(where, "the script does not belong to the address")
    if entry["descriptor"] != f"addr({entry['address']})":
        _check_key_descriptor(str(entry["descriptor"]), script, where)
    for proof in entry["proofs"]:
        try:
            bip322_verify(entry["address"], challenge, proof["signature"])
        except VerificationFailed as exc:
            raise _fail(where, f"proof of control by {proof.get('signer', '?')}: {exc.reason}") from None


def _check_key_descriptor(descriptor: str, script: bytes, where: str) -> None:
    """A key descriptor names one address: not ranged, a right checksum if any, and it derives the entry's script
    (a ranged descriptor repeated per address would let an outside scan count the same coins many times)."""
    from embit.descriptor import Descriptor
    from embit.descriptor.checksum import checksum

    body, separator, given = descriptor.partition("#")
    if not body.startswith(("wsh(", "tr(", "wpkh(")) or "*" in body:
        raise _fail(where, "unexpected descriptor: a wsh/tr/wpkh descriptor of this one address, not ranged")
    try:
        if separator and checksum(body) != given:
            raise _fail(where, "descriptor checksum does not match")
        derived = bytes(Descriptor.from_string(body).derive(0).script_pubkey().data)
    except VerificationFailed:
        raise
    except Exception:  # embit raises several types for malformed descriptors
        raise _fail(where, "descriptor does not parse") from None
    if derived != script:
        raise _fail(where, "the descriptor does not derive the address's script")


def _check_eth_entry(entry: Mapping[str, Any], challenge: bytes, where: str) -> None:
    if not _ETH_ADDRESS.match(entry["address"]) or entry["script_pubkey"] != "":
        raise _fail(where, "invalid Ethereum address entry")
    if entry["descriptor"] != f"addr({entry['address']})":
        raise _fail(where, "unexpected descriptor")
    for proof in entry["proofs"]:
        try:
            eth_verify(entry["address"], challenge, proof["signature"])
        except VerificationFailed as exc:
            raise _fail(where, f"proof of control by {proof.get('signer', '?')}: {exc.reason}") from None


# Liabilities trees hold unsigned 64-bit values: wei would overflow, so ETH trees count gwei.
# Liabilities are rounded up and reserves down, so the rounding never flatters solvency.
TREE_UNIT_SCALE = {"BTC": 1, "ETH": 10**9}


def tree_unit_scale(asset: str) -> int:
    if asset not in TREE_UNIT_SCALE:
        raise _fail("asset", f"unsupported asset {asset}")
    return TREE_UNIT_SCALE[asset]


def verify_eth_reserves_rpc(doc: Mapping[str, Any], rpc: RpcCall) -> int:
    """Each Ethereum address's balance at the snapshot block, by eth_getBalance at that number."""
    block = rpc("eth_getBlockByNumber", [hex(doc["height"]), False])
    if not block or str(block.get("hash", "")).removeprefix("0x").lower() != doc["block_hash"].removeprefix("0x").lower():
        raise _fail("node", f"block {doc['height']} on the node is not the snapshot's block")
    proven = 0
    for number, entry in enumerate(doc["entries"]):
        found = int(rpc("eth_getBalance", [entry["address"], hex(doc["height"])]), 16)
        if found != entry["balance"]:
            raise _fail(f"reserves entry {number}", f"{entry['address']} holds {found} wei on chain, "
                        f"the document claims {entry['balance']}")
        proven += found
    return proven


RpcCall = Callable[[str, list[Any]], Any]


def rpc_client(url: str, *, timeout_s: float = RPC_TIMEOUT_S) -> RpcCall:
    """A Bitcoin Core JSON-RPC client over HTTP; credentials in the URL (http://user:pass@host:port)."""
    parts = urlsplit(url)
    endpoint = f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path or '/'}"
    headers = {"Content-Type": "application/json"}
    if parts.username is not None:
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"

    def call(method: str, params: list[Any]) -> Any:
        body = json.dumps({"jsonrpc": "1.0", "id": "coffer-verify", "method": method, "params": params}).encode()
        request = urllib.request.Request(endpoint, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
                reply = json.loads(response.read(), parse_float=lambda text: text)
        except urllib.error.HTTPError as exc:
            reply = json.loads(exc.read() or b"{}", parse_float=lambda text: text)
        except OSError as exc:
            raise _fail("node", f"cannot reach the node: {exc}") from None
        if reply.get("error"):
            raise _fail("node", f"{method} failed: {reply['error']}")
        return reply.get("result")

    return call


def _btc_to_sats(amount: Any) -> int:
    text = str(amount)
    if not re.fullmatch(r"\d+(\.\d{1,8})?", text):
        raise _fail("node", f"unexpected amount {text!r}")
    whole, _, fraction = text.partition(".")
    return int(whole) * 100_000_000 + int((fraction + "00000000")[:8])


def verify_reserves_rpc(doc: Mapping[str, Any], rpc: RpcCall, *, rewind: bool = False) -> int:
    """Each entry's balance as the node sees it at the snapshot height; returns the proven total.

    scantxoutset reads the node's tip. With `rewind`, a node ahead of the snapshot is taken back
    (invalidateblock of the next block) for the scan and brought forward again (reconsiderblock):
    only on a node nothing else is using.
    """
    block_hash = rpc("getblockhash", [doc["height"]])
    if block_hash != doc["block_hash"]:
        raise _fail("node", f"block {doc['height']} is {block_hash} on the node, the snapshot says {doc['block_hash']}")
    tip = rpc("getblockcount", [])
    if tip == doc["height"]:
        return _scan_entries(doc, rpc, block_hash)
    if not rewind:
        raise _fail("node", f"the node's tip is at {tip}, not the snapshot height {doc['height']}; "
                    "rewind it (invalidateblock the next block) before scanning, or pass --rewind")
    next_hash = rpc("getblockhash", [doc["height"] + 1])
    rpc("invalidateblock", [next_hash])
    try:
        if rpc("getbestblockhash", []) != block_hash:
            raise _fail("node", "the node did not rewind to the snapshot block (another fork?)")
        return _scan_entries(doc, rpc, block_hash)
    finally:
        rpc("reconsiderblock", [next_hash])


def _scan_entries(doc: Mapping[str, Any], rpc: RpcCall, block_hash: str) -> int:
    proven = 0
    for number, entry in enumerate(doc["entries"]):
        result = rpc("scantxoutset", ["start", [f"addr({entry['address']})"]])
        if not result or not result.get("success"):
            raise _fail("node", f"scantxoutset failed for {entry['address']}")
        if result.get("bestblock", block_hash) != block_hash:
            raise _fail("node", "the node's tip moved during the scan")
        found = _btc_to_sats(result["total_amount"])
        if found != entry["balance"]:
            raise _fail(f"reserves entry {number}", f"{entry['address']} holds {found} on chain, "
                        f"the document claims {entry['balance']}")
        proven += found
    return proven


# ---------------------------------------------------------------- snapshot and command line


def load_published_roots(snapshot: Mapping[str, Any]) -> dict[str, PublishedRoot]:
    roots: dict[str, PublishedRoot] = {}
    for asset, item in snapshot["assets"].items():
        leaf_count = _check_int(item["leaf_count"], "snapshot", "leaf count")
        if leaf_count == 0 or leaf_count & (leaf_count - 1):
            raise _fail("snapshot", "leaf count must be a power of two")
        roots[asset] = PublishedRoot(asset, _check_int(snapshot["height"], "snapshot", "height"),
                                     _hex(item["liabilities_root"], "snapshot"),
                                     _check_int(item["liabilities_total"], "snapshot", "total"), leaf_count)
    return roots


def _read_json(path: Path, what: str) -> Any:
    try:
        return _strict_json(path.read_text(encoding="utf-8"), what)
    except OSError as exc:
        raise _fail(what, f"cannot read {path}: {exc.strerror}") from None


def verify_snapshot(directory: Path, public_key: bytes, *, rpc: RpcCall | None = None,
                    rewind: bool = False, eth_rpc: RpcCall | None = None) -> list[str]:
    """Everything public in a snapshot directory; returns one line per check passed."""
    passed: list[str] = []
    snapshot = _read_json(directory / "snapshot.json", "snapshot")
    roots = load_published_roots(snapshot)
    for asset, root in sorted(roots.items()):
        statement_doc = _read_json(directory / f"statement-{asset}.json", "statement")
        statement = statement_doc["statement"]
        verify_statement(statement, _hex(statement_doc["signature"], "statement"), public_key)
        published = (root.root, root.total, root.leaf_count, snapshot["height"], snapshot["block_hash"], snapshot["chain"])
        stated = (_hex(statement["liabilities_root"], "statement"), statement["liabilities_total"],
                  statement["leaf_count"], statement["height"], statement["block_hash"], statement["chain"])
        if stated != published or statement["asset"] != asset:
            raise _fail("statement", f"{asset}: the statement's root, total, size or snapshot differs from the published one")
        tree_path = directory / f"liabilities-{asset}.txt"
        if tree_path.exists():
            tree = parse_liabilities_file(tree_path.read_text(encoding="ascii"))
            check_liabilities_tree(tree)
            if (tree.height, tree.root, tree.total, len(tree.levels[0])) != (root.height, root.root, root.total, root.leaf_count):
                raise _fail("liabilities tree", f"{asset}: the tree file does not match the published root")
            passed.append(f"{asset}: liabilities tree consistent, total {tree.total}")
        reserves = _read_json(directory / f"reserves-{asset}.json", "reserves")
        total = verify_reserves_document(reserves)
        digest = hashlib.sha256(canonical_json(reserves)).hexdigest()
        if (statement["reserves_total"], statement["reserves_digest"]) != (total // tree_unit_scale(asset), digest):
            raise _fail("statement", f"{asset}: the statement does not commit to this reserves document")
        if (reserves["height"], reserves["block_hash"]) != (snapshot["height"], snapshot["block_hash"]) and asset == "BTC":
            raise _fail("reserves", f"{asset}: the reserves are for another snapshot")
        passed.append(f"{asset}: reserves {total}, every proof of control valid")
        if rpc is not None and asset == "BTC":
            passed.append(f"{asset}: node confirms {verify_reserves_rpc(reserves, rpc, rewind=rewind)} at height {reserves['height']}")
        if eth_rpc is not None and asset == "ETH":
            passed.append(f"{asset}: node confirms {verify_eth_reserves_rpc(reserves, eth_rpc)} wei at block {reserves['height']}")
        passed.append(f"{asset}: statement signed, solvent ({total} >= {statement['liabilities_total']})")
    log_path = directory / "log.jsonl"
    if log_path.exists():
        entries = verify_log(log_path.read_text(encoding="utf-8").splitlines(), public_key)
        passed.append(f"log: {len(entries)} entries, chain intact")
    return passed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coffer-verify", description="Verify Coffer's proof of reserves and liabilities.")
    parser.add_argument("snapshot", type=Path, help="published snapshot directory")
    parser.add_argument("--group-key", required=True, help="the exchange's Ed25519 group key (hex), pinned by you")
    parser.add_argument("--proof", type=Path, help="your inclusion proof file")
    parser.add_argument("--account", type=int, help="your account number (with --account-nonce, scans the tree file)")
    parser.add_argument("--account-nonce", help="your lifetime account nonce (hex), from your security centre")
    parser.add_argument("--balance", type=int, help="your balance at the snapshot height, to compare")
    parser.add_argument("--asset", default="BTC")
    parser.add_argument("--rpc", help="Bitcoin Core JSON-RPC URL, http://user:pass@host:port, to check reserves")
    parser.add_argument("--eth-rpc", help="Ethereum JSON-RPC URL, to check the ETH reserves at their block")
    parser.add_argument("--rewind", action="store_true",
                        help="take a node that is ahead back to the snapshot height for the scan (changes the node)")
    return parser


def _client_checks(args: argparse.Namespace, directory: Path) -> list[str]:
    nonce = _hex(args.account_nonce, "nonce")
    roots = load_published_roots(_read_json(directory / "snapshot.json", "snapshot"))
    if args.asset not in roots:
        raise _fail("inclusion", f"no published root for {args.asset}")
    if args.proof is not None:
        raw = args.proof.read_bytes()
        proof = (parse_inclusion_proof_json(raw.decode("utf-8", errors="replace")) if raw[:1] == b"{"
                 else parse_inclusion_proof(raw))
        result = verify_inclusion(proof, nonce, roots[args.asset], expected_balance=args.balance)
        return [f"{args.asset}: your {len(result.leaf_values)} leaves hold {result.balance}, included in the root"]
    if args.account is None:
        raise _fail("inclusion", "pass --proof, or --account to scan the published tree")
    tree = parse_liabilities_file((directory / f"liabilities-{args.asset}.txt").read_text(encoding="ascii"))
    leaves = scan_liabilities_file(tree, args.account, nonce)
    found = sum(leaf.value for leaf in leaves)
    if args.balance is not None and found != args.balance:
        raise _fail("inclusion", f"the tree holds {found} for your account, your balance is {args.balance}")
    if not leaves and args.balance is None:
        raise _fail("inclusion", "none of the tree's leaves is yours")
    return [f"{args.asset}: {len(leaves)} leaves hold {found} for account {args.account}"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        key = _hex(args.group_key, "group key")
        rpc = rpc_client(args.rpc) if args.rpc else None
        eth_rpc = rpc_client(args.eth_rpc) if args.eth_rpc else None
        passed = verify_snapshot(args.snapshot, key, rpc=rpc, rewind=args.rewind, eth_rpc=eth_rpc)
        if args.account_nonce is not None:
            passed += _client_checks(args, args.snapshot)
    except VerificationFailed as exc:
        print(f"FAILED {exc.check}: {exc.reason}", file=sys.stderr)
        return 1
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        print(f"FAILED format: a published file is malformed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"FAILED file: {exc}", file=sys.stderr)
        return 1
    for line in passed:
        print(f"ok  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
