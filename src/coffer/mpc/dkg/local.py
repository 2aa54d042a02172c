"""Run a whole ChillDKG session inside one process: for tests, benchmarks and the demo only.

The co-signer services run each participant in its own process; this module plays every role
in turn and therefore sees every share. Never use it for a key that guards real funds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from coffer.invariant import invariant
from coffer.mpc.dkg.bound import DkgProtocol
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.dkg.types import KeyShareOutput

__all__ = ["LocalDkgResult", "run_local_dkg"]

Rng = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class LocalDkgResult:
    params: SessionParams
    participant_outputs: tuple[KeyShareOutput, ...]
    coordinator_output: KeyShareOutput
    recovery_data: bytes


def run_local_dkg(dkg: DkgProtocol, hostseckeys: Sequence[bytes], t: int, rng: Rng) -> LocalDkgResult:
    """Every participant and the coordinator, in order; any error propagates unchanged."""
    params = SessionParams(tuple(dkg.hostpubkey_gen(key) for key in hostseckeys), t)
    steps1 = [dkg.participant_step1(key, params, rng(32)) for key in hostseckeys]
    coordinator_state, cmsg1 = dkg.coordinator_step1([pmsg1 for _, pmsg1 in steps1], params)
    steps2 = [dkg.participant_step2(key, state1, cmsg1, rng(32))
              for key, (state1, _) in zip(hostseckeys, steps1, strict=True)]
    cmsg2, coordinator_output, recovery_data = dkg.coordinator_finalize(
        coordinator_state, [pmsg2 for _, pmsg2 in steps2])
    outputs = []
    for state2, _ in steps2:
        output, participant_recovery = dkg.participant_finalize(state2, cmsg2)
        outputs.append(output)
        invariant(participant_recovery == recovery_data, "participant and coordinator disagree on recovery data")
    return LocalDkgResult(params, tuple(outputs), coordinator_output, recovery_data)
