"""The one runtime of every key holder (cold signer, FROST and DKLs23 co-signer): mutual-TLS
transport, pins, governance checks and the guard that runs before anything is signed, dealt or
registered.

Nothing here trusts the coordinator: every decision is made from what the key holder pinned at
its ceremony and what it verifies itself.
"""
