"""Bitcoin's hashes: SHA-256d, HASH160 and BIP-340 tagged hashes (embit's, typed)."""

from __future__ import annotations

from embit import hashes as embit_hashes

__all__ = ["sha256", "sha256d", "hash160", "tagged_hash"]


def sha256(data: bytes) -> bytes:
    digest: bytes = embit_hashes.sha256(data)
    return digest


def sha256d(data: bytes) -> bytes:
    """SHA256(SHA256(data)): transaction ids and block hashes (internal byte order)."""
    digest: bytes = embit_hashes.double_sha256(data)
    return digest


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)): P2PKH and P2WPKH key hashes."""
    digest: bytes = embit_hashes.hash160(data)
    return digest


def tagged_hash(tag: str, message: bytes) -> bytes:
    """BIP-340 tagged hash: SHA256(SHA256(tag) || SHA256(tag) || message)."""
    digest: bytes = embit_hashes.tagged_hash(tag, message)
    return digest
