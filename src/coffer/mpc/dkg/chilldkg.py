"""ChillDKG for secp256k1, byte-exact to the BIP draft (BlockstreamResearch/bip-frost-dkg a918968).

The threshold key carries the BIP-341 unspendable-script-path tweak, so it is safe as a Taproot
internal key. Outputs are plain Shamir shares: identifier i + 1 for list index i.
"""

from __future__ import annotations

from typing import Final

from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.suite import SECP256K1_CHILLDKG

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

PROTOCOL: Final = DkgProtocol(SECP256K1_CHILLDKG)

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
