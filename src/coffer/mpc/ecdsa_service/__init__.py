"""Threshold-ECDSA (DKLs23) co-signers as processes, and the coordinator that drives them.

* `coffer ecdsa-cosigner --id N --home HOME` runs `EcdsaCosigner` (cosigner.py) behind
  `EcdsaCosignerServer` (server.py), in its own process with its own HOME/cosigners/N/ecdsa/
  (SoftHSM2 token, SQLite store, signed history); it reads the co-signer's shared pins file.
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
