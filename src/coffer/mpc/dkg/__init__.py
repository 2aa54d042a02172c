"""Distributed key generation, refresh and re-sharing for threshold Schnorr (FROST).

* `chilldkg` — ChillDKG for secp256k1 (BIP draft, byte-exact, Taproot-safe key).
* `ed25519` — the same design for Ed25519.
* `secp256k1_untweaked` — the same design for secp256k1 without the Taproot tweak (the threshold
  ECDSA key). These three are `DkgProtocol` instances (`coffer.mpc.dkg.bound`).
* `coffer.mpc.dkg.refresh` — new shares of the same key (dealings of zero).
* `coffer.mpc.dkg.reshare` — move the key to a new set of holders / threshold (revocation).

Every protocol ends in a `KeyShareOutput`: plain Shamir shares, the group public key and every
holder's public share, which `coffer.mpc.frost` consumes. No function here ever holds the whole
key, logs, or performs I/O; randomness comes in as arguments.
"""

from coffer.mpc.dkg.bound import DkgProtocol, chilldkg, ed25519, secp256k1_untweaked
from coffer.mpc.dkg.dealing import Holder
from coffer.mpc.dkg.protocol import SessionParams
from coffer.mpc.dkg.refresh import RefreshSession
from coffer.mpc.dkg.reshare import ReshareSession
from coffer.mpc.dkg.suite import ED25519_DKG, SECP256K1_CHILLDKG, SECP256K1_UNTWEAKED, DkgSuite
from coffer.mpc.dkg.types import KeyShareOutput, SecretShare
from coffer.mpc.dkg.verify import verify_output

__all__ = ["SessionParams", "KeyShareOutput", "SecretShare", "Holder", "RefreshSession", "ReshareSession",
           "DkgSuite", "SECP256K1_CHILLDKG", "SECP256K1_UNTWEAKED", "ED25519_DKG", "verify_output",
           "DkgProtocol", "chilldkg", "ed25519", "secp256k1_untweaked"]
