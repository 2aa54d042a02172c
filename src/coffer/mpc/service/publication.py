"""The Ed25519 group key as the exchange's publication signer (proof of reserves, halt notices).

`publication_signer(...)` returns a plain `Callable[[bytes], bytes]` that the proof-of-reserves
and halt code call with the exact statement bytes: the coordinator's HSM attests the document,
the co-signers check its type and the attestation and sign jointly, and the signature is verified
with PyNaCl (libsodium) before it is returned. Anyone verifies it with the 32-byte public key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy.engine import Engine

from coffer.hsm import Hsm
from coffer.mpc.errors import InvalidSignature
from coffer.mpc.service.coordinator import MpcCoordinator, load_key
from coffer.mpc.service.errors import UnknownKey
from coffer.mpc.service.messages import attest_publication
from coffer.policy import ATTESTATION_KEY_LABEL

__all__ = ["publication_signer", "publication_public_key", "hsm_publication_attester", "PUBLICATION_KEY_ID",
           "stored_publication_key"]

PUBLICATION_KEY_ID = "publication"


def hsm_publication_attester(hsm: Hsm, label: str = ATTESTATION_KEY_LABEL) -> Callable[[bytes], bytes]:
    """The coordinator's HSM attestation of a document it asks the co-signers to publish."""
    return lambda document: attest_publication(hsm, document, label=label)


def publication_public_key(mpc: MpcCoordinator, key_id: str = "publication") -> bytes:
    """The 32-byte Ed25519 public key that verifies every publication."""
    return mpc.key(key_id).publication_public_key()


def stored_publication_key(engine: Engine, key_id: str = PUBLICATION_KEY_ID) -> bytes | None:
    """The publication key the DKG recorded in this home's database, or None before that DKG.

    `coffer serve` shows every published statement as verified or not against this key; a
    client checks the same statements with `coffer-verify` and a key it got some other way.
    """
    try:
        return load_key(engine, key_id).publication_public_key()
    except UnknownKey:
        return None


def publication_signer(mpc: MpcCoordinator, attest: Callable[[bytes], bytes], *, key_id: str = "publication",
                       cosigners: Sequence[int] | None = None) -> Callable[[bytes], bytes]:
    """`sign(document) -> 64-byte Ed25519 signature` by the co-signers' group key."""
    public_key = publication_public_key(mpc, key_id)
    verify_key = VerifyKey(public_key)

    def sign(document: bytes) -> bytes:
        signature = mpc.sign_publication(key_id, document, attest(document), cosigners=cosigners)
        try:
            verify_key.verify(document, signature)
        except BadSignatureError:
            raise InvalidSignature("the group signature does not verify with libsodium") from None
        return signature

    return sign
