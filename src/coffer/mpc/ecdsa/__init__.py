"""Threshold ECDSA on secp256k1: DKLs23 (eprint 2023/765), t-of-n, three rounds, no Paillier.

Public API (message-passing state machines; every message is `bytes` with a strict parser):

- `SetupSession` / `PeerSetup`: the once-per-pair OT setup (verified Simplest OT base OTs in both
  directions + zero-sharing seed). Discarded for good after any abort.
- `SigningSession`: round1 -> round2 -> round3 -> finalize, returning a verified low-S
  `Signature` with its recovery id.
- `KeyShare`: an ordinary Shamir share (identifier, scalar) with the key id, threshold and key.
- `derive`, `ethereum_address`: public non-hardened deposit-address derivation.

Building blocks (`base_ot`, `ot_extension`, `vole`, `zero_share`, `gf2`) are hazmat. Nothing in
this package logs or formats a share, a nonce or an OT seed.
"""

from coffer.mpc.ecdsa.errors import (
    BaseOtFailure,
    CommitmentMismatch,
    EcdsaError,
    InvalidTweak,
    MalformedMessage,
    MultiplicationCheckFailure,
    OtConsistencyFailure,
    ProtocolAbort,
    PublicShareMismatch,
    SecretReuse,
    SessionStateError,
    SetupDiscarded,
    SignatureInvalid,
    SignerSetError,
    TranscriptMismatch,
)
from coffer.mpc.ecdsa.hd import Derivation, default_chain_code, derive, ethereum_address
from coffer.mpc.ecdsa.messages import SignRound1, SignRound2, SignRound3
from coffer.mpc.ecdsa.setup import PeerSetup, SetupMessage, SetupSession, setup_id_for
from coffer.mpc.ecdsa.sign import (
    KeyShare,
    Signature,
    SigningSession,
    key_share_from_dkg,
    session_id_for,
)

__all__ = [
    "BaseOtFailure",
    "CommitmentMismatch",
    "Derivation",
    "EcdsaError",
    "InvalidTweak",
    "KeyShare",
    "MalformedMessage",
    "MultiplicationCheckFailure",
    "OtConsistencyFailure",
    "PeerSetup",
    "ProtocolAbort",
    "PublicShareMismatch",
    "SecretReuse",
    "SessionStateError",
    "SetupDiscarded",
    "SetupMessage",
    "SetupSession",
    "SignRound1",
    "SignRound2",
    "SignRound3",
    "Signature",
    "SignatureInvalid",
    "SignerSetError",
    "SigningSession",
    "TranscriptMismatch",
    "default_chain_code",
    "derive",
    "ethereum_address",
    "key_share_from_dkg",
    "session_id_for",
    "setup_id_for",
]
