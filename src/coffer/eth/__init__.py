"""The Ethereum hot wallet on a threshold-ECDSA (DKLs23) key held by the co-signers.

* `EthSpend` (spend.py): the plain transfer a co-signer re-derives the EIP-1559 digest from.
* `EthHotWallet` (wallet.py): hot address, per-client deposit addresses (public tweaks of the
  group key), withdrawals, deposits credited after confirmations, sweeps, ledger settlement.
"""

from coffer.eth.errors import EthError, EthPaymentRefused, EthSpendInvalid, InsufficientEthFunds
from coffer.eth.spend import DEPOSIT_SWEEP, WITHDRAWAL, EthSpend
from coffer.eth.wallet import DEPOSIT_CUSTODY, HOT_CUSTODY, EthDeposit, EthHotWallet, EthPayment

__all__ = ["EthHotWallet", "EthPayment", "EthDeposit", "HOT_CUSTODY", "DEPOSIT_CUSTODY", "EthSpend", "WITHDRAWAL", "DEPOSIT_SWEEP", "EthError", "EthPaymentRefused", "EthSpendInvalid",
           "InsufficientEthFunds"]
