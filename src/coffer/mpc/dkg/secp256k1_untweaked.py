"""Distributed key generation for secp256k1 keys that are not Taproot keys (threshold ECDSA):
ChillDKG's design and encodings without the BIP-341 tweak, under Coffer's own domain tags, so a
transcript of one can never be taken for the other. Outputs are plain Shamir shares.
"""

from __future__ import annotations

from typing import Final

from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.suite import SECP256K1_UNTWEAKED

__all__ = [
    "PROTOCOL",
    "hostpubkey_gen",
    "params_hash",
    "params_validate",
    "participant_step1",
    "participant_step2",
    "participant_finalize",
    "participant_investigate",
    "coordinator_step1",
    "coordinator_finalize",
    "coordinator_investigate",
    "participant_recover",
    "coordinator_recover",
    "participant_recovery_ack_sign",
    "participant_recovery_acks_verify",
    "participant_state1_serialize",
    "participant_state1_parse",
    "participant_state2_serialize",
    "participant_state2_parse",
    "coordinator_state_serialize",
    "coordinator_state_parse",
]

PROTOCOL: Final = DkgProtocol(SECP256K1_UNTWEAKED)

hostpubkey_gen = PROTOCOL.hostpubkey_gen
params_hash = PROTOCOL.params_hash
params_validate = PROTOCOL.params_validate
participant_step1 = PROTOCOL.participant_step1
participant_step2 = PROTOCOL.participant_step2
participant_finalize = PROTOCOL.participant_finalize
participant_investigate = PROTOCOL.participant_investigate
coordinator_step1 = PROTOCOL.coordinator_step1
coordinator_finalize = PROTOCOL.coordinator_finalize
coordinator_investigate = PROTOCOL.coordinator_investigate
participant_recover = PROTOCOL.participant_recover
coordinator_recover = PROTOCOL.coordinator_recover
participant_recovery_ack_sign = PROTOCOL.participant_recovery_ack_sign
participant_recovery_acks_verify = PROTOCOL.participant_recovery_acks_verify
participant_state1_serialize = PROTOCOL.participant_state1_serialize
participant_state1_parse = PROTOCOL.participant_state1_parse
participant_state2_serialize = PROTOCOL.participant_state2_serialize
participant_state2_parse = PROTOCOL.participant_state2_parse
coordinator_state_serialize = PROTOCOL.coordinator_state_serialize
coordinator_state_parse = PROTOCOL.coordinator_state_parse
