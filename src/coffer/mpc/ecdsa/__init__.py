"""Threshold ECDSA on secp256k1: DKLs23 (eprint 2023/765), t-of-n, three rounds, no Paillier.

Public API: message-passing state machines; every message is `bytes` with a strict parser that
names its sender. The transport (the co-signer service) must authenticate who sent what (mTLS)
and hand each call a mapping {sender identifier: bytes}.

Pairing, once per pair of co-signers (both sides run the same calls; ~70 ms CPU per pair):

    s = SetupSession(me=i, peer=j, key_id=k, nonce=n)   # n: fresh, the same on both sides
    out = s.start()                                     # message 1 -> peer
    out = s.receive(msg_from_peer)                      # messages 2..5 -> peer; None at the end
    setup = s.result()                                  # PeerSetup, kept in memory, reused

Signing (per signer; ~11 ms CPU per signer for 2-of-3):

    session = SigningSession(key=KeyShare, signers=[...], digest=32 bytes, nonce=fresh >= 16 bytes,
                             setups={peer: PeerSetup}, tweak=0, mark_used=persist_fn)
    r1 = session.round1()            # {peer: bytes}  ~26.7 kB each
    r2 = session.round2({peer: r1})  # {peer: bytes}  ~53.6 kB each
    r3 = session.round3({peer: r2})  # bytes, broadcast to every peer (135 bytes)
    sig = session.finalize({peer: r3})   # Signature(r, s, recovery_id): verified, low-S

Every signer must get the same signer set, digest, nonce and tweak from the coordinator (they are
bound into the session id) and should derive the digest itself from the approved request.
`mark_used(session_id, round)` runs before each round's output is returned: persist it there.
Any failure raises a typed `EcdsaError`; a `ProtocolAbort` names the suspected counterparties,
ends the session and discards every `PeerSetup` it used (a fresh pairing is then required; the
`ecdsa.ot_setup_discarded` log event is the alert). Call `session.abort(reason)` when another
signer reports an abort, so this side discards its setups too.

- `KeyShare` / `key_share_from_dkg`: an ordinary Shamir share (identifier, scalar) from
  `coffer.mpc.dkg` (creation, refresh, re-share) with the key id, threshold and group key.
- `derive`, `default_chain_code`, `ethereum_address`: public non-hardened deposit addresses; pass
  `Derivation.tweak` as `tweak` to sign for one (the lowest signer adds it to its share).

Building blocks (`base_ot`, `ot_extension`, `vole`, `zero_share`, `gf2`) are hazmat; `dealer` and
`local` are for tests, benches and demos only. Nothing in this package logs or formats a share, a
nonce or an OT seed.
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
