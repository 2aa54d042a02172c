"""HSM access through PKCS#11 (SoftHSM2 by default; any PKCS#11 module in production).

Safe entry points: `Hsm` (open a token, generate non-extractable keys by label, sign, AES-GCM),
`open_hsm` (from a data directory's configuration), and SoftHSM2 token set-up.
"""

from coffer.hsm.errors import (
    DecryptionFailed,
    HsmError,
    HsmUnavailable,
    KeyExists,
    KeyNotFound,
    TokenNotFound,
    UnsupportedKey,
    WrongPin,
)
from coffer.hsm.softhsm import SOFTHSM_MODULE, init_token, write_config
from coffer.hsm.token import Hsm, KeyKind, normalize_low_s

__all__ = [
    "Hsm", "KeyKind", "normalize_low_s", "SOFTHSM_MODULE", "init_token", "write_config",
    "HsmError", "HsmUnavailable", "TokenNotFound", "WrongPin", "KeyNotFound", "KeyExists",
    "DecryptionFailed", "UnsupportedKey",
]
