"""A signer's own BIP-32 seed, made by the signer and kept only encrypted under an AES key
inside the signer's HSM token. It is decrypted into memory only while signing and wiped after.
Never log, return or repr the seed or any private key derived from it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from embit import bip32

from coffer.cold.descriptor import BIP48_PATH, KeyOrigin, network_params
from coffer.cold.errors import ColdError, SeedUnavailable
from coffer.hsm import DecryptionFailed, Hsm, KeyKind

__all__ = ["SeedVault", "SEED_KEK_LABEL", "IDENTITY_KEY_LABEL"]

SEED_KEK_LABEL = "cold-seed-kek"
IDENTITY_KEY_LABEL = "signer-identity"
SEED_BYTES = 32


class SeedVault:
    """The sealed seed file of one signer and the token that can open it."""

    def __init__(self, hsm: Hsm, path: Path, signer_id: int, network: str = "regtest") -> None:
        self._hsm = hsm
        self._path = path
        self._signer_id = signer_id
        self._network = network
        self._aad = f"coffer/cold/seed/v1/signer-{signer_id}".encode()

    def __repr__(self) -> str:
        return f"SeedVault(signer={self._signer_id}, path={str(self._path)!r})"

    @property
    def exists(self) -> bool:
        return self._path.exists()

    def create(self) -> None:
        """Make the seed inside this process, seal it under the token's key, write only the ciphertext."""
        if self._path.exists():
            raise ColdError(f"signer {self._signer_id} already has a seed")
        if not self._hsm.has_key(SEED_KEK_LABEL):
            self._hsm.generate_key(SEED_KEK_LABEL, KeyKind.AES256)
        if not self._hsm.has_key(IDENTITY_KEY_LABEL):
            self._hsm.generate_key(IDENTITY_KEY_LABEL, KeyKind.ED25519)
        seed = bytearray(secrets.token_bytes(SEED_BYTES))
        try:
            sealed = self._hsm.encrypt(SEED_KEK_LABEL, bytes(seed), self._aad)
        finally:
            seed[:] = bytes(len(seed))
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_bytes(sealed)
        temporary.chmod(0o600)
        temporary.replace(self._path)

    @contextmanager
    def root(self) -> Iterator[bip32.HDKey]:
        """The master key, alive only inside the `with` block."""
        try:
            seed = self._hsm.decrypt(SEED_KEK_LABEL, self._path.read_bytes(), self._aad)
        except (DecryptionFailed, FileNotFoundError):
            raise SeedUnavailable(f"signer {self._signer_id}: seed cannot be opened") from None
        try:
            yield bip32.HDKey.from_seed(bytes(seed), version=network_params(self._network)["xprv"])
        finally:
            seed[:] = bytes(len(seed))

    def account_key(self) -> KeyOrigin:
        path = BIP48_PATH[self._network]
        with self.root() as root:
            account = root.derive("m/" + path).to_public()
            account.version = network_params(self._network)["xpub"]
            return KeyOrigin(root.my_fingerprint.hex(), path, account.to_base58())

    def identity_public_key(self) -> bytes:
        return self._hsm.public_key(IDENTITY_KEY_LABEL)

    def sign_identity(self, message: bytes) -> bytes:
        return self._hsm.sign(IDENTITY_KEY_LABEL, message)
