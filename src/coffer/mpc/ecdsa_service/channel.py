"""Private, authenticated channels between ECDSA co-signers through the coordinator.

DKLs23 assumes private, authenticated point-to-point channels; the co-signers only talk to the
coordinator, which relays their messages. So every relayed message is sealed with
ChaCha20-Poly1305 under a pairwise key: HKDF-SHA256 of the static ECDH of the two co-signers' DKG
host keys (which every member of the key agreed on in the DKG's CertEq round), bound to the key
id and the ordered pair. The associated data binds the purpose, the session (or setup) id, the
round, sender and receiver, so the coordinator can neither read, alter, reorder nor redirect a
message: a failed open names the sender. The key material never leaves the process.
"""

from __future__ import annotations

import secrets
from typing import Final

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from coffer.mpc.service.errors import ProtocolViolation

__all__ = ["PairChannel", "SEALED_OVERHEAD_BYTES"]

_NONCE_BYTES: Final = 12
SEALED_OVERHEAD_BYTES: Final = _NONCE_BYTES + 16
_INFO: Final = b"coffer/ecdsa-cosigner/channel/v1"


class PairChannel:
    """The channel between this co-signer (`me`) and `peer` for one key."""

    def __init__(self, host_secret: bytes | bytearray, peer_public: bytes, *, key_id: str, me: int, peer: int) -> None:
        shared = coincurve.PublicKey(peer_public).multiply(bytes(host_secret)).format(compressed=True)
        low, high = sorted((me, peer))
        info = _INFO + len(key_id).to_bytes(2, "big") + key_id.encode() + low.to_bytes(2, "big") + high.to_bytes(2, "big")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)
        self._aead = ChaCha20Poly1305(key)
        self.me = me
        self.peer = peer

    def __repr__(self) -> str:
        return f"PairChannel(me={self.me}, peer={self.peer}, <redacted>)"

    @staticmethod
    def _aad(purpose: str, context: bytes, round_number: int, sender: int, receiver: int) -> bytes:
        return (purpose.encode() + b"\x00" + len(context).to_bytes(2, "big") + context
                + round_number.to_bytes(1, "big") + sender.to_bytes(2, "big") + receiver.to_bytes(2, "big"))

    def seal(self, purpose: str, context: bytes, round_number: int, plaintext: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        aad = self._aad(purpose, context, round_number, self.me, self.peer)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def open(self, purpose: str, context: bytes, round_number: int, sealed: bytes) -> bytes:
        """The plaintext from `peer`; a message that fails authentication names `peer`."""
        if len(sealed) < SEALED_OVERHEAD_BYTES:
            raise ProtocolViolation("sealed message too short", sender=self.peer)
        aad = self._aad(purpose, context, round_number, self.peer, self.me)
        try:
            return self._aead.decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], aad)
        except InvalidTag:
            raise ProtocolViolation("message fails authentication (altered, replayed or misrouted)",
                                    sender=self.peer) from None
