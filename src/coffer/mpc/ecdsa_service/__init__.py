"""Threshold-ECDSA (DKLs23) co-signers as processes, and the coordinator that drives them.

* `coffer cosigner --id N --home HOME` mounts `EcdsaCosigner` (cosigner.py) beside the FROST
  engine on the one key-holder server (server.py: `ecdsa_mount`); it shares co-signer N's token,
  pins, guard and history, and keeps its own store in HOME/cosigners/N/ecdsa/.
* `EcdsaCoordinator` (coordinator.py): DKG, pairing, signing of `EthSpend`s, re-share; holds no share.
* Relayed co-signer messages are sealed end to end (`PairChannel`, channel.py).
"""

from coffer.mpc.ecdsa_service.coordinator import EcdsaCoordinator, EcdsaKey, SignedTransaction
from coffer.mpc.ecdsa_service.cosigner import EcdsaCosigner
from coffer.mpc.ecdsa_service.errors import (
    EcdsaServiceError,
    KeyDisagreement,
    PairingFailed,
    SignatureRejected,
    SigningAborted,
)

__all__ = ["EcdsaCoordinator", "EcdsaKey", "SignedTransaction", "EcdsaCosigner", "EcdsaServiceError",
           "KeyDisagreement", "PairingFailed", "SignatureRejected", "SigningAborted"]
