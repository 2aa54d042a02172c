"""Cold custody: Bitcoin m-of-n P2WSH multisig held by signer processes that keep their own keys.

Safe entry points: `ColdWallet` (descriptors, addresses, BIP-129 record), `draw_quorum` /
`verify_draw` (the verifiable random quorum), `build_batch_psbt` (coordinator side, no keys),
`ColdSigner` (signer side: checks everything itself before it signs). The coordinator never
holds a private key; a signer never signs an opaque digest.
"""

from coffer.cold.bundle import ApprovedPayment, SigningBundle
from coffer.cold.descriptor import CHANGE, RECEIVE, ColdWallet, KeyOrigin
from coffer.cold.draw import Draw, draw_quorum, verify_draw
from coffer.cold.errors import (
    BundleInvalid,
    ColdError,
    DescriptorError,
    DrawMismatch,
    InsufficientFunds,
    NotRegistered,
    PsbtInvalid,
    SeedUnavailable,
    SignerRefused,
)
from coffer.cold.psbt import Payment, Utxo, build_batch_psbt, combine_partial_signatures, finalize, parse_psbt
from coffer.cold.signer import ApprovedOutput, ColdSigner, SignerStore

__all__ = [
    "ApprovedPayment", "SigningBundle", "CHANGE", "RECEIVE", "ColdWallet", "KeyOrigin", "Draw", "draw_quorum",
    "verify_draw", "Payment", "Utxo", "build_batch_psbt", "combine_partial_signatures", "finalize", "parse_psbt",
    "ApprovedOutput", "ColdSigner", "SignerStore", "ColdError", "DescriptorError", "DrawMismatch",
    "InsufficientFunds", "NotRegistered", "PsbtInvalid", "SeedUnavailable", "SignerRefused", "BundleInvalid",
]
