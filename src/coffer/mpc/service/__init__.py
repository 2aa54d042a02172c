"""MPC co-signer services and the coordinator that drives them over mutual TLS.

* `coffer cosigner --id N` runs `Cosigner` (cosigner.py) and the DKLs23 engine on the one
  key-holder server (server.py, `coffer.keyholder`).
* `MpcCoordinator` (coordinator.py): DKG, signing, refresh, re-share with the co-signers; holds no
  share. `CosignerClient` (client.py) is its connection to one co-signer.
* What is signed is derived by each co-signer itself (messages.py): Taproot spends, publication
  documents, refresh tests; never an opaque digest.
* `publication_signer` (publication.py): the Ed25519 group key as a `Callable[[bytes], bytes]`.
"""

from coffer.mpc.service.client import CosignerClient
from coffer.mpc.service.coordinator import Member, MpcCoordinator, MpcKey
from coffer.mpc.service.cosigner import SUITES, Cosigner
from coffer.mpc.service.errors import (
    CosignerRefused,
    CosignerRevoked,
    CosignerUnavailable,
    OpaqueMessageRefused,
    ProtocolViolation,
    QuorumUnavailable,
    ServiceError,
    SessionReplayed,
    SpendNotApproved,
    UnknownKey,
)
from coffer.mpc.service.messages import (
    Prevout,
    attest_publication,
    check_publication,
    p2tr_address,
    p2tr_script,
)
from coffer.mpc.service.pins import CosignerPins, read_pins, write_pins
from coffer.mpc.service.publication import (
    hsm_publication_attester,
    publication_public_key,
    publication_signer,
)

__all__ = [
    "CosignerClient", "MpcCoordinator", "MpcKey", "Member", "Cosigner", "SUITES",
    "CosignerRefused", "CosignerRevoked", "CosignerUnavailable", "OpaqueMessageRefused", "ProtocolViolation",
    "QuorumUnavailable", "ServiceError", "SessionReplayed", "SpendNotApproved", "UnknownKey",
    "Prevout", "attest_publication", "check_publication", "p2tr_address", "p2tr_script",
    "CosignerPins", "read_pins", "write_pins",
    "hsm_publication_attester", "publication_public_key", "publication_signer",
]
