"""Threshold cryptography: FROST (Schnorr over Ed25519, secp256k1 and Taproot), distributed key
generation, threshold ECDSA, refresh and re-sharing.

Safe entry points live in the sub-packages (`coffer.mpc.frost`, ...). The raw primitives in
`coffer.mpc.hazmat` are for modules of this package only. No function here ever holds a whole
private key, and no error or log line ever carries a share or a nonce.
"""
