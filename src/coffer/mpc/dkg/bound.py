"""`DkgProtocol`: the generic ChillDKG functions bound to one suite, and the three instances.

* `chilldkg` — ChillDKG for secp256k1, byte-exact to the BIP draft (BlockstreamResearch/bip-frost-dkg
  a918968); the threshold key carries the BIP-341 unspendable-script-path tweak, so it is safe as a
  Taproot internal key.
* `ed25519` — the same design (SimplPedPop + proof of possession + EncPedPop + CertEq) over
  edwards25519, without the Taproot tweak (see `coffer.mpc.dkg.suite` for the Ed25519 choices).
* `secp256k1_untweaked` — ChillDKG's design and encodings over secp256k1 without the tweak, under
  Coffer's own tags, for the threshold ECDSA key; a transcript of one is never taken for another.

Callers write `chilldkg.participant_step1(...)` and never pass a suite around. Outputs are plain
Shamir shares: identifier i + 1 for list index i.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NoReturn

from coffer.mpc.dkg import protocol
from coffer.mpc.dkg.errors import UnknownFaultyParticipantOrCoordinatorError
from coffer.mpc.dkg.protocol import CoordinatorState, ParticipantState1, ParticipantState2, SessionParams
from coffer.mpc.dkg.suite import ED25519_DKG, SECP256K1_CHILLDKG, SECP256K1_UNTWEAKED, DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput

__all__ = ["DkgProtocol", "chilldkg", "ed25519", "secp256k1_untweaked"]


class DkgProtocol:
    """ChillDKG over one suite. Every method is a pure function of its arguments."""

    def __init__(self, suite: DkgSuite) -> None:
        self.suite = suite

    def hostpubkey_gen(self, hostseckey: bytes) -> bytes:
        return protocol.hostpubkey_gen(self.suite, hostseckey)

    def params_hash(self, params: SessionParams) -> bytes:
        return protocol.params_hash(self.suite, params)

    def params_validate(self, params: SessionParams) -> None:
        protocol.params_validate(self.suite, params)

    def participant_step1(self, hostseckey: bytes, params: SessionParams,
                          random: bytes) -> tuple[ParticipantState1, bytes]:
        return protocol.participant_step1(self.suite, hostseckey, params, random)

    def participant_step2(self, hostseckey: bytes, state1: ParticipantState1, cmsg1: bytes,
                          aux_rand: bytes) -> tuple[ParticipantState2, bytes]:
        return protocol.participant_step2(self.suite, hostseckey, state1, cmsg1, aux_rand)

    def participant_finalize(self, state2: ParticipantState2, cmsg2: bytes) -> tuple[KeyShareOutput, bytes]:
        return protocol.participant_finalize(self.suite, state2, cmsg2)

    def participant_investigate(self, error: UnknownFaultyParticipantOrCoordinatorError,
                                cinv: bytes) -> NoReturn:
        protocol.participant_investigate(self.suite, error, cinv)

    def coordinator_step1(self, pmsgs1: Sequence[bytes],
                          params: SessionParams) -> tuple[CoordinatorState, bytes]:
        return protocol.coordinator_step1(self.suite, pmsgs1, params)

    def coordinator_finalize(self, state: CoordinatorState,
                             pmsgs2: Sequence[bytes]) -> tuple[bytes, KeyShareOutput, bytes]:
        return protocol.coordinator_finalize(self.suite, state, pmsgs2)

    def coordinator_investigate(self, pmsgs1: Sequence[bytes], params: SessionParams) -> list[bytes]:
        return protocol.coordinator_investigate(self.suite, pmsgs1, params)

    def participant_recover(self, hostseckey: bytes,
                            recovery_data: bytes) -> tuple[KeyShareOutput, SessionParams]:
        return protocol.participant_recover(self.suite, hostseckey, recovery_data)

    def coordinator_recover(self, recovery_data: bytes) -> tuple[KeyShareOutput, SessionParams]:
        return protocol.coordinator_recover(self.suite, recovery_data)

    def participant_recovery_ack_sign(self, hostseckey: bytes, recovery_data: bytes,
                                      params: SessionParams, aux_rand: bytes) -> bytes:
        return protocol.participant_recovery_ack_sign(self.suite, hostseckey, recovery_data, params, aux_rand)

    def participant_recovery_acks_verify(self, recovery_data: bytes, params: SessionParams,
                                         acks: Sequence[bytes]) -> None:
        protocol.participant_recovery_acks_verify(self.suite, recovery_data, params, acks)

    def participant_state1_serialize(self, state1: ParticipantState1) -> bytes:
        return protocol.participant_state1_serialize(self.suite, state1)

    def participant_state1_parse(self, data: bytes) -> ParticipantState1:
        return protocol.participant_state1_parse(self.suite, data)

    def participant_state2_serialize(self, state2: ParticipantState2) -> bytes:
        return protocol.participant_state2_serialize(state2)

    def participant_state2_parse(self, hostseckey: bytes, data: bytes) -> ParticipantState2:
        return protocol.participant_state2_parse(self.suite, hostseckey, data)

    def coordinator_state_serialize(self, state: CoordinatorState) -> bytes:
        return protocol.coordinator_state_serialize(state)

    def coordinator_state_parse(self, data: bytes) -> CoordinatorState:
        return protocol.coordinator_state_parse(self.suite, data)


chilldkg: Final = DkgProtocol(SECP256K1_CHILLDKG)
ed25519: Final = DkgProtocol(ED25519_DKG)
secp256k1_untweaked: Final = DkgProtocol(SECP256K1_UNTWEAKED)
