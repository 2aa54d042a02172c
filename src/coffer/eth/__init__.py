"""The Ethereum hot wallet on a threshold-ECDSA (DKLs23) key held by the co-signers.

* `EthSpend` (spend.py): the plain transfer a co-signer re-derives the EIP-1559 digest from.
"""

from coffer.eth.errors import EthError, EthPaymentRefused, EthSpendInvalid, InsufficientEthFunds
from coffer.eth.spend import DEPOSIT_SWEEP, WITHDRAWAL, EthSpend

__all__ = ["EthSpend", "WITHDRAWAL", "DEPOSIT_SWEEP", "EthError", "EthPaymentRefused", "EthSpendInvalid",
           "InsufficientEthFunds"]
