"""Cold wallet descriptors: `wsh(sortedmulti(m, ...))` with BIP-380 checksums, and BIP-129 records.

A wallet is two descriptors of the same keys: receive (`/0/*`) and change (`/1/*`). Its id is
the SHA-256 of the canonical receive descriptor, so a swapped key is a different wallet.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from embit.descriptor import Descriptor

from coffer.btc import descriptors as btc_descriptors
from coffer.btc import script as btc_script
from coffer.btc.descriptors import add_checksum, descriptor_checksum
from coffer.btc.errors import BtcError
from coffer.cold.errors import DescriptorError

__all__ = [
    "descriptor_checksum", "add_checksum", "strip_checksum", "KeyOrigin", "ColdWallet", "BIP48_PATH",
    "SIGNERS_MAX", "RECEIVE", "CHANGE", "network_params",
]

SIGNERS_MAX = 15
RECEIVE = 0
CHANGE = 1
# BIP-48 multisig P2WSH account path for test networks (coin type 1) and mainnet (0).
BIP48_PATH = {"regtest": "48h/1h/0h/2h", "testnet": "48h/1h/0h/2h", "signet": "48h/1h/0h/2h",
              "main": "48h/0h/0h/2h"}


def network_params(network: str) -> dict[str, object]:
    try:
        return btc_script.network_params(network)
    except BtcError:
        raise DescriptorError(f"unknown network {network!r}") from None


def strip_checksum(descriptor: str) -> str:
    """Check and remove the '#checksum'; a descriptor without one is refused."""
    try:
        return btc_descriptors.strip_checksum(descriptor, required=True)
    except BtcError as exc:
        raise DescriptorError(str(exc)) from None


@functools.lru_cache(maxsize=64)
def _parse_descriptor(descriptor: str) -> Descriptor:
    return Descriptor.from_string(strip_checksum(descriptor))


@functools.lru_cache(maxsize=100_000)
def _derive(descriptor: str, index: int) -> Descriptor:
    """Derived descriptors are pure functions of (descriptor, index): cached, never mutated."""
    return _parse_descriptor(descriptor).derive(index)


@functools.lru_cache(maxsize=100_000)
def _derived_scripts(descriptor: str, index: int) -> tuple[bytes, bytes]:
    if not 0 <= index < 2**31:
        raise DescriptorError("index out of range")
    derived = _derive(descriptor, index)
    return bytes(derived.script_pubkey().data), bytes(derived.witness_script().data)


_ORIGIN = re.compile(r"^\[([0-9a-f]{8})/([0-9h/]+)\]([1-9A-HJ-NP-Za-km-z]{100,120})$")


@dataclass(frozen=True, slots=True)
class KeyOrigin:
    """One signer's account key: fingerprint of its master key, BIP-48 path, extended public key."""

    fingerprint: str  # 8 hex characters
    path: str  # e.g. 48h/1h/0h/2h
    xpub: str

    def __post_init__(self) -> None:
        if not _ORIGIN.match(f"[{self.fingerprint}/{self.path}]{self.xpub}"):
            raise DescriptorError("malformed key origin")

    def expression(self, branch: int, index: int | None = None) -> str:
        """`[fp/path]xpub/branch/*`, or `/branch/index` for one address."""
        return f"[{self.fingerprint}/{self.path}]{self.xpub}/{branch}/{'*' if index is None else index}"


@dataclass(frozen=True, slots=True)
class ColdWallet:
    """An m-of-n P2WSH sortedmulti wallet over the given signers' account keys."""

    threshold: int
    keys: tuple[KeyOrigin, ...]
    network: str = "regtest"

    def __post_init__(self) -> None:
        n = len(self.keys)
        if not 1 <= n <= SIGNERS_MAX:
            raise DescriptorError(f"a wallet has 1..{SIGNERS_MAX} keys, not {n}")
        if not 1 <= self.threshold <= n:
            raise DescriptorError(f"threshold {self.threshold} is not within 1..{n}")
        if len({k.xpub for k in self.keys}) != n or len({k.fingerprint for k in self.keys}) != n:
            raise DescriptorError("duplicate key in wallet")
        network_params(self.network)

    def descriptor(self, branch: int = RECEIVE) -> str:
        """The descriptor with its checksum, keys in the given (registration) order."""
        if branch not in (RECEIVE, CHANGE):
            raise DescriptorError("branch must be 0 (receive) or 1 (change)")
        inner = ",".join(key.expression(branch) for key in self.keys)
        return add_checksum(f"wsh(sortedmulti({self.threshold},{inner}))")

    def address_descriptor(self, branch: int, index: int) -> str:
        """One address's own descriptor: the wallet's keys at `branch/index`, not ranged, with checksum.
        Published per reserves entry, so no two entries carry the same descriptor."""
        if branch not in (RECEIVE, CHANGE):
            raise DescriptorError("branch must be 0 (receive) or 1 (change)")
        if not 0 <= index < 2**31:
            raise DescriptorError("index out of range")
        inner = ",".join(key.expression(branch, index) for key in self.keys)
        return add_checksum(f"wsh(sortedmulti({self.threshold},{inner}))")

    @property
    def wallet_id(self) -> str:
        return hashlib.sha256(self.descriptor(RECEIVE).encode()).hexdigest()

    def _parsed(self, branch: int) -> Descriptor:
        return _parse_descriptor(self.descriptor(branch))

    def script_pubkey(self, branch: int, index: int) -> bytes:
        return _derived_scripts(self.descriptor(branch), index)[0]

    def witness_script(self, branch: int, index: int) -> bytes:
        return _derived_scripts(self.descriptor(branch), index)[1]

    def address(self, branch: int, index: int) -> str:
        return str(self._derived(branch, index).address(network_params(self.network)))

    def _derived(self, branch: int, index: int) -> Descriptor:
        if not 0 <= index < 2**31:
            raise DescriptorError("index out of range")
        return _derive(self.descriptor(branch), index)

    def derived_pubkeys(self, branch: int, index: int) -> dict[bytes, tuple[str, list[int]]]:
        """Each key's compressed pubkey -> (fingerprint, full derivation path as integers)."""
        result: dict[bytes, tuple[str, list[int]]] = {}
        for key in self._derived(branch, index).keys:
            result[bytes(key.get_public_key().sec())] = (key.origin.fingerprint.hex(), list(key.origin.derivation))
        return result

    @classmethod
    def from_descriptor(cls, descriptor: str, network: str = "regtest") -> ColdWallet:
        """Parse a receive descriptor `wsh(sortedmulti(m,[fp/path]xpub/0/*,...))#checksum`."""
        body = strip_checksum(descriptor)
        found = re.fullmatch(r"wsh\(sortedmulti\((\d{1,2}),(.+)\)\)", body)
        if not found:
            raise DescriptorError("not a wsh(sortedmulti(...)) descriptor")
        keys = []
        for part in found.group(2).split(","):
            item = re.fullmatch(r"\[([0-9a-f]{8})/([0-9h/]+)\]([1-9A-HJ-NP-Za-km-z]+)/0/\*", part)
            if not item:
                raise DescriptorError(f"key expression {part[:40]!r}... is not [fp/path]xpub/0/*")
            keys.append(KeyOrigin(item.group(1), item.group(2), item.group(3)))
        wallet = cls(int(found.group(1)), tuple(keys), network)
        if wallet.descriptor(RECEIVE) != descriptor:
            raise DescriptorError("descriptor is not in canonical form")
        return wallet

    def bsms_record(self) -> str:
        """The BIP-129 (BSMS 1.0) descriptor record: version, template, path restrictions, first address."""
        inner = ",".join(f"[{k.fingerprint}/{k.path}]{k.xpub}/**" for k in self.keys)
        template = f"wsh(sortedmulti({self.threshold},{inner}))"
        return "\n".join(["BSMS 1.0", template, "/0/*,/1/*", self.address(RECEIVE, 0)]) + "\n"
