"""Proof of reserves and liabilities.

Liabilities: a Merkle sum tree per asset over every client's liability (`liabilities`), with a
private inclusion proof per client. Reserves: addresses, balances and BIP-322 proofs of control
(`reserves`; the proofs are made and checked by `coffer.btc`). A signed solvency statement per
asset on a hash-chained log (`statement`). Files in BitMEX's formats (`bitmex`). `verify` is the stand-alone verifier and
must stay importable without the rest of Coffer, so this package imports nothing eagerly.
"""
