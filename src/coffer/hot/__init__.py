"""The Bitcoin hot wallet: the co-signers' FROST Taproot key, accelerated withdrawals, refills.

Entry point: `HotWallet(engine, chain, ledger, mpc, key_id=...)` — `address()`, `pay(request,
decision, client_id=, now=)`, `settle(now)`, `record_refill(txid, amount_sats, now=)`.
"""

from coffer.hot.errors import HotError, HotPaymentRefused, InsufficientHotFunds
from coffer.hot.wallet import DUST_SATS, HOT_ACCOUNT, HotPayment, HotWallet, taproot_vsize

__all__ = ["HotWallet", "HotPayment", "HOT_ACCOUNT", "DUST_SATS", "taproot_vsize", "HotError",
           "HotPaymentRefused", "InsufficientHotFunds"]
