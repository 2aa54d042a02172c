"""Coffer: the custody and security core of a crypto exchange.

Cold Bitcoin multisig with a verifiable random quorum, threshold MPC hot wallets, policy and
segregation of duties attested by an HSM, an account-segregated double-entry ledger, continuous
reconciliation with a halt switch, and a publicly verifiable proof of reserves and liabilities.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
