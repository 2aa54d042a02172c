"""Liabilities: a blinded Merkle sum tree per asset, and each client's compact inclusion proof.

Pure: balances, account nonces and a random source come in; a tree comes out. It never reads a
clock or the ledger. Hash formats are those of `coffer.por.verify` (BitMEX-compatible):
leaves are HMAC-SHA256 of a per-snapshot sub-nonce over (value, index), nodes commit to both
children's digests and values. Values are unsigned 64-bit and the total must fit 64 bits.

Blinding: each balance is split into `parts` random pieces (a piece may be zero), the pieces
are shuffled over the leaves with a cryptographic random source, and the leaf level is padded
with zero-valued leaves whose digests are random bytes, up to a power of two. A padding leaf and
a zero piece look the same; the published leaf count tells the number of clients only to within
a factor of two. No two pieces of one account are siblings, so no inner node's value is a
client's balance. What the full tree file (BitMEX format) still shows: every piece's value, and
so roughly how many non-zero pieces there are.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from coffer.invariant import invariant
from coffer.por.errors import DuplicateAccount, LiabilityOutOfRange, MissingNonce, NotInTree, TooManyParts
from coffer.por.verify import (
    DEPTH_MAX,
    NONCE_BYTES,
    PROOF_LEAVES_MAX,
    U64_MAX,
    InclusionProof,
    ProofLeaf,
    ProofSibling,
    PublishedRoot,
    sibling_positions,
)

__all__ = ["Liability", "LiabilityTree", "RandomBytes", "PARTS_DEFAULT", "build_liabilities_tree",
           "build_liabilities_tree_arrays", "new_account_nonce"]

PARTS_DEFAULT = 2
RandomBytes = Callable[[int], bytes]
U64Array = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Liability:
    """What the exchange owes one account in one asset at the snapshot, in minor units."""

    account_number: int
    amount: int


def new_account_nonce(rng: RandomBytes = os.urandom) -> bytes:
    """A fresh lifetime account nonce (32 random bytes)."""
    nonce = rng(NONCE_BYTES)
    invariant(len(nonce) == NONCE_BYTES, "random source returned the wrong length")
    return nonce


class LiabilityTree:
    """A built tree: levels of (digests, values); level 0 are the leaves, the last is the root.

    It keeps which leaves belong to which account (to cut proofs) but no nonce.
    """

    __slots__ = ("asset", "height", "depth", "parts", "_levels", "_accounts", "_leaf_of_slot")

    def __init__(self, asset: str, height: int, parts: int, levels: list[tuple[npt.NDArray[np.uint8], U64Array]],
                 accounts: U64Array, leaf_of_slot: npt.NDArray[np.int64]) -> None:
        self.asset = asset
        self.height = height
        self.parts = parts
        self.depth = len(levels) - 1
        self._levels = levels
        self._accounts = accounts
        self._leaf_of_slot = leaf_of_slot

    def __repr__(self) -> str:
        return f"LiabilityTree(asset={self.asset!r}, height={self.height}, leaves={self.leaf_count})"

    @property
    def leaf_count(self) -> int:
        return len(self._levels[0][1])

    @property
    def root(self) -> bytes:
        return bytes(self._levels[-1][0][0])

    @property
    def total(self) -> int:
        return int(self._levels[-1][1][0])

    @property
    def account_count(self) -> int:
        return len(self._accounts)

    def published_root(self) -> PublishedRoot:
        return PublishedRoot(self.asset, self.height, self.root, self.total, self.leaf_count)

    def node(self, level: int, position: int) -> tuple[bytes, int]:
        digests, values = self._levels[level]
        return bytes(digests[position]), int(values[position])

    def leaf_indices(self, account_number: int) -> list[int]:
        if not 0 <= account_number <= U64_MAX:
            raise NotInTree(f"account {account_number} is not a 64-bit account number")
        slot = int(np.searchsorted(self._accounts, np.uint64(account_number)))
        if slot >= len(self._accounts) or int(self._accounts[slot]) != account_number:
            raise NotInTree(f"account {account_number} has no leaves in the {self.asset} tree")
        return sorted(int(i) for i in self._leaf_of_slot[slot * self.parts:(slot + 1) * self.parts])

    def proof_for(self, account_number: int) -> InclusionProof:
        """The account's leaves and the siblings on their paths (O(parts * log n))."""
        indices = self.leaf_indices(account_number)
        leaves = tuple(ProofLeaf(index, int(self._levels[0][1][index])) for index in indices)
        siblings = tuple(ProofSibling(*self.node(level, position))
                         for level, position in sibling_positions(indices, self.depth))
        return InclusionProof(self.asset, self.height, account_number, self.depth, leaves, siblings)

    def bitmex_lines(self) -> Iterator[str]:
        """The tree in BitMEX's file format: header, then root first, level by level."""
        yield f"block_height:{self.height}"
        for digests, values in reversed(self._levels):
            hex_digests = digests.tobytes().hex()
            for position, value in enumerate(values.tolist()):
                yield f"{hex_digests[64 * position:64 * position + 64]},{value}"


def build_liabilities_tree(asset: str, height: int, liabilities: Sequence[Liability] | Sequence[tuple[int, int]],
                           nonces: Mapping[int, bytes], *, parts: int = PARTS_DEFAULT,
                           rng: RandomBytes = os.urandom, leaf_count_min: int = 1) -> LiabilityTree:
    """Build one asset's tree from (account number, amount) pairs and each account's nonce."""
    pairs = [(item.account_number, item.amount) if isinstance(item, Liability) else (int(item[0]), int(item[1]))
             for item in liabilities]
    for account, amount in pairs:
        if not 0 <= account <= U64_MAX:
            raise LiabilityOutOfRange(f"account number {account} is not an unsigned 64-bit integer")
        if not 0 <= amount <= U64_MAX:
            raise LiabilityOutOfRange(f"account {account}: liability {amount} cannot be encoded (unsigned 64-bit)")
        if account not in nonces:
            raise MissingNonce(f"account {account} has no account nonce")
        if len(nonces[account]) != NONCE_BYTES:
            raise MissingNonce(f"account {account}: nonce must be {NONCE_BYTES} bytes")
    accounts = np.array([account for account, _ in pairs], dtype=np.uint64)
    amounts = np.array([amount for _, amount in pairs], dtype=np.uint64)
    nonce_blob = b"".join(nonces[account] for account, _ in pairs)
    return build_liabilities_tree_arrays(asset, height, accounts, amounts, nonce_blob, parts=parts, rng=rng,
                                         leaf_count_min=leaf_count_min)


def _random_u64(rng: RandomBytes, count: int) -> U64Array:
    data = rng(8 * count)
    invariant(len(data) == 8 * count, "random source returned the wrong length")
    return np.frombuffer(data, dtype="<u8").astype(np.uint64)


def _split(amounts: U64Array, parts: int, rng: RandomBytes) -> U64Array:
    """Each amount cut at parts-1 uniformly random points; rows sum to the amount exactly."""
    count = len(amounts)
    if parts == 1:
        return amounts.reshape(count, 1).copy()
    draws = _random_u64(rng, count * (parts - 1)).reshape(count, parts - 1)
    modulus = amounts + np.uint64(1)
    full = modulus == 0  # amount == 2**64 - 1: every 64-bit draw is already in range
    cuts = np.where(full[:, None], draws, draws % np.where(full, np.uint64(1), modulus)[:, None])
    cuts.sort(axis=1)
    bounds = np.concatenate([np.zeros((count, 1), np.uint64), cuts, amounts.reshape(count, 1)], axis=1)
    pieces: U64Array = np.diff(bounds, axis=1)
    return pieces


def _exact_total(amounts: U64Array) -> int:
    high = int(np.sum(amounts >> np.uint64(32), dtype=np.uint64))
    low = int(np.sum(amounts & np.uint64(0xFFFFFFFF), dtype=np.uint64))
    return (high << 32) + low


def _rows(array: npt.NDArray[np.uint8]) -> list[bytes]:
    """Rows of a byte matrix as bytes objects (numpy does the slicing in C)."""
    rows: list[bytes] = np.ascontiguousarray(array).view(f"V{array.shape[1]}").ravel().tolist()
    return rows


def _hash_range(start: int, stop: int) -> bytes:
    """SHA-256 of each shared record row in [start, stop) (runs in a forked worker too)."""
    return _sha256_rows(_SHARED["records"][start:stop])


def _sha256_rows(records: npt.NDArray[np.uint8]) -> bytes:
    sha256 = hashlib.sha256
    return b"".join([sha256(record).digest() for record in _rows(records)])


def _node_range(start: int, stop: int) -> bytes:
    """Parent digests [start, stop) of the shared child level: SHA-256 of left || right (digest, LE value)."""
    children = 2 * (stop - start)
    records = np.empty((children, 40), dtype=np.uint8)
    records[:, :32] = _SHARED["digests"][2 * start:2 * stop]
    records[:, 32:] = _SHARED["values"][2 * start:2 * stop].astype("<u8").view(np.uint8).reshape(children, 8)
    return _sha256_rows(records.reshape(stop - start, 80))


_IPAD, _OPAD = 0x36, 0x5C


def _hmac_range(start: int, stop: int) -> bytes:
    """HMAC-SHA256 of message row [slot] under key row [slot // parts], for slots [start, stop).

    Written out as RFC 2104 (two SHA-256 over numpy-built rows; keys are 32 bytes, under the
    64-byte block): the same bytes as hmac.digest, at a fraction of its per-call cost.
    """
    rows = stop - start
    keys = _SHARED["keys"][np.arange(start, stop) // _SHARED["parts"]]
    inner = np.full((rows, 80), _IPAD, dtype=np.uint8)
    inner[:, :NONCE_BYTES] ^= keys
    inner[:, 64:] = _SHARED["records"][start:stop]
    outer = np.full((rows, 96), _OPAD, dtype=np.uint8)
    outer[:, :NONCE_BYTES] ^= keys
    outer[:, 64:] = np.frombuffer(_sha256_rows(inner), dtype=np.uint8).reshape(rows, 32)
    return _sha256_rows(outer)


# Shared with forked workers as numpy arrays: a worker makes Python objects only for its own
# rows, so the parent's pages are not copied by reference counting. Workers write their output
# straight into a shared anonymous mapping (no pickling of results through pipes).
_SHARED: dict[str, Any] = {}
PARALLEL_MIN = 1 << 17
CHUNK_ROWS = 1 << 20
DIGEST_BYTES = 32


def _store(function: Callable[[int, int], bytes], begin: int, end: int) -> None:
    """Worker side: run one chunk and write its digests into the shared output mapping."""
    _SHARED["out"][DIGEST_BYTES * begin:DIGEST_BYTES * end] = function(begin, end)


def _run(function: Callable[[int, int], bytes], count: int, workers: int, **shared: Any) -> npt.NDArray[np.uint8]:
    """function over [0, count) in chunks, in `workers` forked processes when worth it: count digest rows."""
    return _start(function, count, workers, **shared)()


def _start(function: Callable[[int, int], bytes], count: int, workers: int,
           **shared: Any) -> Callable[[], npt.NDArray[np.uint8]]:
    """Like _run, but the forked workers hash in the background until the returned call collects them."""
    step = CHUNK_ROWS if workers <= 1 else max(1, min(CHUNK_ROWS, -(-count // (workers * 4))))
    bounds = [(begin, min(begin + step, count)) for begin in range(0, count, step)]
    _SHARED.clear()
    _SHARED.update(shared)
    try:
        if workers <= 1 or count < PARALLEL_MIN:
            joined = b"".join(function(begin, end) for begin, end in bounds)
            rows: npt.NDArray[np.uint8] = np.frombuffer(joined, dtype=np.uint8).reshape(count, DIGEST_BYTES)
            return lambda: rows
        import mmap
        import multiprocessing

        out = mmap.mmap(-1, DIGEST_BYTES * count)
        _SHARED["out"] = out
        pool = multiprocessing.get_context("fork").Pool(workers)  # the workers see _SHARED as it is now
    finally:
        _SHARED.clear()
    pending = pool.starmap_async(_store, [(function, begin, end) for begin, end in bounds])

    def collect() -> npt.NDArray[np.uint8]:
        try:
            pending.get()
        finally:
            pool.terminate()
            pool.join()
        return np.frombuffer(out, dtype=np.uint8).reshape(count, DIGEST_BYTES)

    return collect


def _sub_nonces(nonce_blob: bytes, height: int, accounts: U64Array,
                workers: int) -> Callable[[], npt.NDArray[np.uint8]]:
    """Each account's sub-nonce, hashed in the background: call the result to collect them."""
    count = len(accounts)
    table = np.empty((count, 48), dtype=np.uint8)
    table[:, :32] = np.frombuffer(nonce_blob, dtype=np.uint8).reshape(count, 32)
    table[:, 32:40] = np.frombuffer(struct.pack("<Q", height), dtype=np.uint8)
    table[:, 40:48] = accounts.astype("<u8").view(np.uint8).reshape(count, 8)
    return _start(_hash_range, count, workers, records=table)


def _level_up(digests: npt.NDArray[np.uint8], values: U64Array,
              workers: int) -> tuple[npt.NDArray[np.uint8], U64Array]:
    parents = _run(_node_range, len(values) // 2, workers, digests=digests, values=values)
    left, right = values[0::2], values[1::2]
    sums = left + right
    invariant(bool(np.all(sums >= left)), "a node's sum overflowed 64 bits")
    return parents, sums


def build_liabilities_tree_arrays(asset: str, height: int, accounts: U64Array, amounts: U64Array, nonce_blob: bytes,
                                  *, parts: int = PARTS_DEFAULT, rng: RandomBytes = os.urandom,
                                  leaf_count_min: int = 1, workers: int = 1) -> LiabilityTree:
    """The same on arrays (for millions of accounts): nonce_blob holds 32 bytes per account, in order.

    `workers` > 1 hashes in that many forked processes (only from a process without threads).
    """
    count = len(accounts)
    if not 1 <= parts <= PROOF_LEAVES_MAX:
        raise TooManyParts(f"parts must be between 1 and {PROOF_LEAVES_MAX}")
    if len(nonce_blob) != NONCE_BYTES * count or len(amounts) != count:
        raise MissingNonce("one 32-byte nonce and one amount per account are needed")
    order = np.argsort(accounts, kind="stable")
    accounts, amounts = accounts[order], amounts[order]
    if count and bool(np.any(accounts[1:] == accounts[:-1])):
        raise DuplicateAccount("an account appears twice in the liabilities")
    if _exact_total(amounts) > U64_MAX:
        raise LiabilityOutOfRange("the total liabilities do not fit 64 bits")
    nonce_blob = np.frombuffer(nonce_blob, dtype=np.uint8).reshape(count, 32)[order].tobytes()
    collect_keys = _sub_nonces(nonce_blob, height, accounts, workers)  # hashed while the leaves are laid out
    try:
        leaf_of_slot, values, digests, pieces, real = _lay_out(amounts, count, parts, rng, leaf_count_min)
    finally:
        keys = collect_keys()
    digests[leaf_of_slot[:real]] = _leaf_digests(keys, pieces, leaf_of_slot[:real], parts, workers)
    levels = [(digests, values)]
    while len(levels[-1][1]) > 1:
        levels.append(_level_up(*levels[-1], workers))
    tree = LiabilityTree(asset, height, parts, levels, accounts, leaf_of_slot[:real])
    invariant(tree.total == _exact_total(amounts), "the tree's total differs from the liabilities")
    return tree


def _lay_out(amounts: U64Array, count: int, parts: int, rng: RandomBytes, leaf_count_min: int
             ) -> tuple[npt.NDArray[np.int64], U64Array, npt.NDArray[np.uint8], U64Array, int]:
    """Split, shuffle and pad: (leaf of each slot, leaf values, random leaf digests, pieces, real leaves)."""
    pieces = _split(amounts, parts, rng).reshape(-1)
    real = count * parts
    leaf_count = 1
    while leaf_count < max(real, leaf_count_min, 1):
        leaf_count *= 2
    invariant(leaf_count.bit_length() - 1 <= DEPTH_MAX, "tree too deep")
    leaf_of_slot = _stable_argsort(_random_u64(rng, leaf_count))
    _separate_siblings(leaf_of_slot, count, parts, rng)
    values = np.zeros(leaf_count, dtype=np.uint64)
    values[leaf_of_slot[:real]] = pieces
    digests = np.frombuffer(rng(32 * leaf_count), dtype=np.uint8).reshape(leaf_count, 32).copy()
    return leaf_of_slot, values, digests, pieces, real


def _stable_argsort(keys: U64Array) -> npt.NDArray[np.int64]:
    """np.argsort(keys, kind="stable"), faster: without ties every sort gives that same order."""
    order = np.argsort(keys).astype(np.int64)
    ranked = keys[order]
    if len(keys) > 1 and bool(np.any(ranked[1:] == ranked[:-1])):
        order = np.argsort(keys, kind="stable").astype(np.int64)
    return order


SEPARATE_PASSES_MAX = 64


def _sibling_clashes(leaf_of_slot: npt.NDArray[np.int64], count: int, parts: int) -> npt.NDArray[np.int64]:
    """Accounts two of whose parts are siblings (their parent's value would be the balance)."""
    if parts < 2 or count == 0:
        return np.empty(0, dtype=np.int64)
    parents = np.sort(leaf_of_slot[:count * parts].reshape(count, parts) >> 1, axis=1)
    clash: npt.NDArray[np.int64] = np.nonzero(np.any(parents[:, 1:] == parents[:, :-1], axis=1))[0]
    return clash


def _separate_siblings(leaf_of_slot: npt.NDArray[np.int64], count: int, parts: int, rng: RandomBytes) -> None:
    """Move one part of each clashing account to a random leaf (a padding leaf when there are any:
    that never makes another account clash), until none clash. Best effort in tiny, full trees."""
    leaf_count, real = len(leaf_of_slot), count * parts
    if leaf_count < 4 * parts:
        return  # too small a tree to keep parts apart; nothing to hide in it anyway
    low, span = (real, leaf_count - real) if leaf_count > real else (0, leaf_count)
    for _ in range(SEPARATE_PASSES_MAX):
        clash = _sibling_clashes(leaf_of_slot, count, parts)
        if len(clash) == 0:
            return
        targets = np.uint64(low) + _random_u64(rng, len(clash)) % np.uint64(span)
        for account, target in zip(clash.tolist(), targets.tolist(), strict=True):
            slot = account * parts
            leaf_of_slot[[slot, target]] = leaf_of_slot[[target, slot]]


def _leaf_digests(keys: npt.NDArray[np.uint8], pieces: U64Array, leaf_index: npt.NDArray[np.int64],
                  parts: int, workers: int) -> npt.NDArray[np.uint8]:
    real = len(pieces)
    messages = np.empty((real, 2), dtype="<u8")
    messages[:, 0] = pieces
    messages[:, 1] = leaf_index
    return _run(_hmac_range, real, workers, records=messages.view(np.uint8).reshape(real, 16), keys=keys,
                parts=parts)
